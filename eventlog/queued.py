"""An event sink that never blocks its caller and never loses an event it could keep: :class:`QueuedSink`.

A server records security events from its event loop; a store write can take seconds (a SQLite write
lock held by another process, a PostgreSQL server restarting) or fail for long (a read-only file). So:

- :meth:`QueuedSink.record` only appends to a bounded in-memory queue (a lock held for a deque append).
  When the queue is full the event is appended to the spool file instead (a buffered write of one line,
  no fsync on the caller's thread). Only if that fails too is the event dropped, and counted.
- One writer thread drains the queue in batches (``add_many``: one transaction per batch). A batch the
  store refuses goes to the spool (fsynced), and the store is retried with exponential back-off; while
  anything is spooled, new batches are spooled behind it so the order is kept.
- The spool is replayed when the store is back and at start (a spool left by a previous process is
  written first). Replay renames the spool aside, so new events append to a fresh file meanwhile; a
  partly written replay is rewritten with what is left, so the counters stay exact. The stores
  de-duplicate, so an event written twice (a commit whose answer was lost) is stored once.
- A store that failed with anything but :class:`~ocppsec.pki.errors.StoreUnavailableError` (read-only,
  disk full, a foreign error) is closed and opened again by ``opener`` before the next try, so a store
  whose permissions were fixed is used without a restart.
- When events were dropped, one critical local event (``SecurityLogWasCleared``, saying how many) goes
  through the same path at most once per ``drop_report_interval``, and the drop is logged at CRITICAL.

:meth:`counters` gives exact totals and gauges (:class:`SinkCounters`) for metrics; :meth:`drain` and
:meth:`close` wait a bounded time. Thread-safe.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from ocppsec.eventlog.store import EventStore
from ocppsec.pki.errors import InputError, StoreError, StoreUnavailableError, UsageError
from ocppsec.pki.events.model import SecurityEvent
from ocppsec.pki.events.sink import local_event

__all__ = ["DROPPED_EVENT_TYPE", "QueuedSink", "SinkCounters"]

_log = logging.getLogger("ocppsec.eventlog.queued")
DROPPED_EVENT_TYPE = "SecurityLogWasCleared"
"""The (critical) event type recorded when events had to be dropped: part of the security log is gone."""


@dataclass(frozen=True, slots=True)
class SinkCounters:
    """Exact counts since the sink started (totals) and what is waiting now (gauges).

    Every event handed to :meth:`QueuedSink.record` is, at any moment, in exactly one of: in the queue,
    being written, in the spool, written (``written`` straight from the queue, ``replayed`` from the
    spool) or ``dropped``. ``replayed`` also counts events a previous process left in the spool.
    """

    received: int       # record() calls
    queued: int         # put into the in-memory queue
    written: int        # written to the store from the queue (duplicates included: stored once)
    spooled: int        # appended to the spool (queue full, or the store refused the batch)
    replayed: int       # written to the store from the spool
    dropped: int        # lost: the queue was full and the spool could not be written
    drop_reports: int   # critical events recorded about drops
    in_queue: int       # gauge: waiting in memory
    in_spool: int       # gauge: waiting in the spool file(s)
    store_ok: bool      # the last store operation succeeded (or none was tried yet)

    def as_dict(self) -> dict[str, int | bool]:
        return asdict(self)


def _open_lines(path: Path) -> IO[bytes]:
    """``path`` opened for appending, a torn last line (power cut mid-write) closed off first."""
    fh = path.open("ab")
    if fh.tell() > 0:
        with path.open("rb") as check:
            check.seek(-1, os.SEEK_END)
            if check.read(1) != b"\n":
                fh.write(b"\n")
    return fh


def _fsync_and_close(fd: int) -> None:
    try:
        os.fsync(fd)
    except OSError as exc:
        _log.warning("could not fsync the event spool: %s", exc)
    finally:
        os.close(fd)


def _read_spool(path: Path) -> list[SecurityEvent]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    out: list[SecurityEvent] = []
    for line in text.splitlines():
        if line.strip():
            with contextlib.suppress(ValueError, InputError):  # a torn line
                out.append(SecurityEvent.from_json(json.loads(line)))
    return out


class QueuedSink:
    """An :class:`~ocppsec.pki.events.sink.EventSink` whose :meth:`record` never blocks (see the module docstring).

    ``store``: an open :class:`~ocppsec.eventlog.store.EventStore`, or a callable opening one (then it is
    opened in the writer thread, and opened again after a failure other than "unavailable").
    ``spool``: the spool file (its ``.replay`` sibling is used during replay); ``None`` keeps nothing on
    disk (a full queue or a refused batch is then dropped). ``capacity``: events held in memory.
    ``batch``: events per ``add_many``. ``retry_initial``/``retry_max``: store back-off in seconds.
    ``spool_limit``: bytes the spool may grow to (then events are dropped). ``station_id``: the station
    id of the sink's own events.
    """

    nonblocking = True  # record() never waits for I/O: a server may call it on its event loop

    def __init__(
        self,
        store: EventStore | Callable[[], EventStore],
        *,
        spool: str | os.PathLike[str] | None,
        capacity: int = 10_000,
        batch: int = 500,
        retry_initial: float = 0.5,
        retry_max: float = 10.0,
        spool_limit: int = 256 * 1024 * 1024,
        drop_report_interval: float = 60.0,
        station_id: str = "local:event-queue",
        monotonic: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        name: str = "ocppsec-event-writer",
    ) -> None:
        if capacity < 1 or batch < 1:
            raise UsageError("the event queue needs a capacity and a batch size of at least 1")
        if isinstance(store, EventStore):
            self._store: EventStore | None = store
            self._opener: Callable[[], EventStore] | None = None
        else:
            self._store, self._opener = None, store
        self._spool = Path(spool) if spool is not None else None
        self._replay_path = self._spool.with_name(self._spool.name + ".replay") if self._spool is not None else None
        self._capacity, self._batch = capacity, batch
        self._retry_initial, self._retry_max = retry_initial, retry_max
        self._spool_limit = spool_limit
        self._drop_interval = drop_report_interval
        self._station_id = station_id
        self._mono, self._now = monotonic, now

        self._cond = threading.Condition()
        self._items: deque[SecurityEvent] = deque()
        self._busy = 0  # events taken by the writer and not yet written or spooled
        self._inflight: list[SecurityEvent] = []  # those events (close() spools them if the writer is stuck)
        self._stop = False
        self._abandoned = False  # close() gave up waiting: the writer must not touch store or spool any more
        self._force = False  # retry the store now (drain/close)
        self._spool_lock = threading.Lock()
        self._spool_fh: IO[bytes] | None = None
        self._spool_dirty = False
        self._spool_broken = False  # the last spool append failed
        self._spool_count = 0  # events in spool + replay files
        self._spool_bytes = 0

        self._received = self._queued = self._written = self._spooled = 0
        self._replayed = self._dropped = self._drop_reports = 0
        self._reported_drops = 0
        self._next_drop_report = 0.0
        self._store_ok = True
        self._next_try = 0.0
        self._backoff = retry_initial
        self.last_error: BaseException | None = None
        self.last_spool_error: OSError | None = None
        self._count_lock = threading.Lock()

        for path in (self._spool, self._replay_path):
            if path is not None:
                with contextlib.suppress(FileNotFoundError):
                    self._spool_bytes += path.stat().st_size
                    self._spool_count += len(_read_spool(path))
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # -- the caller's side ------------------------------------------------------------------------------
    def record(self, event: SecurityEvent) -> None:
        """Queue ``event``; never blocks on I/O (a full queue spills into the spool, see the module docstring)."""
        with self._cond:
            self._received += 1
            if len(self._items) < self._capacity and not self._stop:
                self._items.append(event)
                self._queued += 1
                if len(self._items) == 1 or len(self._items) >= self._batch:
                    self._cond.notify()
                return
        self._spool_append([event], sync=False)

    def counters(self) -> SinkCounters:
        with self._cond, self._count_lock:
            return SinkCounters(self._received, self._queued, self._written, self._spooled, self._replayed,
                                self._dropped, self._drop_reports, len(self._items) + self._busy, self._spool_count,
                                self._store_ok)

    def drain(self, timeout: float = 10.0) -> bool:
        """Write everything queued and spooled now (retrying the store at once); True if nothing is left."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._force = True
            self._cond.notify()
            while self._items or self._busy or self._spool_count:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._cond.wait(min(left, 0.05))
                if not self._force and self._spool_count:
                    self._force = True  # the last try failed: try again until the deadline
                    self._cond.notify()
            return True

    def flush(self, timeout: float = 10.0) -> bool:
        """Until the queue is empty (written, or safe in the spool); True if it got there within ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._cond.notify()
            while self._items or self._busy:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._cond.wait(min(left, 0.05))
            return True

    def close(self, timeout: float = 10.0) -> None:
        """Stop after writing (or spooling) what is queued, trying the store once more; waits at most ``timeout``.

        What could not be written stays in the spool for the next start. Events recorded after close go to
        the spool directly."""
        with self._cond:
            self._stop = True
            self._force = True
            self._cond.notify()
        self._thread.join(timeout)
        if self._thread.is_alive():
            _log.warning("event writer still busy after %.1f s; %d events in memory are spooled", timeout,
                         len(self._items))
            with self._cond:
                self._abandoned = True
                left = [*self._inflight, *self._items]  # the writer may still write the first ones: stored once
                self._items.clear()
            self._spool_append(left, sync=True)
        with self._spool_lock:
            fd = self._close_spool()
        if fd >= 0:
            _fsync_and_close(fd)
        if self._thread.is_alive():
            return  # the writer still owns the store
        store, self._store = self._store, None
        if store is not None and self._opener is not None:
            with contextlib.suppress(Exception):
                store.close()

    # -- the spool --------------------------------------------------------------------------------------
    def _spool_append(self, events: Sequence[SecurityEvent], *, sync: bool, drop: bool = True) -> bool:
        """Append ``events`` to the spool; False if impossible (then counted as dropped if ``drop``)."""
        if not events:
            return True
        if self._spool is None:
            self._spool_broken = True
            if drop:
                self._drop(len(events), "no spool configured")
            return False
        data = "".join(e.to_json_line() + "\n" for e in events).encode("utf-8", "surrogatepass")
        sync_fd = -1
        with self._spool_lock:  # held for a buffered write: record() may wait for it, never for an fsync
            try:
                if self._spool_bytes + len(data) > self._spool_limit:
                    raise OSError(f"spool limit of {self._spool_limit} bytes reached")
                if self._spool_fh is None:
                    self._spool_fh = _open_lines(self._spool)
                self._spool_fh.write(data)
                self._spool_fh.flush()
                if sync:
                    sync_fd = os.dup(self._spool_fh.fileno())
                else:
                    self._spool_dirty = True
            except OSError as exc:
                fd = self._close_spool()
                if fd >= 0:
                    os.close(fd)  # nothing new was written to sync
                self._spool_broken = True
                if drop:
                    self._drop(len(events), f"spool {self._spool} not writable: {exc}")
                else:
                    self.last_spool_error = exc
                return False
            self._spool_broken = False
            self._spool_bytes += len(data)
            with self._count_lock:
                self._spooled += len(events)
                self._spool_count += len(events)
        if sync_fd >= 0:
            _fsync_and_close(sync_fd)
        return True

    def _close_spool(self) -> int:
        """Close the spool file (under the spool lock); a duplicate of its descriptor to fsync outside it, or -1."""
        fh, self._spool_fh = self._spool_fh, None
        fd = -1
        if fh is not None:
            with contextlib.suppress(OSError):
                fh.flush()
                fd = os.dup(fh.fileno())
            with contextlib.suppress(OSError):
                fh.close()
        self._spool_dirty = False
        return fd

    def _sync_spool(self) -> None:
        fd = -1
        with self._spool_lock:
            if self._spool_dirty and self._spool_fh is not None:
                with contextlib.suppress(OSError):
                    fd = os.dup(self._spool_fh.fileno())
                self._spool_dirty = False
        if fd >= 0:
            _fsync_and_close(fd)

    def _drop(self, n: int, why: str) -> None:
        with self._count_lock:
            first = self._dropped == self._reported_drops
            self._dropped += n
        if first:
            _log.critical("dropped %d security event(s): %s", n, why)
        self.last_error = OSError(why)

    # -- the writer -------------------------------------------------------------------------------------
    def _run(self) -> None:
        self._next_try = 0.0 if self._spool_count else self._mono()
        while True:
            if self._store is None and self._opener is not None and self._mono() >= self._next_try:
                try:
                    self._open()  # before taking a batch: an opener that hangs holds no events
                except Exception as exc:  # retried with back-off like a failed write
                    self._failed(exc)
            batch = self._take()
            if batch is None or self._abandoned:
                break
            report = self._report_drops(batch)
            if batch:
                last = self._stop  # stopping: what neither store nor spool takes now is lost
                if not self._store_ok and self._mono() < self._next_try:
                    kept = self._spool_append(batch, sync=True, drop=last)  # behind the spool, until the next try
                elif self._write(batch):
                    with self._count_lock:
                        self._written += len(batch)
                    kept = True
                elif self._abandoned:
                    break  # close() spooled this batch already
                else:
                    kept = self._spool_append(batch, sync=True, drop=last)
                if report and not kept:
                    self._unreport(report, counted=last)
                    del batch[0]
                if not kept and not last:
                    with self._cond:  # neither store nor spool took them: back to the front of the queue
                        self._items.extendleft(reversed(batch))
                self._done()
            self._sync_spool()
            if self._spool_count and (self._force or self._mono() >= self._next_try):
                self._replay()
                with self._cond:
                    self._force = False
                    self._cond.notify_all()
        # stopping: one last replay attempt happened above (close sets _force)
        if self._abandoned and self._opener is not None and self._store is not None:
            store, self._store = self._store, None  # close() left it to us
            with contextlib.suppress(Exception):
                store.close()
        with self._cond:
            self._cond.notify_all()

    def _take(self) -> list[SecurityEvent] | None:
        """The next batch (possibly empty: time to replay or report); None when stopping with nothing left.

        While the store is failing and its next try is not due, queued events wait here only if the spool
        is broken too (else they are taken and spooled behind what is there)."""
        with self._cond:
            while True:
                if self._abandoned:
                    return None
                now = self._mono()
                can_try = self._store_ok or now >= self._next_try or self._force
                held = self._spool_broken and not can_try and not self._stop
                if self._items and not held:
                    break
                if self._stop and not self._items:
                    return [] if self._force and self._spool_count else None  # one last replay, or done
                report_due = self._dropped > self._reported_drops and now >= self._next_drop_report
                if (self._spool_count or report_due) and can_try:
                    return []
                wait = 1.0 if can_try else max(0.001, min(1.0, self._next_try - now))
                self._cond.wait(wait)
            n = min(self._batch, len(self._items))
            batch = [self._items.popleft() for _ in range(n)]
            self._busy = n
            self._inflight = batch
            if self._stop and not self._items:
                self._force = True  # last batch: try the store once more for the spool as well
            return batch

    def _done(self) -> None:
        with self._cond:
            self._busy = 0
            self._inflight = []
            self._cond.notify_all()

    def _report_drops(self, batch: list[SecurityEvent]) -> int:
        """Put the critical "events dropped" event first into ``batch`` when it is due; how many it reports."""
        with self._count_lock:
            lost = self._dropped - self._reported_drops
            if lost <= 0 or self._mono() < self._next_drop_report:
                return 0
            self._reported_drops = self._dropped
            self._drop_reports += 1
        self._next_drop_report = self._mono() + self._drop_interval
        where = f"spool {self._spool}" if self._spool is not None else "no spool"
        batch.insert(0, local_event(DROPPED_EVENT_TYPE, station_id=self._station_id, at=self._now(),
                                    tech_info=f"{lost} security event(s) dropped: queue full and {where} not writable "
                                              f"({self.last_error})"[:255]))
        with self._cond:
            self._busy += 1
        return lost

    def _unreport(self, lost: int, *, counted: bool) -> None:
        """The report went down with its batch: it is due again (and was no caller's event to count as dropped)."""
        with self._count_lock:
            self._reported_drops -= lost
            self._drop_reports -= 1
            if counted:
                self._dropped -= 1
        self._next_drop_report = 0.0

    def _open(self) -> EventStore | None:
        if self._store is None and self._opener is not None:
            self._store = self._opener()
        return self._store

    def _write(self, events: Sequence[SecurityEvent]) -> bool:
        """One ``add_many``; on failure: back off (and reopen later unless merely unavailable). True if written."""
        try:
            store = self._open()
            if store is None:
                raise StoreUnavailableError("the event store is not open")
            store.add_many(events)
        except Exception as exc:  # any failure of the store means "keep the events and retry"
            self._failed(exc)
            return False
        if not self._store_ok:
            _log.warning("event store is back after: %s", self.last_error)
        self._store_ok = True
        self._backoff = self._retry_initial
        return True

    def _failed(self, exc: BaseException) -> None:
        if self._store_ok:
            _log.warning("event store unavailable, spooling events: %s", exc)
        self._store_ok = False
        self.last_error = exc
        self._next_try = self._mono() + self._backoff
        self._backoff = min(self._backoff * 2, self._retry_max)
        if not isinstance(exc, StoreUnavailableError) and self._opener is not None and self._store is not None:
            store, self._store = self._store, None
            with contextlib.suppress(Exception):
                store.close()
        if not isinstance(exc, StoreError):
            _log.error("event store failed with %s: %s", type(exc).__name__, exc)

    def _replay(self) -> None:
        """Write the spool (the ``.replay`` file first, then the spool renamed to it) while the store takes it."""
        assert self._spool is not None
        assert self._replay_path is not None
        while True:
            fd = -1
            with self._spool_lock:
                if self._abandoned:
                    return
                if not self._replay_path.exists():
                    fd = self._close_spool()
                    if not self._spool.exists():
                        with self._count_lock:
                            self._spool_count = 0  # (unreadable torn lines were counted when appended)
                        self._spool_bytes = 0
                        if fd >= 0:
                            os.close(fd)
                        return
                    os.replace(self._spool, self._replay_path)
            if fd >= 0:
                _fsync_and_close(fd)  # what record() appended without an fsync, before it is replayed
            events = _read_spool(self._replay_path)
            size = self._replay_path.stat().st_size
            done = 0
            for start in range(0, len(events), self._batch):
                chunk = events[start : start + self._batch]
                if not self._write(chunk):
                    break
                done += len(chunk)
                with self._count_lock:
                    self._replayed += len(chunk)
                    self._spool_count -= len(chunk)
            if done < len(events):
                if done:
                    self._rewrite(self._replay_path, events[done:])
                return
            with self._spool_lock:
                self._replay_path.unlink(missing_ok=True)
                self._spool_bytes = max(0, self._spool_bytes - size)

    @staticmethod
    def _rewrite(path: Path, events: Sequence[SecurityEvent]) -> None:
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("wb") as fh:
            fh.write("".join(e.to_json_line() + "\n" for e in events).encode("utf-8", "surrogatepass"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
