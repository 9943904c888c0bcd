"""The gateway's frame-level relay (``_splice``): order, fragments, early frames, bad UTF-8, both directions."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosed

from ocppsec.pki.events.sink import MemorySink
from ocppsec.security_profiles._splice import supported
from ocppsec.security_profiles.client import connect
from ocppsec.security_profiles.gateway import Gateway
from ocppsec.security_profiles.handshake import ServerPolicy
from ocppsec.security_profiles.registry import MemoryRegistry

from .conftest import CSO, PASSWORD_201, free_port
from .helpers import run


@contextlib.asynccontextmanager
async def slow_then_echo_upstream(port: int, delay: float) -> AsyncIterator[list[Any]]:
    """Accepts after ``delay`` (so the station's first frames wait in the gateway), then echoes; pushes one CALL first."""
    got: list[Any] = []

    async def process_request(connection: Any, request: Any) -> None:
        await asyncio.sleep(delay)

    async def handler(ws: ServerConnection) -> None:
        await ws.send('[2,"csms-1","GetVariables",{}]')
        with contextlib.suppress(ConnectionClosed):
            async for m in ws:
                got.append(m)
                await ws.send(m)

    async with ws_serve(handler, "127.0.0.1", port, subprotocols=["ocpp2.0.1"], process_request=process_request):  # type: ignore[list-item]
        yield got


def test_splice_keeps_order_fragments_and_early_frames(registry: MemoryRegistry, sink: MemorySink, port: int) -> None:
    up = free_port()
    gw = Gateway(policy=ServerPolicy(frozenset({1}), cso_name=CSO), registry=registry,
                 upstream=f"ws://127.0.0.1:{up}/upstream", sink=sink)

    async def main() -> None:
        async with slow_then_echo_upstream(up, 0.3) as got, gw.serve("127.0.0.1", port):
            c = await connect(f"ws://127.0.0.1:{port}/", "CS-1", profile=1, password=PASSWORD_201)
            assert supported(c)
            early = [f'[2,"{i}","Heartbeat",{{}}]' for i in range(50)]
            for m in early:  # sent while the gateway is still opening the upstream
                await c.send(m)
            await c.send(iter(['[2,"frag",', '"DataTransfer",{"vendorId":"ü"}]']))  # fragmented text message
            await c.send(b"\x00\xffbinary")
            assert await c.recv() == '[2,"csms-1","GetVariables",{}]'  # downstream works too
            echoed = [await c.recv() for _ in range(52)]
            assert echoed == [*early, '[2,"frag","DataTransfer",{"vendorId":"ü"}]', b"\x00\xffbinary"]
            assert got == echoed
            await c.close()
            await asyncio.sleep(0.1)
        assert gw.stats.relayed_up == 52 and gw.stats.relayed_down == 53

    run(main())


def test_splice_invalid_utf8_closes_1007(registry: MemoryRegistry, sink: MemorySink, port: int) -> None:
    up = free_port()
    gw = Gateway(policy=ServerPolicy(frozenset({1}), cso_name=CSO), registry=registry,
                 upstream=f"ws://127.0.0.1:{up}/upstream", sink=sink)

    async def main() -> None:
        async with slow_then_echo_upstream(up, 0) as got, gw.serve("127.0.0.1", port):
            c = await connect(f"ws://127.0.0.1:{port}/", "CS-1", profile=1, password=PASSWORD_201)
            assert await c.recv() == '[2,"csms-1","GetVariables",{}]'
            c.protocol.send_text(b"\xff\xfe not utf-8")  # bypass the client's own encoding
            c.send_data()
            with pytest.raises(ConnectionClosed):
                await c.recv()
            assert c.close_code == 1007
            assert got == []

    run(main())
