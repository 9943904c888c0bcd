"""Hostile clients against serve() and the gateway: real TLS, real websockets, real openssl.

- a TLS 1.0 / 1.1 ClientHello gets the protocol_version alert (and the InvalidTLSVersion event);
- no log record, at DEBUG on every logger, carries a station's Basic credential or password;
- handshakes for identities nobody registered are counted and recorded as one event per window, while a
  registered station's failures are still recorded one by one;
- connections flooding pings are closed with 1008, and a station heartbeating meanwhile keeps its round
  trip low.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import secrets
import shutil
import socket
import ssl
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode

from ocppsec.pki.events.sink import MemorySink
from ocppsec.security_profiles.client import CsmsConnectionError, connect
from ocppsec.security_profiles.gateway import Gateway
from ocppsec.security_profiles.handshake import ServerPolicy
from ocppsec.security_profiles.redact import CredentialFilter, redact
from ocppsec.security_profiles.registry import MemoryRegistry, StationRecord
from ocppsec.security_profiles.tls import client_context

from .conftest import CSO, FAST, PASSWORD_201, Pki, RelayCase, free_port
from .helpers import run, running, tls_context_for, wait_event

BOTH = pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"], indirect=True)


# -- TLS 1.0 / 1.1 -----------------------------------------------------------------------------------------
def _legacy_client(version: ssl.TLSVersion) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = version
    return ctx


@BOTH
@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_an_old_tls_client_gets_the_protocol_version_alert(version: str, registry: MemoryRegistry, sink: MemorySink,
                                                           pki: Pki, port: int, loop_kind: str) -> None:
    async def main() -> tuple[str, str]:
        async with running({2}, registry, sink, pki, port):
            openssl_out = ""
            if shutil.which("openssl"):
                flag = "-tls1" if version == "TLSv1" else "-tls1_1"
                proc = await asyncio.create_subprocess_exec(
                    "openssl", "s_client", flag, "-cipher", "DEFAULT@SECLEVEL=0", "-connect", f"127.0.0.1:{port}",
                    stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
                out, _ = await asyncio.wait_for(proc.communicate(), 20)
                openssl_out = out.decode(errors="replace")

            def python_client() -> str:
                ctx = _legacy_client(getattr(ssl.TLSVersion, version))
                with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                    try:
                        ctx.wrap_socket(raw).close()
                    except ssl.SSLError as exc:
                        return str(exc.reason)
                return "handshake succeeded"

            reason = await asyncio.to_thread(python_client)
            await wait_event(sink, "InvalidTLSVersion")
            return openssl_out, reason

    openssl_out, reason = run(main())
    assert reason == "TLSV1_ALERT_PROTOCOL_VERSION", reason  # not an EOF: the alert arrived
    if openssl_out:
        assert "alert protocol version" in openssl_out, openssl_out[-500:]
    assert all(e.type == "InvalidTLSVersion" for e in sink.events) and len(sink.events) >= 1


# -- credentials in logs -----------------------------------------------------------------------------------------
def test_redact_replaces_header_values_and_basic_tokens() -> None:
    token = base64.b64encode(b"CS-2:" + PASSWORD_201.encode()).decode()
    for text in (f"< Authorization: Basic {token}", f"headers={{'authorization': 'Basic {token}'}}", f"Basic {token}"):
        cleaned = redact(text)
        assert token not in cleaned and "[redacted]" in cleaned
    assert redact("heartbeat from CS-2") == "heartbeat from CS-2"


def test_no_log_record_carries_a_credential_at_debug(registry: MemoryRegistry, sink: MemorySink, pki: Pki, port: int,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    token = base64.b64encode(b"CS-2:" + PASSWORD_201.encode()).decode()
    config_frame = f'[2,"7","ChangeConfiguration",{{"key":"AuthorizationKey","value":"{PASSWORD_201}"}}]'

    async def main() -> list[str]:
        async with running({2}, registry, sink, pki, port):
            conn = await connect(f"wss://localhost:{port}/", "CS-2", profile=2, password=PASSWORD_201,
                                 csms_roots=[pki.csms_root])
            await conn.send(config_frame)
            answer = await conn.recv()
            await conn.close()
            with contextlib.suppress(Exception):  # a wrong password logs the refusal too
                await connect(f"wss://localhost:{port}/", "CS-2", profile=2, password=PASSWORD_201[::-1],
                              csms_roots=[pki.csms_root])
            return [str(answer)]

    caplog.set_level(logging.DEBUG)
    for name in ("websockets", "websockets.server", "websockets.client", "ocppsec"):
        caplog.set_level(logging.DEBUG, logger=name)
    answers = run(main())
    assert PASSWORD_201 in answers[0]  # the frame went through (echo), so it was there to be logged
    messages = [r.getMessage() for r in caplog.records]
    assert any("Authorization" in m for m in messages), "websockets logged no headers: the test saw nothing"
    assert any("TEXT [" in m for m in messages)
    for text in [*messages, caplog.text]:
        assert token not in text and PASSWORD_201 not in text and PASSWORD_201[::-1] not in text
    assert all(any(isinstance(f, CredentialFilter) for f in logging.getLogger(n).filters)
               for n in ("websockets.server", "websockets.client"))


# -- identities nobody registered ------------------------------------------------------------------------------
def test_unregistered_identities_are_one_rate_limited_event(registry: MemoryRegistry, sink: MemorySink, pki: Pki,
                                                            port: int) -> None:
    names = [f"x-{secrets.token_hex(4)}" for _ in range(40)]

    async def main() -> Any:
        async with running({2}, registry, sink, pki, port, unknown_window=3.0) as server:
            state = server.profile_state
            for name in names:
                with pytest.raises(CsmsConnectionError):
                    await connect(f"wss://localhost:{port}/", name, profile=2, password=PASSWORD_201,
                                  csms_roots=[pki.csms_root])

            def curl_health() -> bytes:  # curl -k https://gateway/health
                ctx = ssl.create_default_context()
                ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
                with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, ctx.wrap_socket(raw) as tls:
                    tls.sendall(b"GET /health HTTP/1.1\r\nHost: gateway\r\n\r\n")
                    return tls.recv(200)

            assert b" 401 " in await asyncio.to_thread(curl_health)
            for _ in range(2):  # a registered station's failures: one event each
                with contextlib.suppress(Exception):
                    await connect(f"wss://localhost:{port}/", "CS-2", profile=2, password=PASSWORD_201[::-1],
                                  csms_roots=[pki.csms_root])
            first = [e for e in sink.events if e.station_id.startswith("peer:")]
            assert len(first) == 1 and (first[0].tech_info or "").startswith("1 handshake(s) refused")
            deadline = asyncio.get_running_loop().time() + 15
            while sum(_count(e.tech_info) for e in sink.events if e.station_id.startswith("peer:")) < 41:
                assert asyncio.get_running_loop().time() < deadline, "no summary at the end of the window"
                await asyncio.sleep(0.05)
            return state

    state = run(main(), timeout=60)
    peer_events = [e for e in sink.events if e.station_id.startswith("peer:")]
    assert 2 <= len(peer_events) <= 3  # the first at once, then one per window (the burst may span two)
    assert all(e.type == "FailedToAuthenticateAtCsms" for e in peer_events)
    assert {e.station_id for e in peer_events} == {"peer:127.0.0.1"}
    assert "unregistered identity" in (peer_events[-1].tech_info or "")
    assert sum(_count(e.tech_info) for e in peer_events) == 41
    assert not any(e.station_id in names or e.station_id == "health" for e in sink.events)
    assert [e.station_id for e in sink.events].count("CS-2") == 2  # registered: one event per failure
    assert state.refusals["unregistered identity"] == 41
    assert sum(state.unknown.totals.values()) == 41 and state.unknown.pending == 0


def _count(tech_info: str | None) -> int:
    return int((tech_info or "0").split(" ", 1)[0])


# -- control-frame floods ------------------------------------------------------------------------------------------
PING = Frame(Opcode.PING, b"").serialize(mask=True, extensions=[])


@contextlib.asynccontextmanager
async def heartbeat_upstream(port: int) -> AsyncIterator[None]:
    async def handler(ws: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for m in ws:
                await ws.send(str(m).replace("[2,", "[3,", 1))

    async with ws_serve(handler, "127.0.0.1", port, subprotocols=["ocpp2.0.1"]):  # type: ignore[list-item]
        yield


@BOTH
def test_ping_floods_are_closed_and_do_not_starve_a_station(pki: Pki, port: int, loop_kind: str, relay: RelayCase,
                                                            record_property: Any) -> None:
    stations = [StationRecord(f"CS-{i}", 2, password_hash=_hash()) for i in range(5)]
    registry = MemoryRegistry(stations)
    up = free_port()
    client_tls = client_context([pki.csms_root])
    auth = {"Authorization": "Basic " + base64.b64encode(b"CS-%d:" % 0 + PASSWORD_201.encode()).decode()}

    async def open_flood(n: int) -> Any:
        headers = {"Authorization": "Basic " + base64.b64encode(f"CS-{n}:{PASSWORD_201}".encode()).decode()}
        return await ws_connect(f"wss://localhost:{port}/CS-{n}", ssl=client_tls, subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
                                additional_headers=headers, ping_interval=None, max_queue=None)

    async def flood(ws: Any) -> int | None:
        for _ in range(50):  # 50,000 pings, 1,000 per write
            if ws.transport.is_closing():
                break
            ws.transport.write(PING * 1000)
            await asyncio.sleep(0)
        with contextlib.suppress(ConnectionClosed):
            await asyncio.wait_for(ws.wait_closed(), 20)
        return ws.close_code  # type: ignore[no-any-return]

    async def heartbeats(ws: Any, count: int) -> list[float]:
        rtts = []
        for i in range(count):
            start = time.perf_counter()
            await ws.send(f'[2,"hb-{i}","Heartbeat",{{}}]')
            answer = await ws.recv()
            rtts.append(time.perf_counter() - start)
            assert f'"hb-{i}"' in str(answer)
            await asyncio.sleep(0.01)
        return rtts

    async def main() -> tuple[list[int | None], list[float], Any]:
        gw = Gateway(policy=ServerPolicy(frozenset({2}), cso_name=CSO), registry=registry,
                     upstream=f"ws://127.0.0.1:{up}/u", ssl_context=tls_context_for({2}, pki), sink=MemorySink(),
                     relay=relay.option)
        async with heartbeat_upstream(up), gw.serve("127.0.0.1", port) as server:
            async with ws_connect(f"wss://localhost:{port}/CS-0", ssl=client_tls, subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
                                  additional_headers=auth) as station:
                floods = [await open_flood(n) for n in range(1, 5)]  # handshakes first: the floods are measured
                await heartbeats(station, 5)  # warm
                beat = asyncio.create_task(heartbeats(station, 150))
                codes = await asyncio.gather(*(flood(ws) for ws in floods))
                rtts = await beat
                assert [str(session.relay) for session in gw.sessions] == [relay.expected]
                assert gw.handshake_counters()["control_floods"] == 4
                assert gw.handshake_counters()["accepted"] == 5
            return list(codes), rtts, server.profile_state

    codes, rtts, state = run(main(), timeout=90)
    assert codes == [1008, 1008, 1008, 1008]
    assert state.control_floods == 4
    p99 = statistics.quantiles(rtts, n=100)[98]
    record_property("heartbeat_p99_ms", round(p99 * 1000, 2))
    assert p99 < 0.05, f"heartbeat p99 {p99 * 1000:.1f} ms while four connections flooded pings"


def _hash() -> str:
    from ocppsec.security_profiles.basic_auth import hash_password

    return hash_password(PASSWORD_201, cost=FAST)



# -- half-open connections -----------------------------------------------------------------------------------------
@BOTH
def test_half_open_connections_are_released_at_once_and_memory_returned(registry: MemoryRegistry, sink: MemorySink,
                                                                        pki: Pki, port: int, loop_kind: str) -> None:
    """Connections that never finish their ClientHello: once the handshake timeout closed them, no connection
    object is left (no reference cycle waits for the garbage collector), and after the burst serve() hands
    glibc's freed memory back once."""
    import gc

    async def main() -> tuple[int, int, int]:
        async with running({2}, registry, sink, pki, port, tls_handshake_timeout=0.3, trim_memory_after=20) as server:
            state = server.profile_state
            state.memory.quiet = 0.2
            socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(30)]
            for i, s in enumerate(socks):
                if i % 2:
                    s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # the start of a ClientHello
            gc.disable()
            try:
                def closed_by_server() -> None:
                    for s in socks:
                        s.settimeout(10)
                        with contextlib.suppress(OSError):
                            while s.recv(1024):
                                pass
                        s.close()

                await asyncio.to_thread(closed_by_server)
                deadline = asyncio.get_running_loop().time() + 10
                while state.pending_tls or state.memory.trims == 0:
                    assert asyncio.get_running_loop().time() < deadline, (len(state.pending_tls), state.memory.trims)
                    await asyncio.sleep(0.05)
                alive = sum(1 for o in gc.get_objects() if getattr(type(o), "_state", None) is state)  # this server's
            finally:
                gc.enable()
            return alive, state.memory.trims, len(state.pending_tls)

    alive, trims, pending = run(main())
    assert (alive, pending) == (0, 0)
    assert trims == 1


# -- data floods: bounded work per loop turn -----------------------------------------------------------------------
@BOTH
def test_a_data_flood_is_handled_in_slices_in_order_without_starving_others(pki: Pki, port: int, loop_kind: str,
                                                                            record_property: Any) -> None:
    """Four profile-1 connections each write 15,000 messages (1.5 MB) in five writes; plain TCP hands the server
    up to 256 KiB per read. Every message arrives, in order, and another station's echo round trip stays low."""
    registry = MemoryRegistry([StationRecord(f"CS-{i}", 1, password_hash=_hash()) for i in range(5)])
    per_write, writes = 3000, 5
    counts: dict[str, int] = {}
    done = {f"CS-{i}": asyncio.Event() for i in range(1, 5)}

    async def handler(station: Any) -> None:
        if station.identity == "CS-0":
            async for m in station:
                await station.send(m)
            return
        expected = 0
        async for m in station:
            assert m == f"m{expected:07d}".ljust(100, "."), (m[:20], expected)  # whole and in order
            expected += 1
            if expected == per_write * writes:
                counts[station.identity] = expected
                done[station.identity].set()

    def frames(start: int) -> bytes:
        return b"".join(Frame(Opcode.TEXT, f"m{i:07d}".ljust(100, ".").encode()).serialize(mask=True, extensions=[])
                        for i in range(start, start + per_write))

    async def main() -> list[float]:
        blob = [frames(k * per_write) for k in range(writes)]
        async with running({1}, registry, MemorySink(), pki, port, handler=handler):
            def url(n: int) -> str:
                return f"ws://127.0.0.1:{port}/CS-{n}"

            auth = {n: {"Authorization": "Basic " + base64.b64encode(f"CS-{n}:{PASSWORD_201}".encode()).decode()}
                    for n in range(5)}
            station = await ws_connect(url(0), subprotocols=["ocpp2.0.1"], additional_headers=auth[0])  # type: ignore[list-item]
            floods = [await ws_connect(url(n), subprotocols=["ocpp2.0.1"], additional_headers=auth[n])  # type: ignore[list-item]
                      for n in range(1, 5)]
            rtts: list[float] = []

            async def beat() -> None:
                for i in range(150):
                    start = time.perf_counter()
                    await station.send(f"hb-{i}")
                    assert await station.recv() == f"hb-{i}"
                    rtts.append(time.perf_counter() - start)
                    await asyncio.sleep(0.005)

            beating = asyncio.create_task(beat())
            for chunk in blob:
                for ws in floods:
                    ws.transport.write(chunk)
                await asyncio.sleep(0)
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in done.values())), 60)
            await beating
            for ws in (station, *floods):
                await ws.close()
            return rtts

    rtts = run(main(), timeout=90)
    assert counts == dict.fromkeys(done, per_write * writes)
    p99 = statistics.quantiles(rtts, n=100)[98]
    record_property("echo_p99_ms", round(p99 * 1000, 2))
    assert p99 < 0.05, f"echo p99 {p99 * 1000:.1f} ms while four connections flooded data"


def test_a_refusal_before_the_registry_step_is_not_filed_under_a_made_up_name(registry: MemoryRegistry, sink: MemorySink,
                                                                              pki: Pki, port: int) -> None:
    """The TLS context allows a suite the policy does not (``extra_suites``): decide() refuses at its transport step,
    before it asks the registry. A made-up name is still not a station in the security log; a registered one is."""
    from ocppsec.security_profiles.server import serve
    from ocppsec.security_profiles.tls import server_context

    suite = "ECDHE-RSA-AES128-GCM-SHA256"

    async def main() -> None:
        async def handler(station: Any) -> None:
            return None

        ctx = server_context(pki.server_chains, extra_suites=[suite])
        async with serve(handler, "127.0.0.1", port, policy=ServerPolicy(frozenset({2})), registry=registry,
                         ssl_context=ctx, sink=sink):
            client = client_context([pki.csms_root], suites=[suite])
            client.maximum_version = ssl.TLSVersion.TLSv1_2
            for name in ("CS-2", "made-up-1", "made-up-2", "made-up-3"):
                with pytest.raises(CsmsConnectionError):  # refused with 400
                    await connect(f"wss://localhost:{port}/", name, profile=2, password=PASSWORD_201, ssl_context=client)

    run(main())
    assert [e.station_id for e in sink.events if e.type == "InvalidTLSCipherSuite"] == ["CS-2"]
    peer = [e for e in sink.events if e.station_id.startswith("peer:")]
    assert len(peer) == 1 and (peer[0].tech_info or "").startswith("1 handshake(s) refused")
    assert not any(e.station_id.startswith("made-up") for e in sink.events)
