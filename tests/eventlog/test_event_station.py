"""Station side: rolling log, offline queue with guaranteed delivery, our log file format."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ocppsec.eventlog.logfile import LogFormatError, parse_log, render_log
from ocppsec.eventlog.station import OfflineQueue, RollingLog, StationSecurityLog
from ocppsec.pki.events.model import FLAG_NAIVE, FLAG_TRUNCATED, Source, normalize_event
from ocppsec.pki.versions import OcppVersion

AT = datetime(2026, 11, 23, 12, tzinfo=UTC)


def ev(i: int, type_: str = "StartupOfTheDevice", station: str = "CS1"):  # type: ignore[no-untyped-def]
    return normalize_event(station_id=station, type=type_, timestamp=AT + timedelta(seconds=i), tech_info=f"n{i}",
                           at=AT, ocpp_version=OcppVersion.V201, source=Source.STATION)


def test_rolling_log_is_bounded_and_keeps_the_newest(tmp_path: Path) -> None:
    log = RollingLog(tmp_path, max_bytes=2000, backups=2)
    for i in range(200):
        log.append(ev(i))
    assert len(log.files()) == 3
    assert log.size() <= 3 * 2000
    kept = list(log.events())
    assert kept[-1].tech_info == "n199"
    assert [e.timestamp for e in kept] == sorted(e.timestamp for e in kept)
    assert len(kept) < 200  # the oldest rotated away


def test_rolling_log_window(tmp_path: Path) -> None:
    log = RollingLog(tmp_path)
    for i in range(10):
        log.append(ev(i))
    window = list(log.events(AT + timedelta(seconds=3), AT + timedelta(seconds=5)))
    assert [e.tech_info for e in window] == ["n3", "n4", "n5"]


def test_rolling_log_skips_a_torn_line(tmp_path: Path) -> None:
    log = RollingLog(tmp_path)
    log.append(ev(1))
    with log.current.open("a") as fh:
        fh.write('{"stationId": "CS1", "typ')  # power cut mid-write
    log.append(ev(2))
    assert [e.tech_info for e in log.events()] == ["n1", "n2"]


def test_offline_queue_survives_a_restart_and_acks(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    q = OfflineQueue(path)
    seqs = [q.put(ev(i)) for i in range(3)]
    q.ack(seqs[0])  # type: ignore[arg-type]
    revived = OfflineQueue(path)  # restart
    assert [e.tech_info for _, e in revived.pending()] == ["n1", "n2"]
    for seq, _ in revived.pending():
        revived.ack(seq)
    assert len(OfflineQueue(path)) == 0
    new = OfflineQueue(path).put(ev(9))
    assert new is not None and new > max(s for s in seqs if s is not None)  # numbers never reused


def test_invalid_tls_version_is_queued_only_once(tmp_path: Path) -> None:
    q = OfflineQueue(tmp_path / "q.jsonl")
    assert q.put(ev(1, "InvalidTLSVersion")) is not None
    assert q.put(ev(2, "InvalidTLSVersion")) is None
    assert q.put(ev(3, "InvalidTLSVersion")) is None
    assert q.put(ev(4, "ResetOrReboot")) is not None
    (first, _), _ = q.pending()
    q.ack(first)
    assert q.put(ev(5, "InvalidTLSVersion")) is not None  # a new outage: reported again


@pytest.mark.parametrize(
    ("version", "queued"),
    [(OcppVersion.V16, {"StartupOfTheDevice"}), (OcppVersion.V201, {"StartupOfTheDevice", "InvalidCsmsCertificate"})],
)
def test_station_logs_everything_and_queues_critical_per_version(
    tmp_path: Path, version: OcppVersion, queued: set[str]
) -> None:
    log = StationSecurityLog(tmp_path, station_id="CS1", ocpp_version=version)
    log.raise_event("StartupOfTheDevice", at=AT)
    log.raise_event("InvalidCsmsCertificate", at=AT + timedelta(seconds=1), tech_info="expired")
    log.raise_event("InvalidMessages", at=AT + timedelta(seconds=2))
    log.raise_event("VendorDoorOpen", at=AT + timedelta(seconds=3))
    logged = [e.type for e in log.log.events()]
    assert len(logged) == 4
    if version is OcppVersion.V16:
        assert "InvalidCentralSystemCertificate" in logged  # the station speaks its version's names
    assert {e.canonical_type for _, e in log.queue.pending()} == queued


def test_export_window_and_empty_window(tmp_path: Path) -> None:
    log = StationSecurityLog(tmp_path, station_id="CS1", ocpp_version=OcppVersion.V21)
    for i in range(5):
        log.raise_event("ResetOrReboot", at=AT + timedelta(minutes=i))
    data = log.export(at=AT, oldest=AT + timedelta(minutes=1), latest=AT + timedelta(minutes=2), request_id=4)
    assert data is not None
    parsed = parse_log(data, at=AT)
    assert len(parsed.events) == 2 and parsed.header.request_id == 4 and parsed.header.station_id == "CS1"
    assert log.export(at=AT, oldest=AT + timedelta(days=1), latest=None, request_id=5) is None


def test_log_file_round_trip_and_bad_lines() -> None:
    data = render_log([ev(2), ev(1)], station_id="CS1", at=AT, ocpp_version=OcppVersion.V201)
    lines = data.decode().splitlines()
    lines.insert(2, "not json")
    lines.insert(3, json.dumps({"type": "X"}))  # no timestamp
    lines.append(json.dumps({"type": "Y", "timestamp": "2026-11-23T10:00:00", "techInfo": "t" * 400}))
    lines.append("[1, 2]")
    lines.append("x" * 5000)
    parsed = parse_log("\n".join(lines).encode(), at=AT)
    assert [e.tech_info for e in parsed.events[:2]] == ["n1", "n2"]
    assert len(parsed.events) == 3
    assert parsed.events[2].flags >= {FLAG_NAIVE, FLAG_TRUNCATED}
    assert all(e.source == Source.UPLOAD for e in parsed.events)
    assert [r.index for r in parsed.rejections] == [3, 4, 7, 8]


@pytest.mark.parametrize(
    "data",
    [b"", b"hello\n", b'{"format": "other"}\n', b'{"format": "ocppsec-security-log", "version": 9}\n',
     b"\xff\xfe\x00garbage", b'{"format": "ocppsec-security-log", "version": 1}\n'],
)
def test_not_our_format(data: bytes) -> None:
    with pytest.raises(LogFormatError):
        parse_log(data, at=AT)


def test_a_station_cannot_upload_another_stations_log() -> None:
    data = render_log([ev(1, station="CS2")], station_id="CS2", at=AT)
    with pytest.raises(LogFormatError, match="CS2"):
        parse_log(data, at=AT, expected_station="CS1")
