"""HTTP adapter of the OCSP responder on aiohttp (RFC 6960 Appendix A: POST and GET; RFC 5019 caching).

- ``POST <any path>`` with the DER request as body (``application/ocsp-request``; Content-Length or
  chunked, at most ``max_request_bytes``, else HTTP 413 without reading the rest);
- ``GET <prefix>/<base64 DER request, URL-encoded>`` — the prefix may be a CA name, because issued
  certificates carry ``http://host/{issuer}`` as their AIA OCSP URL. The path is %-decoded only (a ``+``
  stays a ``+``: it is base64, not a form); standard and URL-safe base64 are read, padding optional;
- any other method: HTTP 405 with ``Allow: GET, POST``.

Every answer to a delivered request is an OCSPResponse (``application/ocsp-response``, HTTP 200): a body
that is not a usable OCSPRequest, or a GET path that does not decode to one, gets ``malformedRequest``;
a failure of ours gets ``internalError`` (no traceback leaves the server). Pre-produced answers
(requests without a nonce) are served from the core's memory without touching the ledger or signing;
GET answers then carry RFC 5019 §6.2 caching headers: ``Cache-Control: max-age`` up to the moment the
responder re-signs the answer, ``Last-Modified`` (thisUpdate), ``Expires`` (nextUpdate) and an ``ETag``.
The request bytes of answers served that way are remembered too (at most ``front_entries``), so a
repeated request is answered without being parsed again, as long as the responder has not replaced its
cached answers since (:attr:`~ocppsec.pki.revocation.ocsp.OcspResponder.generation`) and the answer is not
due for re-signing. Answers that need the ledger or a signature (nonce requests, cache misses) run in
a worker thread (one by default: more only add GIL contention, see ADR 15): the ledger may be
PostgreSQL, and a lookup there must not stall the loop (``offload_on_demand=False`` keeps them on it).

Limits (:class:`~ocppsec.pki._http.HttpLimits`): bounded connections, a request head within
``header_timeout`` (slow clients are cut off), a body within ``body_timeout``. The refresher re-signs
pre-produced answers every ``refresh_interval`` seconds as an asyncio task, the work in a worker thread.

Run it on the current loop (``async with server:`` or ``await server.listen()`` / ``await server.close()``)
or, from synchronous code, in a thread of its own (``start()`` / ``stop()``). The PKI-directory wiring
(which CAs, delegated responder certificates) is :mod:`ocppsec.pki.revocation.authorities`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import contextlib
import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from cryptography.x509 import ocsp

from ocppsec.pki._http import BodyError, HttpLimits, HttpServer, LoopThread, read_body
from ocppsec.pki.errors import UsageError
from ocppsec.pki.revocation.ocsp import OcspRequestError, OcspResponder, ParsedRequest, Preproduced, parse_request

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["MAX_REQUEST_BYTES", "OcspHttpServer", "decode_get_path", "parse_listen"]

LOG = logging.getLogger(__name__)
MAX_REQUEST_BYTES = 8192
CONTENT_TYPE = "application/ocsp-response"
_MALFORMED = OcspResponder.unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
_INTERNAL = OcspResponder.unsuccessful(ocsp.OCSPResponseStatus.INTERNAL_ERROR)
_HEADERS = {"Content-Type": CONTENT_TYPE}


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6) → (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isascii() or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"cannot read --listen {text!r}", hint="use HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]") or "127.0.0.1", int(port)


def decode_get_path(raw_path: str, max_bytes: int = MAX_REQUEST_BYTES) -> bytes | None:
    """The DER request in a GET path: the whole path, or what follows a first segment (a CA name)."""
    path = raw_path.split("?", 1)[0].lstrip("/")
    if not path or len(path) > max_bytes * 3:
        return None
    candidates = [path]
    if "/" in path:
        candidates.append(path.split("/", 1)[1])
    for candidate in candidates:
        text = unquote(candidate)
        text += "=" * (-len(text) % 4)
        for altchars in (None, b"-_"):
            try:
                der = base64.b64decode(text, altchars=altchars, validate=True)
            except (binascii.Error, ValueError):
                continue
            if der[:1] == b"\x30" and len(der) <= max_bytes:
                return der
    return None


def _printable(text: str, limit: int = 200) -> str:
    return "".join(c if c.isascii() and c.isprintable() else "?" for c in text[:limit])


def _access_log_class(sink: Callable[[str], None]) -> type[Any]:
    from aiohttp.abc import AbstractAccessLogger

    class AccessLog(AbstractAccessLogger):
        def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
            sink(f"{request.remote} {request.method} {_printable(request.raw_path)} {response.status} "
                 f"{response.body_length} {time * 1000:.1f}ms")

    return AccessLog


def _cache_headers(answer: Preproduced, at: datetime) -> dict[str, str]:
    max_age = max(0, int((answer.refresh_at - at).total_seconds()))
    return {
        "Content-Type": CONTENT_TYPE,
        "Cache-Control": f"max-age={max_age}, public, no-transform, must-revalidate",
        "Last-Modified": format_datetime(answer.this_update, usegmt=True),
        "Expires": format_datetime(answer.next_update, usegmt=True),
        "ETag": '"' + hashlib.sha256(answer.der).hexdigest()[:32] + '"',
    }


class OcspHttpServer:
    """The responder on aiohttp at ``address`` (port 0: any free port); see the module docstring."""

    def __init__(
        self, address: tuple[str, int], responder: OcspResponder, *, max_request_bytes: int = MAX_REQUEST_BYTES,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC), refresh_interval: float | None = 60.0,
        access_log: Callable[[str], None] | None = None, limits: HttpLimits | None = None,
        offload_on_demand: bool = True, workers: int = 1, front_entries: int = 100_000,
    ) -> None:
        self.responder = responder
        self.max_request_bytes = max_request_bytes
        self.clock = clock
        self.refresh_interval = refresh_interval
        self.offload_on_demand = offload_on_demand
        self.limits = limits or HttpLimits(max_connections=512, header_timeout=10.0, body_timeout=10.0,
                                           max_line_size=max(8190, 3 * max_request_bytes + 64))
        self._address = address
        self._http = HttpServer(self.application(), limits=self.limits,
                                access_log_class=_access_log_class(access_log) if access_log else None)
        self._workers = workers
        self._front: dict[bytes, tuple[int, Preproduced]] = {}
        self._front_entries = front_entries
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._thread: LoopThread | None = None

    # -- HTTP -----------------------------------------------------------------------------------------
    def application(self) -> web.Application:
        """The aiohttp application (one catch-all route); tests and fuzzing drive it in-process."""
        from aiohttp import web

        app = web.Application(client_max_size=self.max_request_bytes)
        app.router.add_route("*", "/{tail:.*}", self._handle, expect_handler=self._expect)
        return app

    async def _expect(self, request: web.Request) -> web.StreamResponse | None:
        """``Expect: 100-continue``: 413 from the announced length, else the invitation (other expectations: 417)."""
        from aiohttp import web

        if request.headers.get("Expect", "").lower() != "100-continue":
            resp = web.Response(status=417, text="only Expect: 100-continue is understood\n")
        elif request.content_length is not None and request.content_length > self.max_request_bytes:
            resp = web.Response(status=413, text=f"body larger than {self.max_request_bytes} bytes\n")
        else:
            if request.version >= (1, 1):
                await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            return None
        resp.force_close()
        return resp

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        from aiohttp import web

        try:
            if request.method == "POST":
                try:
                    der = await read_body(request, limit=self.max_request_bytes, timeout=self.limits.body_timeout)
                except BodyError as err:
                    resp = web.Response(status=err.status, text=str(err) + "\n")
                    resp.force_close()
                    return resp
                return await self._answer(der, cacheable=False)
            if request.method == "GET":
                decoded = decode_get_path(request.raw_path, self.max_request_bytes)
                if decoded is None:
                    self.responder.stats.malformed += 1
                    return web.Response(body=_MALFORMED, headers=_HEADERS)
                return await self._answer(decoded, cacheable=True)
            resp = web.Response(status=405, headers={"Allow": "GET, POST"})
            resp.force_close()
            return resp
        except (asyncio.CancelledError, ConnectionError):
            raise
        except Exception as exc:
            self.responder.stats.errors += 1
            LOG.error("internal error answering an OCSP request: %s: %s", type(exc).__name__, exc)
            return web.Response(body=_INTERNAL, headers=_HEADERS)

    async def _answer(self, der: bytes, *, cacheable: bool) -> web.Response:
        from aiohttp import web

        at = self.clock()
        responder = self.responder
        front = self._front.get(der)
        if front is not None and front[0] == responder.generation and at < front[1].refresh_at:
            responder.stats.preproduced_hits += 1
            return web.Response(body=front[1].der, headers=_cache_headers(front[1], at) if cacheable else _HEADERS)
        try:
            parsed = parse_request(der)
        except OcspRequestError:
            responder.stats.malformed += 1
            return web.Response(body=_MALFORMED, headers=_HEADERS)
        if parsed.nonce is None:
            generation = responder.generation
            hit = responder.preproduced(parsed.cert_id, at=at)
            if hit is not None:
                if len(self._front) >= self._front_entries:
                    self._front.clear()
                self._front[der] = (generation, hit)
                return web.Response(body=hit.der, headers=_cache_headers(hit, at) if cacheable else _HEADERS)
        if self.offload_on_demand:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(self._workers, thread_name_prefix="ocsp-sign")
            body = await asyncio.get_running_loop().run_in_executor(self._pool, self._on_demand, parsed, at)
        else:
            body = self._on_demand(parsed, at)
        return web.Response(body=body, headers=_HEADERS)

    def _on_demand(self, parsed: ParsedRequest, at: datetime) -> bytes:
        try:
            return self.responder.respond_parsed(parsed, at=at)
        except Exception as exc:
            self.responder.stats.errors += 1
            LOG.error("internal error answering an OCSP request: %s: %s", type(exc).__name__, exc)
            return _INTERNAL

    # -- the refresher ---------------------------------------------------------------------------------
    async def _refresh_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await asyncio.to_thread(self.responder.refresh, at=self.clock())
            except Exception as exc:  # a ledger hiccup must not end the refresher
                LOG.warning("refreshing pre-produced OCSP answers failed: %s: %s", type(exc).__name__, exc)

    # -- running ---------------------------------------------------------------------------------------
    async def listen(self) -> None:
        """Serve on the running loop (and start the refresher)."""
        await self._http.listen(*self._address)
        if self.refresh_interval is not None:
            self._refresher = asyncio.create_task(self._refresh_forever(self.refresh_interval))

    async def close(self) -> None:
        """Stop the refresher, finish requests in progress, close every connection."""
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None
        await self._http.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def __aenter__(self) -> OcspHttpServer:
        await self.listen()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start(self) -> None:
        """Serve on an event loop in a background thread (tests, the demo, threaded programs)."""
        if self._thread is None:
            thread = LoopThread("ocsp-http")
            try:
                thread.call(self.listen())
            except BaseException:
                thread.close()
                raise
            self._thread = thread

    def stop(self) -> None:
        """Stop what :meth:`start` started."""
        thread, self._thread = self._thread, None
        if thread is not None:
            try:
                thread.call(self.close())
            finally:
                thread.close()

    @property
    def address(self) -> tuple[str, int]:
        return self._http.address

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
