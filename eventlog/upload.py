"""Station side I/O for GetLog: an HTTP(S) upload client and the asyncio driver of the state machine.

:func:`http_upload` sends one file with PUT (raw body, ``Content-Disposition`` naming the file) or POST
(``multipart/form-data``, N01.FR.19). User information in the URL becomes HTTP Basic authentication
(N01.FR.17: use a password other than the OCPP one). Bodies above 1 MiB are sent with
``Expect: 100-continue`` (2.1 N01.FR.22): the client waits briefly for the interim response, so a server
refusing the upload (401, 413) answers before the body travels. TLS uses the given ``ssl.SSLContext``
(the CSMS trust chain, N01.FR.15) or the system CA bundle (N01.FR.16).

:class:`GetLogDriver` runs :class:`ocppsec.eventlog.getlog.GetLogMachine`: it produces the file for a
request, performs the actions (status notifications through a callback, uploads in a worker thread,
retry timers) and feeds the results back. The clock is read here, not in the machine.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import secrets
import select
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import BinaryIO, Protocol
from urllib.parse import unquote, urlsplit

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

__all__ = ["GetLogDriver", "LogExporter", "UploadResult", "classify_status", "http_upload"]

LOG = logging.getLogger(__name__)
EXPECT_CONTINUE_OVER = 1 << 20
CONTINUE_WAIT = 1.0


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


def _read_head(fp: BinaryIO) -> tuple[int, dict[str, str]]:
    status_line = fp.readline(8192)
    if not status_line:
        raise ConnectionError("the server closed the connection without a response")
    parts = status_line.decode("latin-1").split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ConnectionError(f"not an HTTP response: {status_line[:60]!r}")
    headers: dict[str, str] = {}
    for _ in range(200):
        line = fp.readline(8192)
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


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
    """Upload ``data`` as ``filename`` to ``url``; never raises for transport problems."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return UploadResult(UploadOutcome.NOT_SUPPORTED, detail=f"scheme {scheme or '(none)'} is not supported")
    method = method.upper()
    if method not in ("PUT", "POST"):
        return UploadResult(UploadOutcome.NOT_SUPPORTED, detail=f"method {method} is not supported")
    host = parts.hostname
    port = parts.port or (443 if scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {"Host": parts.netloc.rsplit("@", 1)[-1], "User-Agent": "ocppsec-station", "Connection": "close"}
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode()
    if method == "PUT":
        body = data
        headers["Content-Type"] = "application/octet-stream"
        headers["Content-Disposition"] = f'attachment; filename="{_quoted(filename)}"'
    else:
        boundary = "ocppsec-" + secrets.token_hex(12)
        body = (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{_quoted(filename)}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
        headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
    headers["Content-Length"] = str(len(body))
    expect = len(body) > expect_continue_over
    if expect:
        headers["Expect"] = "100-continue"
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
        sock: socket.socket = raw
        if scheme == "https":
            context = ssl_context or ssl.create_default_context()
            sock = context.wrap_socket(raw, server_hostname=host)
        with sock, sock.makefile("rb") as fp:
            sock.sendall(head.encode("latin-1"))
            if expect:
                ready = isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
                if not ready:
                    ready = bool(select.select([sock], [], [], CONTINUE_WAIT)[0])
                if ready:
                    code, _ = _read_head(fp)
                    if code != 100:
                        return UploadResult(classify_status(code), code, "refused before the body was sent")
            # the server may have answered (401, 413) and closed: its answer is read below
            with contextlib.suppress(OSError):
                sock.sendall(body)
            while True:
                code, response_headers = _read_head(fp)
                if code != 100:
                    break
            length = int(response_headers.get("content-length", "0") or 0)
            detail = fp.read(min(length, 4096)).decode("utf-8", "replace") if length else ""
            return UploadResult(classify_status(code), code, detail)
    except (OSError, ValueError) as exc:  # ssl.SSLError and timeouts are OSErrors
        return UploadResult(UploadOutcome.FAILURE, detail=f"{type(exc).__name__}: {exc}")


class LogExporter(Protocol):
    station_id: str

    def export(
        self, *, at: datetime, oldest: datetime | None, latest: datetime | None, request_id: int | None
    ) -> bytes | None: ...


Uploader = Callable[..., UploadResult]


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
    uploader: Uploader = http_upload
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
        result = await asyncio.to_thread(
            self.uploader, action.url, data, action.filename, method=self.method, ssl_context=self.ssl_context
        )
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
