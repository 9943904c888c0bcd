"""A station uploading its log to the receiver over real loopback HTTP and HTTPS."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme

from ocppsec.eventlog.getlog import GetLogPolicy, GetLogRequest, GetLogStatus, LogStatus, UploadOutcome
from ocppsec.eventlog.logfile import render_log
from ocppsec.eventlog.receiver import ReceiverConfig, UploadReceiver, sanitize_filename
from ocppsec.eventlog.station import StationSecurityLog
from ocppsec.eventlog.store import EventQuery, EventStore
from ocppsec.eventlog.store_sql import open_store
from ocppsec.eventlog.upload import GetLogDriver, http_upload
from ocppsec.pki.events.model import normalize_event
from ocppsec.pki.versions import OcppVersion

AT = datetime.now(UTC).replace(microsecond=0)


def log_bytes(station: str = "CS1", n: int = 3) -> bytes:
    events = [normalize_event(station_id=station, type="ResetOrReboot", timestamp=AT - timedelta(minutes=i),
                              tech_info=f"n{i}", at=AT, ocpp_version=OcppVersion.V201) for i in range(n)]
    return render_log(events, station_id=station, at=AT, ocpp_version=OcppVersion.V201)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[EventStore]:
    s = open_store(tmp_path / "events.db")
    yield s
    s.close()


@pytest.fixture
def receiver(tmp_path: Path, sqlite_store: EventStore) -> Iterator[UploadReceiver]:
    with UploadReceiver(ReceiverConfig(tmp_path / "uploads", max_bytes=2 << 20), store=sqlite_store) as rx:
        yield rx


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_receiver(tmp_path: Path, sqlite_store: EventStore, ca: trustme.CA) -> Iterator[UploadReceiver]:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    config = ReceiverConfig(tmp_path / "uploads", basic_auth=("logs", "s3cret-not-the-ocpp-one"))
    with UploadReceiver(config, store=sqlite_store, ssl_context=server_ctx) as rx:
        yield rx


def client_ctx(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_put_and_post_store_and_import(receiver: UploadReceiver, sqlite_store: EventStore, method: str) -> None:
    url = receiver.remote_location("CS1", 7)
    result = http_upload(url, log_bytes(), "CS1-SecurityLog-7.log", method=method)
    assert result.outcome is UploadOutcome.OK, result
    (upload,) = receiver.received
    assert upload.path == receiver.config.directory.resolve() / "CS1" / "7-CS1-SecurityLog-7.log"
    assert upload.path.read_bytes() == log_bytes()
    assert upload.imported == 3
    assert sqlite_store.count(EventQuery(station_id="CS1")) == 3


def test_second_upload_of_the_same_log_imports_nothing_new(receiver: UploadReceiver, sqlite_store: EventStore) -> None:
    url = receiver.remote_location("CS1", 7)
    http_upload(url, log_bytes(), "a.log")
    http_upload(url, log_bytes(), "a.log")
    first, second = receiver.received
    assert (second.imported, second.duplicates) == (0, 3)
    assert first.path != second.path  # files are never overwritten
    assert sqlite_store.count(EventQuery()) == 3


def test_filename_in_the_url_wins_and_is_sanitised(receiver: UploadReceiver) -> None:
    base = receiver.url + "logs/CS1/8/"
    assert http_upload(base + "..%2F..%2Fetc%2Fpasswd", log_bytes(), "x").outcome is UploadOutcome.OK
    assert http_upload(base, log_bytes(), "../../../../tmp/evil.sh").outcome is UploadOutcome.OK
    assert http_upload(base, log_bytes(), "..\\..\\boot.ini", method="POST").outcome is UploadOutcome.OK
    root = receiver.config.directory.resolve()
    for upload in receiver.received:
        assert upload.path.parent == root / "CS1"
    names = [u.path.name for u in receiver.received]
    assert names[:2] == ["8-passwd", "8-evil.sh"]
    assert names[2].endswith("boot.ini") and "/" not in names[2] and "\\" not in names[2]


def test_station_id_in_the_path_cannot_escape(receiver: UploadReceiver) -> None:
    url = receiver.url + "logs/..%2F..%2F..%2Fetc/1/f.log"
    assert http_upload(url, log_bytes(), "f.log").outcome is UploadOutcome.OK
    (upload,) = receiver.received
    assert upload.path.is_relative_to(receiver.config.directory.resolve())
    assert upload.imported == 0 and "uploaded as" in upload.note  # header says CS1


@pytest.mark.parametrize(
    ("name", "safe"),
    [("../../x", "x"), ("a b;c|d", "a_b_c_d"), (".hidden", "hidden"), ("..", ""), ("C:\\w\\f.txt", "f.txt"),
     ("\x00\x1b[31m.log", "___31m.log")],
)
def test_sanitize_filename(name: str, safe: str) -> None:
    assert sanitize_filename(name) == safe


def test_oversized_upload_is_refused_before_the_body(receiver: UploadReceiver) -> None:
    url = receiver.remote_location("CS1", 1)
    result = http_upload(url, b"x" * (3 << 20), "big.log")  # > 1 MiB: Expect: 100-continue
    assert (result.outcome, result.status_code) == (UploadOutcome.BAD_MESSAGE, 413)
    assert "before the body" in result.detail
    small_limit = http_upload(url, b"x" * (3 << 20), "big.log", expect_continue_over=10 << 20)
    assert small_limit.status_code == 413 or small_limit.outcome is UploadOutcome.FAILURE  # server may hang up
    assert receiver.received == []


def test_large_upload_with_expect_continue_works(receiver: UploadReceiver) -> None:
    data = log_bytes() + b"x" * (1 << 20)  # our header, then junk lines: stored, events imported
    result = http_upload(receiver.remote_location("CS1", 2), data, "big.log")
    assert result.outcome is UploadOutcome.OK
    assert receiver.received[0].size == len(data)
    assert receiver.received[0].imported == 3 and receiver.received[0].rejected == 1


def read_response(s: socket.socket) -> bytes:
    """One whole HTTP response (head and Content-Length body), without waiting for the server to close."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")[1:]
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length and (chunk := s.recv(65536)):
        body += chunk
    return head + b"\r\n\r\n" + body


def raw_request(receiver: UploadReceiver, request: bytes) -> bytes:
    host, port = receiver.address
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(request)
        return read_response(s)


def test_chunked_upload(receiver: UploadReceiver) -> None:
    body = log_bytes()
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 50]), body[i:i + 50]) for i in range(0, len(body), 50))
    response = raw_request(receiver, b"PUT /logs/CS1/3/c.log HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                           + chunked + b"0\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 201"), response
    assert receiver.received[0].imported == 3


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"PUT /logs/CS1/1/a HTTP/1.1\r\nHost: x\r\n\r\n", b"411"),
        (b"PUT /logs/CS1/1/a HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n", b"413"),
        (b"PUT /logs/CS1/1/a HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", b"400"),
        (b"PUT /logs/CS1/1/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", b"400"),
        (b"POST /logs/CS1/1/ HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi", b"400"),
        (b"POST /logs/CS1/1/ HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data\r\nContent-Length: 2\r\n\r\nhi",
         b"400"),
        (b"POST /logs/CS1/1/ HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=zz\r\n"
         b"Content-Length: 30\r\n\r\n--zz\r\nno headers at all\r\n--zz--", b"400"),
        (b"GET /logs/CS1/1/a HTTP/1.1\r\nHost: x\r\n\r\n", b"405"),
        (b"DELETE /logs/CS1/1/a HTTP/1.1\r\nHost: x\r\n\r\n", b"405"),
    ],
)
def test_malformed_requests(receiver: UploadReceiver, request_bytes: bytes, status: bytes) -> None:
    response = raw_request(receiver, request_bytes)
    assert response.split(b" ", 2)[1] == status, response
    assert receiver.received == []


def test_file_not_in_our_format_is_kept_but_not_imported(receiver: UploadReceiver, sqlite_store: EventStore) -> None:
    http_upload(receiver.remote_location("CS1", 4), b"vendor binary log\x00\x01", "vendor.bin", method="POST")
    (upload,) = receiver.received
    assert upload.path.read_bytes() == b"vendor binary log\x00\x01"
    assert upload.imported == 0 and "not an ocppsec security log" in upload.note
    assert sqlite_store.count(EventQuery()) == 0


def test_https_with_basic_auth(tls_receiver: UploadReceiver, ca: trustme.CA) -> None:
    loc = tls_receiver.remote_location("CS1", 5)
    assert loc.startswith("https://127.0.0.1:")
    ctx = client_ctx(ca)
    authed = loc.replace("https://", "https://logs:s3cret-not-the-ocpp-one@")
    assert http_upload(authed, log_bytes(), "a.log", ssl_context=ctx).outcome is UploadOutcome.OK
    assert http_upload(authed, log_bytes(), "a.log", method="POST", ssl_context=ctx).outcome is UploadOutcome.OK
    wrong = loc.replace("https://", "https://logs:ocpp-password@")
    assert http_upload(wrong, log_bytes(), "a.log", ssl_context=ctx).outcome is UploadOutcome.PERMISSION_DENIED
    assert http_upload(loc, log_bytes(), "a.log", ssl_context=ctx).status_code == 401
    untrusted = http_upload(authed, log_bytes(), "a.log")  # system CAs do not know trustme's CA
    assert untrusted.outcome is UploadOutcome.FAILURE and "CERTIFICATE_VERIFY_FAILED" in untrusted.detail
    plain = http_upload(authed.replace("https://", "http://"), log_bytes(), "a.log")
    assert plain.outcome in (UploadOutcome.FAILURE, UploadOutcome.BAD_MESSAGE)
    assert len(tls_receiver.received) == 2


def test_connection_refused_is_an_upload_failure() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = http_upload(f"http://127.0.0.1:{port}/x", b"data", "x.log", timeout=2)
    assert result.outcome is UploadOutcome.FAILURE


def test_unsupported_scheme_and_method() -> None:
    assert http_upload("ftp://u:p@127.0.0.1/x", b"", "x").outcome is UploadOutcome.NOT_SUPPORTED
    assert http_upload("http://127.0.0.1:1/x", b"", "x", method="PATCH").outcome is UploadOutcome.NOT_SUPPORTED


class Recorder:
    def __init__(self) -> None:
        self.statuses: list[tuple[str, int]] = []

    async def __call__(self, status: LogStatus, request_id: int) -> None:
        self.statuses.append((status.value, request_id))


def station(tmp_path: Path, n: int = 3) -> StationSecurityLog:
    log = StationSecurityLog(tmp_path / "station", station_id="CS1", ocpp_version=OcppVersion.V21)
    for i in range(n):
        log.raise_event("StartupOfTheDevice", at=AT - timedelta(minutes=i))
    return log


def test_driver_uploads_over_https_and_reports(tmp_path: Path, tls_receiver: UploadReceiver, ca: trustme.CA,
                                               sqlite_store: EventStore) -> None:
    notes = Recorder()
    driver = GetLogDriver(exporter=station(tmp_path), notify=notes, ssl_context=client_ctx(ca), method="POST",
                          policy=GetLogPolicy(append_filename_to_directory_url=True))
    location = tls_receiver.remote_location("CS1", 11).replace("https://", "https://logs:s3cret-not-the-ocpp-one@")

    async def run() -> None:
        reply, actions = driver.handle_request(GetLogRequest("SecurityLog", 11, location))
        assert reply.status is GetLogStatus.ACCEPTED and reply.filename
        await driver.perform(actions)
        await driver.wait_idle()

    asyncio.run(run())
    assert notes.statuses == [("Uploading", 11), ("Uploaded", 11)]
    (upload,) = tls_receiver.received
    assert upload.path.name.startswith("11-CS1-SecurityLog-11-")
    assert sqlite_store.count(EventQuery(station_id="CS1")) == 3


def test_driver_retries_then_reports_the_final_failure(tmp_path: Path, tls_receiver: UploadReceiver,
                                                       ca: trustme.CA) -> None:
    notes = Recorder()
    driver = GetLogDriver(exporter=station(tmp_path), notify=notes, ssl_context=client_ctx(ca))
    location = tls_receiver.remote_location("CS1", 12).replace("https://", "https://logs:wrong@")

    async def run() -> None:
        _, actions = driver.handle_request(GetLogRequest("SecurityLog", 12, location, retries=2, retry_interval=0))
        await driver.perform(actions)
        await driver.wait_idle()

    asyncio.run(run())
    assert [r.status_code for r in driver.results] == [401, 401, 401]
    assert notes.statuses == [("Uploading", 12), ("PermissionDenied", 12)]


def test_driver_cancels_a_running_upload(tmp_path: Path, receiver: UploadReceiver) -> None:
    notes = Recorder()
    driver = GetLogDriver(exporter=station(tmp_path), notify=notes)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/nowhere"

    async def run() -> None:
        _, actions = driver.handle_request(GetLogRequest("SecurityLog", 1, dead, retries=5, retry_interval=30))
        await driver.perform(actions)
        for _ in range(100):  # wait for the first attempt to fail and the retry timer to start
            if driver.machine.job and driver.machine.job.waiting_until:
                break
            await asyncio.sleep(0.02)
        reply, actions = driver.handle_request(GetLogRequest("SecurityLog", 2, receiver.remote_location("CS1", 2)))
        assert reply.status is GetLogStatus.ACCEPTED_CANCELED
        await driver.perform(actions)
        await asyncio.wait_for(_until(lambda: ("Uploaded", 2) in notes.statuses), 10)
        await driver.close()

    asyncio.run(run())
    assert notes.statuses == [("Uploading", 1), ("AcceptedCanceled", 1), ("Uploading", 2), ("Uploaded", 2)]


async def _until(condition) -> None:  # type: ignore[no-untyped-def]
    while not condition():
        await asyncio.sleep(0.02)
