"""Version-neutral glue between the event log and the ``ocpp`` package: the GetLog parts of the composer.

Everything that differs between OCPP versions comes from a :class:`Codec`, built by the adapter modules
:mod:`ocppsec.eventlog.v16`, :mod:`~ocppsec.eventlog.v201` and :mod:`~ocppsec.eventlog.v21`; this
module never asks which version it serves. :func:`csms_log_part` (LogStatusNotification, GetLog sent)
and :func:`station_log_part` (GetLog answered and uploaded, queued critical events delivered) are
parts for :func:`ocppsec.pki.chargepoint.compose`; the adapter modules compose them with the kernel's
SecurityEventNotification part (:mod:`ocppsec.pki.events.ocpp_handlers`) into ``CsmsChargePoint`` and
``StationChargePoint``, and export them for classes that also manage certificates.

Events go both ways through the kernel's one parser and one writer
(:func:`~ocppsec.pki.events.ingest.event_from_payload`, :func:`~ocppsec.pki.events.ingest.notification_payload`).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ocppsec.eventlog.getlog import GetLogPolicy, GetLogReply, GetLogRequest, GetLogStatus, LogStatus
from ocppsec.eventlog.station import StationSecurityLog
from ocppsec.eventlog.upload import GetLogDriver, Uploader, http_upload_async
from ocppsec.pki.chargepoint import glue
from ocppsec.pki.chargepoint.compose import Part, Side, after, on
from ocppsec.pki.errors import UsageError
from ocppsec.pki.events.ingest import event_from_payload, notification_payload
from ocppsec.pki.events.model import EventInputError, SecurityEvent, format_timestamp, parse_timestamp
from ocppsec.pki.versions import OcppVersion

__all__ = [
    "CSMS_PART_NAME",
    "STATION_PART_NAME",
    "Codec",
    "CsmsLogHandlers",
    "StationLogHandlers",
    "csms_log_part",
    "getlog_request_from_payload",
    "getlog_request_to_payload",
    "make_codec",
    "station_log_part",
]

CSMS_PART_NAME = "security log (GetLog, LogStatusNotification)"
STATION_PART_NAME = "security log (GetLog, queued events)"


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
    policy: GetLogPolicy,
    log_statuses: frozenset[LogStatus] = frozenset(LogStatus),
) -> Codec:
    """A codec from what a version module declares: its differences (the `ocpp` module and CallError
    come from the version's wire table).

    ``log_statuses``: the UploadLogStatus values the version can send (default all; others are not sent).
    Event names are written in the version's spelling (1.6 names for 1.6).
    """
    module = glue.ocpp_module(version)
    call, call_result = module.call, module.call_result

    def from_payload(payload: Mapping[str, Any], *, station_id: str, at: datetime) -> SecurityEvent:
        return event_from_payload(payload, station_id=station_id, version=version, at=at)

    def event_to_payload(event: SecurityEvent) -> dict[str, Any]:
        return notification_payload(event.type, timestamp=event.timestamp, tech_info=event.tech_info, version=version)

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

    def format_error(message: str) -> Exception:
        return glue.format_error(version, message)

    return Codec(
        version=version,
        event_from_payload=from_payload,
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


class CsmsLogHandlers:
    """CSMS side: follows LogStatusNotification, sends GetLog (``request_security_log``)."""

    log_codec: Codec
    log_statuses: list[tuple[LogStatus, int | None]]
    _log_status_changed: asyncio.Condition
    call: Callable[..., Any]

    @on("LogStatusNotification")
    async def ocppsec_on_log_status_notification(self, status: str, request_id: int | None = None, **_: Any) -> Any:
        async with self._log_status_changed:
            self.log_statuses.append((LogStatus(status), request_id))  # schema-checked: a value of the enum
            self._log_status_changed.notify_all()
        return self.log_codec.empty_result("LogStatusNotification")

    async def wait_log_status(self, request_id: int, statuses: set[LogStatus], timeout: float = 10.0) -> LogStatus:
        """Wait until a LogStatusNotification for ``request_id`` with one of ``statuses`` arrived."""
        async with asyncio.timeout(timeout), self._log_status_changed:
            while True:
                for status, rid in self.log_statuses:
                    if rid == request_id and status in statuses:
                        return status
                await self._log_status_changed.wait()

    async def request_security_log(self, request: GetLogRequest) -> GetLogReply:
        response = await self.call(self.log_codec.getlog_call(request), suppress=False)
        return GetLogReply(GetLogStatus(str(response.status)), response.filename)


def csms_log_part(codec: Codec) -> Part:
    """The CSMS's GetLog / LogStatusNotification part for ``codec``'s version."""

    def setup(cp: Any, options: Mapping[str, Any]) -> None:
        cp.log_codec = codec
        cp.log_statuses = []
        cp._log_status_changed = asyncio.Condition()

    return Part(CSMS_PART_NAME, codec.version, Side.CSMS, CsmsLogHandlers, setup)


class StationLogHandlers:
    """Station side: answers GetLog and uploads; delivers queued critical events."""

    log_codec: Codec
    station_log: StationSecurityLog
    getlog: GetLogDriver
    _after_getlog: dict[int, list[Any]]
    call: Callable[..., Any]

    async def _notify_log_status(self, status: LogStatus, request_id: int) -> None:
        message = self.log_codec.log_status_call(status, request_id)
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
            request = self.log_codec.getlog_from_payload(payload)
        except EventInputError as exc:
            raise self.log_codec.format_error(str(exc)) from None
        reply, actions = self.getlog.handle_request(request)
        self._after_getlog[request.request_id] = actions
        return self.log_codec.getlog_result(reply)

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
                await self.call(self.log_codec.event_call(event), suppress=False)
            except Exception:  # anything (connection lost, CallError, timeout): keep it queued
                return sent
            self.station_log.queue.ack(seq)
            sent += 1
        return sent


_STATION_OPTIONS = frozenset({"station_log", "method", "ssl_context", "policy", "uploader", "clock"})


def station_log_part(codec: Codec) -> Part:
    """The station's GetLog part for ``codec``'s version.

    Constructor keywords: ``station_log=`` (required), ``method=`` ("PUT"), ``ssl_context=``, ``policy=``
    (default the version's), ``uploader=``, ``clock=``.
    """

    def setup(cp: Any, options: Mapping[str, Any]) -> None:
        station_log: StationSecurityLog | None = options.get("station_log")
        if station_log is None:
            raise UsageError("the station's security-log part needs station_log=StationSecurityLog(...)")
        method: str = options.get("method", "PUT")
        ssl_context: ssl.SSLContext | None = options.get("ssl_context")
        policy: GetLogPolicy = options.get("policy") or codec.policy
        uploader: Uploader = options.get("uploader", http_upload_async)
        clock: Callable[[], datetime] = options.get("clock", _utc_now)
        cp.log_codec = codec
        cp.station_log = station_log
        cp.getlog = GetLogDriver(exporter=station_log, notify=cp._notify_log_status, policy=policy, method=method,
                                 ssl_context=ssl_context, uploader=uploader, clock=clock)
        cp._after_getlog = {}

    return Part(STATION_PART_NAME, codec.version, Side.STATION, StationLogHandlers, setup, _STATION_OPTIONS)
