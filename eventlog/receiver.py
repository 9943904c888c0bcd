"""CSMS side of GetLog: the HTTP(S) server that receives uploaded logs (N01.FR.14, 18, 19).

Accepts ``PUT`` (raw body) and ``POST`` (``multipart/form-data`` with a ``Content-Disposition``
filename), with or without ``Expect: 100-continue`` and chunked transfer coding. Station id and request
id come from the URL (``/logs/<stationId>/<requestId>/[<filename>]``, see :meth:`UploadReceiver.remote_location`);
the file name from the URL, else ``Content-Disposition``, else a generated one. Every name is sanitised
(no directories, no ``..``, no control or shell characters), files never overwrite each other and are
stored as ``<dir>/<station>/<requestId>-<filename>``. Files in our log format
(:mod:`ocppsec.eventlog.logfile`) are imported into the event store; others are only kept.

Refused: bodies above ``max_bytes`` (413, before the body is read when the length is announced), a
missing length (411), malformed multipart (400), other methods (405), wrong Basic credentials (401).
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import hmac
import json
import logging
import os
import re
import ssl
import threading
from base64 import b64decode
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from ocppsec.eventlog.logfile import LogFormatError, parse_log
from ocppsec.eventlog.store import EventStore
from ocppsec.pki.errors import OcppsecError, UsageError

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
        return f"ReceiverConfig(directory={self.directory!s}, max_bytes={self.max_bytes}, basic_auth={auth})"


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


class UploadReceiver:
    """Receives uploaded logs, stores them and imports them into ``store`` (if given)."""

    def __init__(
        self,
        config: ReceiverConfig,
        *,
        store: EventStore | None = None,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self.store = store
        self.ssl_context = ssl_context
        self.clock = clock
        self.received: list[ReceivedUpload] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        config.directory.mkdir(parents=True, exist_ok=True)

    # -- the core: store one file and import it ------------------------------------------------------
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
        with self._lock:
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / f"{request}-{name}"
            counter = 1
            while target.exists():
                target = folder / f"{request}-{counter}-{name}"
                counter += 1
            if target.resolve().parent != folder:  # belt and braces: never write outside the folder
                raise _HttpError(400, "bad file name")
            with open(target, "xb") as fh:
                fh.write(data)
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

    # -- HTTP ---------------------------------------------------------------------------------------------
    def remote_location(self, station_id: str, request_id: int) -> str:
        """The remoteLocation to put in a GetLog for this receiver (ends in "/")."""
        return f"{self.url}{self.config.prefix.strip('/')}/{quote(station_id, safe='')}/{request_id}/"

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None:
            raise UsageError("the receiver is not running")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://{host}:{port}/"

    def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        handler = _make_handler(self)
        try:
            self._server = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise OcppsecError(f"cannot listen on {host}:{port}: {exc.strerror}", hint="pick another port") from None
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="log-receiver", daemon=True)
        self._thread.start()

    def serve_forever(self) -> None:
        if self._thread is not None:
            self._thread.join()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> UploadReceiver:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _make_handler(receiver: UploadReceiver) -> type[BaseHTTPRequestHandler]:
    config = receiver.config

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "ocppsec-log-receiver"
        sys_version = ""
        timeout = 30

        def setup(self) -> None:
            if receiver.ssl_context is not None:
                self.request.settimeout(self.timeout)
                self.request = receiver.ssl_context.wrap_socket(self.request, server_side=True)
            super().setup()

        def handle(self) -> None:
            try:
                super().handle()
            except (OSError, ssl.SSLError) as exc:
                LOG.info("log upload connection failed: %s", exc)

        def log_message(self, format: str, *args: Any) -> None:
            LOG.info("%s " + format, self.address_string(), *args)

        # -- helpers -----------------------------------------------------------------------------
        def _reply(self, code: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = (json.dumps(body) + "\n").encode()
            self.send_response(code)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            self.close_connection = True

        def _check_auth(self) -> None:
            if config.basic_auth is None:
                return
            header = self.headers.get("Authorization", "")
            ok = False
            if header[:6].lower() == "basic ":
                try:
                    user, _, password = b64decode(header[6:], validate=True).decode("utf-8").partition(":")
                except (ValueError, UnicodeDecodeError):
                    user, password = "", ""
                want_user, want_password = config.basic_auth
                ok = hmac.compare_digest(user.encode(), want_user.encode()) & hmac.compare_digest(
                    password.encode(), want_password.encode()
                )
            if not ok:
                raise _HttpError(401, "authentication required", {"WWW-Authenticate": 'Basic realm="ocppsec-logs"'})

        def _check_length(self) -> int | None:
            length = self.headers.get("Content-Length")
            chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
            if length is None:
                if not chunked:
                    raise _HttpError(411, "Content-Length or chunked transfer coding required")
                return None
            if not length.isdigit():
                raise _HttpError(400, "bad Content-Length")
            if int(length) > config.max_bytes:
                raise _HttpError(413, f"upload larger than {config.max_bytes} bytes")
            return int(length)

        def handle_expect_100(self) -> bool:
            try:
                self._check_auth()
                self._check_length()
            except _HttpError as err:
                self._reply(err.code, {"error": err.message}, err.headers)
                return False
            return super().handle_expect_100()

        def _read_body(self, length: int | None) -> bytes:
            if length is not None:
                data = self.rfile.read(length)
                if len(data) != length:
                    raise _HttpError(400, "body shorter than Content-Length")
                return data
            chunks: list[bytes] = []
            total = 0
            while True:
                line = self.rfile.readline(1024)
                try:
                    size = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise _HttpError(400, "bad chunked encoding") from None
                if size == 0:
                    while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > config.max_bytes:
                    raise _HttpError(413, f"upload larger than {config.max_bytes} bytes")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(8)

        def _route(self) -> tuple[str | None, str | None, str]:
            path = unquote(urlsplit(self.path).path)
            prefix = config.prefix
            if path.startswith(prefix):
                rest = path[len(prefix) :].split("/")
                station = rest[0] or None
                request = rest[1] if len(rest) > 1 and rest[1] else None
                filename = "/".join(rest[2:])
                return station, request, filename
            return None, None, path.rsplit("/", 1)[-1]

        def _disposition_filename(self) -> str:
            value = self.headers.get("Content-Disposition", "")
            match = re.search(r'filename\*?=(?:UTF-8\'\')?"?([^";]+)"?', value, re.IGNORECASE)
            return unquote(match.group(1)) if match else ""

        @staticmethod
        def _multipart(content_type: str, body: bytes) -> tuple[str, bytes]:
            if "boundary=" not in content_type.lower():
                raise _HttpError(400, "multipart upload without a boundary")
            parser = email.parser.BytesParser(policy=email.policy.HTTP)
            message = parser.parsebytes(b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
            if not message.is_multipart():
                raise _HttpError(400, "malformed multipart body")
            for part in message.iter_parts():
                filename = part.get_filename()
                if filename:
                    payload = part.get_payload(decode=True)
                    if not isinstance(payload, bytes):
                        break
                    return filename, payload
            raise _HttpError(400, "multipart body has no part with a filename (Content-Disposition)")

        def _drain(self) -> None:
            """Read an unread body before answering an error, so the client sees the answer instead of
            a connection reset (closing a socket with unread data resets it)."""
            length = self.headers.get("Content-Length", "")
            if length.isdigit() and int(length) <= config.max_bytes:
                with contextlib.suppress(OSError):
                    self.rfile.read(int(length))

        def _upload(self) -> None:
            body_read = False
            try:
                self._check_auth()
                length = self._check_length()
                body = self._read_body(length)
                body_read = True
                station, request, filename = self._route()
                content_type = self.headers.get("Content-Type", "")
                if self.command == "POST":
                    if not content_type.lower().startswith("multipart/form-data"):
                        raise _HttpError(400, "POST needs Content-Type multipart/form-data (N01.FR.19)")
                    filename, body = self._multipart(content_type, body)
                else:
                    filename = filename or self._disposition_filename()
                upload = receiver.accept(station_id=station, request_id=request, filename=filename, data=body)
            except _HttpError as err:
                if not body_read and err.code != 413:
                    self._drain()
                self._reply(err.code, {"error": err.message}, err.headers)
                return
            except OcppsecError as err:
                LOG.warning("log upload could not be imported: %s", err)
                self._reply(503, {"error": f"stored but not imported: {err}"})
                return
            code = 201 if self.command == "PUT" else 200
            self._reply(code, upload.to_json(receiver.config.directory.resolve()))

        def do_PUT(self) -> None:
            self._upload()

        def do_POST(self) -> None:
            self._upload()

        def _not_allowed(self) -> None:
            self._reply(405, {"error": "use PUT or POST"}, {"Allow": "PUT, POST"})

        do_GET = do_DELETE = do_PATCH = do_HEAD = _not_allowed

    return Handler
