"""The event store interface, the query object, and the buffering wrapper that survives outages.

The implementation is :class:`ocppsec.eventlog.store_sql.SqlEventStore`, opened by
:func:`~ocppsec.eventlog.store_sql.open_store` from a SQLite path (``./ocppsec-events.db``),
``sqlite:///path`` or a ``postgresql://`` URL (several CSMS nodes); one contract test suite runs over both.
:class:`BufferedSink` wraps any store: while the store is unreachable (:class:`StoreUnavailableError`)
events wait in memory and, if a spool file is given, on disk, and they are written when the store is
back. Nothing is lost and duplicates are stored once.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from ocppsec.eventlog._files import append_lines
from ocppsec.pki.errors import InputError, StoreError, StoreUnavailableError, UsageError
from ocppsec.pki.events.model import SecurityEvent

__all__ = [
    "DEFAULT_STORE",
    "AddResult",
    "BufferedSink",
    "EventQuery",
    "EventStore",
    "StatRow",
    "StoreUnavailableError",
    "StoredEvent",
]

DEFAULT_STORE = "./ocppsec-events.db"


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as stored: its store-assigned id (increasing in insertion order) and the event."""

    id: int
    event: SecurityEvent


@dataclass(frozen=True, slots=True)
class AddResult:
    inserted: int
    duplicates: int

    def __add__(self, other: AddResult) -> AddResult:
        return AddResult(self.inserted + other.inserted, self.duplicates + other.duplicates)


@dataclass(frozen=True, slots=True)
class StatRow:
    station_id: str
    type: str
    count: int
    critical: int
    first: datetime
    last: datetime


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Filters of a query; all optional. ``since`` is inclusive, ``until`` exclusive.

    ``type`` matches the canonical type, so a 1.6 name and its 2.0.1 name select the same events.
    ``order="time"`` sorts by timestamp (then id); ``order="id"`` by insertion (used by ``tail``).
    """

    station_id: str | None = None
    type: str | None = None
    critical: bool | None = None
    since: datetime | None = None
    until: datetime | None = None
    after_id: int | None = None
    limit: int | None = None
    order: Literal["time", "id"] = "time"
    descending: bool = False

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise UsageError(f"query {name} has no time zone", hint="pass an aware UTC datetime")
        if self.limit is not None and self.limit < 0:
            raise UsageError("query limit must not be negative")


@runtime_checkable
class EventStore(Protocol):
    """What both stores offer. Every method raises :class:`StoreError` (or a subclass) on failure."""

    @property
    def location(self) -> str:
        """The path or URL (password removed) for messages."""

    def record(self, event: SecurityEvent) -> None:
        """:class:`EventSink` interface: store one event (a duplicate is ignored)."""

    def add_many(self, events: Iterable[SecurityEvent]) -> AddResult:
        """Store a batch in one transaction; duplicates (in the batch or already stored) stored once."""

    def query(self, q: EventQuery) -> list[StoredEvent]: ...

    def iter_query(self, q: EventQuery) -> Iterator[StoredEvent]:
        """Like :meth:`query`, streamed (for exports of millions of rows)."""

    def count(self, q: EventQuery) -> int: ...

    def stats(self, q: EventQuery) -> list[StatRow]:
        """Counts per (station, canonical type), most frequent first."""

    def last_id(self) -> int:
        """The highest id stored (0 when empty); ``tail`` starts after it."""

    def schema_version(self) -> int: ...

    def explain(self, q: EventQuery) -> str:
        """The backend's query plan for ``q`` (to check that the index is used)."""

    def close(self) -> None: ...


class BufferedSink:
    """An :class:`EventSink` over a store that keeps events while the store is unavailable.

    ``record`` never loses a valid event: if the store is unreachable the event waits (in memory and in
    ``spool`` if given, one JSON line per event, fsynced) and is written by the next successful
    :meth:`flush` (called by ``record`` at most every ``retry_interval`` seconds, and by :meth:`close`).
    A spool left by a previous process is loaded on start. Thread-safe.
    """

    def __init__(
        self,
        store: EventStore,
        *,
        spool: str | os.PathLike[str] | None = None,
        retry_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._spool = Path(spool) if spool is not None else None
        self._retry_interval = retry_interval
        self._clock = clock
        self._lock = threading.RLock()
        self._pending: list[SecurityEvent] = []
        self._next_try = 0.0
        self.last_error: StoreError | None = None
        if self._spool is not None and self._spool.exists():
            self._pending.extend(self._read_spool(self._spool))

    @staticmethod
    def _read_spool(path: Path) -> Iterator[SecurityEvent]:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.strip():
                with contextlib.suppress(ValueError, StoreError, InputError):  # a torn last line
                    yield SecurityEvent.from_json(json.loads(line))

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def record(self, event: SecurityEvent) -> None:
        self.record_many((event,))

    def record_many(self, events: Sequence[SecurityEvent]) -> None:
        with self._lock:
            if self._pending or self._clock() < self._next_try:
                self._buffer(events)
                self.flush(force=False)
                return
            try:
                self._store.add_many(events)
            except StoreUnavailableError as exc:
                self.last_error = exc
                self._next_try = self._clock() + self._retry_interval
                self._buffer(events)

    def _buffer(self, events: Sequence[SecurityEvent]) -> None:
        self._pending.extend(events)
        if self._spool is not None:
            append_lines(self._spool, [event.to_json_line() for event in events])

    def flush(self, *, force: bool = True) -> bool:
        """Try to write what is pending; True when nothing is pending any more."""
        with self._lock:
            if not self._pending:
                return True
            if not force and self._clock() < self._next_try:
                return False
            try:
                self._store.add_many(self._pending)
            except StoreUnavailableError as exc:
                self.last_error = exc
                self._next_try = self._clock() + self._retry_interval
                return False
            self._pending.clear()
            self.last_error = None
            if self._spool is not None:
                self._spool.unlink(missing_ok=True)
            return True

    def close(self) -> None:
        self.flush()
