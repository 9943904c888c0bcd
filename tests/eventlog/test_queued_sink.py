"""QueuedSink: record() never blocks; every event ends up in the store exactly once, through locks, read-only
files, PostgreSQL restarts and process restarts; drops are counted and reported."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _postgres import PostgresCluster

from ocppsec.eventlog.queued import DROPPED_EVENT_TYPE, QueuedSink
from ocppsec.eventlog.store import EventQuery, EventStore
from ocppsec.eventlog.store_sql import open_store
from ocppsec.pki.events.model import SecurityEvent
from ocppsec.pki.events.sink import EventSink, local_event

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def events(n: int, prefix: str = "CS") -> list[SecurityEvent]:
    return [local_event("FailedToAuthenticateAtCsms", station_id=f"{prefix}-{i % 7}", tech_info=f"attempt {i}",
                        at=T0 + timedelta(milliseconds=i)) for i in range(n)]


def stored_keys(store: EventStore) -> list[int]:
    return [s.event.dedup_key for s in store.query(EventQuery(order="id"))]


def record_all(sink: QueuedSink, batch: list[SecurityEvent]) -> float:
    """Record each event; the longest single record() call in seconds."""
    worst = 0.0
    for e in batch:
        start = time.perf_counter()
        sink.record(e)
        worst = max(worst, time.perf_counter() - start)
    return worst


def test_is_an_event_sink_and_writes_in_batches(tmp_path: Path) -> None:
    store = open_store(tmp_path / "events.db")
    sink = QueuedSink(store, spool=tmp_path / "spool.jsonl", batch=100)
    try:
        assert isinstance(sink, EventSink) and sink.nonblocking
        batch = events(1000)
        record_all(sink, batch)
        assert sink.drain(10)
        c = sink.counters()
        assert (c.received, c.queued, c.written, c.spooled, c.dropped, c.in_queue, c.in_spool) == (1000, 1000, 1000, 0, 0, 0, 0)
        assert sorted(stored_keys(store)) == sorted(e.dedup_key for e in batch)
    finally:
        sink.close()
        store.close()


def test_a_write_lock_held_past_the_timeout_spools_and_replays_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    open_store(path).close()
    store = open_store(f"sqlite://{path}?timeout=0.2")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    sink = QueuedSink(store, spool=tmp_path / "spool.jsonl", capacity=50, batch=20, retry_initial=0.05, retry_max=0.2)
    try:
        batch = events(400)
        worst = record_all(sink, batch)
        assert worst < 0.05, f"record() took {worst * 1000:.1f} ms while the store was locked"
        assert sink.flush(10)  # all of it written or safe in the spool
        c = sink.counters()
        assert c.spooled > 0 and c.written == 0 and c.dropped == 0 and not c.store_ok
        assert (tmp_path / "spool.jsonl").exists() or (tmp_path / "spool.jsonl.replay").exists()
        holder.execute("ROLLBACK")
        assert sink.drain(20)
        c = sink.counters()
        assert c.replayed == c.spooled and c.written + c.replayed == 400 and c.in_spool == 0 and c.store_ok
        keys = stored_keys(store)
        assert len(keys) == 400 and set(keys) == {e.dedup_key for e in batch}
        assert not (tmp_path / "spool.jsonl").exists() and not (tmp_path / "spool.jsonl.replay").exists()
    finally:
        holder.close()
        sink.close()
        store.close()


def test_record_never_waits_for_a_writer_stuck_in_the_store(tmp_path: Path) -> None:
    """The writer waits out a 2 s busy timeout inside add_many; record() meanwhile stays in microseconds and
    a full queue spills to the spool."""
    path = tmp_path / "events.db"
    open_store(path).close()
    store = open_store(f"sqlite://{path}?timeout=2")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    sink = QueuedSink(store, spool=tmp_path / "spool.jsonl", capacity=10, batch=5)
    try:
        first = events(5, "A")
        record_all(sink, first)
        deadline = time.monotonic() + 5
        while sink.counters().in_queue and time.monotonic() < deadline:  # the writer took the batch...
            time.sleep(0.005)
        worst = record_all(sink, events(200, "B"))  # ... and is stuck in the lock meanwhile
        assert worst < 0.05
        c = sink.counters()
        assert c.spooled >= 190 and c.dropped == 0
        holder.execute("ROLLBACK")
        assert sink.drain(20)
        assert len(stored_keys(store)) == 205
    finally:
        holder.close()
        sink.close()
        store.close()


def test_a_read_only_store_is_reopened_once_it_is_writable_again(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    open_store(path).close()
    writable = threading.Event()
    opened: list[str] = []

    def opener() -> EventStore:
        spec = str(path) if writable.is_set() else f"sqlite://{path}?mode=ro"
        opened.append(spec)
        return open_store(spec)

    sink = QueuedSink(opener, spool=tmp_path / "spool.jsonl", retry_initial=0.05, retry_max=0.1)
    try:
        batch = events(300)
        record_all(sink, batch)
        assert sink.flush(10)
        c = sink.counters()
        assert c.spooled == 300 and not c.store_ok and "read-only" in str(sink.last_error)
        writable.set()
        assert sink.drain(10)
        assert sink.counters().replayed == 300
        assert opened[0].endswith("mode=ro") and opened[-1] == str(path)
    finally:
        sink.close()
    check = open_store(path)
    assert sorted(stored_keys(check)) == sorted(e.dedup_key for e in batch)
    check.close()


def test_the_spool_survives_a_restart_and_is_written_first(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    open_store(path).close()
    spool = tmp_path / "spool.jsonl"
    first = QueuedSink(lambda: open_store(f"sqlite://{path}?mode=ro"), spool=spool)
    before = events(120, "old")
    record_all(first, before)
    first.close(5)
    left = [p for p in (spool, spool.with_name("spool.jsonl.replay")) if p.exists()]  # (a replay was tried at close)
    assert first.counters().spooled == 120 and len(left) == 1
    left[0].write_bytes(left[0].read_bytes() + b'{"station_id":"torn')  # a power cut mid-line
    store = open_store(path)
    second = QueuedSink(store, spool=spool)
    try:
        # (the writer may already be replaying: only the end state is asserted; the torn line is not an event)
        after = events(30, "new")
        record_all(second, after)
        assert second.drain(10)
        c = second.counters()
        assert c.replayed == 120 and c.written + c.replayed == 150 and c.in_spool == 0
        assert sorted(stored_keys(store)) == sorted(e.dedup_key for e in before + after)
        assert not left[0].exists()
    finally:
        second.close()
        store.close()


def test_dropped_events_are_counted_and_reported_once_per_burst(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    open_store(path).close()
    store = open_store(f"sqlite://{path}?timeout=0.1")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    spool = tmp_path / "no-such-dir" / "spool.jsonl"  # cannot be created: every spool write fails
    sink = QueuedSink(store, spool=spool, capacity=5, batch=5, retry_initial=0.05, retry_max=0.1,
                      drop_report_interval=1.0)
    try:
        worst = record_all(sink, events(100))
        assert worst < 0.05
        c = sink.counters()
        # neither the locked store nor the missing spool directory takes them: a queue's worth waits in
        # memory (the writer's batch back at the front), the rest is dropped and counted
        assert 90 <= c.dropped <= 95 and c.received == 100 and c.spooled == 0 and c.written == 0
        held = 100 - c.dropped
        holder.execute("ROLLBACK")
        assert sink.flush(10)  # what waited is written now, the report with it

        def reported() -> list[SecurityEvent]:
            return [s.event for s in store.query(EventQuery(type=DROPPED_EVENT_TYPE))]

        deadline = time.monotonic() + 10  # a report made while the burst went on says what it knew then;
        while sum(int((e.tech_info or "0").split()[0]) for e in reported()) < c.dropped:  # the rest follows
            assert time.monotonic() < deadline, [e.tech_info for e in reported()]
            time.sleep(0.05)
        reports = reported()
        assert 1 <= len(reports) <= 2  # at most one per interval: the one at once, and the rest after it
        assert all(e.critical and e.station_id == "local:event-queue" for e in reports)
        assert "security event(s) dropped: queue full and spool" in (reports[0].tech_info or "")
        assert sum(int((e.tech_info or "0").split()[0]) for e in reports) == c.dropped
        assert sink.counters().drop_reports == len(reports) and sink.counters().dropped == c.dropped
        record_all(sink, events(3, "later"))
        assert sink.flush(10)
        assert len(stored_keys(store)) == held + len(reports) + 3  # what waited, the reports, the later ones
    finally:
        holder.close()
        sink.close()
        store.close()


def test_postgres_stopped_and_started_again(postgres_cluster: PostgresCluster, pg_url: str, tmp_path: Path) -> None:
    store = open_store(pg_url)
    sink = QueuedSink(store, spool=tmp_path / "spool.jsonl", batch=50, retry_initial=0.05, retry_max=0.3)
    try:
        before = events(50, "up")
        record_all(sink, before)
        assert sink.drain(10)
        postgres_cluster.stop()
        try:
            during = events(200, "down")
            worst = record_all(sink, during)
            assert worst < 0.05
            assert sink.flush(30)
            assert sink.counters().spooled >= 150
        finally:
            postgres_cluster.start()
        assert sink.drain(30)
        c = sink.counters()
        assert c.written + c.replayed == 250 and c.dropped == 0
        assert sorted(stored_keys(store)) == sorted(e.dedup_key for e in before + during)
    finally:
        sink.close()
        store.close()


def test_close_is_bounded_and_keeps_what_it_could_not_write(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    open_store(path).close()
    blocked = threading.Event()

    def opener() -> EventStore:
        blocked.wait(30)  # a store that cannot even be opened for now
        return open_store(path)

    spool = tmp_path / "spool.jsonl"
    sink = QueuedSink(opener, spool=spool)
    record_all(sink, events(40))
    start = time.monotonic()
    sink.close(timeout=0.5)
    assert time.monotonic() - start < 2
    blocked.set()
    second_store = open_store(path)
    second = QueuedSink(second_store, spool=spool)
    try:
        assert second.drain(10)
        assert len(stored_keys(second_store)) == 40  # the in-memory ones were spooled at close
    finally:
        second.close()
        second_store.close()

