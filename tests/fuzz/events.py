"""SecurityEventNotification payloads: ``event_from_frame``, ``ingest_payloads``, ``normalize_event``, then a real SQLite store.

Input: one byte choosing the entry point (an OCPP-J frame, a batch of payloads, or one payload's
fields) and the OCPP version, then JSON as a station sends it. Only an unusable item is refused
(EventInputError), only that item of a batch is lost, and every accepted event can be written to the
event store (so encoding or range problems show up where the bytes go).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from ocppsec.pki.events.ingest import event_from_frame, ingest_payloads
from ocppsec.pki.events.model import EventInputError, SecurityEvent, normalize_event
from ocppsec.pki.versions import OcppVersion

from . import _material as m
from ._harness import harness, never_raises, text

ALLOWED = (EventInputError,)
_VERSIONS = (None, *OcppVersion)


def store_events(events: Sequence[SecurityEvent]) -> None:
    """Write accepted events to the SQLite store and read them back: neither may fail for an accepted event."""
    if not events:
        return
    store = m.event_store(len(events))
    never_raises(store.add_many, events)
    for event in events:
        event.to_json_line()


@harness(ALLOWED)
def TestOneInput(data: bytes) -> None:
    mode = data[0] if data else 0
    version = _VERSIONS[(mode >> 2) % len(_VERSIONS)]
    body = data[1:]
    if mode & 3 == 0:
        event = event_from_frame(body, station_id=m.STATION, version=version, at=m.NOW)
        store_events([event] if event is not None else [])
        return
    try:
        payload = json.loads(text(body))
    except (ValueError, RecursionError):
        return
    if mode & 3 == 1:
        items = payload if isinstance(payload, list) else [payload]
        report = never_raises(ingest_payloads, items, station_id=m.STATION, version=version, at=m.NOW)
        assert len(report.events) + len(report.rejections) == len(items), "a bad item took others with it"
        store_events(report.events)
        return
    if not isinstance(payload, dict):
        return
    event = normalize_event(station_id=str(payload.get("stationId", m.STATION)), type=payload.get("type"),
                            timestamp=payload.get("timestamp"), tech_info=payload.get("techInfo"), at=m.NOW,
                            ocpp_version=version)
    store_events([event])


def seeds() -> dict[str, bytes]:
    frame = [2, "19223201", "SecurityEventNotification",
             {"type": "FirmwareUpdated", "timestamp": "2026-11-23T11:59:00.000Z", "techInfo": "v1.2.3"}]
    batch = [{"type": "StartupOfTheDevice", "timestamp": "2026-11-23T11:00:00Z"},
             {"type": "AcmeDoorOpened", "timestamp": "2026-11-23T11:00:00", "techInfo": "t" * 300},
             {"type": "", "timestamp": "yesterday"},
             {"type": "InvalidFirmwareSignature", "timestamp": "2026-11-23T11:00:00+02:00"}]
    return {
        "frame-201": b"\x08" + json.dumps(frame).encode(),
        "frame-16": b"\x04" + json.dumps(frame).encode(),
        "batch": b"\x09" + json.dumps(batch).encode(),
        "one-event-fields": b"\x0a" + json.dumps({"stationId": "CS-9", "type": "SettingSystemTime",
                                                  "timestamp": "2026-11-23T12:04:59.999Z", "techInfo": "ntp"}).encode(),
        "other-frame": b"\x00" + json.dumps([2, "1", "Heartbeat", {}]).encode(),
    }
