"""Fuzz harness: raw HTTP request bytes into the GetLog upload receiver's aiohttp application (in process).

Input: the bytes a station (or anyone) sends on one connection: PUT or POST (multipart) uploads, chunked
or not, with or without ``Expect: 100-continue`` and Basic credentials, possibly truncated or pipelined.
They go through aiohttp's real request parser and our handler on an in-memory transport (files are
written to a scratch folder, emptied now and then). Property: each answer is one we mean to give
(100, 200, 201, 400, 401, 405, 408, 411, 413, 417, 503), never a 500; nothing logged at ERROR; every
stored file stays inside the upload folder; no exception; every input is done well within a second.

Interface (the shared runner's, ``tests/fuzz/_harness.py``): ``TestOneInput(data: bytes) -> None``,
``seeds() -> dict[str, bytes]`` and ``ALLOWED`` (empty: nothing may escape).
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import logging
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

from ocppsec.eventlog.logfile import render_log
from ocppsec.eventlog.receiver import ReceiverConfig, UploadReceiver
from ocppsec.pki._http import HttpLimits, HttpServer
from ocppsec.pki.events.model import normalize_event
from ocppsec.pki.versions import OcppVersion

from ._http_wire import ErrorRecords, exchange, responses

__all__ = ["ALLOWED", "TestOneInput", "seeds"]

ALLOWED: tuple[type[BaseException], ...] = ()
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
EXPECTED_STATUSES = {100, 200, 201, 400, 401, 405, 408, 411, 413, 417, 503}
AUTH = "Authorization: Basic " + base64.b64encode(b"logs:pw").decode() + "\r\n"


class _Setup:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="fuzz-getlog-"))
        atexit.register(shutil.rmtree, self.root, True)
        config = ReceiverConfig(self.root / "uploads", max_bytes=8192, basic_auth=("logs", "pw"), max_uploads=4)
        self.receiver = UploadReceiver(config, clock=lambda: NOW)
        limits = HttpLimits(header_timeout=0.2, body_timeout=0.2, lingering_time=0.05)
        self.http = HttpServer(self.receiver.application(), limits=limits)
        self.loop = asyncio.new_event_loop()
        self.factory = self.loop.run_until_complete(self.http.prepare())
        self.errors = ErrorRecords()
        for logger in ("ocppsec", "aiohttp"):
            logging.getLogger(logger).addHandler(self.errors)
        self.runs = 0


@cache
def _setup() -> _Setup:
    return _Setup()


def TestOneInput(data: bytes) -> None:
    setup = _setup()
    setup.errors.records.clear()
    setup.runs += 1
    if setup.runs % 200 == 0:  # keep the scratch folder small
        shutil.rmtree(setup.receiver.config.directory, ignore_errors=True)
        setup.receiver.config.directory.mkdir(parents=True, exist_ok=True)
        setup.receiver.received.clear()
    out = setup.loop.run_until_complete(exchange(setup.factory, data))
    assert not setup.errors.records, f"logged: {setup.errors.records[0].getMessage()}"
    for status, _headers, _body in responses(out):
        assert status in EXPECTED_STATUSES, f"HTTP {status} answered"
    root = setup.receiver.config.directory.resolve()
    for upload in setup.receiver.received:
        assert upload.path.resolve().parent.parent == root, f"stored outside the upload folder: {upload.path}"


def _log() -> bytes:
    events = [normalize_event(station_id="CS1", type="StartupOfTheDevice", timestamp=NOW - timedelta(minutes=i), at=NOW,
                              ocpp_version=OcppVersion.V201) for i in range(2)]
    return render_log(events, station_id="CS1", at=NOW, ocpp_version=OcppVersion.V201)


def _put(body: bytes, path: str = "/logs/CS1/7/a.log", extra: str = AUTH) -> bytes:
    return (f"PUT {path} HTTP/1.1\r\nHost: csms\r\n{extra}Content-Length: {len(body)}\r\n\r\n").encode() + body


def _multipart(body: bytes, filename: str = "CS1.log", cte: str = "") -> bytes:
    part = (f'--zz\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            f"Content-Type: application/octet-stream\r\n{cte}\r\n").encode() + body + b"\r\n--zz--\r\n"
    return (f"POST /logs/CS1/8/ HTTP/1.1\r\nHost: csms\r\n{AUTH}Content-Type: multipart/form-data; boundary=zz\r\n"
            f"Content-Length: {len(part)}\r\n\r\n").encode() + part


def seeds() -> dict[str, bytes]:
    log = _log()
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(log[i:i + 64]), log[i:i + 64]) for i in range(0, len(log), 64))
    return {
        "put": _put(log),
        "put-traversal": _put(log, "/logs/..%2F..%2Fetc/1/..%2Fpasswd"),
        "put-no-auth": _put(log, extra=""),
        "put-wrong-auth": _put(log, extra="Authorization: Basic " + base64.b64encode(b"logs:no").decode() + "\r\n"),
        "post-multipart": _multipart(log),
        "post-multipart-base64": _multipart(base64.b64encode(log), cte="Content-Transfer-Encoding: base64\r\n"),
        "post-multipart-no-filename": _multipart(log).replace(b'; filename="CS1.log"', b""),
        "chunked": (f"PUT /logs/CS1/9/c.log HTTP/1.1\r\nHost: x\r\n{AUTH}Transfer-Encoding: chunked\r\n\r\n").encode()
                   + chunked + b"0\r\n\r\n",
        "expect": _put(log, extra=AUTH + "Expect: 100-continue\r\n"),
        "expect-too-large": f"PUT /logs/CS1/1/a HTTP/1.1\r\nHost: x\r\n{AUTH}Expect: 100-continue\r\n"
                            f"Content-Length: 99999\r\n\r\n".encode(),
        "smuggle-cl-te": (f"PUT /logs/CS1/1/a HTTP/1.1\r\nHost: x\r\n{AUTH}Content-Length: 5\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n").encode(),
        "chunk-negative": (f"PUT /logs/CS1/1/a HTTP/1.1\r\nHost: x\r\n{AUTH}Transfer-Encoding: chunked\r\n\r\n-1\r\n").encode()
                          + b"x" * 9000,
        "length-superscript": f"PUT /logs/CS1/1/a HTTP/1.1\r\nHost: x\r\n{AUTH}Content-Length: ²\r\n\r\nab".encode(),
        "pipelined": _put(log) + _put(b"vendor log\x00", "/logs/CS2/3/v.bin"),
        "truncated": _put(log)[:-20],
        "get": b"GET /logs/CS1/1/a HTTP/1.1\r\nHost: x\r\n\r\n",
    }

