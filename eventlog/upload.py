"""Station side I/O for GetLog: an HTTP(S) upload client (aiohttp's) and the asyncio driver of the state machine.

:func:`http_upload_async` (and its synchronous wrapper :func:`http_upload`) sends one file with PUT (raw
body, ``Content-Disposition`` naming the file) or POST (``multipart/form-data``, N01.FR.19). User
information in the URL becomes HTTP Basic authentication (N01.FR.17: use a password other than the
OCPP one). Bodies above 1 MiB are sent with
``Expect: 100-continue`` (2.1 N01.FR.22): the client waits up to a second for the interim response, so a
server refusing the upload (401, 413) answers before the body travels. TLS uses the given
``ssl.SSLContext`` (the CSMS trust chain, N01.FR.15, and the station's client certificate if the context
holds one) or the system CA bundle (N01.FR.16). HTTP statuses map to outcomes as :func:`classify_status`
says; transport failures and timeouts are ``FAILURE``.

:class:`GetLogDriver` runs :class:`ocppsec.eventlog.getlog.GetLogMachine`: it produces the file for a
request, performs the actions (status notifications through a callback, uploads as tasks, retry
timers) and feeds the results back. The clock is read here, not in the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import secrets
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from ocppsec.eventlog.getlog import (
    Action,
    GetLogMachine,
    GetLogPolicy,
    GetLogReply,
    GetLogRequest,
    GetLogStatus,
    LogStatus,
    SendStatus,
    StartUpload,
    UploadOutcome,
    WakeAt,
    log_filename,
)
from ocppsec.pki._http import run_blocking

__all__ = ["GetLogDriver", "LogExporter", "UploadResult", "Uploader", "classify_status", "http_upload", "http_upload_async"]

LOG = logging.getLogger(__name__)
EXPECT_CONTINUE_OVER = 1 << 20
CONTINUE_WAIT = 1.0
MIN_UPLOAD_RATE = 16 * 1024  # bytes per second an upload may not stay under (on top of the timeout)


@dataclass(frozen=True, slots=True)
class UploadResult:
    outcome: UploadOutcome
    status_code: int | None = None
    detail: str = ""


def classify_status(code: int) -> UploadOutcome:
    """HTTP status -> outcome: 2xx ok; 401/403 permission; 405/501 not supported; other 4xx bad message."""
    if 200 <= code < 300:
        return UploadOutcome.OK
    if code in (401, 403):
        return UploadOutcome.PERMISSION_DENIED
    if code in (405, 501):
        return UploadOutcome.NOT_SUPPORTED
    if 400 <= code < 500:
        return UploadOutcome.BAD_MESSAGE
    return UploadOutcome.FAILURE


def _quoted(filename: str) -> str:
    return filename.replace("\\", "_").replace('"', "_").replace("\r", "_").replace("\n", "_")


def _resolve(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(True)


def _patient_request_class() -> type[Any]:
    import aiohttp

    class PatientRequest(aiohttp.ClientRequest):
        """aiohttp's request, except that with ``Expect: 100-continue`` the body goes out after
        :data:`CONTINUE_WAIT` seconds without an interim answer (RFC 9110 §10.1.1: a client need not wait
        for it; servers that ignore Expect exist). aiohttp itself waits until the timeout."""

        def update_expect_continue(self, expect: bool = False) -> None:
            super().update_expect_continue(expect)
            waiter = getattr(self, "_continue", None)
            if isinstance(waiter, asyncio.Future):
                self.loop.call_later(CONTINUE_WAIT, _resolve, waiter)

    return PatientRequest


async def _body_and_headers(data: bytes, filename: str, method: str) -> tuple[bytes, dict[str, str]]:
    import aiohttp

    if method == "PUT":
        return data, {"Content-Type": "application/octet-stream",
                      "Content-Disposition": f'attachment; filename="{_quoted(filename)}"'}
    writer = aiohttp.MultipartWriter("form-data", boundary="ocppsec-" + secrets.token_hex(12))
    part = writer.append(data, {"Content-Type": "application/octet-stream"})
    part.set_content_disposition("form-data", quote_fields=False, name="file", filename=_quoted(filename))
    return await writer.as_bytes(), {"Content-Type": writer.content_type}


async def http_upload_async(
    url: str,
    data: bytes,
    filename: str,
    *,
    method: str = "PUT",
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = 30.0,
    expect_continue_over: int = EXPECT_CONTINUE_OVER,
) -> UploadResult:
    """Upload ``data`` as ``filename`` to ``url``; never raises for transport problems."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return UploadResult(UploadOutcome.NOT_SUPPORTED, detail=f"scheme {scheme or '(none)'} is not supported")
    method = method.upper()
    if method not in ("PUT", "POST"):
        return UploadResult(UploadOutcome.NOT_SUPPORTED, detail=f"method {method} is not supported")
    import aiohttp
    from yarl import URL

    body_sent = False

    async def on_chunk(*_: object) -> None:
        nonlocal body_sent
        body_sent = True

    trace = aiohttp.TraceConfig()
    trace.on_request_chunk_sent.append(on_chunk)
    try:
        target = URL(url)
        body, headers = await _body_and_headers(data, filename, method)
        headers["User-Agent"] = "ocppsec-station"
        if target.user is not None:
            headers["Authorization"] = aiohttp.encode_basic_auth(target.user, target.password or "")
            target = target.with_user(None)
        expect = len(body) > expect_continue_over
        client_timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
        async with asyncio.timeout(timeout + len(body) / MIN_UPLOAD_RATE), aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True), timeout=client_timeout, trace_configs=[trace],
            request_class=_patient_request_class(),
        ) as session, session.request(
            method, target, data=body, headers=headers, expect100=expect, allow_redirects=False,
            ssl=ssl_context if ssl_context is not None else True,
        ) as resp:
            detail = (await resp.content.read(4096)).decode("utf-8", "replace")
            if expect and not body_sent and resp.status >= 300:
                detail = "refused before the body was sent: " + detail
            return UploadResult(classify_status(resp.status), resp.status, detail)
    except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:  # ssl errors are OSErrors
        return UploadResult(UploadOutcome.FAILURE, detail=f"{type(exc).__name__}: {exc}")


def http_upload(
    url: str,
    data: bytes,
    filename: str,
    *,
    method: str = "PUT",
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = 30.0,
    expect_continue_over: int = EXPECT_CONTINUE_OVER,
) -> UploadResult:
    """:func:`http_upload_async` for synchronous callers (not on a running event loop)."""
    return run_blocking(lambda: http_upload_async(url, data, filename, method=method, ssl_context=ssl_context,
                                                  timeout=timeout, expect_continue_over=expect_continue_over))


class LogExporter(Protocol):
    station_id: str

    def export(
        self, *, at: datetime, oldest: datetime | None, latest: datetime | None, request_id: int | None
    ) -> bytes | None: ...


Uploader = Callable[..., UploadResult | Awaitable[UploadResult]]
"""An upload function: :func:`http_upload_async` (the default) or a blocking one (run in a worker thread)."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class GetLogDriver:
    """Runs GetLog requests for one station (asyncio)."""

    exporter: LogExporter
    notify: Callable[[LogStatus, int], Awaitable[None]]
    policy: GetLogPolicy = field(default_factory=GetLogPolicy)
    method: str = "PUT"
    ssl_context: ssl.SSLContext | None = None
    uploader: Uploader = http_upload_async
    clock: Callable[[], datetime] = _utc_now
    machine: GetLogMachine = field(init=False)
    results: list[UploadResult] = field(default_factory=list, init=False)
    _files: dict[int, bytes] = field(default_factory=dict, init=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        self.machine = GetLogMachine(self.policy)

    def handle_request(self, request: GetLogRequest) -> tuple[GetLogReply, list[Action]]:
        """Answer a GetLog now; perform the returned actions after the response was sent."""
        at = self.clock()
        data = None
        if request.log_type in self.policy.supported_log_types:
            data = self.exporter.export(
                at=at, oldest=request.oldest, latest=request.latest, request_id=request.request_id
            )
        filename = log_filename(self.exporter.station_id, request.request_id, at) if data else None
        self.machine, reply, actions = self.machine.on_request(request, at=at, filename=filename)
        if data is not None and reply.status is not GetLogStatus.REJECTED:
            self._files[request.request_id] = data
        return reply, actions

    async def perform(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, SendStatus):
                try:
                    await self.notify(action.status, action.request_id)
                except Exception:  # the connection may be gone; the upload goes on
                    LOG.exception("could not send LogStatusNotification %s", action.status.value)
            elif isinstance(action, StartUpload):
                self._spawn(self._upload(action))
            elif isinstance(action, WakeAt):
                self._spawn(self._wake(action))

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _upload(self, action: StartUpload) -> None:
        data = self._files.get(action.request_id, b"")
        if inspect.iscoroutinefunction(self.uploader):
            result = await self.uploader(action.url, data, action.filename, method=self.method,
                                         ssl_context=self.ssl_context)
        else:
            outcome = await asyncio.to_thread(
                self.uploader, action.url, data, action.filename, method=self.method, ssl_context=self.ssl_context
            )
            result = await outcome if inspect.isawaitable(outcome) else outcome
        self.results.append(result)
        self.machine, actions = self.machine.on_upload_result(
            action.request_id, action.attempt, result.outcome, at=self.clock()
        )
        if not self._still_needed(action.request_id):
            self._files.pop(action.request_id, None)
        await self.perform(actions)

    def _still_needed(self, request_id: int) -> bool:
        job = self.machine.job
        return job is not None and job.request.request_id == request_id

    async def _wake(self, action: WakeAt) -> None:
        while (delay := (action.at - self.clock()).total_seconds()) > 0:
            await asyncio.sleep(delay)
        self.machine, actions = self.machine.on_timer(action.request_id, at=self.clock())
        await self.perform(actions)

    async def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait until no upload or timer is outstanding (tests, shutdown)."""
        async with asyncio.timeout(timeout):
            while self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
