"""The security event log: catalogue, events, stores, station log, GetLog upload and receiver.

::

    catalogue   every security event of 1.6-WP / 2.0.1 (2023 errata) / 2.1, names and critical flags
    model       SecurityEvent (immutable), normalize_event (repair + flag, or EventInputError)
    sink        EventSink.record(event): what every producer of events calls; MemorySink for tests
    ingest      payload batches and raw OCPP-J frames (the gateway) -> events + rejections
    store       EventStore interface, EventQuery, BufferedSink
    queued      QueuedSink: record() never blocks (queue, writer thread, disk spool, counters)
    store_sql   SqlEventStore (SQLite / PostgreSQL), open_store(path | sqlite:// | postgresql:// URL)
    logfile     our log file format (JSON Lines with a header)
    station     station side: RollingLog, OfflineQueue, StationSecurityLog
    getlog      GetLog as a pure state machine
    upload      HTTP(S) upload client (aiohttp) and the asyncio GetLog driver
    receiver    the CSMS's upload receiver (aiohttp server, HTTP PUT/POST)
    v16 v201 v21  OCPP adapters for the ``ocpp`` package (imported on demand: they need ``ocpp``)

Errors: everything raised on purpose is an :class:`ocppsec.pki.errors.OcppsecError`;
:class:`EventInputError` (an InputError) rejects one event, :class:`StoreUnavailableError` (a StoreError)
means "retry later", :class:`LogFormatError` (an InputError) means "not our log format".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ocppsec.pki._lazy import lazy_exports

if TYPE_CHECKING:
    from ocppsec.eventlog.getlog import (
        GetLogMachine,
        GetLogPolicy,
        GetLogReply,
        GetLogRequest,
        GetLogStatus,
        LogStatus,
        UploadOutcome,
    )
    from ocppsec.eventlog.logfile import LogFormatError, ParsedLog, parse_log, render_log
    from ocppsec.eventlog.queued import QueuedSink, SinkCounters
    from ocppsec.eventlog.receiver import ReceiverConfig, UploadReceiver, sanitize_filename
    from ocppsec.eventlog.station import OfflineQueue, RollingLog, StationSecurityLog
    from ocppsec.eventlog.store import (
        DEFAULT_STORE,
        AddResult,
        BufferedSink,
        EventQuery,
        EventStore,
        StatRow,
        StoredEvent,
        StoreUnavailableError,
    )
    from ocppsec.eventlog.store_sql import SqlEventStore, open_store
    from ocppsec.eventlog.upload import GetLogDriver, UploadResult, http_upload, http_upload_async
    from ocppsec.pki.events.catalogue import CATALOGUE, EventDefinition, canonical_name, is_critical, lookup, name_for
    from ocppsec.pki.events.ingest import IngestReport, event_from_frame, ingest_payloads
    from ocppsec.pki.events.model import (
        EventInputError,
        Rejection,
        SecurityEvent,
        Source,
        format_timestamp,
        normalize_event,
        parse_timestamp,
    )
    from ocppsec.pki.events.sink import EventSink, FanOutSink, MemorySink, event_from_error

# Imported on first use (ocppsec.pki._lazy): importing one module of this package does not import them all.
__getattr__, __dir__ = lazy_exports(__name__, {
    "AddResult": "ocppsec.eventlog.store",
    "BufferedSink": "ocppsec.eventlog.store",
    "CATALOGUE": "ocppsec.pki.events.catalogue",
    "DEFAULT_STORE": "ocppsec.eventlog.store",
    "EventDefinition": "ocppsec.pki.events.catalogue",
    "EventInputError": "ocppsec.pki.events.model",
    "EventQuery": "ocppsec.eventlog.store",
    "EventSink": "ocppsec.pki.events.sink",
    "EventStore": "ocppsec.eventlog.store",
    "FanOutSink": "ocppsec.pki.events.sink",
    "GetLogDriver": "ocppsec.eventlog.upload",
    "GetLogMachine": "ocppsec.eventlog.getlog",
    "GetLogPolicy": "ocppsec.eventlog.getlog",
    "GetLogReply": "ocppsec.eventlog.getlog",
    "GetLogRequest": "ocppsec.eventlog.getlog",
    "GetLogStatus": "ocppsec.eventlog.getlog",
    "IngestReport": "ocppsec.pki.events.ingest",
    "LogFormatError": "ocppsec.eventlog.logfile",
    "LogStatus": "ocppsec.eventlog.getlog",
    "MemorySink": "ocppsec.pki.events.sink",
    "OfflineQueue": "ocppsec.eventlog.station",
    "ParsedLog": "ocppsec.eventlog.logfile",
    "QueuedSink": "ocppsec.eventlog.queued",
    "ReceiverConfig": "ocppsec.eventlog.receiver",
    "Rejection": "ocppsec.pki.events.model",
    "RollingLog": "ocppsec.eventlog.station",
    "SecurityEvent": "ocppsec.pki.events.model",
    "SinkCounters": "ocppsec.eventlog.queued",
    "Source": "ocppsec.pki.events.model",
    "SqlEventStore": "ocppsec.eventlog.store_sql",
    "StatRow": "ocppsec.eventlog.store",
    "StationSecurityLog": "ocppsec.eventlog.station",
    "StoreUnavailableError": "ocppsec.eventlog.store",
    "StoredEvent": "ocppsec.eventlog.store",
    "UploadOutcome": "ocppsec.eventlog.getlog",
    "UploadReceiver": "ocppsec.eventlog.receiver",
    "UploadResult": "ocppsec.eventlog.upload",
    "canonical_name": "ocppsec.pki.events.catalogue",
    "event_from_error": "ocppsec.pki.events.sink",
    "event_from_frame": "ocppsec.pki.events.ingest",
    "format_timestamp": "ocppsec.pki.events.model",
    "http_upload": "ocppsec.eventlog.upload",
    "http_upload_async": "ocppsec.eventlog.upload",
    "ingest_payloads": "ocppsec.pki.events.ingest",
    "is_critical": "ocppsec.pki.events.catalogue",
    "lookup": "ocppsec.pki.events.catalogue",
    "name_for": "ocppsec.pki.events.catalogue",
    "normalize_event": "ocppsec.pki.events.model",
    "open_store": "ocppsec.eventlog.store_sql",
    "parse_log": "ocppsec.eventlog.logfile",
    "parse_timestamp": "ocppsec.pki.events.model",
    "render_log": "ocppsec.eventlog.logfile",
    "sanitize_filename": "ocppsec.eventlog.receiver",
}, globals())

__all__ = [
    "CATALOGUE",
    "DEFAULT_STORE",
    "AddResult",
    "BufferedSink",
    "EventDefinition",
    "EventInputError",
    "EventQuery",
    "EventSink",
    "EventStore",
    "FanOutSink",
    "GetLogDriver",
    "GetLogMachine",
    "GetLogPolicy",
    "GetLogReply",
    "GetLogRequest",
    "GetLogStatus",
    "IngestReport",
    "LogFormatError",
    "LogStatus",
    "MemorySink",
    "OfflineQueue",
    "ParsedLog",
    "QueuedSink",
    "ReceiverConfig",
    "Rejection",
    "RollingLog",
    "SecurityEvent",
    "SinkCounters",
    "Source",
    "SqlEventStore",
    "StatRow",
    "StationSecurityLog",
    "StoreUnavailableError",
    "StoredEvent",
    "UploadOutcome",
    "UploadReceiver",
    "UploadResult",
    "canonical_name",
    "event_from_error",
    "event_from_frame",
    "format_timestamp",
    "http_upload",
    "http_upload_async",
    "ingest_payloads",
    "is_critical",
    "lookup",
    "name_for",
    "normalize_event",
    "open_store",
    "parse_log",
    "parse_timestamp",
    "render_log",
    "sanitize_filename",
]
