"""Version-neutral glue between the event log and the ``ocpp`` package's ChargePoint.

Everything that differs between OCPP versions comes from a :class:`Codec`, built by the adapter modules
:mod:`ocppsec.eventlog.v16`, :mod:`~ocppsec.eventlog.v201` and :mod:`~ocppsec.eventlog.v21`; this
module never asks which version it serves. The mixins are combined with that version's ChargePoint in
the adapter modules (``CsmsChargePoint`` and ``StationChargePoint``), which only add their codec; the
constructors live here.

SecurityEventNotification is handled with the package's schema validation switched off on purpose: the
CSMS must keep security evidence, so an over-long techInfo is truncated and flagged, a timestamp without
a zone is read as UTC and flagged, and unknown types are kept (see :mod:`ocppsec.pki.events.model`);
only an event without a usable type or timestamp is answered with a CallError (FormatViolation).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from ocpp import routing

from ocppsec.eventlog.getlog import GetLogPolicy, GetLogReply, GetLogRequest, GetLogStatus, LogStatus
from ocppsec.eventlog.station import StationSecurityLog
from ocppsec.eventlog.upload import GetLogDriver, Uploader, http_upload
from ocppsec.pki.events import catalogue
from ocppsec.pki.events.model import (
    EventInputError,
    SecurityEvent,
    Source,
    format_timestamp,
    normalize_event,
    parse_timestamp,
)
from ocppsec.pki.events.sink import EventSink
from ocppsec.pki.versions import OcppVersion

__all__ = [
    "Codec",
    "CsmsSecurityEvents",
    "StationSecurityEvents",
    "getlog_request_from_payload",
    "getlog_request_to_payload",
    "make_codec",
]


_F = TypeVar("_F", bound=Callable[..., Any])


def on(action: str, *, skip_schema_validation: bool = False) -> Callable[[_F], _F]:
    """``ocpp.routing.on`` with a type."""
    return cast(Callable[[_F], _F], routing.on(action, skip_schema_validation=skip_schema_validation))


def after(action: str) -> Callable[[_F], _F]:
    """``ocpp.routing.after`` with a type."""
    return cast(Callable[[_F], _F], routing.after(action))


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Codec:
    """The per-version functions (payloads are camelCase JSON objects as on the wire)."""

    version: OcppVersion
    event_from_payload: Callable[..., SecurityEvent]
    event_to_payload: Callable[[SecurityEvent], dict[str, Any]]
    event_call: Callable[[SecurityEvent], Any]
    getlog_from_payload: Callable[[Mapping[str, Any]], GetLogRequest]
    getlog_to_payload: Callable[[GetLogRequest], dict[str, Any]]
    getlog_call: Callable[[GetLogRequest], Any]
    getlog_result: Callable[[GetLogReply], Any]
    log_status_payload: Callable[[LogStatus, int], dict[str, Any] | None]
    log_status_call: Callable[[LogStatus, int], Any | None]
    empty_result: Callable[[str], Any]
    format_error: Callable[[str], Exception]
    policy: GetLogPolicy


def getlog_request_from_payload(payload: Mapping[str, Any]) -> GetLogRequest:
    """GetLog payload -> request; raises :class:`EventInputError` for a malformed one."""
    log = payload.get("log")
    if not isinstance(log, Mapping) or not isinstance(log.get("remoteLocation"), str):
        raise EventInputError("GetLog has no log.remoteLocation")
    request_id = payload.get("requestId")
    if not isinstance(request_id, int):
        raise EventInputError("GetLog has no integer requestId")

    def opt_time(name: str) -> datetime | None:
        value = log.get(name)
        return parse_timestamp(value)[0] if value is not None else None

    def opt_int(name: str) -> int | None:
        value = payload.get(name)
        if value is not None and not isinstance(value, int):
            raise EventInputError(f"GetLog {name} is not an integer")
        return value

    return GetLogRequest(
        log_type=str(payload.get("logType")),
        request_id=request_id,
        remote_location=log["remoteLocation"],
        oldest=opt_time("oldestTimestamp"),
        latest=opt_time("latestTimestamp"),
        retries=opt_int("retries"),
        retry_interval=opt_int("retryInterval"),
    )


def getlog_request_to_payload(request: GetLogRequest) -> dict[str, Any]:
    log: dict[str, Any] = {"remoteLocation": request.remote_location}
    if request.oldest is not None:
        log["oldestTimestamp"] = format_timestamp(request.oldest)
    if request.latest is not None:
        log["latestTimestamp"] = format_timestamp(request.latest)
    payload: dict[str, Any] = {"logType": request.log_type, "requestId": request.request_id, "log": log}
    if request.retries is not None:
        payload["retries"] = request.retries
    if request.retry_interval is not None:
        payload["retryInterval"] = request.retry_interval
    return payload


def make_codec(
    version: OcppVersion,
    *,
    call: Any,
    call_result: Any,
    format_error: Callable[[str], Exception],
    policy: GetLogPolicy,
    log_statuses: frozenset[LogStatus] = frozenset(LogStatus),
) -> Codec:
    """A codec from what a version module declares: its ``ocpp`` call modules and its differences.

    ``format_error``: the CallError for a malformed payload, called with the message (an ``ocpp``
    exception class will do). ``log_statuses``: the UploadLogStatus values the version can send
    (default all; others are not sent).
    Event names are written in the version's spelling (1.6 names for 1.6).
    """

    def event_from_payload(payload: Mapping[str, Any], *, station_id: str, at: datetime) -> SecurityEvent:
        return normalize_event(
            station_id=station_id,
            type=payload.get("type"),
            timestamp=payload.get("timestamp"),
            tech_info=payload.get("techInfo"),
            at=at,
            ocpp_version=version,
            source=Source.OCPP,
        )

    def event_to_payload(event: SecurityEvent) -> dict[str, Any]:
        payload = {"type": catalogue.name_for(event.type, version), "timestamp": format_timestamp(event.timestamp)}
        if event.tech_info is not None:
            payload["techInfo"] = event.tech_info
        return payload

    def event_call(event: SecurityEvent) -> Any:
        payload = event_to_payload(event)
        return call.SecurityEventNotification(
            type=payload["type"], timestamp=payload["timestamp"], tech_info=payload.get("techInfo")
        )

    def getlog_call(request: GetLogRequest) -> Any:
        payload = getlog_request_to_payload(request)
        log = payload["log"]
        return call.GetLog(
            log={
                "remote_location": log["remoteLocation"],
                "oldest_timestamp": log.get("oldestTimestamp"),
                "latest_timestamp": log.get("latestTimestamp"),
            },
            log_type=request.log_type,
            request_id=request.request_id,
            retries=request.retries,
            retry_interval=request.retry_interval,
        )

    def getlog_result(reply: GetLogReply) -> Any:
        return call_result.GetLog(status=reply.status.value, filename=reply.filename)

    def log_status_payload(status: LogStatus, request_id: int) -> dict[str, Any] | None:
        if status not in log_statuses:
            return None
        return {"status": status.value, "requestId": request_id}

    def log_status_call(status: LogStatus, request_id: int) -> Any | None:
        if status not in log_statuses:
            return None
        return call.LogStatusNotification(status=status.value, request_id=request_id)

    def empty_result(action: str) -> Any:
        return getattr(call_result, action)()

    return Codec(
        version=version,
        event_from_payload=event_from_payload,
        event_to_payload=event_to_payload,
        event_call=event_call,
        getlog_from_payload=getlog_request_from_payload,
        getlog_to_payload=getlog_request_to_payload,
        getlog_call=getlog_call,
        getlog_result=getlog_result,
        log_status_payload=log_status_payload,
        log_status_call=log_status_call,
        empty_result=empty_result,
        format_error=format_error,
        policy=policy,
    )


class CsmsSecurityEvents:
    """CSMS-side handlers: stores SecurityEventNotification, follows LogStatusNotification, sends GetLog.

    Needs ``self.id`` (the station identity) and ``self.call`` from the ``ocpp`` ChargePoint.
    """

    codec: Codec
    id: str
    call: Callable[..., Any]

    def __init__(
        self, id: str, connection: Any, *, sink: EventSink, clock: Callable[[], datetime] | None = None, **kw: Any
    ) -> None:
        super().__init__(id, connection, **kw)  # type: ignore[call-arg]  # the ocpp ChargePoint, next in the MRO
        self.setup_security_events(sink, **({"clock": clock} if clock else {}))

    def setup_security_events(self, sink: EventSink, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self.event_sink = sink
        self.clock = clock
        self.log_statuses: list[tuple[str, int | None]] = []
        self._log_status_changed = asyncio.Condition()

    @on("SecurityEventNotification", skip_schema_validation=True)
    def ocppsec_on_security_event_notification(self, **kwargs: Any) -> Any:
        payload = {"type": kwargs.get("type"), "timestamp": kwargs.get("timestamp")}
        if kwargs.get("tech_info") is not None:
            payload["techInfo"] = kwargs["tech_info"]
        try:
            event = self.codec.event_from_payload(payload, station_id=self.id, at=self.clock())
        except EventInputError as exc:
            raise self.codec.format_error(str(exc)) from None
        self.event_sink.record(event)  # a StoreError becomes a CallError: the station will retry
        return self.codec.empty_result("SecurityEventNotification")

    @on("LogStatusNotification")
    async def ocppsec_on_log_status_notification(self, status: str, request_id: int | None = None, **_: Any) -> Any:
        async with self._log_status_changed:
            self.log_statuses.append((status, request_id))
            self._log_status_changed.notify_all()
        return self.codec.empty_result("LogStatusNotification")

    async def wait_log_status(self, request_id: int, statuses: set[str], timeout: float = 10.0) -> str:
        """Wait until a LogStatusNotification for ``request_id`` with one of ``statuses`` arrived."""
        async with asyncio.timeout(timeout), self._log_status_changed:
            while True:
                for status, rid in self.log_statuses:
                    if rid == request_id and status in statuses:
                        return status
                await self._log_status_changed.wait()

    async def request_security_log(self, request: GetLogRequest) -> GetLogReply:
        response = await self.call(self.codec.getlog_call(request), suppress=False)
        return GetLogReply(GetLogStatus(str(response.status)), response.filename)


class StationSecurityEvents:
    """Station-side handlers: answers GetLog and uploads; delivers queued critical events."""

    codec: Codec
    call: Callable[..., Any]

    def __init__(self, id: str, connection: Any, *, station_log: StationSecurityLog, **options: Any) -> None:
        super().__init__(id, connection)  # type: ignore[call-arg]  # the ocpp ChargePoint, next in the MRO
        self.setup_station(station_log, **options)

    def setup_station(
        self,
        station_log: StationSecurityLog,
        *,
        method: str = "PUT",
        ssl_context: ssl.SSLContext | None = None,
        policy: GetLogPolicy | None = None,
        uploader: Uploader = http_upload,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.station_log = station_log
        self.getlog = GetLogDriver(
            exporter=station_log,
            notify=self._notify_log_status,
            policy=policy or self.codec.policy,
            method=method,
            ssl_context=ssl_context,
            uploader=uploader,
            clock=clock,
        )
        self._after_getlog: dict[int, list[Any]] = {}

    async def _notify_log_status(self, status: LogStatus, request_id: int) -> None:
        message = self.codec.log_status_call(status, request_id)
        if message is not None:  # the version may have no way to say it (1.6: AcceptedCanceled)
            await self.call(message, suppress=False)

    @on("GetLog")
    def ocppsec_on_get_log(self, **kwargs: Any) -> Any:
        log = kwargs.get("log") or {}
        payload: dict[str, Any] = {
            "logType": kwargs.get("log_type"),
            "requestId": kwargs.get("request_id"),
            "log": {
                "remoteLocation": log.get("remote_location"),
                "oldestTimestamp": log.get("oldest_timestamp"),
                "latestTimestamp": log.get("latest_timestamp"),
            },
            "retries": kwargs.get("retries"),
            "retryInterval": kwargs.get("retry_interval"),
        }
        try:
            request = self.codec.getlog_from_payload(payload)
        except EventInputError as exc:
            raise self.codec.format_error(str(exc)) from None
        reply, actions = self.getlog.handle_request(request)
        self._after_getlog[request.request_id] = actions
        return self.codec.getlog_result(reply)

    @after("GetLog")
    async def ocppsec_after_get_log(self, **kwargs: Any) -> None:
        actions = self._after_getlog.pop(kwargs.get("request_id", -1), [])
        await self.getlog.perform(actions)

    async def send_security_event(self, type: str, *, at: datetime, tech_info: str | None = None) -> SecurityEvent:
        """Record an event in the station log; push it now if it is critical (queued until confirmed)."""
        event = self.station_log.raise_event(type, at=at, tech_info=tech_info)
        await self.deliver_pending()
        return event

    async def deliver_pending(self) -> int:
        """Send the queued critical events, oldest first; each is removed only once confirmed.

        Stops at the first failure (connection lost, CallError) and leaves the rest queued.
        """
        sent = 0
        for seq, event in self.station_log.queue.pending():
            try:
                await self.call(self.codec.event_call(event), suppress=False)
            except Exception:  # anything (connection lost, CallError, timeout): keep it queued
                return sent
            self.station_log.queue.ack(seq)
            sent += 1
        return sent
