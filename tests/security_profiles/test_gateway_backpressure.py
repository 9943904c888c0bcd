"""A station that stops reading while the upstream floods it, over both relays, through real TLS.

The slow station's messages pile up in front of it only as far as the flow-control limits allow: the
gateway's write buffers toward the station stay bounded, the gateway stops reading that station's
upstream connection, and the flood is held at its source (the upstream's own write buffer is over its
high-water mark, its ``send`` waits). Meanwhile another station's heartbeats keep their round trip.
When the slow station reads again, the whole flood arrives, in order.

The kernel's socket buffers on the four sockets of the slow station's path are set small, so that the
flood reaches the gateway's own buffers after a few hundred KiB instead of after tens of MiB of
autotuned kernel buffers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosed

from ocppsec.pki.events.sink import MemorySink
from ocppsec.security_profiles.client import connect
from ocppsec.security_profiles.gateway import Gateway, RelaySession
from ocppsec.security_profiles.handshake import ServerPolicy
from ocppsec.security_profiles.registry import MemoryRegistry

from .conftest import CSO, Pki, RelayCase, free_port
from .helpers import run, tls_context_for

FLOOD = 512  # messages
SIZE = 16 * 1024  # bytes of padding each: 8 MiB in all
KERNEL_BUFFER = 32 * 1024  # SO_SNDBUF / SO_RCVBUF asked for (Linux doubles it)


def flood_message(i: int) -> str:
    return f'[2,"{i}","DataTransfer",{{"vendorId":"flood","data":"{"x" * SIZE}"}}]'


@dataclass
class Flood:
    """The upstream side of the slow station: how far its flood got and whether its writer is paused."""

    sent: int = 0
    paused: bool = False  # websockets' flow control: the upstream's transport buffer is over its high-water mark
    transport: Any = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    sample: Callable[[], None] = lambda: None  # called after every message the upstream sent


class _Observed(ServerConnection):
    """The upstream's server connection, telling ``flood`` when asyncio pauses and resumes its writing."""

    flood: Flood

    def pause_writing(self) -> None:
        super().pause_writing()
        self.flood.paused = True

    def resume_writing(self) -> None:
        super().resume_writing()
        self.flood.paused = False


@contextlib.asynccontextmanager
async def flooding_upstream(port: int, flood: Flood) -> AsyncIterator[None]:
    """Echoes; ``flood`` makes it send FLOOD messages to that station as fast as flow control lets it."""

    async def handler(ws: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for m in ws:
                if m != "flood":
                    await ws.send(m)
                    continue
                flood.transport = ws.transport
                set_buffer(ws.transport, socket.SO_SNDBUF)
                for i in range(FLOOD):
                    await ws.send(flood_message(i))
                    flood.sent = i + 1
                    flood.sample()
                flood.done.set()

    connection = type("Observed", (_Observed,), {"flood": flood})
    async with ws_serve(handler, "127.0.0.1", port, subprotocols=["ocpp2.0.1"], create_connection=connection):  # type: ignore[list-item]
        yield


def set_buffer(transport: Any, option: int) -> None:
    transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, option, KERNEL_BUFFER)


def gateway_buffered(session: RelaySession) -> int:
    """Bytes the gateway holds for the slow station: on their way out in the TLS layer's and the TCP
    transport's write buffers, and (the task relay) received from the upstream and queued in websockets."""
    ws = session.station.websocket
    queued = session.upstream.recv_messages.frames.queue
    return (int(ws.transport.get_write_buffer_size()) + int(ws._tcp_transport.get_write_buffer_size())
            + sum(len(frame.data) for frame in queued))


async def until(condition: Callable[[], bool], what: str, timeout: float = 20) -> None:
    """Wait until ``condition()`` holds, checking it every 5 ms, for at most ``timeout`` seconds."""

    async def check() -> None:
        while not condition():
            await asyncio.sleep(0.005)

    try:
        await asyncio.wait_for(check(), timeout)
    except TimeoutError:
        raise AssertionError(f"not reached within {timeout} s: {what}") from None


def test_slow_reader_is_held_at_the_source_and_others_keep_their_round_trip(
        registry: MemoryRegistry, sink: MemorySink, pki: Pki, port: int, relay: RelayCase) -> None:
    up = free_port()
    flood = Flood()
    gw = Gateway(policy=ServerPolicy(frozenset({3}), cso_name=CSO), registry=registry,
                 upstream=f"ws://127.0.0.1:{up}/upstream", ssl_context=tls_context_for({3}, pki), sink=sink,
                 relay=relay.option)
    peak = {"bytes": 0}

    async def main() -> None:
        async with flooding_upstream(up, flood), gw.serve("127.0.0.1", port):
            slow = await connect(f"wss://localhost:{port}/", "CS-3", profile=3, csms_roots=[pki.csms_root],
                                 client_chain=pki.station("SN-0001"))
            await slow.send("hello")
            assert await slow.recv() == "hello"
            session = next(s for s in gw.sessions if s.station.identity == "CS-3")
            assert str(session.relay) == relay.expected
            set_buffer(slow.transport, socket.SO_RCVBUF)
            set_buffer(session.station.websocket.transport, socket.SO_SNDBUF)
            set_buffer(session.upstream.transport, socket.SO_RCVBUF)
            limits = session.station.websocket.transport.get_write_buffer_limits()
            tcp_limits = session.station.websocket._tcp_transport.get_write_buffer_limits()

            def sample() -> None:
                peak["bytes"] = max(peak["bytes"], gateway_buffered(session))

            flood.sample = sample
            slow.transport.pause_reading()  # the station stops reading
            await slow.send("flood")

            def held() -> bool:
                sample()
                return flood.paused and not session.upstream.transport.is_reading()

            await until(held, "the upstream's writer paused and the gateway no longer reading it")
            # what the buffers on the way hold (kernel, TLS layers, the gateway's) is a small part of the flood
            assert 0 < flood.sent < FLOOD // 4
            # bounded by the flow-control limits, not by the megabytes the upstream wanted to send: the two
            # write-buffer high-water marks, plus what one read of the upstream's socket can bring (its kernel
            # buffer: Linux doubles what was asked) and the message in hand; the task relay also holds
            # websockets' receive queue (max_queue: 16 messages before it stops reading)
            bound = limits[1] + tcp_limits[1] + 2 * KERNEL_BUFFER + 2 * len(flood_message(0))
            if relay.expected == "tasks":
                bound += 16 * len(flood_message(0))
            assert peak["bytes"] <= bound, (peak, bound)
            # the upstream's writer is paused: its transport holds more than its low-water mark, its send() waits
            assert flood.transport.get_write_buffer_size() > flood.transport.get_write_buffer_limits()[0]

            other = await connect(f"wss://localhost:{port}/", "CS-4", profile=3, csms_roots=[pki.csms_root],
                                  client_chain=pki.station("SN-0004"))
            loop = asyncio.get_running_loop()
            round_trips = []
            for k in range(20):
                heartbeat = f'[2,"hb-{k}","Heartbeat",{{}}]'
                start = loop.time()
                await other.send(heartbeat)
                assert await asyncio.wait_for(other.recv(), 5) == heartbeat
                round_trips.append(loop.time() - start)
            assert max(round_trips) < 1.0, round_trips
            # the slow station is still held while the other one was served: no further than the buffers allow
            await until(held, "the slow station's flood held again")
            assert flood.sent < FLOOD // 4
            assert peak["bytes"] <= bound, (peak, bound)

            slow.transport.resume_reading()  # it reads again: the whole flood arrives, in order
            for i in range(FLOOD):
                message = await asyncio.wait_for(slow.recv(), 10)
                assert isinstance(message, str) and json.loads(message)[1] == str(i)
            await asyncio.wait_for(flood.done.wait(), 10)
            assert flood.sent == FLOOD
            await other.send("after")
            assert await asyncio.wait_for(other.recv(), 5) == "after"
            await slow.close()
            await other.close()
        assert gw.stats.relays == {relay.expected: 2}
        assert gw.stats.relayed_down >= FLOOD + 20

    run(main(), timeout=120)
