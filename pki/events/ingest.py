"""SecurityEventNotification payloads both ways, and raw OCPP-J frames (sans-I/O).

One parser (:func:`event_from_payload`) serves the CSMS handler of the ``ocpp`` package, the gateway's
raw frames (:func:`event_from_frame`) and batch imports (:func:`ingest_payloads`); one writer
(:func:`notification_payload`) builds what a station sends. In a batch every item is normalised on
its own, so a bad item is reported (:class:`Rejection`) and the rest is kept. The payload of
SecurityEventNotification has the same fields in 1.6, 2.0.1 and 2.1; the version only tags the events
(it decides the critical flag) and picks the 1.6 spelling of the renamed events.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ocppsec.pki.events import catalogue
from ocppsec.pki.events.model import (
    MAX_TECH_INFO,
    EventInputError,
    Rejection,
    SecurityEvent,
    Source,
    format_timestamp,
    normalize_event,
)
from ocppsec.pki.versions import OcppVersion

__all__ = [
    "ACTION",
    "IngestReport",
    "event_from_frame",
    "event_from_payload",
    "ingest_payloads",
    "notification_payload",
]

ACTION = "SecurityEventNotification"


@dataclass(frozen=True, slots=True)
class IngestReport:
    events: tuple[SecurityEvent, ...]
    rejections: tuple[Rejection, ...]


def event_from_payload(
    payload: object, *, station_id: str, version: OcppVersion | None, at: datetime, source: str = Source.OCPP,
) -> SecurityEvent:
    """The event in one camelCase SecurityEventNotification payload received at ``at``.

    Repairs and flags like :func:`normalize_event`; raises :class:`EventInputError` when the payload is
    not an object or has no usable type or timestamp.
    """
    if not isinstance(payload, Mapping):
        raise EventInputError("a SecurityEventNotification payload must be a JSON object")
    return normalize_event(
        station_id=station_id,
        type=payload.get("type"),
        timestamp=payload.get("timestamp"),
        tech_info=payload.get("techInfo"),
        at=at,
        ocpp_version=version,
        source=source,
    )


def notification_payload(
    type: str, *, timestamp: datetime, tech_info: str | None = None, version: OcppVersion,
) -> dict[str, Any]:
    """The SecurityEventNotification payload for an event: ``type`` in ``version``'s spelling (unknown and
    vendor types verbatim), the timestamp in the one OCPP format, techInfo cut to 255 characters and
    left out when empty."""
    payload: dict[str, Any] = {"type": catalogue.name_for(type, version), "timestamp": format_timestamp(timestamp)}
    if tech_info:
        payload["techInfo"] = tech_info[:MAX_TECH_INFO]
    return payload


def ingest_payloads(
    payloads: Iterable[object],
    *,
    station_id: str,
    version: OcppVersion | None,
    at: datetime,
    source: str = Source.OCPP,
) -> IngestReport:
    """Normalise camelCase payloads received at ``at``; bad ones become rejections (by position)."""
    events: list[SecurityEvent] = []
    rejections: list[Rejection] = []
    for index, payload in enumerate(payloads):
        try:
            events.append(event_from_payload(payload, station_id=station_id, version=version, at=at, source=source))
        except EventInputError as exc:
            rejections.append(Rejection(index, str(exc)))
    return IngestReport(tuple(events), tuple(rejections))


def event_from_frame(
    frame: str | bytes | Sequence[Any], *, station_id: str, version: OcppVersion | None, at: datetime
) -> SecurityEvent | None:
    """The event in an OCPP-J CALL ``[2, id, "SecurityEventNotification", {...}]``; None for other frames.

    Raises :class:`EventInputError` when it is that CALL but its payload is unusable.
    """
    if isinstance(frame, str | bytes):
        try:
            frame = json.loads(frame)
        except ValueError:
            return None
    if not isinstance(frame, Sequence) or isinstance(frame, str | bytes) or len(frame) != 4:
        return None
    if frame[0] != 2 or frame[2] != ACTION:
        return None
    return event_from_payload(frame[3], station_id=station_id, version=version, at=at)
