"""The OCSP responder's HTTP layer (aiohttp): RFC 6960 A.1 GET decoding, RFC 5019 caching headers, limits and
hostile clients over raw loopback sockets, answers on demand in a worker thread or on the loop."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import select
import socket
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from cryptography.x509 import ocsp

from ocppsec.pki._http import HttpLimits
from ocppsec.pki.directory import PkiDirectory
from ocppsec.pki.errors import UsageError
from ocppsec.pki.revocation.authorities import load_authorities
from ocppsec.pki.revocation.client import fetch, query, query_async
from ocppsec.pki.revocation.ocsp import CertId, CertStatus, OcspResponder
from ocppsec.pki.revocation.ocsp_client_core import build_request, check_response
from ocppsec.pki.revocation.server import OcspHttpServer, decode_get_path
from revocation.conftest import Issued, issue_station

NOW = datetime.now(UTC)


class Setup:
    def __init__(self, pki: PkiDirectory, tmp_path: Path) -> None:
        self.pki = pki
        self.good = issue_station(pki, "SN-GOOD", tmp_path, NOW - timedelta(hours=1))
        self.root = pki.ca_certificate("csms-root")
        self.responder = OcspResponder(load_authorities(pki, ["csms-root"], at=NOW), pki.ledger)
        self.responder.preproduce(at=NOW)

    def cert_id(self, issued: Issued | None = None, algorithm: str = "sha256") -> CertId:
        return CertId.for_certificate((issued or self.good).cert, self.root, algorithm)


@pytest.fixture
def setup(pki_dir: PkiDirectory, tmp_path: Path) -> Setup:
    return Setup(pki_dir, tmp_path)


def serve(setup: Setup, **options: object) -> OcspHttpServer:
    options.setdefault("refresh_interval", None)
    server = OcspHttpServer(("127.0.0.1", 0), setup.responder, **options)  # type: ignore[arg-type]
    server.start()
    return server


@pytest.fixture
def server(setup: Setup) -> Iterator[OcspHttpServer]:
    srv = serve(setup, limits=HttpLimits(max_connections=3, header_timeout=1.0, body_timeout=1.0))
    yield srv
    srv.stop()


def raw(server: OcspHttpServer, data: bytes) -> bytes:
    with socket.create_connection(server.address, timeout=10) as s:
        s.sendall(data)
        return recv_response(s)


def recv_response(s: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data and (chunk := s.recv(65536)):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(x.split(b":")[1]) for x in head.split(b"\r\n") if x.lower().startswith(b"content-length:")), 0)
    while len(body) < length and (chunk := s.recv(65536)):
        body += chunk
    return head + b"\r\n\r\n" + body


def ocsp_status(response: bytes) -> ocsp.OCSPResponseStatus:
    return ocsp.load_der_ocsp_response(response.partition(b"\r\n\r\n")[2]).response_status


def test_get_answers_carry_rfc5019_caching_headers(setup: Setup, server: OcspHttpServer) -> None:
    request, _ = build_request(setup.cert_id(), with_nonce=False)
    url = f"{server.url}/csms-root/{urllib.parse.quote(base64.b64encode(request).decode(), safe='')}"
    with urllib.request.urlopen(url, timeout=10) as resp:
        body, headers = resp.read(), resp.headers
    single = ocsp.load_der_ocsp_response(body)
    assert parsedate_to_datetime(headers["Last-Modified"]) == single.this_update_utc
    assert parsedate_to_datetime(headers["Expires"]) == single.next_update_utc
    max_age = int(headers["Cache-Control"].split("max-age=")[1].split(",")[0])
    assert 0 < max_age <= (setup.responder.validity - setup.responder.refresh_before).total_seconds()
    assert "public" in headers["Cache-Control"] and headers["ETag"].startswith('"')
    # the same bytes on POST, without caching headers (POST answers are not cached by HTTP caches)
    req = urllib.request.Request(server.url, data=request, method="POST",
                                 headers={"Content-Type": "application/ocsp-request"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.read() == body and "Cache-Control" not in resp.headers


def test_get_path_decoding_rfc6960_a1(setup: Setup) -> None:
    """%-decoding only ('+' is base64, not a space), unencoded '/' in the base64, URL-safe base64, no padding."""
    for serial in range(1, 5000):
        request, _ = build_request(CertId("sha1", hashlib.sha1(b"%d" % serial).digest(), b"\x02" * 20, serial),
                                   with_nonce=False)
        text = base64.b64encode(request).decode()
        if "+" in text and "/" in text and text.endswith("="):
            break
    else:
        pytest.fail("no request with + and / in its base64")
    assert decode_get_path("/" + text) == request
    assert decode_get_path("/csms-root/" + text) == request  # a CA-name prefix, raw '/' inside the base64
    assert decode_get_path("/csms-root/" + urllib.parse.quote(text, safe="")) == request
    assert decode_get_path("/" + text.rstrip("=")) == request
    urlsafe = base64.urlsafe_b64encode(request).decode().rstrip("=")
    assert decode_get_path("/ocsp/" + urlsafe) == request
    assert decode_get_path("/" + text.replace("+", " ")) is None  # a form-decoded '+' is not ours to guess
    assert decode_get_path("/" + text + "?x=1") == request
    assert decode_get_path("/") is None and decode_get_path("/!!!") is None
    assert decode_get_path("/" + base64.b64encode(b"\x04" + request[1:]).decode()) is None  # not a SEQUENCE
    assert decode_get_path("/" + "A" * 40000) is None  # longer than any request we take


def test_malformed_requests_are_ocsp_answers(server: OcspHttpServer) -> None:
    for req in (b"GET /csms-root/%%%not-base64 HTTP/1.1\r\nHost: x\r\n\r\n",
                b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n\x30\x03abc",
                b"POST / HTTP/1.1\r\nHost: x\r\n\r\n"):
        response = raw(server, req)
        assert response.startswith(b"HTTP/1.1 200"), response
        assert b"application/ocsp-response" in response
        assert ocsp_status(response) is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


@pytest.mark.parametrize(
    "head",
    [b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
     "Content-Length: ²\r\n\r\nab".encode(), b"Content-Length: -1\r\n\r\n", b"Content-Length: +1\r\n\r\nx",
     b"Transfer-Encoding: chunked\r\n\r\n-1\r\n" + b"x" * 10000, b"Transfer-Encoding: chunked\r\n\r\n4\r\nabcdXX"],
    ids=["cl-and-te", "cl-superscript", "cl-negative", "cl-plus", "chunk-negative", "chunk-no-crlf"],
)
def test_bad_framing_is_a_clean_400(server: OcspHttpServer, head: bytes) -> None:
    response = raw(server, b"POST / HTTP/1.1\r\nHost: x\r\n" + head)
    assert response.split(b" ", 2)[1] == b"400", response
    assert server.responder.stats.errors == 0


def test_body_limit_is_413_also_for_a_client_still_sending(setup: Setup, server: OcspHttpServer) -> None:
    body = b"\x30" * (1 << 20)
    response = raw(server, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    assert response.startswith(b"HTTP/1.1 413"), response[:100]
    chunks = b"".join(b"1000\r\n" + b"\x30" * 0x1000 + b"\r\n" for _ in range(4))
    response = raw(server, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 413"), response[:100]
    # a chunked request within the limit is answered
    request, _ = build_request(setup.cert_id(), with_nonce=False)
    response = raw(server, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   + b"%x\r\n" % len(request) + request + b"\r\n0\r\n\r\n")
    assert ocsp_status(response) is ocsp.OCSPResponseStatus.SUCCESSFUL


def test_other_methods_are_405(server: OcspHttpServer) -> None:
    for method in (b"PUT", b"DELETE", b"HEAD", b"OPTIONS"):
        response = raw(server, method + b" / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        assert response.startswith(b"HTTP/1.1 405") and b"Allow: GET, POST" in response, response


def test_slow_clients_are_cut_off(server: OcspHttpServer) -> None:
    start = time.monotonic()
    with socket.create_connection(server.address, timeout=10) as s:
        for byte in b"POST / HTTP/1.1\r\nHost: x\r\n" * 3:  # one byte every 0.1 s, never finishing the head
            if select.select([s], [], [], 0.1)[0]:
                break
            s.sendall(bytes([byte]))
        else:
            pytest.fail("a slow request head was not cut off")
        assert s.recv(10) == b""
    assert time.monotonic() - start < 4


def test_connections_over_the_limit_get_503(setup: Setup, server: OcspHttpServer) -> None:
    request, _ = build_request(setup.cert_id(), with_nonce=False)
    post = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(request) + request
    held = []
    try:
        for _ in range(3):  # the limit: three kept-alive connections, each answered once
            s = socket.create_connection(server.address, timeout=10)
            held.append(s)
            s.sendall(post)
            assert recv_response(s).startswith(b"HTTP/1.1 200")
        assert raw(server, post).startswith(b"HTTP/1.1 503")
    finally:
        for s in held:
            s.close()
    deadline = time.monotonic() + 10
    while not raw(server, post).startswith(b"HTTP/1.1 200"):  # the server notices the closed connections
        assert time.monotonic() < deadline


@pytest.mark.parametrize("offload", [True, False], ids=["worker-thread", "on-the-loop"])
def test_on_demand_answers_with_nonce(setup: Setup, offload: bool) -> None:
    server = serve(setup, offload_on_demand=offload)
    try:
        result = query(server.url, setup.cert_id(), at=datetime.now(UTC), issuer=setup.root)
        assert result.status is CertStatus.GOOD and result.signature_checked
        assert setup.responder.stats.on_demand >= 1
    finally:
        server.stop()


def test_internal_errors_are_internal_error_answers(setup: Setup, server: OcspHttpServer,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> bytes:
        raise RuntimeError("the ledger is on fire")

    monkeypatch.setattr(setup.responder, "respond_parsed", broken)
    request, _ = build_request(setup.cert_id())  # with a nonce: answered on demand
    response = raw(server, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(request) + request)
    assert response.startswith(b"HTTP/1.1 200")
    assert ocsp_status(response) is ocsp.OCSPResponseStatus.INTERNAL_ERROR
    assert b"fire" not in response and b"Traceback" not in response
    assert setup.responder.stats.errors == 1


def test_async_server_and_client_on_one_loop(setup: Setup) -> None:
    async def main() -> None:
        async with OcspHttpServer(("127.0.0.1", 0), setup.responder, refresh_interval=None) as srv:
            result = await query_async(srv.url + "/csms-root", setup.cert_id(), at=datetime.now(UTC),
                                       issuer=setup.root, method="GET", with_nonce=False)
            assert result.status is CertStatus.GOOD
            with pytest.raises(UsageError, match="running event loop"):
                fetch(srv.url, b"\x30\x00")

    asyncio.run(main())


def test_refresher_task_picks_up_a_revocation(setup: Setup) -> None:
    server = serve(setup, refresh_interval=0.05)
    try:
        cert_id = setup.cert_id(algorithm="sha1")
        request, _ = build_request(cert_id, with_nonce=False)
        assert check_response(fetch(server.url, request), cert_id, at=datetime.now(UTC)).status is CertStatus.GOOD
        setup.pki.ledger.revoke(setup.good.serial, "csms-root", datetime.now(UTC), "keyCompromise")
        deadline = time.monotonic() + 20
        while check_response(fetch(server.url, request), cert_id, at=datetime.now(UTC)).status is not CertStatus.REVOKED:
            assert time.monotonic() < deadline, "the refresher did not re-sign the revoked answer"
    finally:
        server.stop()
