"""Security events: the one value type, the catalogue and the sink interface every producer writes to.

::

    catalogue   every security event of 1.6-WP / 2.0.1 (2023 errata) / 2.1, names and critical flags
    model       SecurityEvent (immutable), normalize_event (repair + flag, or EventInputError), timestamps
    sink        EventSink.record(event); MemorySink, FanOutSink, NullSink, SafeSink, local_event
    ingest      SecurityEventNotification payloads both ways (one parser, one writer), batches, raw OCPP-J frames
    ocpp_handlers  the CSMS part for the ChargePoint composer: SecurityEventNotification into a sink

The event log (:mod:`ocppsec.eventlog`) implements the sink with its stores; the security profiles,
certificate management and firmware verification record through the interface only.
"""

from __future__ import annotations

from ocppsec.pki.events.catalogue import CATALOGUE, EventDefinition, canonical_name, is_critical, lookup, name_for
from ocppsec.pki.events.ingest import (
    IngestReport,
    event_from_frame,
    event_from_payload,
    ingest_payloads,
    notification_payload,
)
from ocppsec.pki.events.model import (
    EventInputError,
    Rejection,
    SecurityEvent,
    Source,
    format_timestamp,
    normalize_event,
    parse_timestamp,
)
from ocppsec.pki.events.sink import (
    EventSink,
    FanOutSink,
    MemorySink,
    NullSink,
    SafeSink,
    event_from_error,
    local_event,
    peer_station_id,
)

__all__ = [
    "CATALOGUE",
    "EventDefinition",
    "EventInputError",
    "EventSink",
    "FanOutSink",
    "IngestReport",
    "MemorySink",
    "NullSink",
    "Rejection",
    "SafeSink",
    "SecurityEvent",
    "Source",
    "canonical_name",
    "event_from_error",
    "event_from_frame",
    "event_from_payload",
    "format_timestamp",
    "ingest_payloads",
    "is_critical",
    "local_event",
    "lookup",
    "name_for",
    "normalize_event",
    "notification_payload",
    "parse_timestamp",
    "peer_station_id",
]
