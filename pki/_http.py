"""Shared plumbing of our HTTP servers and clients on aiohttp (the OCSP responder and client, the GetLog
receiver and upload client).

Servers (:class:`HttpServer`): an aiohttp :class:`~aiohttp.web.Application` served with :class:`HttpLimits`:

- at most ``max_connections`` connections; a connection over the limit gets a canned
  ``503 Service Unavailable`` and is closed (the one piece of hand-written HTTP left: aiohttp has no
  connection limit of its own);
- ``header_timeout``: a connection that has not sent a whole request head this long after it opened (or
  after the previous answer) is closed (aiohttp's keep-alive timer, which also runs before the first
  request); :func:`read_body` bounds the body by time (``body_timeout``) and size;
- an early answer (401, 413) leaves the unread body to aiohttp, which reads and discards it for up to
  ``lingering_time`` so that a client still sending can read the answer instead of a reset;
- TLS handshakes are bounded by ``header_timeout`` too; shutdown waits ``shutdown_timeout`` for
  requests in progress.

aiohttp's parser (llhttp) does the request smuggling defences: a request with both ``Content-Length``
and ``Transfer-Encoding``, a Content-Length or chunk size that is not plain digits (signs, ``²``,
``0x``, lists), a chunk not followed by CRLF, bare LF line endings, obsolete line folding: all are
answered 400 before a handler runs. Its log records of such client errors are dropped (the client got
its 400; a traceback in the server's log would only be noise).

:class:`LoopThread` runs a server on an event loop in a daemon thread for synchronous callers (tests, the
demo, embedding in threaded code). :func:`run_blocking` runs a client coroutine from synchronous code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ocppsec.pki.errors import OcppsecError, UsageError

if TYPE_CHECKING:
    from aiohttp import web

__all__ = [
    "BodyError",
    "HttpLimits",
    "HttpServer",
    "LoopThread",
    "read_body",
    "run_blocking",
]

LOG = logging.getLogger("ocppsec.http")
_T = TypeVar("_T")
_OVERLOADED = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 1\r\n"
               b"Connection: close\r\n\r\n")


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """Bounds of one HTTP server (see the module docstring)."""

    max_connections: int = 256
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    lingering_time: float = 5.0
    shutdown_timeout: float = 5.0
    max_line_size: int = 8190
    max_field_size: int = 8190
    max_headers: int = 64
    backlog: int = 512


class BodyError(OcppsecError):
    """A request body we will not take: ``status`` is the HTTP answer (400, 408, 413)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def read_body(request: web.BaseRequest, *, limit: int, timeout: float) -> bytes:
    """The whole body (Content-Length or chunked), refusing it past ``limit`` bytes (413, checked before
    reading when the length is announced and while reading otherwise) or ``timeout`` seconds (408); a
    body that breaks off or breaks the framing is a 400."""
    from aiohttp import web
    from aiohttp.http_exceptions import HttpProcessingError

    length = request.content_length
    if length is not None and length > limit:
        raise BodyError(413, f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            while chunk := await request.content.readany():
                size += len(chunk)
                if size > limit:
                    raise BodyError(413, f"body larger than {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise BodyError(408, f"body not received within {timeout:g} s") from None
    except (web.RequestPayloadError, HttpProcessingError) as exc:
        raise BodyError(400, f"malformed body: {type(exc).__name__}") from None
    if length is not None and size != length:
        raise BodyError(400, "body shorter than Content-Length")
    return b"".join(chunks)


class _ClientErrorFilter(logging.Filter):
    """Drop aiohttp's records about a client's malformed HTTP or a vanished peer (already answered)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from aiohttp.http_exceptions import HttpProcessingError

        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, HttpProcessingError | ConnectionError | ssl.SSLError)


LOG.addFilter(_ClientErrorFilter())


class _Overloaded(asyncio.Protocol):
    """What a connection over ``max_connections`` gets: a canned 503, then the connection is closed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(_OVERLOADED)
        transport.close()


class HttpServer:
    """Serves ``app`` on the running loop within ``limits`` (``listen`` / ``close``)."""

    def __init__(
        self, app: web.Application, *, limits: HttpLimits = HttpLimits(), ssl_context: ssl.SSLContext | None = None,
        access_log_class: type[Any] | None = None,
    ) -> None:
        self.app = app
        self.limits = limits
        self.ssl_context = ssl_context
        self._access_log_class = access_log_class
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None

    async def prepare(self) -> web.Server:
        """aiohttp's runner set up with the limits; its server is the protocol factory (fuzzing drives it directly)."""
        from aiohttp import web

        limits = self.limits
        extra: dict[str, Any] = {"access_log": None}
        if self._access_log_class is not None:
            extra = {"access_log_class": self._access_log_class, "access_log": LOG}
        runner = web.AppRunner(
            self.app, handle_signals=False, keepalive_timeout=limits.header_timeout,
            lingering_time=limits.lingering_time, max_line_size=limits.max_line_size,
            max_field_size=limits.max_field_size, max_headers=limits.max_headers, logger=LOG,
            shutdown_timeout=limits.shutdown_timeout, tcp_keepalive=False,  # the timeouts above find dead peers
            **extra,
        )
        await runner.setup()
        assert runner.server is not None
        self._runner = runner
        return runner.server

    async def listen(self, host: str, port: int) -> None:
        limits = self.limits
        server = await self.prepare()
        runner = self._runner
        assert runner is not None

        def protocol() -> asyncio.BaseProtocol:
            if len(server.connections) >= limits.max_connections:
                return _Overloaded()
            return server()

        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                protocol, host, port, ssl=self.ssl_context, backlog=limits.backlog, reuse_address=True,
                ssl_handshake_timeout=limits.header_timeout if self.ssl_context else None,
            )
        except OSError as exc:
            self._runner = None
            await runner.cleanup()
            from ocppsec.pki._io import file_error

            address = f"[{host}]:{port}" if host and ":" in host else f"{host}:{port}"
            raise file_error(exc, address, what="", action="listen on") from None  # exit 3, naming the address

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None or not self._server.sockets:
            raise UsageError("the server is not running")
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    @property
    def listening(self) -> bool:
        return self._server is not None

    async def close(self) -> None:
        """Stop accepting, let requests in progress finish (``shutdown_timeout``), close every connection."""
        server, runner = self._server, self._runner
        self._server = self._runner = None
        if server is not None:
            server.close()
        if runner is not None:
            await runner.cleanup()
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), self.limits.shutdown_timeout)


class LoopThread:
    """An event loop in a daemon thread: ``call(coroutine)`` runs a coroutine there and waits for it."""

    def __init__(self, name: str, loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop) -> None:
        self.loop = loop_factory()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def call(self, coroutine: Coroutine[Any, Any, _T], timeout: float | None = 60.0) -> _T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        """Cancel what still runs on the loop and wait for it (as ``asyncio.run`` does), then stop the loop.

        A task left pending on a closed loop is destroyed later by the garbage collector, and asyncio
        logs "Task was destroyed but it is pending!" into whatever runs then (aiohttp's per-connection
        handler tasks were left so)."""
        if self.loop.is_closed():
            return
        if self._thread.is_alive():
            with contextlib.suppress(Exception):  # a task that ignores its cancellation: stop anyway
                self.call(_cancel_remaining(), timeout=10)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
        self.loop.close()


async def _cancel_remaining() -> None:
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.get_running_loop().shutdown_asyncgens()


def run_blocking(make: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run the coroutine ``make()`` returns to completion from synchronous code (a worker thread, a CLI)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    raise UsageError("a blocking HTTP call on a running event loop",
                     hint="await the *_async variant, or call this one through asyncio.to_thread")
