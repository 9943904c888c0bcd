"""Ingesting SecurityEventNotification payloads from outside the ``ocpp`` handlers (sans-I/O).

For the gateway, which sees raw OCPP-J frames, and for batch imports: every item is normalised on its
own, so a bad item is reported (:class:`Rejection`) and the rest of the batch is kept. The payload of
SecurityEventNotification has the same fields in 1.6, 2.0.1 and 2.1; the version only tags the events
(it decides the critical flag), so nothing here depends on it otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ocppsec.pki.events.model import EventInputError, Rejection, SecurityEvent, Source, normalize_event
from ocppsec.pki.versions import OcppVersion

__all__ = ["IngestReport", "event_from_frame", "ingest_payloads"]

ACTION = "SecurityEventNotification"


@dataclass(frozen=True, slots=True)
class IngestReport:
    events: tuple[SecurityEvent, ...]
    rejections: tuple[Rejection, ...]


def _event(payload: object, *, station_id: str, version: OcppVersion | None, at: datetime, source: str) -> SecurityEvent:
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
            events.append(_event(payload, station_id=station_id, version=version, at=at, source=source))
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
    return _event(frame[3], station_id=station_id, version=version, at=at, source=Source.OCPP)
