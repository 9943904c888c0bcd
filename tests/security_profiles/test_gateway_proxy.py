"""The gateway looks the upstream's proxy up in the environment once, when it is made (its UpstreamOpener), and every station's
upstream connection then goes through that proxy (or none): websockets would otherwise repeat the lookup
on every connect."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from ocppsec.pki.errors import UsageError
from ocppsec.pki.events.sink import MemorySink
from ocppsec.security_profiles.client import connect
from ocppsec.security_profiles.gateway import Gateway
from ocppsec.security_profiles.handshake import ServerPolicy
from ocppsec.security_profiles.registry import MemoryRegistry

from .conftest import CSO, PASSWORD_201, free_port
from .helpers import run
from .test_gateway_splice import slow_then_echo_upstream

PROXY_VARIABLES = ("ws_proxy", "http_proxy", "https_proxy", "all_proxy", "socks_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@contextlib.asynccontextmanager
async def connect_proxy(port: int) -> AsyncIterator[list[str]]:
    """An HTTP CONNECT proxy on 127.0.0.1:``port``; yields the CONNECT targets it was asked for."""
    targets: list[str] = []

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        target = head.split(" ", 2)[1]
        targets.append(target)
        host, _, target_port = target.rpartition(":")
        up_reader, up_writer = await asyncio.open_connection(host, int(target_port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        yield targets


def _gateway(registry: MemoryRegistry, sink: MemorySink, up: int) -> Gateway:
    return Gateway(policy=ServerPolicy(frozenset({1}), cso_name=CSO), registry=registry,
                   upstream=f"ws://127.0.0.1:{up}/upstream", sink=sink)


def test_the_proxy_from_the_environment_is_looked_up_once_and_used(registry: MemoryRegistry, sink: MemorySink, port: int,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    up, proxy = free_port(), free_port()
    monkeypatch.setenv("ws_proxy", f"http://127.0.0.1:{proxy}")
    gw = _gateway(registry, sink, up)
    monkeypatch.delenv("ws_proxy")  # later changes to the environment are not looked at

    async def main() -> None:
        async with connect_proxy(proxy) as targets, slow_then_echo_upstream(up, 0), gw.serve("127.0.0.1", port):
            for identity in ("CS-1", "CS-1"):  # one after the other
                c = await connect(f"ws://127.0.0.1:{port}/", identity, profile=1, password=PASSWORD_201)
                assert await c.recv() == '[2,"csms-1","GetVariables",{}]'
                await c.send('[2,"1","Heartbeat",{}]')
                assert await c.recv() == '[2,"1","Heartbeat",{}]'
                await c.close()
            assert targets == [f"127.0.0.1:{up}", f"127.0.0.1:{up}"]

    run(main())


def test_without_a_proxy_in_the_environment_none_is_used(registry: MemoryRegistry, sink: MemorySink, port: int) -> None:
    up = free_port()
    gw = _gateway(registry, sink, up)

    async def main() -> None:
        async with slow_then_echo_upstream(up, 0), gw.serve("127.0.0.1", port):
            c = await connect(f"ws://127.0.0.1:{port}/", "CS-1", profile=1, password=PASSWORD_201)
            assert await c.recv() == '[2,"csms-1","GetVariables",{}]'
            await c.close()
        assert gw.stats.relayed_down == 1

    run(main())


def test_an_upstream_that_is_no_websocket_url_is_a_usage_error(registry: MemoryRegistry, sink: MemorySink) -> None:
    with pytest.raises(UsageError, match="not a WebSocket URL"):
        Gateway(policy=ServerPolicy(frozenset({1}), cso_name=CSO), registry=registry, upstream="ws://[::1/upstream", sink=sink)
