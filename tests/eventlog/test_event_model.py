"""SecurityEvent and normalize_event: repairs are flagged, bad items rejected, dedup keys stable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocppsec.eventlog import MemorySink, event_from_error
from ocppsec.eventlog.store import EventQuery
from ocppsec.pki.errors import InputError, UsageError, VerificationError
from ocppsec.pki.events.ingest import event_from_frame, event_from_payload, ingest_payloads, notification_payload
from ocppsec.pki.events.model import (
    FLAG_FUTURE,
    FLAG_NAIVE,
    FLAG_TRUNCATED,
    FLAG_UNKNOWN,
    EventInputError,
    SecurityEvent,
    Source,
    format_timestamp,
    normalize_event,
    parse_timestamp,
)
from ocppsec.pki.versions import OcppVersion

AT = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


def ev(**kw: object) -> SecurityEvent:
    args: dict[str, object] = {"station_id": "CS1", "type": "StartupOfTheDevice", "timestamp": "2026-11-23T11:00:00Z",
                               "at": AT}
    args.update(kw)
    return normalize_event(**args)  # type: ignore[arg-type]


def test_a_clean_event_has_no_flags() -> None:
    e = ev(tech_info="boot", ocpp_version=OcppVersion.V201)
    assert e.flags == frozenset()
    assert e.timestamp == datetime(2026, 11, 23, 11, tzinfo=UTC)
    assert e.received_at == AT
    assert e.critical is True
    assert e.source == Source.OCPP


def test_timestamp_without_zone_is_read_as_utc_and_flagged() -> None:
    e = ev(timestamp="2026-11-23T11:00:00")
    assert e.timestamp == datetime(2026, 11, 23, 11, tzinfo=UTC)
    assert FLAG_NAIVE in e.flags


def test_offsets_are_converted_to_utc_and_truncated_to_milliseconds() -> None:
    e = ev(timestamp="2026-11-23T13:00:00.123456+02:00")
    assert e.timestamp == datetime(2026, 11, 23, 11, 0, 0, 123000, tzinfo=UTC)
    assert format_timestamp(e.timestamp) == "2026-11-23T11:00:00.123Z"


def test_far_future_timestamp_is_kept_and_flagged() -> None:
    e = ev(timestamp="2099-01-01T00:00:00Z")
    assert FLAG_FUTURE in e.flags
    assert e.timestamp.year == 2099
    assert FLAG_FUTURE not in ev(timestamp=format_timestamp(AT + timedelta(minutes=4))).flags


def test_long_tech_info_is_truncated_and_flagged() -> None:
    e = ev(tech_info="x" * 300)
    assert e.tech_info == "x" * 255
    assert FLAG_TRUNCATED in e.flags


def test_unknown_type_is_kept_verbatim_and_flagged() -> None:
    e = ev(type="CSRGenerationFailed")
    assert e.type == "CSRGenerationFailed"
    assert e.canonical_type == "CSRGenerationFailed"
    assert FLAG_UNKNOWN in e.flags
    assert e.critical is None


@pytest.mark.parametrize(
    "bad",
    [
        {"type": None},
        {"type": ""},
        {"type": "   "},
        {"type": "T" * 51},
        {"type": 42},
        {"timestamp": None},
        {"timestamp": "yesterday"},
        {"timestamp": "2026-13-01T00:00:00Z"},
        {"tech_info": 12},
        {"station_id": ""},
    ],
)
def test_unusable_items_are_rejected_with_an_input_error(bad: dict[str, object]) -> None:
    with pytest.raises(EventInputError) as info:
        ev(**bad)
    assert isinstance(info.value, InputError)
    assert info.value.exit_code == 1
    assert str(info.value)


def test_direct_construction_validates_invariants() -> None:
    with pytest.raises(EventInputError):
        SecurityEvent(station_id="CS1", type="X", timestamp=datetime(2026, 1, 1))
    with pytest.raises(EventInputError):
        SecurityEvent(station_id="CS1", type="X", timestamp=AT, tech_info="y" * 256)


def test_duplicate_deliveries_share_a_dedup_key() -> None:
    a = ev(tech_info="t", at=AT)
    b = ev(tech_info="t", at=AT + timedelta(hours=1))  # delivered again later
    assert a.dedup_key == b.dedup_key
    assert ev(tech_info="u").dedup_key != a.dedup_key
    assert ev(tech_info="t", station_id="CS2").dedup_key != a.dedup_key
    assert ev(tech_info="t", timestamp="2026-11-23T11:00:00.001Z").dedup_key != a.dedup_key
    assert ev(tech_info="t", type="ResetOrReboot").dedup_key != a.dedup_key


def test_16_and_201_names_of_one_event_are_duplicates() -> None:
    a = ev(type="InvalidCentralSystemCertificate", ocpp_version=OcppVersion.V16)
    b = ev(type="InvalidCsmsCertificate", ocpp_version=OcppVersion.V201)
    assert a.dedup_key == b.dedup_key
    assert a.critical is False and b.critical is True  # flags follow the version


def test_parse_timestamp_reports_naive() -> None:
    assert parse_timestamp("2026-01-01T00:00:00Z") == (datetime(2026, 1, 1, tzinfo=UTC), False)
    assert parse_timestamp("2026-01-01T00:00:00")[1] is True


def test_query_refuses_naive_times() -> None:
    with pytest.raises(UsageError):
        EventQuery(since=datetime(2026, 1, 1))


def test_memory_sink_stores_duplicates_once() -> None:
    sink = MemorySink()
    sink.record(ev())
    sink.record(ev(at=AT + timedelta(seconds=5)))
    sink.record(ev(type="ResetOrReboot"))
    assert len(sink) == 2


def test_errors_of_our_components_map_to_events() -> None:
    err = VerificationError("CSMS certificate expired", security_event="InvalidCsmsCertificate")
    e = event_from_error(err, station_id="CS9", at=AT)
    assert e is not None
    assert e.type == "InvalidCsmsCertificate" and e.source == Source.LOCAL and e.station_id == "CS9"
    assert event_from_error(VerificationError("x"), station_id="CS9", at=AT) is None


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=255)


@given(
    station=st.text(min_size=1, max_size=48).filter(lambda s: s.strip() == s and s),
    type_=st.text(min_size=1, max_size=50).filter(lambda s: s.strip()),
    tech=st.none() | _text,
    millis=st.integers(min_value=0, max_value=4_000_000_000_000),
    version=st.none() | st.sampled_from(list(OcppVersion)),
)
def test_json_round_trip(station: str, type_: str, tech: str | None, millis: int, version: OcppVersion | None) -> None:
    ts = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=millis)
    e = normalize_event(station_id=station, type=type_, timestamp=ts, tech_info=tech, at=AT, ocpp_version=version)
    back = SecurityEvent.from_json(e.to_json())
    assert back == e
    assert back.dedup_key == e.dedup_key


def test_batch_ingest_keeps_the_good_items() -> None:
    report = ingest_payloads(
        [
            {"type": "StartupOfTheDevice", "timestamp": "2026-11-23T10:00:00Z"},
            {"type": "StartupOfTheDevice"},  # no timestamp
            "not an object",
            {"type": "VendorX", "timestamp": "2026-11-23T10:00:01", "techInfo": "z" * 999},
            {"timestamp": "2026-11-23T10:00:00Z"},  # no type
        ],
        station_id="CS1",
        version=OcppVersion.V16,
        at=AT,
    )
    assert [e.type for e in report.events] == ["StartupOfTheDevice", "VendorX"]
    assert [r.index for r in report.rejections] == [1, 2, 4]
    assert report.events[1].flags >= {FLAG_NAIVE, FLAG_TRUNCATED, FLAG_UNKNOWN}


def test_gateway_frames() -> None:
    frame = '[2, "abc", "SecurityEventNotification", {"type": "InvalidTLSVersion", "timestamp": "2026-11-23T10:00:00Z"}]'
    e = event_from_frame(frame, station_id="CS1", version=OcppVersion.V201, at=AT)
    assert e is not None and e.critical is True
    assert event_from_frame('[2, "a", "Heartbeat", {}]', station_id="CS1", version=None, at=AT) is None
    assert event_from_frame('[3, "a", {}]', station_id="CS1", version=None, at=AT) is None
    assert event_from_frame("garbage", station_id="CS1", version=None, at=AT) is None
    with pytest.raises(EventInputError):
        event_from_frame('[2, "a", "SecurityEventNotification", {"type": "X"}]', station_id="CS1", version=None, at=AT)


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
def test_timestamps_outside_the_utc_range_are_rejected_not_raised(text: str) -> None:
    # the offset moves them before year 1 or after year 9999 in UTC (OverflowError in datetime)
    with pytest.raises(EventInputError, match="out of range"):
        parse_timestamp(text)
    frame = f'[2, "a", "SecurityEventNotification", {{"type": "ResetOrReboot", "timestamp": "{text}"}}]'
    with pytest.raises(EventInputError):
        event_from_frame(frame, station_id="CS1", version=OcppVersion.V201, at=AT)
    report = ingest_payloads([{"type": "ResetOrReboot", "timestamp": text}], station_id="CS1", version=None, at=AT)
    assert report.events == () and [r.index for r in report.rejections] == [0]


def test_the_one_timestamp_writer() -> None:
    assert format_timestamp(datetime(2026, 11, 23, 12, 0, 0, 999999, tzinfo=UTC)) == "2026-11-23T12:00:00.999Z"  # cut
    assert format_timestamp(datetime(2026, 11, 23, 13, 0, tzinfo=timezone(timedelta(hours=1)))) == "2026-11-23T12:00:00.000Z"
    with pytest.raises(UsageError, match="aware"):
        format_timestamp(datetime(2026, 11, 23, 12, 0))  # a naive time would be read as local time


def test_notification_payload_is_the_inverse_of_the_parser() -> None:
    for version, wire in ((OcppVersion.V16, "InvalidCentralSystemCertificate"), (OcppVersion.V201, "InvalidCsmsCertificate")):
        payload = notification_payload("InvalidCsmsCertificate", timestamp=AT, tech_info="x" * 300, version=version)
        assert payload == {"type": wire, "timestamp": "2026-11-23T12:00:00.000Z", "techInfo": "x" * 255}
        back = event_from_payload(payload, station_id="CS1", version=version, at=AT)
        assert back.canonical_type == "InvalidCsmsCertificate" and back.tech_info == "x" * 255
    assert "techInfo" not in notification_payload("VendorX", timestamp=AT, tech_info="", version=OcppVersion.V21)
    with pytest.raises(EventInputError, match="JSON object"):
        event_from_payload(["not", "an", "object"], station_id="CS1", version=None, at=AT)
