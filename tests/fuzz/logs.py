"""Uploaded security logs (GetLog SecurityLog files): ``parse_log``, then the events into a real SQLite store.

Input: one byte (whether the upload is attributed to a station), then the file as uploaded. A file that
is not ours is refused with LogFormatError; bad lines are rejections, never the loss of the file.
"""

from __future__ import annotations

from datetime import timedelta

from ocppsec.eventlog.logfile import LogFormatError, parse_log, render_log
from ocppsec.pki.events.ingest import ingest_payloads
from ocppsec.pki.versions import OcppVersion

from . import _material as m
from ._harness import harness
from .events import store_events

ALLOWED = (LogFormatError,)


@harness(ALLOWED)
def TestOneInput(data: bytes) -> None:
    expected = m.STATION if data[:1] == b"\x01" else None
    parsed = parse_log(data[1:], at=m.NOW, expected_station=expected)
    _ = parsed.header.station_id
    store_events(parsed.events)


def seeds() -> dict[str, bytes]:
    payloads = [{"type": "StartupOfTheDevice", "timestamp": "2026-11-23T10:00:00.000Z"},
                {"type": "FirmwareUpdated", "timestamp": "2026-11-23T10:30:00.000Z", "techInfo": "1.2.3"},
                {"type": "AcmeVendorEvent", "timestamp": "2026-11-23T11:00:00.000Z", "techInfo": "ü" * 10}]
    events = ingest_payloads(payloads, station_id=m.STATION, version=OcppVersion.V201, at=m.NOW).events
    log = render_log(events, station_id=m.STATION, at=m.NOW, ocpp_version=OcppVersion.V201,
                     oldest=m.NOW - timedelta(days=1), latest=m.NOW, request_id=7)
    lines = log.split(b"\n")
    return {
        "log": b"\x01" + log,
        "log-unattributed": b"\x00" + log,
        "log-with-bad-line": b"\x01" + b"\n".join([*lines[:2], b"{not json", *lines[2:]]),
        "header-only": b"\x00" + lines[0] + b"\n",
        "empty-log": b"\x01" + render_log([], station_id=m.STATION, at=m.NOW),
    }
