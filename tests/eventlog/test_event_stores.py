"""The same contract over SQLite and a real PostgreSQL (throw-away cluster)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ocppsec.eventlog.store import BufferedSink, EventQuery, EventStore, StoreUnavailableError
from ocppsec.eventlog.store_sql import open_store
from ocppsec.pki.errors import StoreError, UsageError
from ocppsec.pki.events.model import SecurityEvent, Source, normalize_event
from ocppsec.pki.versions import OcppVersion

T0 = datetime(2026, 11, 1, tzinfo=UTC)
AT = datetime(2026, 11, 23, 12, tzinfo=UTC)


def ev(station: str, minute: int, type_: str = "StartupOfTheDevice", tech: str | None = None,
       version: OcppVersion | None = OcppVersion.V201) -> SecurityEvent:
    return normalize_event(station_id=station, type=type_, timestamp=T0 + timedelta(minutes=minute),
                           tech_info=tech, at=AT, ocpp_version=version)


def sample() -> list[SecurityEvent]:
    return [
        ev("CS1", 0),
        ev("CS1", 1, "InvalidMessages", "bad frame"),
        ev("CS1", 2, "InvalidCentralSystemCertificate", version=OcppVersion.V16),
        ev("CS2", 3, "InvalidCsmsCertificate"),
        ev("CS2", 4, "VendorThing", "x"),
        ev("CS3", 5, "TamperDetectionActivated"),
    ]


def test_add_and_read_back_everything(store: EventStore) -> None:
    events = sample()
    assert store.add_many(events).inserted == 6
    got = store.query(EventQuery())
    assert [g.event for g in got] == events  # values survive the round trip exactly
    assert [g.id for g in got] == sorted(g.id for g in got)
    assert store.count(EventQuery()) == 6
    assert store.last_id() == got[-1].id


def test_duplicates_are_stored_once_within_and_across_batches(store: EventStore) -> None:
    first = store.add_many([*sample(), sample()[0]])
    assert (first.inserted, first.duplicates) == (6, 1)
    again = store.add_many([*sample(), ev("CS9", 9)])
    assert (again.inserted, again.duplicates) == (1, 6)
    store.record(sample()[1])
    assert store.count(EventQuery()) == 7


def test_large_batch_with_duplicates_keeps_the_rest(store: EventStore) -> None:
    store.add_many([ev("CS1", i) for i in range(0, 3000, 2)])  # 1500 stored
    result = store.add_many([ev("CS1", i) for i in range(3000)])  # half are known
    assert (result.inserted, result.duplicates) == (1500, 1500)
    assert store.count(EventQuery(station_id="CS1")) == 3000



def test_batch_of_odd_size_with_repeats_inside_it_keeps_every_distinct_event_in_order(store: EventStore) -> None:
    # 1,038 events over 3 stations, every 10th repeated right after itself: stores write many rows per
    # statement, so repeats fall inside one statement and the batch does not end on a statement boundary.
    events = []
    for i in range(943):
        events.append(ev(f"CS{i % 3}", i, tech=f"n={i}"))
        if i % 10 == 0:
            events.append(ev(f"CS{i % 3}", i, tech=f"n={i}"))
    assert len(events) == 1038
    result = store.add_many(events)
    assert (result.inserted, result.duplicates) == (943, 95)
    for station in ("CS0", "CS1", "CS2"):
        got = store.query(EventQuery(station_id=station, order="id"))
        assert [g.event.tech_info for g in got] == [f"n={i}" for i in range(943) if i % 3 == int(station[2])]

def test_filters(store: EventStore) -> None:
    store.add_many(sample())

    def types(q: EventQuery) -> list[str]:
        return [s.event.type for s in store.query(q)]

    assert types(EventQuery(station_id="CS2")) == ["InvalidCsmsCertificate", "VendorThing"]
    # a 1.6 name and its 2.0.1 name select the same events
    both = ["InvalidCentralSystemCertificate", "InvalidCsmsCertificate"]
    assert types(EventQuery(type="InvalidCsmsCertificate")) == both
    assert types(EventQuery(type="InvalidCentralSystemCertificate")) == both
    # critical in the event's own version: the 1.6 certificate event is not critical
    assert types(EventQuery(critical=True)) == ["StartupOfTheDevice", "InvalidCsmsCertificate",
                                                "TamperDetectionActivated"]
    assert "VendorThing" in types(EventQuery(critical=False))
    assert types(EventQuery(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=3))) == [
        "InvalidMessages", "InvalidCentralSystemCertificate"]
    assert types(EventQuery(station_id="CS1", limit=2, descending=True)) == [
        "InvalidCentralSystemCertificate", "InvalidMessages"]
    first = store.query(EventQuery(limit=1))[0].id
    assert len(store.query(EventQuery(after_id=first, order="id"))) == 5


def test_stats(store: EventStore) -> None:
    store.add_many([*sample(), ev("CS1", 10), ev("CS1", 11)])
    rows = store.stats(EventQuery())
    top = rows[0]
    assert (top.station_id, top.type, top.count, top.critical) == ("CS1", "StartupOfTheDevice", 3, 3)
    assert top.first == T0 and top.last == T0 + timedelta(minutes=11)
    assert sum(r.count for r in rows) == 8
    assert {r.type for r in rows if r.station_id == "CS1"} == {
        "StartupOfTheDevice", "InvalidMessages", "InvalidCsmsCertificate"}  # canonical names


def test_iter_query_streams_everything(store: EventStore) -> None:
    store.add_many([ev(f"CS{i % 7}", i) for i in range(2500)])
    streamed = list(store.iter_query(EventQuery(station_id="CS3")))
    assert len(streamed) == len([i for i in range(2500) if i % 7 == 3])
    assert [s.event.timestamp for s in streamed] == sorted(s.event.timestamp for s in streamed)


def test_flags_and_sources_survive(store: EventStore) -> None:
    e = normalize_event(station_id="CS1", type="Weird", timestamp="2026-11-01T00:00:00", tech_info="z" * 300,
                        at=AT, source=Source.UPLOAD)
    store.record(e)
    (got,) = store.query(EventQuery())
    assert got.event.flags == e.flags and len(got.event.flags) == 3
    assert got.event.source == Source.UPLOAD and got.event.ocpp_version is None


def test_query_by_station_and_time_uses_the_index(store: EventStore) -> None:
    store.add_many([ev(f"CS{i % 200:03d}", i) for i in range(20_000)])
    store.database.execute("ANALYZE security_events")  # type: ignore[attr-defined]  # fresh statistics
    q = EventQuery(station_id="CS007", since=T0 + timedelta(days=2), until=T0 + timedelta(days=3))
    plan = store.explain(q)
    assert "security_events_station_ts" in plan, plan
    assert len(store.query(q)) == 7  # 1440 minutes / 200 stations


def test_schema_is_migrated_once_and_reopening_is_harmless(store: EventStore) -> None:
    assert store.schema_version() == 1
    store.add_many(sample())
    again = open_store(store.database.url)  # type: ignore[attr-defined]
    try:
        assert again.schema_version() == 1
        assert again.count(EventQuery()) == 6
    finally:
        again.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    open_store(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE ocppsec_schema SET version = 99")
    with pytest.raises(StoreError, match="newer"):
        open_store(path)


def test_open_store_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        open_store("mysql://x/y")
    with pytest.raises(StoreError, match="does not exist"):
        open_store(tmp_path / "missing" / "e.db")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError):
        open_store(junk)


def test_unreachable_postgres_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailableError) as info:
        open_store(f"postgresql://postgres@/x?host={tmp_path}&connect_timeout=1")
    assert info.value.exit_code == 3


def test_postgres_outage_buffers_and_loses_nothing(postgres_cluster, pg_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = open_store(pg_url)
    spool = tmp_path / "spool.jsonl"
    sink = BufferedSink(store, spool=spool, retry_interval=0.0)
    sink.record(ev("CS1", 0))
    postgres_cluster.stop()
    try:
        for i in range(1, 51):
            sink.record(ev("CS1", i))  # never raises: buffered
        sink.record(ev("CS1", 5))  # a duplicate delivery during the outage
        assert sink.pending == 51
        assert isinstance(sink.last_error, StoreUnavailableError)
        assert spool.exists()
        assert not sink.flush()
    finally:
        postgres_cluster.start()
    assert sink.flush()
    assert sink.pending == 0 and not spool.exists()
    assert store.count(EventQuery(station_id="CS1")) == 51
    sink.record(ev("CS1", 99))  # and it goes on writing directly
    assert store.count(EventQuery()) == 52
    store.close()


def test_spool_survives_a_restart_of_the_csms(postgres_cluster, pg_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = open_store(pg_url)
    spool = tmp_path / "spool.jsonl"
    postgres_cluster.stop()
    try:
        sink = BufferedSink(store, spool=spool, retry_interval=0.0)
        for i in range(10):
            sink.record(ev("CS7", i))
        del sink  # the CSMS process dies here
    finally:
        postgres_cluster.start()
    revived = BufferedSink(store, spool=spool)
    assert revived.pending == 10
    assert revived.flush()
    assert store.count(EventQuery(station_id="CS7")) == 10
    store.close()
