"""CSMS side of GetLog: the HTTP(S) server (aiohttp) that receives uploaded logs (N01.FR.14, 18, 19).

Accepts ``PUT`` (raw body) and ``POST`` (``multipart/form-data``: the first part with a
``Content-Disposition`` filename), with or without ``Expect: 100-continue`` and chunked transfer coding.
Station id and request id come from the URL (``/logs/<stationId>/<requestId>/[<filename>]``, see
:meth:`UploadReceiver.remote_location`); the file name from the URL, else ``Content-Disposition``, else a
generated one. Every name is sanitised (no directories, no ``..``, no control or shell characters);
files are written to a temporary file, fsynced and linked into place, so a reader never sees half a
file and files never overwrite each other: ``<dir>/<station>/<requestId>-<filename>``. Files in our log
format (:mod:`ocppsec.eventlog.logfile`) are imported into the event store; others are only kept. The
file and store writes run in a worker thread, never on the event loop.

Refused: wrong or missing Basic credentials (401, compared with ``hmac.compare_digest``), bodies above
``max_bytes`` (413: before the body is read when the length is announced, in answer to
``Expect: 100-continue`` before the client sends it, and while reading otherwise), a body not received
within the body timeout (408), malformed multipart (400), other methods (405), more than
``max_uploads`` uploads at once (503, Retry-After). aiohttp's parser refuses malformed HTTP with 400
before this code runs: both Content-Length and Transfer-Encoding, non-digit or signed lengths and chunk
sizes, a chunk without its CRLF (see :mod:`ocppsec.pki._http`). Slow clients are cut off after the
header timeout (request head) and the body timeout.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import logging
import os
import re
import ssl
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from ocppsec.eventlog.logfile import LogFormatError, parse_log
from ocppsec.eventlog.store import EventStore
from ocppsec.pki._http import BodyError, HttpLimits, HttpServer, LoopThread, read_body
from ocppsec.pki.errors import OcppsecError, UsageError

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["ReceivedUpload", "ReceiverConfig", "UploadReceiver", "sanitize_filename", "sanitize_segment"]

LOG = logging.getLogger(__name__)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def sanitize_segment(text: str, *, default: str, limit: int = 100) -> str:
    """One safe path segment: ASCII letters, digits, ``._-``; no leading dot; never empty."""
    cleaned = _UNSAFE.sub("_", text).lstrip(".")[:limit]
    return cleaned or default


def sanitize_filename(name: str | None) -> str:
    """The last component of a client-supplied name, made safe (``../../etc/passwd`` -> ``passwd``)."""
    if not name:
        return ""
    base = name.replace("\\", "/").split("/")[-1]
    return sanitize_segment(base, default="", limit=200)


@dataclass(frozen=True, slots=True)
class ReceiverConfig:
    directory: Path
    max_bytes: int = 16 * 1024 * 1024
    basic_auth: tuple[str, str] | None = None
    prefix: str = "/logs/"
    max_uploads: int = 16  # uploads received at once; more get 503

    @classmethod
    def basic_auth_from_env(cls, variable: str) -> tuple[str, str]:
        value = os.environ.get(variable)
        if not value or ":" not in value:
            raise UsageError(
                f"environment variable {variable} must hold user:password",
                hint="use a password different from the OCPP Basic-auth password (N01.FR.17)",
            )
        user, _, password = value.partition(":")
        return user, password

    def __repr__(self) -> str:  # never print the password
        auth = "set" if self.basic_auth else "none"
        return (f"ReceiverConfig(directory={self.directory!s}, max_bytes={self.max_bytes}, basic_auth={auth}, "
                f"max_uploads={self.max_uploads})")


@dataclass(frozen=True, slots=True)
class ReceivedUpload:
    """What happened to one upload (also the JSON body of the response)."""

    station_id: str
    request_id: str
    path: Path
    size: int
    imported: int = 0
    duplicates: int = 0
    rejected: int = 0
    note: str = ""

    def to_json(self, root: Path) -> dict[str, Any]:
        return {
            "stationId": self.station_id,
            "requestId": self.request_id,
            "stored": str(self.path.relative_to(root)),
            "size": self.size,
            "imported": self.imported,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "note": self.note,
        }


class _HttpError(Exception):
    def __init__(self, code: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers = headers or {}


_AUTH_REQUIRED = {"WWW-Authenticate": 'Basic realm="ocppsec-logs"'}
_PLAIN_CTE = frozenset({"", "binary", "8bit", "7bit"})
DEFAULT_LIMITS = HttpLimits(max_connections=256, header_timeout=30.0, body_timeout=120.0, lingering_time=10.0)


def _route(raw_path: str, prefix: str) -> tuple[str | None, str | None, str]:
    """(station id, request id, file name) from the request target, %-decoded (then sanitised by accept)."""
    path = unquote(urlsplit(raw_path).path)
    if path.startswith(prefix):
        rest = path[len(prefix):].split("/")
        station = rest[0] or None
        request = rest[1] if len(rest) > 1 and rest[1] else None
        return station, request, "/".join(rest[2:])
    return None, None, path.rsplit("/", 1)[-1]


def _disposition_filename(value: str) -> str:
    from aiohttp.multipart import content_disposition_filename, parse_content_disposition

    if not value:
        return ""
    _, params = parse_content_disposition(value)
    return content_disposition_filename(params, "filename") or ""


def _decode_transfer_encoding(data: bytes, encoding: str) -> bytes:
    """A MIME part's Content-Transfer-Encoding undone (never Content-Encoding: no decompression)."""
    if encoding in _PLAIN_CTE:
        return data
    try:
        if encoding == "base64":
            return base64.b64decode(data)
        if encoding == "quoted-printable":
            return binascii.a2b_qp(data)
    except (binascii.Error, ValueError):
        raise _HttpError(400, "part body does not decode as its Content-Transfer-Encoding") from None
    raise _HttpError(400, f"unsupported Content-Transfer-Encoding {encoding[:40]!r}")


class UploadReceiver:
    """Receives uploaded logs, stores them and imports them into ``store`` (if given).

    Serve it on the running loop (``await listen(host, port)`` / ``await aclose()``) or, from synchronous
    code, on a loop in a thread of its own (``start(host, port)`` / ``stop()``, or ``with receiver:``).
    """

    def __init__(
        self,
        config: ReceiverConfig,
        *,
        store: EventStore | None = None,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        limits: HttpLimits = DEFAULT_LIMITS,
    ) -> None:
        self.config = config
        self.store = store
        self.ssl_context = ssl_context
        self.clock = clock
        self.limits = limits
        self.received: list[ReceivedUpload] = []
        self._lock = threading.Lock()
        self._active = 0  # uploads being received (event-loop only)
        self._http: HttpServer | None = None
        self._thread: LoopThread | None = None
        config.directory.mkdir(parents=True, exist_ok=True)

    # -- the core: store one file and import it (blocking: runs in a worker thread) -------------------------
    def accept(self, *, station_id: str | None, request_id: str | None, filename: str, data: bytes) -> ReceivedUpload:
        at = self.clock()
        root = self.config.directory.resolve()
        header_station = None
        parsed = None
        note = ""
        try:
            parsed = parse_log(data, at=at, expected_station=station_id)
            header_station = parsed.header.station_id
        except LogFormatError as exc:
            note = str(exc)
        station = sanitize_segment(station_id or header_station or "unknown", default="unknown")
        request = sanitize_segment(request_id or "0", default="0", limit=20)
        name = sanitize_filename(filename) or f"upload-{at.strftime('%Y%m%dT%H%M%S%fZ')}.log"
        folder = root / station
        folder.mkdir(parents=True, exist_ok=True)
        target = self._store_file(folder, f"{request}-", name, data)
        imported = duplicates = rejected = 0
        if parsed is not None:
            rejected = len(parsed.rejections)
            if self.store is not None and parsed.events:
                result = self.store.add_many(parsed.events)
                imported, duplicates = result.inserted, result.duplicates
        upload = ReceivedUpload(station, request, target, len(data), imported, duplicates, rejected, note)
        with self._lock:
            self.received.append(upload)
        return upload

    @staticmethod
    def _store_file(folder: Path, prefix: str, name: str, data: bytes) -> Path:
        """Write ``data`` to a temporary file, fsync it, link it in under the first free name, drop the temporary
        name: readers see a whole file or none, and no upload overwrites another."""
        fd, temporary = tempfile.mkstemp(prefix=".upload-", dir=folder)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            target = folder / f"{prefix}{name}"
            counter = 1
            while True:
                if target.resolve().parent != folder:  # belt and braces: never write outside the folder
                    raise _HttpError(400, "bad file name")
                try:
                    os.link(temporary, target)
                    return target
                except FileExistsError:
                    target = folder / f"{prefix}{counter}-{name}"
                    counter += 1
        finally:
            os.unlink(temporary)

    # -- HTTP -------------------------------------------------------------------------------------------
    def application(self) -> web.Application:
        """The aiohttp application (one catch-all route); tests and fuzzing drive it in-process."""
        import warnings

        from aiohttp import web
        from aiohttp.multipart import BadContentDispositionHeader

        # a station's malformed Content-Disposition is its problem (the name is then generated), not a warning
        warnings.filterwarnings("ignore", category=BadContentDispositionHeader)
        app = web.Application(client_max_size=self.config.max_bytes)
        app.router.add_route("*", "/{tail:.*}", self._handle, expect_handler=self._expect)
        return app

    @staticmethod
    def _reply(code: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
        from aiohttp import web

        resp = web.Response(status=code, text=json.dumps(body) + "\n", content_type="application/json",
                            headers=headers)
        resp.force_close()  # one upload per connection, as stations make them
        return resp

    def _check_auth(self, request: web.BaseRequest) -> None:
        if self.config.basic_auth is None:
            return
        header = request.headers.get("Authorization", "")
        user = password = ""
        if header[:6].lower() == "basic ":
            try:
                user, _, password = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8").partition(":")
            except ValueError:  # binascii.Error, UnicodeDecodeError, non-ASCII header text
                user = password = ""
        want_user, want_password = self.config.basic_auth
        ok = hmac.compare_digest(user.encode(), want_user.encode()) & hmac.compare_digest(
            password.encode(), want_password.encode())
        if not ok:
            raise _HttpError(401, "authentication required", _AUTH_REQUIRED)

    def _precheck(self, request: web.BaseRequest) -> None:
        """What can be refused from the request head alone (before the body, before 100 Continue)."""
        if request.method not in ("PUT", "POST"):
            raise _HttpError(405, "use PUT or POST", {"Allow": "PUT, POST"})
        self._check_auth(request)
        length = request.content_length
        if length is None and "Transfer-Encoding" not in request.headers:
            raise _HttpError(411, "Content-Length or chunked transfer coding required")
        if length is not None and length > self.config.max_bytes:
            raise _HttpError(413, f"upload larger than {self.config.max_bytes} bytes")
        if request.method == "POST" and not request.content_type.lower().startswith("multipart/form-data"):
            raise _HttpError(400, "POST needs Content-Type multipart/form-data (N01.FR.19)")

    def _check_capacity(self) -> None:
        if self._active >= self.config.max_uploads:
            raise _HttpError(503, "too many uploads at once", {"Retry-After": "5"})

    async def _expect(self, request: web.Request) -> web.StreamResponse | None:
        """``Expect: 100-continue``: refuse from the head (401, 413, 503 at ``max_uploads``, ...) or invite the body."""
        if request.headers.get("Expect", "").lower() != "100-continue":
            return self._reply(417, {"error": "only Expect: 100-continue is understood"})
        try:
            self._precheck(request)
            self._check_capacity()
        except _HttpError as err:
            return self._reply(err.code, {"error": err.message}, err.headers)
        if request.version >= (1, 1):
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            self._precheck(request)
            self._check_capacity()
            self._active += 1
            try:
                return await self._upload(request)
            finally:
                self._active -= 1
        except _HttpError as err:
            return self._reply(err.code, {"error": err.message}, err.headers)
        except BodyError as err:
            return self._reply(err.status, {"error": str(err)})
        except (asyncio.CancelledError, ConnectionError):
            raise
        except OcppsecError as err:
            LOG.warning("log upload could not be imported: %s", err)
            return self._reply(503, {"error": f"stored but not imported: {err}"})
        except Exception as exc:  # our bug: an answer, never a traceback to the client
            LOG.error("log upload failed: %s: %s", type(exc).__name__, exc)
            return self._reply(500, {"error": "internal error"})

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        station, request_id, filename = _route(request.raw_path, self.config.prefix)
        if request.method == "POST":
            filename, body = await self._multipart(request)
        else:
            body = await read_body(request, limit=self.config.max_bytes, timeout=self.limits.body_timeout)
            filename = filename or _disposition_filename(request.headers.get("Content-Disposition", ""))
        upload = await asyncio.to_thread(self.accept, station_id=station, request_id=request_id, filename=filename,
                                         data=body)
        code = 201 if request.method == "PUT" else 200
        return self._reply(code, upload.to_json(self.config.directory.resolve()))

    async def _multipart(self, request: web.Request) -> tuple[str, bytes]:
        """(filename, content) of the first part with a filename, read within the size and time limits."""
        from aiohttp import BodyPartReader

        limit = self.config.max_bytes
        if "boundary=" not in request.headers.get("Content-Type", "").lower():
            raise _HttpError(400, "multipart upload without a boundary")
        try:
            async with asyncio.timeout(self.limits.body_timeout):
                reader = await request.multipart()
                while (part := await reader.next()) is not None:
                    if not isinstance(part, BodyPartReader):
                        raise _HttpError(400, "nested multipart bodies are not accepted")
                    chunks: list[bytes] = []
                    while chunk := await part.read_chunk():
                        if request.content.total_bytes > limit:
                            raise BodyError(413, f"upload larger than {limit} bytes")
                        chunks.append(chunk)
                    if part.filename:
                        encoding = part.headers.get("Content-Transfer-Encoding", "").strip().lower()
                        return part.filename, _decode_transfer_encoding(b"".join(chunks), encoding)
        except TimeoutError:
            raise BodyError(408, f"body not received within {self.limits.body_timeout:g} s") from None
        except (_HttpError, BodyError, asyncio.CancelledError, ConnectionError):
            raise
        except Exception as exc:  # aiohttp's multipart reader on a hostile body
            raise _HttpError(400, f"malformed multipart body ({type(exc).__name__})") from None
        raise _HttpError(400, "multipart body has no part with a filename (Content-Disposition)")

    # -- running ------------------------------------------------------------------------------------------
    def remote_location(self, station_id: str, request_id: int) -> str:
        """The remoteLocation to put in a GetLog for this receiver (ends in "/")."""
        return f"{self.url}{self.config.prefix.strip('/')}/{quote(station_id, safe='')}/{request_id}/"

    @property
    def address(self) -> tuple[str, int]:
        if self._http is None:
            raise UsageError("the receiver is not running")
        return self._http.address

    @property
    def url(self) -> str:
        host, port = self.address
        scheme = "https" if self.ssl_context else "http"
        host_text = f"[{host}]" if ":" in host else host
        return f"{scheme}://{host_text}:{port}/"

    async def listen(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve on the running loop."""
        http = HttpServer(self.application(), limits=self.limits, ssl_context=self.ssl_context)
        await http.listen(host, port)
        self._http = http

    async def aclose(self) -> None:
        """Finish uploads in progress (the shutdown timeout), close every connection."""
        http, self._http = self._http, None
        if http is not None:
            await http.close()

    def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve on an event loop in a background thread."""
        if self._thread is not None:
            return
        thread = LoopThread("log-receiver")
        try:
            thread.call(self.listen(host, port))
        except BaseException:
            thread.close()
            raise
        self._thread = thread

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            try:
                thread.call(self.aclose())
            finally:
                thread.close()

    def __enter__(self) -> UploadReceiver:
        if self._thread is None and self._http is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
