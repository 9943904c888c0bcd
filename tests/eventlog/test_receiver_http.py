"""The GetLog receiver's HTTP layer against hostile clients (raw sockets on loopback), and the upload client
against servers that behave differently from ours."""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
import trustme
from test_log_upload import log_bytes, read_response

from ocppsec.eventlog import receiver as receiver_module
from ocppsec.eventlog.getlog import UploadOutcome
from ocppsec.eventlog.receiver import ReceiverConfig, UploadReceiver
from ocppsec.eventlog.store import AddResult, EventQuery
from ocppsec.eventlog.store_sql import open_store
from ocppsec.eventlog.upload import UploadResult, http_upload, http_upload_async
from ocppsec.pki._http import HttpLimits
from ocppsec.pki.errors import UsageError
from ocppsec.pki.events.model import SecurityEvent

LIMIT = 4096


@pytest.fixture
def small(tmp_path: Path) -> Iterator[UploadReceiver]:
    """A receiver with a 4 KiB limit and short timeouts."""
    limits = HttpLimits(header_timeout=1.0, body_timeout=1.0, lingering_time=5.0)
    config = ReceiverConfig(tmp_path / "uploads", max_bytes=LIMIT, basic_auth=("logs", "pw"), max_uploads=2)
    with UploadReceiver(config, limits=limits) as rx:
        yield rx


AUTH = b"Authorization: Basic bG9nczpwdw==\r\n"  # logs:pw


def connect(rx: UploadReceiver) -> socket.socket:
    return socket.create_connection(rx.address, timeout=10)


def status_of(response: bytes) -> bytes:
    return response.split(b" ", 2)[1] if response.startswith(b"HTTP/") else response[:40]


def stored(rx: UploadReceiver) -> list[Path]:
    return [p for p in rx.config.directory.rglob("*") if p.is_file()]


def test_a_valid_chunked_upload_is_stored(small: UploadReceiver) -> None:
    body = log_bytes()
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 100]), body[i:i + 100]) for i in range(0, len(body), 100))
    with connect(small) as s:
        s.sendall(b"PUT /logs/CS1/1/a.log HTTP/1.1\r\nHost: x\r\n" + AUTH + b"Transfer-Encoding: chunked\r\n\r\n"
                  + chunked + b"0\r\n\r\n")
        assert status_of(read_response(s)) == b"201"
    (upload,) = small.received
    assert upload.path.read_bytes() == body
    assert [p.name for p in upload.path.parent.iterdir()] == [upload.path.name]  # no temporary file left behind


@pytest.mark.parametrize(
    "head",
    [
        # both framings: refused, whichever comes first (request smuggling behind a proxy)
        b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
        b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
        # lengths that str.isdigit() accepts but int() does not, signs, lists, hex
        "Content-Length: ²\r\n\r\nab".encode(),
        b"Content-Length: -1\r\n\r\nab",
        b"Content-Length: +2\r\n\r\nab",
        b"Content-Length: 2, 2\r\n\r\nab",
        b"Content-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
        # chunk sizes: negative (read-to-end in the hand-written parser), signed, superscript, hex prefix
        b"Transfer-Encoding: chunked\r\n\r\n-1\r\n" + b"x" * 20000 + b"\r\n0\r\n\r\n",
        b"Transfer-Encoding: chunked\r\n\r\n+4\r\nabcd\r\n0\r\n\r\n",
        "Transfer-Encoding: chunked\r\n\r\n²\r\nab\r\n0\r\n\r\n".encode(),
        b"Transfer-Encoding: chunked\r\n\r\n0x4\r\nabcd\r\n0\r\n\r\n",
        b"Transfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\nabcd\r\n0\r\n\r\n",
        # a chunk not followed by its CRLF, bare LF line ends
        b"Transfer-Encoding: chunked\r\n\r\n4\r\nabcdXX0\r\n\r\n",
        b"Transfer-Encoding: chunked\r\n\r\n4\nabcd\n0\n\n",
        b"Transfer-Encoding: chunked, gzip\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
    ],
    ids=["cl-then-te", "te-then-cl", "cl-superscript", "cl-negative", "cl-plus", "cl-list", "cl-twice", "chunk-negative",
         "chunk-plus", "chunk-superscript", "chunk-0x", "chunk-overflow", "chunk-no-crlf", "chunk-bare-lf",
         "te-not-last-chunked"],
)
def test_bad_framing_is_a_clean_400(small: UploadReceiver, head: bytes) -> None:
    with connect(small) as s:
        s.sendall(b"PUT /logs/CS1/1/a.log HTTP/1.1\r\nHost: x\r\n" + AUTH + head)
        response = read_response(s)
    assert status_of(response) == b"400", response
    assert small.received == [] and stored(small) == []


def test_aiohttp_runs_its_compiled_parser() -> None:
    """The framing checks above are llhttp's (the pure-Python fallback answers one of them 500, see ADR 15)."""
    from aiohttp import http_parser

    assert http_parser.HttpRequestParser is http_parser.HttpRequestParserC  # type: ignore[attr-defined]


def test_chunked_body_over_the_limit_is_413_while_streaming(small: UploadReceiver) -> None:
    chunk = b"400\r\n" + b"x" * 0x400 + b"\r\n"
    with connect(small) as s:
        s.sendall(b"PUT /logs/CS1/1/a.log HTTP/1.1\r\nHost: x\r\n" + AUTH + b"Transfer-Encoding: chunked\r\n\r\n")
        for _ in range(64):  # 64 KiB in 1 KiB chunks, sent without waiting: the answer is readable afterwards
            s.sendall(chunk)
        s.sendall(b"0\r\n\r\n")
        assert status_of(read_response(s)) == b"413"
    assert stored(small) == []


def test_announced_oversize_body_sent_anyway_reads_413(small: UploadReceiver) -> None:
    """A client that does not wait for an answer and sends its whole (too large) body still reads the 413."""
    body = b"x" * (256 * 1024)
    with connect(small) as s:
        s.sendall(b"PUT /logs/CS1/1/a.log HTTP/1.1\r\nHost: x\r\n" + AUTH
                  + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        response = read_response(s)
    assert status_of(response) == b"413" and b"larger than 4096" in response
    result = http_upload(small.remote_location("CS1", 2).replace("http://", "http://logs:pw@"), body, "big.log",
                         expect_continue_over=1 << 30)  # the client too sends the body without Expect
    assert (result.outcome, result.status_code) == (UploadOutcome.BAD_MESSAGE, 413)


@pytest.mark.parametrize(("auth", "length", "status"), [(AUTH, 100_000, b"413"), (b"", 100, b"401")])
def test_expect_continue_is_answered_from_the_head(small: UploadReceiver, auth: bytes, length: int, status: bytes) -> None:
    with connect(small) as s:
        s.sendall(b"PUT /logs/CS1/1/a.log HTTP/1.1\r\nHost: x\r\n" + auth
                  + b"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % length)
        assert status_of(read_response(s)) == status  # not 100 Continue: the body never needs to travel
    with connect(small) as s:
        s.sendall(b"PUT /logs/CS1/1/a.log HTTP/1.1\r\nHost: x\r\n" + AUTH + b"Content-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        assert s.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(b"ok")
        assert status_of(read_response(s)) == b"201"


def trickle(s: socket.socket, data: bytes, every: float = 0.1) -> bool:
    """Send ``data`` a byte every ``every`` seconds until the server answers or closes; True if it did."""
    for byte in data:
        if select.select([s], [], [], every)[0]:
            return True
        try:
            s.sendall(bytes([byte]))
        except OSError:
            return True
    return bool(select.select([s], [], [], every)[0])


def test_slow_request_head_is_cut_off(small: UploadReceiver) -> None:
    start = time.monotonic()
    with connect(small) as s:
        assert trickle(s, b"PUT /logs/CS1/1/a.log HTTP/1.1\r\nHost: x\r\n" * 2), "a slow request head was not cut off"
        with contextlib.suppress(ConnectionResetError):
            assert s.recv(100) == b""  # closed, not answered
    assert time.monotonic() - start < 4  # header timeout 1 s


def test_slow_body_is_cut_off_with_408(small: UploadReceiver) -> None:
    start = time.monotonic()
    with connect(small) as s:
        s.sendall(b"PUT /logs/CS1/1/a.log HTTP/1.1\r\nHost: x\r\n" + AUTH + b"Content-Length: 100\r\n\r\n")
        assert trickle(s, b"x" * 40)
        response = read_response(s)
    assert status_of(response) == b"408", response
    assert time.monotonic() - start < 3  # body timeout 1 s
    assert stored(small) == []


def test_more_uploads_than_allowed_get_503(tmp_path: Path) -> None:
    """max_uploads bounds uploads being received: the next one is refused at once, not queued."""
    config = ReceiverConfig(tmp_path / "up", max_bytes=LIMIT, max_uploads=1)
    with UploadReceiver(config, limits=HttpLimits(body_timeout=10.0)) as rx, connect(rx) as slow:
        slow.sendall(b"PUT /logs/CS1/1/a.log HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        for _ in range(200):  # until the first upload is being received
            if rx._active:
                break
            time.sleep(0.01)
        with connect(rx) as second:
            second.sendall(b"PUT /logs/CS1/2/b.log HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok")
            response = read_response(second)
            assert status_of(response) == b"503" and b"Retry-After" in response
        with connect(rx) as third:  # refused before 100 Continue: the body is never invited
            third.sendall(b"PUT /logs/CS1/3/c.log HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                          b"Expect: 100-continue\r\n\r\n")
            response = read_response(third)
            assert status_of(response) == b"503" and b"100 Continue" not in response
        slow.sendall(b"defghij")
        assert status_of(read_response(slow)) == b"201"


def test_blocking_client_on_a_running_loop_is_refused(small: UploadReceiver) -> None:
    async def misuse() -> None:
        with pytest.raises(UsageError, match="running event loop"):
            http_upload(small.remote_location("CS1", 1), b"x", "x.log")
        result = await http_upload_async(small.remote_location("CS1", 1).replace("http://", "http://logs:pw@"),
                                         log_bytes(), "x.log")
        assert result.outcome is UploadOutcome.OK

    asyncio.run(misuse())


def test_async_receiver_on_the_callers_loop(tmp_path: Path) -> None:
    async def main() -> None:
        rx = UploadReceiver(ReceiverConfig(tmp_path / "up"))
        await rx.listen("127.0.0.1", 0)
        try:
            result = await http_upload_async(rx.remote_location("CS1", 9), log_bytes(), "a.log", method="POST")
            assert result.outcome is UploadOutcome.OK, result
        finally:
            await rx.aclose()
        assert rx.received[0].size == len(log_bytes())

    asyncio.run(main())


class IgnoresExpect(threading.Thread):
    """A minimal HTTP/1.0-style server that never sends 100 Continue: reads the head and the whole body, then 201."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.bodies: list[bytes] = []

    def run(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(next(x for x in head.split(b"\r\n") if x.lower().startswith(b"content-length:")).split(b":")[1])
            while len(body) < length:
                body += conn.recv(65536)
            self.bodies.append(body)
            conn.sendall(b"HTTP/1.0 201 Created\r\nContent-Length: 0\r\n\r\n")


def test_expect_continue_gives_up_waiting_after_a_second() -> None:
    server = IgnoresExpect()
    server.start()
    data = b"y" * (2 << 20)  # over 1 MiB: sent with Expect: 100-continue
    start = time.monotonic()
    result = http_upload(f"http://127.0.0.1:{server.sock.getsockname()[1]}/up", data, "big.log", timeout=10)
    assert result.outcome is UploadOutcome.OK, result
    assert 0.9 < time.monotonic() - start < 8
    server.join(5)
    assert server.bodies == [data]
    server.sock.close()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def test_station_client_certificate(tmp_path: Path, ca: trustme.CA) -> None:
    """TLS with the station's trust roots and its client certificate (the receiver requires one)."""
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    ca.configure_trust(server_ctx)
    with UploadReceiver(ReceiverConfig(tmp_path / "up"), ssl_context=server_ctx) as rx:
        station_ctx = ssl.create_default_context()
        ca.configure_trust(station_ctx)
        without = http_upload(rx.remote_location("CS1", 1), log_bytes(), "a.log", ssl_context=station_ctx)
        assert without.outcome is UploadOutcome.FAILURE
        ca.issue_cert("CS1").configure_cert(station_ctx)
        with_cert = http_upload(rx.remote_location("CS1", 1), log_bytes(), "a.log", ssl_context=station_ctx)
        assert with_cert.outcome is UploadOutcome.OK, with_cert
        assert len(rx.received) == 1


def test_store_writes_run_off_the_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While one upload's store write is stuck (a slow database), the receiver still answers other uploads."""
    store = open_store(tmp_path / "events.db")
    entered, release = threading.Event(), threading.Event()
    add_many = store.add_many

    def slow_add_many(events: Iterable[SecurityEvent]) -> AddResult:
        entered.set()
        assert release.wait(20)
        return add_many(events)

    monkeypatch.setattr(store, "add_many", slow_add_many)
    try:
        with UploadReceiver(ReceiverConfig(tmp_path / "up"), store=store) as rx:
            results: list[UploadResult] = []
            first = threading.Thread(target=lambda: results.append(
                http_upload(rx.remote_location("CS1", 1), log_bytes(), "a.log", timeout=30)))
            first.start()
            try:
                assert entered.wait(20)
                other = http_upload(rx.remote_location("CS2", 2), b"not our log format\n", "b.txt", timeout=10)
                assert other.outcome is UploadOutcome.OK, other
                assert [u.station_id for u in rx.received] == ["CS2"]
            finally:
                release.set()
                first.join(30)
            assert results and results[0].outcome is UploadOutcome.OK, results
            assert rx.received[1].imported == 3
        assert store.count(EventQuery(station_id="CS1")) == 3
    finally:
        store.close()


def test_concurrent_uploads_of_one_name_keep_every_file_whole(tmp_path: Path) -> None:
    """Files are linked into place under the first free name: none overwritten, none half-written, no temporaries."""
    bodies = [log_bytes(n=n) for n in range(1, 9)]
    with UploadReceiver(ReceiverConfig(tmp_path / "up")) as rx:
        url = rx.remote_location("CS1", 4)
        threads = [threading.Thread(target=http_upload, args=(url, body, "same.log")) for body in bodies]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        files = stored(rx)
    assert len(files) == len(bodies) and {f.parent.name for f in files} == {"CS1"}
    assert sorted(f.read_bytes() for f in files) == sorted(bodies)
    assert not [f for f in files if f.name.startswith(".upload-")]


def test_a_failed_write_leaves_no_file(small: UploadReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that fails before the file is whole (here its fsync) stores nothing and answers 500."""
    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(receiver_module.os, "fsync", failing_fsync)
    body = log_bytes()
    with connect(small) as s:
        s.sendall(b"PUT /logs/CS1/1/a.log HTTP/1.1\r\nHost: x\r\n" + AUTH
                  + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        assert status_of(read_response(s)) == b"500"
    assert stored(small) == [] and small.received == []
