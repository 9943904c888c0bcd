"""An in-memory snapshot of a station registry, refreshed in a background thread (lookups never block).

:class:`RegistrySnapshot` wraps any :class:`~.registry.StationRegistry` and answers :meth:`~RegistrySnapshot.get`
and :meth:`~RegistrySnapshot.list` from a dictionary, so ``serve()`` and the gateway may look stations up on
the event loop (it declares ``nonblocking = True``). Called from a thread that runs no event loop (``serve()``
checks passwords in a worker thread), :meth:`~RegistrySnapshot.get` reads the registry itself instead, so a
password check sees every committed change at once (an A01 rotation confirmed through another gateway),
and the answer also updates the snapshot; if the registry cannot be read there, the snapshot answers.
A thread keeps the dictionary current:

- every ``interval`` seconds it asks the registry for its change marker (``change_marker()``, which
  :class:`~.registry_sql.SqlRegistry` has: SQLite's ``PRAGMA data_version``, answered from memory, or one
  PostgreSQL row of the table's count and ``xmin`` sum) and reloads the whole registry only when the marker
  moved; a registry without a marker (:class:`~.registry.MemoryRegistry`) is reloaded every time;
- writes through the snapshot (``add``/``update``/``remove``, e.g. the A01/A05 promotion after a handshake)
  go to the registry first and then into the dictionary at once; they block like the registry does, so call
  them from a worker thread;
- each reload is compared with the dictionary it replaces: the identities added, removed and updated go to
  the subscribers (:meth:`~RegistrySnapshot.subscribe`) as one :class:`RegistryChange`, in the thread that
  found them (the poll thread or the writer's); :attr:`~RegistrySnapshot.version` counts the changes.

A registry that fails (a database outage) leaves the last snapshot in place: stations are looked up in what
the registry said last, the failure is logged once per outage, and polling goes on.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ocppsec.pki.errors import OcppsecError
from ocppsec.security_profiles.registry import StationRecord, StationRegistry

__all__ = ["RegistryChange", "RegistrySnapshot"]

_log = logging.getLogger("ocppsec.security_profiles.registry_snapshot")


@dataclass(frozen=True, slots=True)
class RegistryChange:
    """What one refresh (or one write through the snapshot) changed; ``version`` is the snapshot's after it."""

    version: int
    added: frozenset[str] = field(default_factory=frozenset)
    removed: frozenset[str] = field(default_factory=frozenset)
    updated: frozenset[str] = field(default_factory=frozenset)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.updated)


Subscriber = Callable[[RegistryChange], None]


def _diff(old: Mapping[str, StationRecord], new: Mapping[str, StationRecord]) -> tuple[set[str], set[str], set[str]]:
    added = {k for k in new if k not in old}
    removed = {k for k in old if k not in new}
    updated = {k for k, v in new.items() if k in old and old[k] != v}
    return added, removed, updated


class RegistrySnapshot:
    """A :class:`~.registry.StationRegistry` answering reads from memory (see the module docstring).

    ``interval``: seconds between polls of the registry's change marker. :meth:`start` loads the registry
    once (raising if it cannot) and starts the poll thread; :meth:`close` stops it (the wrapped registry
    stays open: its owner closes it). Also a context manager.
    """

    nonblocking = True  # get() and list() never wait for I/O: serve() may call them on the event loop

    def __init__(self, registry: StationRegistry, *, interval: float = 1.0) -> None:
        self.registry = registry
        self.interval = interval
        self._records: dict[str, StationRecord] = {}
        self._lock = threading.Lock()  # one writer of _records at a time (readers take no lock)
        self._writes = 0  # local writes, so a reload that raced one is done again
        self._marker: object = None
        self._has_marker = callable(getattr(registry, "change_marker", None))
        self._subscribers: list[Subscriber] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failing = False  # the last poll could not read the registry
        self.version = 0
        self.refreshes = 0  # reloads of the whole registry
        self.last_refresh: float | None = None  # time.monotonic() of the last poll that reached the registry

    # -- the StationRegistry interface --------------------------------------------------------------
    def get(self, identity: str) -> StationRecord | None:
        """From memory on an event loop's thread; read through to the registry from any other thread."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self._read_through(identity)
        return self._records.get(identity)

    def _read_through(self, identity: str) -> StationRecord | None:
        with self._lock:
            writes = self._writes
        try:
            record = self.registry.get(identity)
        except OcppsecError as exc:
            _log.info("station registry unreadable, answering %s from the snapshot: %s", identity, exc.message)
            return self._records.get(identity)
        if self._records.get(identity) != record:
            self._apply(identity, record, since=writes)
        return record

    def list(self) -> list[StationRecord]:
        records = self._records
        return sorted(records.values(), key=lambda r: r.identity)

    def add(self, record: StationRecord) -> None:
        self.registry.add(record)
        self._apply(record.identity, record)

    def update(self, record: StationRecord) -> None:
        self.registry.update(record)
        self._apply(record.identity, record)

    def remove(self, identity: str) -> None:
        self.registry.remove(identity)
        self._apply(identity, None)

    # -- subscriptions ----------------------------------------------------------------------------------
    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback`` with every :class:`RegistryChange` from now on; returns the unsubscribe function.

        The callback runs in the thread that found the change and must not block (hand the change to an
        event loop with ``loop.call_soon_threadsafe``); an exception in it is logged and dropped."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def _notify(self, change: RegistryChange) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(change)
            except Exception:
                _log.exception("a registry-change subscriber failed")

    # -- refreshing ---------------------------------------------------------------------------------------
    def _apply(self, identity: str, record: StationRecord | None, *, since: int | None = None) -> None:
        """Put ``record`` (None: removed) into the snapshot; with ``since`` (a read), only if no write through
        the snapshot happened after the read began."""
        with self._lock:
            if since is not None and self._writes != since:
                return
            self._writes += 1
            old = self._records.get(identity)
            if old == record:
                return
            records = dict(self._records)
            if record is None:
                records.pop(identity, None)
            else:
                records[identity] = record
            self._records = records
            self.version += 1
            change = RegistryChange(self.version, frozenset({identity}) if old is None else frozenset(),
                                    frozenset({identity}) if record is None else frozenset(),
                                    frozenset({identity}) if old is not None and record is not None else frozenset())
        self._notify(change)

    def refresh(self, *, force: bool = False) -> RegistryChange | None:
        """Poll once now (in the calling thread): reload when the marker moved (always with ``force`` or
        without a marker). The change found, or None when nothing changed. Raises what the registry raises."""
        for _attempt in range(3):
            with self._lock:
                writes = self._writes
            marker = self.registry.change_marker() if self._has_marker else None  # type: ignore[attr-defined]
            self.last_refresh = time.monotonic()
            if self._has_marker and not force and marker == self._marker:
                return None
            fresh = {r.identity: r for r in self.registry.list()}
            with self._lock:
                if self._writes != writes:
                    continue  # a write through us landed meanwhile: the list may predate it
                self.refreshes += 1
                self._marker = marker
                added, removed, updated = _diff(self._records, fresh)
                if not (added or removed or updated):
                    return None
                self._records = fresh
                self.version += 1
                change = RegistryChange(self.version, frozenset(added), frozenset(removed), frozenset(updated))
            self._notify(change)
            return change
        return None  # writes keep landing; the next poll tries again

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except OcppsecError as exc:
                if not self.failing:
                    _log.warning("station registry unavailable, using the last snapshot (%d stations): %s",
                                 len(self._records), exc.message)
                self.failing = True
            except Exception:
                _log.exception("refreshing the station registry snapshot failed")
                self.failing = True
            else:
                if self.failing:
                    _log.warning("station registry reachable again")
                self.failing = False

    # -- lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> RegistrySnapshot:
        """Load the registry (raising if it cannot be read) and start polling it."""
        if self._thread is None:
            self.refresh(force=True)
            self._stop.clear()
            self._thread = threading.Thread(target=self._poll, name="registry-snapshot", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop polling (the wrapped registry is left open)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=30)

    def __enter__(self) -> RegistrySnapshot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self._records)

    def __repr__(self) -> str:
        return f"RegistrySnapshot({self.registry!r}, {len(self._records)} stations, version {self.version})"
