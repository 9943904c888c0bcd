"""The gateway: ocpp-package stations through it to an ocpp-package CSMS, relaying and fault handling.

Every relaying test runs over both relays (the ``relay`` fixture: the splice, which ``auto`` must choose,
and the task fallback) and asserts which one the gateway used.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosed

from ocppsec.pki.events.sink import MemorySink
from ocppsec.pki.versions import OcppVersion
from ocppsec.security_profiles.client import CsmsConnectionError, connect
from ocppsec.security_profiles.gateway import Gateway, security_event_from_frame
from ocppsec.security_profiles.handshake import ServerPolicy
from ocppsec.security_profiles.registry import MemoryRegistry

from . import ocpp_peers
from .conftest import CSO, KEY_16, PASSWORD_201, Pki, RelayCase, free_port
from .helpers import run, tls_context_for, wait_event


@contextlib.asynccontextmanager
async def ocpp_csms(port: int) -> AsyncIterator[list[tuple[str, str]]]:
    """An ``ocpp``-package CSMS on plain ws:// (any CSMS: it knows nothing about profiles)."""
    paths: list[tuple[str, str]] = []

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        identity = ws.request.path.rsplit("/", 1)[-1]
        paths.append((ws.request.path, str(ws.subprotocol)))
        cls: Any = ocpp_peers.Csms16 if ws.subprotocol == "ocpp1.6" else ocpp_peers.Csms201
        with contextlib.suppress(ConnectionClosed):
            await cls(identity, ws).start()

    async with ws_serve(handler, "127.0.0.1", port, subprotocols=["ocpp2.0.1", "ocpp1.6"]):  # type: ignore[list-item]
        yield paths


@contextlib.asynccontextmanager
async def raw_upstream(port: int, closes: asyncio.Queue[tuple[str, int | None]] | None = None) -> AsyncIterator[list[Any]]:
    """Echoes every message unchanged. ``close:<code>`` makes it close with that code, ``abort`` drops the
    TCP connection without a close frame, ``push:<n>`` sends n messages of its own (text and binary by
    turns). ``closes`` gets (path, close code) when a connection ends."""
    got: list[Any] = []

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        with contextlib.suppress(ConnectionClosed):
            async for m in ws:
                got.append(m)
                if isinstance(m, str) and m.startswith("close:"):
                    await ws.close(int(m[6:]), "bye")
                    break
                if m == "abort":
                    ws.transport.abort()
                    break
                if isinstance(m, str) and m.startswith("push:"):
                    for i in range(int(m[5:])):
                        await ws.send(f'[2,"up-{i}","GetVariables",{{}}]' if i % 2 == 0 else bytes([i % 256]) * 3)
                    continue
                await ws.send(m)
        await ws.wait_closed()
        if closes is not None:
            closes.put_nowait((ws.request.path, ws.close_code))

    async with ws_serve(handler, "127.0.0.1", port, subprotocols=["ocpp2.0.1", "ocpp1.6"]):  # type: ignore[list-item]
        yield got


@contextlib.asynccontextmanager
async def gateway(profiles: set[int], registry: MemoryRegistry, sink: MemorySink, pki: Pki, port: int, up: int,
                  **kw: Any) -> AsyncIterator[Gateway]:
    gw = Gateway(policy=ServerPolicy(frozenset(profiles), cso_name=CSO), registry=registry,
                 upstream=f"ws://127.0.0.1:{up}/upstream", ssl_context=tls_context_for(profiles, pki), sink=sink, **kw)
    async with gw.serve("127.0.0.1", port):
        yield gw


def relays_now(gw: Gateway) -> list[str]:
    """The relay of every station the gateway is relaying at this moment."""
    return [str(session.relay) for session in gw.sessions]


@pytest.mark.parametrize(
    ("version", "identity", "profiles"),
    [(OcppVersion.V16, "CS16", {2}), (OcppVersion.V201, "CS-3", {3}), (OcppVersion.V201, "CS-2", {2, 3})],
)
def test_ocpp_station_through_gateway_to_ocpp_csms(version: OcppVersion, identity: str, profiles: set[int],
                                                   registry: MemoryRegistry, sink: MemorySink, pki: Pki,
                                                   port: int, relay: RelayCase) -> None:
    up = free_port()
    ocpp_peers.SEEN.clear()

    async def main() -> None:
        async with ocpp_csms(up) as paths, gateway(profiles, registry, sink, pki, port, up, relay=relay.option) as gw:
            if identity == "CS-3":
                conn = await connect(f"wss://localhost:{port}/", identity, profile=3, versions=[version],
                                     csms_roots=[pki.csms_root], client_chain=pki.station("SN-0001"))
            else:
                password = KEY_16 if version is OcppVersion.V16 else PASSWORD_201
                conn = await connect(f"wss://localhost:{port}/", identity, profile=2, versions=[version],
                                     password=password, csms_roots=[pki.csms_root])
            cls: Any = ocpp_peers.Station16 if version is OcppVersion.V16 else ocpp_peers.Station201
            station = cls(identity, conn)
            runner = asyncio.create_task(station.start())
            boot, beat, _ev = await station.run_session()
            assert boot.status == "Accepted" and beat.current_time
            assert relays_now(gw) == [relay.expected]
            runner.cancel()
            await conn.close()
            assert paths == [(f"/upstream/{identity}", version.subprotocol)]
        actions = [(who, action) for who, action, _ in ocpp_peers.SEEN]
        assert actions == [(identity, "BootNotification"), (identity, "Heartbeat"), (identity, "SecurityEventNotification")]
        event = await wait_event(sink, "TamperDetectionActivated")
        assert event.station_id == identity and event.source == "ocpp" and event.tech_info == "lid opened"
        assert event.ocpp_version is version

    run(main())


def test_station_event_frames_go_through_the_one_parser(caplog: pytest.LogCaptureFixture) -> None:
    at = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

    def parse(frame: str | bytes) -> Any:
        return security_event_from_frame(frame, station_id="CS-1", version=OcppVersion.V16, at=at)

    event = parse('[2,"1","SecurityEventNotification",{"type":"InvalidCentralSystemCertificate","timestamp":"2026-11-23T11:00:00Z"}]')
    assert event.canonical_type == "InvalidCsmsCertificate" and event.critical is False  # 1.6 flag, catalogue's
    assert parse(b'[2,"1","SecurityEventNotification",{}]') is None  # binary frames are relayed, not read
    assert parse('[2,"1","Heartbeat",{}]') is None and parse("SecurityEventNotification, but no JSON") is None
    with caplog.at_level(logging.INFO, logger="ocppsec.security_profiles.gateway"):
        # unusable: logged at info and dropped, never raised into the relay
        assert parse('[2,"1","SecurityEventNotification",{"type":"ResetOrReboot","timestamp":"0001-01-01T00:00:00+05:00"}]') is None
        assert parse('[2,"1","SecurityEventNotification",["no", "object"]]') is None
    assert [r.levelno for r in caplog.records] == [logging.INFO, logging.INFO]
    assert "out of range" in caplog.records[0].getMessage()


def test_frames_relayed_unchanged_both_ways_and_close_codes(registry: MemoryRegistry, sink: MemorySink, pki: Pki,
                                                            port: int, relay: RelayCase) -> None:
    up = free_port()

    async def main() -> None:
        closes: asyncio.Queue[tuple[str, int | None]] = asyncio.Queue()
        async with raw_upstream(up, closes) as got, gateway({1}, registry, sink, pki, port, up, relay=relay.option) as gw:
            c = await connect(f"ws://127.0.0.1:{port}/", "CS-1", profile=1, password=PASSWORD_201)
            odd = '[2,"x","Unknown",{"ü":1}]  '
            await c.send(odd)
            assert await c.recv() == odd
            assert relays_now(gw) == [relay.expected]
            await c.send(b"\x00\x01binary")
            assert await c.recv() == b"\x00\x01binary"
            await c.send("push:4")  # the upstream's own messages reach the station, text as text, binary as binary
            assert [await c.recv() for _ in range(4)] == ['[2,"up-0","GetVariables",{}]', b"\x01\x01\x01",
                                                          '[2,"up-2","GetVariables",{}]', b"\x03\x03\x03"]
            await c.send("close:4001")  # the upstream's close code reaches the station
            with pytest.raises(ConnectionClosed):
                await c.recv()
            assert c.close_code == 4001 and c.close_reason == "bye"
            assert got == [odd, b"\x00\x01binary", "push:4", "close:4001"]
            assert await asyncio.wait_for(closes.get(), 5) == ("/upstream/CS-1", 4001)
            # the station's normal close reaches the upstream with its code
            c = await connect(f"ws://127.0.0.1:{port}/", "CS-1", profile=1, password=PASSWORD_201)
            await c.send("hello")
            assert await c.recv() == "hello"
            await c.close(1000)
            assert await asyncio.wait_for(closes.get(), 5) == ("/upstream/CS-1", 1000)
        assert gw.stats.relays == {relay.expected: 2}
        assert gw.stats.relayed_up == 5 and gw.stats.relayed_down == 7
        assert gw.stats.per_close_code == {4001: 1, 1000: 1}

    run(main())


def test_upstream_down_refuses_503_upstream_gone_closes_1011_and_gateway_keeps_serving(
        registry: MemoryRegistry, sink: MemorySink, pki: Pki, port: int, relay: RelayCase) -> None:
    up = free_port()

    async def main() -> None:
        async with gateway({3}, registry, sink, pki, port, up, upstream_open_timeout=2, relay=relay.option) as gw:
            with pytest.raises(CsmsConnectionError, match="HTTP 503"):  # refused before any 101
                await connect(f"wss://localhost:{port}/", "CS-3", profile=3, csms_roots=[pki.csms_root],
                              client_chain=pki.station("SN-0001"))
            assert gw.stats.upstream_failures == 1 and gw.stats.relays == {}
            closes: asyncio.Queue[tuple[str, int | None]] = asyncio.Queue()
            async with raw_upstream(up, closes):
                c = await connect(f"wss://localhost:{port}/", "CS-3", profile=3, csms_roots=[pki.csms_root],
                                  client_chain=pki.station("SN-0001"))
                other = await connect(f"wss://localhost:{port}/", "CS-3", profile=3, csms_roots=[pki.csms_root],
                                      client_chain=pki.station("SN-0001"))
                for conn in (c, other):
                    await conn.send("ping")
                    assert await conn.recv() == "ping"
                assert relays_now(gw) == [relay.expected] * 2
                await c.send("abort")  # the upstream vanishes without a close frame: 1011 for that station only
                with pytest.raises(ConnectionClosed):
                    await c.recv()
                assert c.close_code == 1011
                await other.send("still here")
                assert await other.recv() == "still here"
                await other.close()
        assert gw.stats.relays == {relay.expected: 2}
        assert gw.stats.per_close_code == {1006: 1, 1000: 1}  # upstream gone (no close frame); station's normal close

    run(main())


def test_oversized_frame_closes_only_that_station(registry: MemoryRegistry, sink: MemorySink, pki: Pki, port: int,
                                                  relay: RelayCase) -> None:
    up = free_port()

    async def main() -> None:
        closes: asyncio.Queue[tuple[str, int | None]] = asyncio.Queue()
        async with raw_upstream(up, closes) as got, gateway({1}, registry, sink, pki, port, up, max_size=4096,
                                                            relay=relay.option) as gw:
            big = await connect(f"ws://127.0.0.1:{port}/", "CS-1", profile=1, password=PASSWORD_201, max_size=2**20)
            other = await connect(f"ws://127.0.0.1:{port}/", "CS-2", profile=1, password=PASSWORD_201)
            await big.send("fits")
            assert await big.recv() == "fits"
            await other.send("fits too")
            assert await other.recv() == "fits too"
            assert relays_now(gw) == [relay.expected] * 2
            await big.send("y" * 5000)
            with pytest.raises(ConnectionClosed):
                await big.recv()
            assert big.close_code == 1009
            assert await asyncio.wait_for(closes.get(), 5) == ("/upstream/CS-1", 1001)  # the gateway closed its side
            await other.send("still here")
            assert await other.recv() == "still here"
            assert "y" * 5000 not in got
        assert gw.stats.relays == {relay.expected: 2}

    registry.update(replace(registry.get("CS-2"), profile=1))  # type: ignore[arg-type]
    run(main())


def test_handshake_failures_reach_the_event_sink(registry: MemoryRegistry, sink: MemorySink, pki: Pki, port: int) -> None:
    up = free_port()

    async def main() -> None:
        async with raw_upstream(up), gateway({2, 3}, registry, sink, pki, port, up):
            with pytest.raises(Exception, match="403"):
                await connect(f"wss://localhost:{port}/", "CS-3", profile=3, csms_roots=[pki.csms_root],
                              client_chain=pki.station("SN-0004"))
        ev = await wait_event(sink, "InvalidChargingStationCertificate")
        assert ev.station_id == "CS-3"

    run(main())


@pytest.mark.parametrize("profile", [1, 3])
def test_a_closed_station_is_freed_without_the_cyclic_collector(registry: MemoryRegistry, sink: MemorySink, pki: Pki,
                                                                 port: int, relay: RelayCase, profile: int) -> None:
    """With the collector off, a relayed station's connection, the gateway's upstream connection and the splice
    are freed by reference counting once the station has gone: nothing of theirs is left in a reference cycle
    (at 10,000 stations each full collection that freed them took seconds, ADR 23)."""
    import gc
    import weakref

    up = free_port()

    async def main() -> None:
        async with raw_upstream(up), gateway({profile}, registry, sink, pki, port, up, relay=relay.option) as gw:
            for _ in range(2):  # the second time round, nothing is created for the first time (caches, loggers)
                if profile == 1:
                    c = await connect(f"ws://127.0.0.1:{port}/", "CS-1", profile=1, password=PASSWORD_201)
                else:
                    c = await connect(f"wss://localhost:{port}/", "CS-3", profile=3, csms_roots=[pki.csms_root],
                                      client_chain=pki.station("SN-0001"))
                await c.send('[2,"1","Heartbeat",{}]')
                assert await c.recv() == '[2,"1","Heartbeat",{}]'
                [session] = gw.sessions
                assert str(session.relay) == relay.expected
                freed = {name: asyncio.Event() for name in ("station", "upstream", "splice")}
                weakref.finalize(session.station.websocket, freed["station"].set)
                weakref.finalize(session.upstream, freed["upstream"].set)
                if session.splice is not None:
                    weakref.finalize(session.splice, freed["splice"].set)
                else:
                    freed["splice"].set()
                del session
                gc.collect()
                gc.disable()
                try:
                    await c.close()
                    for name, event in freed.items():
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(event.wait(), 5)
                        assert event.is_set(), f"the {name} connection was not freed by reference counting"
                finally:
                    gc.enable()

    run(main())
