"""Station side: the rolling security log and the offline queue of critical events (file adapters).

- :class:`RollingLog` records *every* event (A04.FR.04) as JSON lines in ``security.log``; when the file
  would exceed ``max_bytes`` it is rotated to ``security.log.1`` ... ``security.log.<backups>`` and the
  oldest is dropped, so the log never takes more than ``(backups + 1) * max_bytes``.
- :class:`OfflineQueue` keeps critical events until the CSMS confirmed them (A04.FR.02, guaranteed
  delivery): an append-only journal, fsynced, replayed on start, so a restart loses nothing. An
  ``InvalidTLSVersion`` event is queued only once while one is pending (every reconnect attempt fails
  the same way; one report is enough).
- :class:`StationSecurityLog` ties both together for one station and produces the GetLog file.

Time is always passed in; nothing here reads a clock.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path

from ocppsec.eventlog._files import append_lines
from ocppsec.eventlog.logfile import render_log
from ocppsec.pki.errors import StoreError
from ocppsec.pki.events import catalogue
from ocppsec.pki.events.model import EventInputError, SecurityEvent, Source, normalize_event
from ocppsec.pki.versions import OcppVersion

__all__ = ["QUEUE_ONCE", "OfflineQueue", "RollingLog", "StationSecurityLog"]

QUEUE_ONCE = frozenset({"InvalidTLSVersion"})


class RollingLog:
    """A size-bounded, rotated log of every event of one station."""

    def __init__(self, directory: str | os.PathLike[str], *, max_bytes: int = 1 << 20, backups: int = 4) -> None:
        if max_bytes < 256 or backups < 0:
            raise ValueError("max_bytes must be >= 256 and backups >= 0")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()

    @property
    def current(self) -> Path:
        return self.directory / "security.log"

    def files(self) -> list[Path]:
        """Oldest first."""
        rotated = [self.directory / f"security.log.{n}" for n in range(self.backups, 0, -1)]
        return [p for p in [*rotated, self.current] if p.exists()]

    def _rotate(self) -> None:
        oldest = self.directory / f"security.log.{self.backups}"
        oldest.unlink(missing_ok=True)
        for n in range(self.backups - 1, 0, -1):
            src = self.directory / f"security.log.{n}"
            if src.exists():
                os.replace(src, self.directory / f"security.log.{n + 1}")
        if self.backups:
            os.replace(self.current, self.directory / "security.log.1")
        else:
            self.current.unlink()

    def append(self, event: SecurityEvent) -> None:
        line = event.to_json_line()
        size = len(line.encode("utf-8")) + 1
        with self._lock:
            try:
                if self.current.exists() and self.current.stat().st_size + size > self.max_bytes:
                    self._rotate()
                append_lines(self.current, [line])
            except OSError as exc:
                raise StoreError(f"cannot write the security log in {self.directory}: {exc}") from None

    def events(self, oldest: datetime | None = None, latest: datetime | None = None) -> Iterator[SecurityEvent]:
        """Events with oldest <= timestamp <= latest (either bound optional), in file order."""
        with self._lock:  # read a consistent snapshot; parse it without holding the lock
            texts = [path.read_text(encoding="utf-8", errors="replace") for path in self.files()]
        for text in texts:
            for line in text.splitlines():
                try:
                    event = SecurityEvent.from_json(json.loads(line))
                except (ValueError, EventInputError):
                    continue  # a torn line after a power cut
                if oldest is not None and event.timestamp < oldest:
                    continue
                if latest is not None and event.timestamp > latest:
                    continue
                yield event

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.files())


class OfflineQueue:
    """Critical events waiting for the CSMS's confirmation; survives restarts."""

    def __init__(self, path: str | os.PathLike[str], *, queue_once: Iterable[str] = QUEUE_ONCE) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._queue_once = frozenset(catalogue.canonical_name(t) for t in queue_once)
        self._lock = threading.Lock()
        self._pending: dict[int, SecurityEvent] = {}
        self._next = 1
        self._replay()

    def _replay(self) -> None:
        if not self.path.exists():
            return
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                entry = json.loads(line)
                seq = int(entry["seq"])
                if entry["op"] == "add":
                    self._pending[seq] = SecurityEvent.from_json(entry["event"])
                elif entry["op"] == "ack":
                    self._pending.pop(seq, None)
                self._next = max(self._next, seq + 1)
            except (ValueError, KeyError, TypeError, EventInputError):
                continue  # a torn last line: that entry was never confirmed to the caller

    def put(self, event: SecurityEvent) -> int | None:
        """Queue ``event``; returns its sequence number, or None if a queue-once type is pending."""
        with self._lock:
            if event.canonical_type in self._queue_once and any(
                e.canonical_type == event.canonical_type for e in self._pending.values()
            ):
                return None
            seq = self._next
            self._next += 1
            entry = {"op": "add", "seq": seq, "event": event.to_json()}
            try:
                append_lines(self.path, [json.dumps(entry, separators=(",", ":"))])
            except OSError as exc:
                raise StoreError(f"cannot write the offline event queue {self.path}: {exc}") from None
            self._pending[seq] = event
            return seq

    def pending(self) -> list[tuple[int, SecurityEvent]]:
        """Oldest first."""
        with self._lock:
            return sorted(self._pending.items())

    def ack(self, seq: int) -> None:
        """The CSMS confirmed ``seq``: never send it again."""
        with self._lock:
            if seq not in self._pending:
                return
            try:
                if len(self._pending) == 1:
                    self._compact_empty()
                else:
                    append_lines(self.path, [json.dumps({"op": "ack", "seq": seq})])
            except OSError as exc:
                raise StoreError(f"cannot write the offline event queue {self.path}: {exc}") from None
            del self._pending[seq]

    def _compact_empty(self) -> None:
        # Keep the sequence counter going across restarts with an explicit marker.
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(json.dumps({"op": "mark", "seq": self._next - 1}) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)


class StationSecurityLog:
    """The security log of one station: every event in the rolling log, critical ones also queued."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        station_id: str,
        ocpp_version: OcppVersion,
        max_bytes: int = 1 << 20,
        backups: int = 4,
    ) -> None:
        self.station_id = station_id
        self.ocpp_version = ocpp_version
        self.log = RollingLog(directory, max_bytes=max_bytes, backups=backups)
        self.queue = OfflineQueue(Path(directory) / "pending-events.jsonl")

    def raise_event(self, type: str, *, at: datetime, tech_info: str | None = None) -> SecurityEvent:
        """Record an event that happened at ``at`` (its name in any version's spelling)."""
        event = normalize_event(
            station_id=self.station_id,
            type=catalogue.name_for(type, self.ocpp_version),
            timestamp=at,
            tech_info=tech_info,
            at=at,
            ocpp_version=self.ocpp_version,
            source=Source.STATION,
        )
        self.record(event)
        return event

    def record(self, event: SecurityEvent) -> None:
        """:class:`EventSink`: log it; queue it for the CSMS if it is critical in our version."""
        self.log.append(event)
        if catalogue.is_critical(event.type, self.ocpp_version):
            self.queue.put(event)

    def export(
        self, *, at: datetime, oldest: datetime | None, latest: datetime | None, request_id: int | None
    ) -> bytes | None:
        """The GetLog file for the window, or None if the window holds no event."""
        events = list(self.log.events(oldest, latest))
        if not events:
            return None
        return render_log(
            events,
            station_id=self.station_id,
            at=at,
            ocpp_version=self.ocpp_version,
            oldest=oldest,
            latest=latest,
            request_id=request_id,
        )
