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
