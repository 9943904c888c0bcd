"""The gateway opens the upstream before the station's 101, forwards its refusal, and tells it what it cannot see."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ocppsec.pki.errors import UsageError
from ocppsec.pki.events.sink import MemorySink
from ocppsec.pki.versions import OcppVersion
from ocppsec.security_profiles.basic_auth import authorization_header
from ocppsec.security_profiles.client import CsmsConnectionError, connect
from ocppsec.security_profiles.gateway import Gateway
from ocppsec.security_profiles.gateway.upstream import STATION_FACT_HEADERS, UpstreamAuth, station_headers, upstream_context
from ocppsec.security_profiles.handshake import ServerPolicy
from ocppsec.security_profiles.registry import MemoryRegistry
from ocppsec.security_profiles.tls import client_context, server_context

from .conftest import CSO, PASSWORD_201, Pki, free_port
from .helpers import run, tls_context_for, wait_event

PEER_LOG = logging.getLogger("tests.peer")  # the test's own peers: their debug log is not the gateway's
FORGED = {"X-OCPP-Security-Profile": "3", "X-OCPP-Client-Cert-SHA256": "00" * 32, "X-OCPP-Client-Cert-Serial": "1",
          "X-OCPP-Client-Cert-Subject": "CN=forged", "X-OCPP-Client-Cert-Not-After": "2099-01-01T00:00:00Z"}


@dataclass
class Upstream:
    requests: list[Request] = field(default_factory=list)
    closes: asyncio.Queue[tuple[str, int | None]] = field(default_factory=asyncio.Queue)
    peer_certs: list[bytes | None] = field(default_factory=list)


@contextlib.asynccontextmanager
async def upstream_server(port: int, *, status: int | None = None, delay: float = 0.0, tls: ssl.SSLContext | None = None,
                          auth: str | None = None, subprotocols: tuple[str, ...] | None = ("ocpp2.0.1", "ocpp1.6"),
                          ) -> AsyncIterator[Upstream]:
    """An echoing CSMS that records each upgrade request, may refuse it with ``status`` or wait ``delay`` first,
    and may require Basic ``auth`` (an exact Authorization value)."""
    seen = Upstream()

    async def process_request(conn: ServerConnection, request: Request) -> Response | None:
        seen.requests.append(request)
        ssl_object = conn.transport.get_extra_info("ssl_object")
        seen.peer_certs.append(ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None)
        if delay:
            await asyncio.sleep(delay)
        if auth is not None and request.headers.get("Authorization") != auth:
            return conn.respond(401, "who are you\n")
        if status is not None:
            return conn.respond(status, "refused\n")
        return None

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                await ws.send(message)
        await ws.wait_closed()
        seen.closes.put_nowait((ws.request.path, ws.close_code))

    async with ws_serve(handler, "127.0.0.1", port,
                        subprotocols=list(subprotocols) if subprotocols is not None else None,  # type: ignore[arg-type]
                        process_request=process_request, ssl=tls, logger=PEER_LOG):
        yield seen


@contextlib.asynccontextmanager
async def gateway(profiles: set[int], registry: MemoryRegistry, sink: MemorySink, pki: Pki, port: int,
                  upstream: str, **kw: Any) -> AsyncIterator[Gateway]:
    gw = Gateway(policy=ServerPolicy(frozenset(profiles), cso_name=CSO), registry=registry, upstream=upstream,
                 ssl_context=tls_context_for(profiles, pki), sink=sink, **kw)
    async with gw.serve("127.0.0.1", port):
        yield gw


async def station2(port: int, **kw: Any) -> Any:
    return await connect(f"wss://localhost:{port}/", "CS-2", profile=2, password=PASSWORD_201,
                         csms_roots=[kw.pop("root")], logger=PEER_LOG, **kw)


@pytest.mark.parametrize(("upstream_status", "station_status"), [(401, 401), (403, 403), (404, 404), (503, 503), (500, 502)])
def test_the_upstreams_refusal_reaches_the_station_instead_of_a_101(upstream_status: int, station_status: int,
                                                                    registry: MemoryRegistry, sink: MemorySink, pki: Pki,
                                                                    port: int) -> None:
    up = free_port()

    async def main() -> None:
        async with upstream_server(up, status=upstream_status) as seen, \
                gateway({2}, registry, sink, pki, port, f"ws://127.0.0.1:{up}/upstream") as gw:
            with pytest.raises(CsmsConnectionError, match=f"HTTP {station_status}"):
                await station2(port, root=pki.csms_root)
            assert [r.path for r in seen.requests] == ["/upstream/CS-2"]
            assert gw.stats.upstream_failures == 1 and gw.stats.relays == {} and not gw.sessions
            if station_status in (401, 403, 404):
                event = await wait_event(sink, "FailedToAuthenticateAtCsms")
                assert event.station_id == "CS-2" and f"HTTP {upstream_status}" in (event.tech_info or "")
            # the same station is relayed once the upstream takes it
        async with upstream_server(up), gateway({2}, registry, sink, pki, port, f"ws://127.0.0.1:{up}/upstream") as gw:
            conn = await station2(port, root=pki.csms_root)
            await conn.send("hello")
            assert await conn.recv() == "hello"
            await conn.close()

    run(main())


def test_an_upstream_without_the_stations_subprotocol_is_502(registry: MemoryRegistry, sink: MemorySink, pki: Pki,
                                                              port: int) -> None:
    up = free_port()

    async def main() -> None:
        async with upstream_server(up, subprotocols=None) as seen, \
                gateway({2}, registry, sink, pki, port, f"ws://127.0.0.1:{up}/upstream") as gw:
            with pytest.raises(CsmsConnectionError, match="HTTP 502"):
                await station2(port, root=pki.csms_root)  # the upstream answers without a subprotocol
            path, code = await asyncio.wait_for(seen.closes.get(), 5)  # and the upstream connection is closed
            assert path == "/upstream/CS-2" and code == 1002
            assert gw.stats.upstream_failures == 1 and not gw.sessions

    run(main())


def test_an_unreachable_or_slow_upstream_is_503(registry: MemoryRegistry, sink: MemorySink, pki: Pki, port: int) -> None:
    up = free_port()

    async def main() -> None:
        accepted: list[asyncio.StreamWriter] = []

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.append(writer)  # reads nothing, answers nothing

        async with gateway({2}, registry, sink, pki, port, f"ws://127.0.0.1:{up}/upstream",
                           upstream_open_timeout=0.5) as gw:
            with pytest.raises(CsmsConnectionError, match="HTTP 503"):  # nothing listens
                await station2(port, root=pki.csms_root)
            server = await asyncio.start_server(silent, "127.0.0.1", up)
            async with server:
                with pytest.raises(CsmsConnectionError, match="HTTP 503"):  # accepts, never answers the upgrade
                    await station2(port, root=pki.csms_root)
                assert len(accepted) == 1
            assert gw.stats.upstream_failures == 2 and gw.stats.relays == {}
        for writer in accepted:
            writer.close()

    run(main())


def test_station_facts_reach_the_upstream_as_headers_and_the_stations_own_do_not(registry: MemoryRegistry,
                                                                                 sink: MemorySink, pki: Pki,
                                                                                 port: int) -> None:
    up = free_port()
    chain = pki.station("SN-0001")
    leaf = x509.load_pem_x509_certificate(Path(chain.certfile).read_bytes())
    der = leaf.public_bytes(Encoding.DER)

    async def main() -> None:
        async with upstream_server(up) as seen, gateway({2, 3}, registry, sink, pki, port, f"ws://127.0.0.1:{up}/upstream"):
            # profile 3, with every fact header forged by the station
            ctx = client_context([pki.csms_root], client_chain=chain)
            async with ws_connect(f"wss://localhost:{port}/CS-3", ssl=ctx, server_hostname="localhost",
                                  subprotocols=["ocpp2.0.1"], additional_headers=FORGED, logger=PEER_LOG) as ws:  # type: ignore[list-item]
                await ws.send("three")
                assert await ws.recv() == "three"
            # profile 2 (no certificate), forged headers too
            headers = {**FORGED, "Authorization": authorization_header("CS-2", PASSWORD_201, OcppVersion.V201)}
            async with ws_connect(f"wss://localhost:{port}/CS-2", ssl=client_context([pki.csms_root]),
                                  server_hostname="localhost", subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
                                  additional_headers=headers, logger=PEER_LOG) as ws:
                await ws.send("two")
                assert await ws.recv() == "two"
        three, two = seen.requests
        facts3 = {name: three.headers.get_all(name) for name in STATION_FACT_HEADERS}
        assert facts3 == {
            "X-OCPP-Security-Profile": ["3"],
            "X-OCPP-Client-Cert-SHA256": [hashlib.sha256(der).hexdigest()],
            "X-OCPP-Client-Cert-Serial": [format(leaf.serial_number, "x")],
            "X-OCPP-Client-Cert-Subject": [f"CN=SN-0001,O={CSO}"],
            "X-OCPP-Client-Cert-Not-After": [leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")],
        }
        assert {name: two.headers.get_all(name) for name in STATION_FACT_HEADERS} == {
            "X-OCPP-Security-Profile": ["2"], **{name: [] for name in STATION_FACT_HEADERS[1:]}}
        assert "Authorization" not in two.headers  # the station's credentials stay at the gateway

    run(main())


@pytest.mark.parametrize("upstream_ping", [None, 4.0])
def test_the_upstream_hop_is_kept_alive_by_tcp_keepalive_and_pings_only_when_asked(
        upstream_ping: float | None, registry: MemoryRegistry, sink: MemorySink, pki: Pki, port: int) -> None:
    import socket

    up = free_port()

    async def main() -> None:
        async with upstream_server(up), gateway({2}, registry, sink, pki, port, f"ws://127.0.0.1:{up}/upstream",
                                                ping_interval=7.0, upstream_ping_interval=upstream_ping) as gw:
            conn = await station2(port, root=pki.csms_root)
            await conn.send("hello")
            assert await conn.recv() == "hello"
            (session,) = gw.sessions
            sock = session.upstream.transport.get_extra_info("socket")
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            if hasattr(socket, "TCP_KEEPIDLE"):
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 7
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3
            assert (session.upstream.keepalive_task is not None) == (upstream_ping is not None)
            # the handshakes' headers are gone once the relay runs (idle memory, ADR 19)
            for connection in (session.upstream, session.station.websocket):
                assert connection.request is not None and connection.response is not None
                assert len(connection.request.headers) == len(connection.response.headers) == 0
            assert session.upstream.ping_interval == upstream_ping
            assert gw.server is not None and gw.server.profile_state.keepalive.interval == 7.0  # type: ignore[attr-defined]
            await conn.close()

    run(main())


def test_header_values_are_printable_ascii(pki: Pki) -> None:
    chain = pki.station("SN-ü%1", o="Ÿ CSO")
    der = x509.load_pem_x509_certificate(Path(chain.certfile).read_bytes()).public_bytes(Encoding.DER)
    headers = dict(station_headers(3, der))
    assert headers["X-OCPP-Client-Cert-Subject"] == "CN=SN-%C3%BC%251,O=%C5%B8 CSO"
    assert dict(station_headers(3, b"\x30\x03not a certificate")) == {  # unreadable: the fingerprint only
        "X-OCPP-Security-Profile": "3", "X-OCPP-Client-Cert-SHA256": hashlib.sha256(b"\x30\x03not a certificate").hexdigest()}


def test_wss_upstream_with_client_certificate_and_basic_auth(registry: MemoryRegistry, sink: MemorySink, pki: Pki,
                                                             port: int, caplog: pytest.LogCaptureFixture) -> None:
    up = free_port()
    tls = server_context(pki.server_chains, client_roots=[pki.cso_root], client_cert="required")
    auth = UpstreamAuth("gateway-1", "upstream-secret-0001:with-colon")
    hop = upstream_context([pki.csms_root], client_chain=pki.station("GW-1"))

    async def main() -> None:
        async with upstream_server(up, tls=tls, auth=auth.header) as seen:
            async with gateway({2}, registry, sink, pki, port, f"wss://localhost:{up}/upstream", upstream_ssl=hop,
                               upstream_auth=auth):
                conn = await station2(port, root=pki.csms_root)
                await conn.send("over tls")
                assert await conn.recv() == "over tls"
                await conn.close()
            async with gateway({2}, registry, sink, pki, port, f"wss://localhost:{up}/upstream", upstream_ssl=hop,
                               upstream_auth=UpstreamAuth("gateway-1", "wrong-secret")):
                with pytest.raises(CsmsConnectionError, match="HTTP 401"):
                    await station2(port, root=pki.csms_root)
            async with gateway({2}, registry, sink, pki, port, f"wss://localhost:{up}/upstream",
                               upstream_ssl=upstream_context([pki.other_root])):  # the upstream's certificate is not trusted
                with pytest.raises(CsmsConnectionError, match="HTTP 503"):
                    await station2(port, root=pki.csms_root)
        first = seen.requests[0]
        assert first.headers["Authorization"] == "Basic " + base64.b64encode(b"gateway-1:upstream-secret-0001:with-colon").decode()
        assert seen.peer_certs[0] is not None
        cert = x509.load_der_x509_certificate(seen.peer_certs[0])
        assert cert.subject.rfc4514_string() == f"CN=GW-1,O={CSO}"

    with caplog.at_level(logging.DEBUG):
        run(main())
    gateway_records = [r for r in caplog.records if not r.name.startswith("tests.")]
    assert gateway_records and all("upstream-secret" not in r.getMessage() and base64.b64encode(
        b"gateway-1:upstream-secret-0001:with-colon").decode() not in r.getMessage() for r in gateway_records)
    assert "upstream-secret" not in repr(auth)


def test_an_upstream_opened_for_a_station_that_went_away_is_closed(registry: MemoryRegistry, sink: MemorySink, pki: Pki,
                                                                    port: int) -> None:
    up = free_port()

    async def main() -> None:
        async with upstream_server(up, delay=0.3) as seen, \
                gateway({1}, registry, sink, pki, port, f"ws://127.0.0.1:{up}/upstream") as gw:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write((f"GET /CS-1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                          "Sec-WebSocket-Protocol: ocpp2.0.1\r\n"
                          f"Authorization: {authorization_header('CS-1', PASSWORD_201, OcppVersion.V201)}\r\n\r\n").encode())
            await writer.drain()
            for _ in range(200):  # the gateway is opening the upstream for it
                if seen.requests:
                    break
                await asyncio.sleep(0.01)
            assert [r.path for r in seen.requests] == ["/upstream/CS-1"]
            writer.close()  # the station leaves before its 101
            path, code = await asyncio.wait_for(seen.closes.get(), 5)  # the upstream connection is closed, not leaked
            assert path == "/upstream/CS-1" and code == 1001
            assert not gw.sessions and gw.stats.connected == 0 and gw.stats.relays == {}
            del reader

    run(main())


def test_the_upstream_open_timeout_must_be_shorter_than_the_stations(registry: MemoryRegistry) -> None:
    with pytest.raises(UsageError, match="shorter than"):
        Gateway(policy=ServerPolicy(frozenset({1})), registry=registry, upstream="ws://127.0.0.1:1/x",
                upstream_open_timeout=10, open_timeout=10)
    with pytest.raises(UsageError, match="USER:PASSWORD"):
        UpstreamAuth.parse("no-colon")
    assert UpstreamAuth.parse("u:p:q") == UpstreamAuth("u", "p:q")

