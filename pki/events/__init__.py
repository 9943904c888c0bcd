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

from typing import TYPE_CHECKING

from ocppsec.pki._lazy import lazy_exports

if TYPE_CHECKING:
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

# Imported on first use (ocppsec.pki._lazy): importing one module of this package does not import them all.
__getattr__, __dir__ = lazy_exports(__name__, {
    "CATALOGUE": "ocppsec.pki.events.catalogue",
    "EventDefinition": "ocppsec.pki.events.catalogue",
    "EventInputError": "ocppsec.pki.events.model",
    "EventSink": "ocppsec.pki.events.sink",
    "FanOutSink": "ocppsec.pki.events.sink",
    "IngestReport": "ocppsec.pki.events.ingest",
    "MemorySink": "ocppsec.pki.events.sink",
    "NullSink": "ocppsec.pki.events.sink",
    "Rejection": "ocppsec.pki.events.model",
    "SafeSink": "ocppsec.pki.events.sink",
    "SecurityEvent": "ocppsec.pki.events.model",
    "Source": "ocppsec.pki.events.model",
    "canonical_name": "ocppsec.pki.events.catalogue",
    "event_from_error": "ocppsec.pki.events.sink",
    "event_from_frame": "ocppsec.pki.events.ingest",
    "event_from_payload": "ocppsec.pki.events.ingest",
    "format_timestamp": "ocppsec.pki.events.model",
    "ingest_payloads": "ocppsec.pki.events.ingest",
    "is_critical": "ocppsec.pki.events.catalogue",
    "local_event": "ocppsec.pki.events.sink",
    "lookup": "ocppsec.pki.events.catalogue",
    "name_for": "ocppsec.pki.events.catalogue",
    "normalize_event": "ocppsec.pki.events.model",
    "notification_payload": "ocppsec.pki.events.ingest",
    "parse_timestamp": "ocppsec.pki.events.model",
    "peer_station_id": "ocppsec.pki.events.sink",
}, globals())

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
