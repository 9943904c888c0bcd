"""The server's keepalive: one timer pings only the stations that have been silent, and fails the ones
that stop answering (1011), as websockets' per-connection keepalive did for every station."""

from __future__ import annotations

import asyncio
from typing import Any

from websockets.frames import Frame, Opcode

from ocppsec.pki.events.sink import MemorySink
from ocppsec.security_profiles.basic_auth import hash_password
from ocppsec.security_profiles.client import connect
from ocppsec.security_profiles.registry import MemoryRegistry, StationRecord
from ocppsec.security_profiles.server import StationConnection

from .conftest import FAST, PASSWORD_201, Pki
from .helpers import run, running

INTERVAL = 0.3


def test_a_silent_station_is_pinged_and_a_chatty_one_is_not(registry: MemoryRegistry, sink: MemorySink, pki: Pki,
                                                             port: int) -> None:
    registry.add(StationRecord("CS-5", 1, password_hash=hash_password(PASSWORD_201, cost=FAST)))

    async def main() -> None:
        async with running({1}, registry, sink, pki, port, ping_interval=INTERVAL, ping_timeout=INTERVAL) as server:
            keepalive = server.profile_state.keepalive
            chatty = await connect(f"ws://127.0.0.1:{port}/", "CS-1", profile=1, password=PASSWORD_201,
                                   ping_interval=INTERVAL / 4)  # pings the server itself, as OCPP stations do
            silent = await connect(f"ws://127.0.0.1:{port}/", "CS-5", profile=1, password=PASSWORD_201,
                                   ping_interval=None)
            pings: asyncio.Queue[bytes] = asyncio.Queue()  # the server's pings the silent station got (and answered)
            real = silent.protocol.recv_frame

            def recv_frame(frame: Frame) -> None:
                if frame.opcode is Opcode.PING:
                    pings.put_nowait(bytes(frame.data))
                real(frame)

            silent.protocol.recv_frame = recv_frame
            for _ in range(3):
                await asyncio.wait_for(pings.get(), INTERVAL * 4)
            assert keepalive.pings == 3 and keepalive.timeouts == 0  # all three to the silent one
            for station in (chatty, silent):
                await station.send("still here")
                assert await station.recv() == f"{station.request.path.strip('/')}|1|2.0.1|still here"
                await station.close()

    run(main())


def test_a_station_that_stops_answering_is_failed_with_1011(registry: MemoryRegistry, sink: MemorySink, pki: Pki,
                                                              port: int) -> None:
    ended: asyncio.Queue[StationConnection] = asyncio.Queue()

    async def handler(station: StationConnection) -> None:
        try:
            async for _ in station:
                pass
        finally:
            ended.put_nowait(station)

    async def main() -> None:
        async with running({1}, registry, sink, pki, port, handler, ping_interval=INTERVAL, ping_timeout=INTERVAL,
                           close_timeout=0.5) as server:
            station = await connect(f"ws://127.0.0.1:{port}/", "CS-1", profile=1, password=PASSWORD_201,
                                    ping_interval=None)
            station.transport.pause_reading()  # hung: it reads nothing, so it answers no ping
            gone = await asyncio.wait_for(ended.get(), INTERVAL * 10)
            close: Any = gone.websocket.protocol.close_sent
            assert (close.code, close.reason) == (1011, "keepalive ping timeout")
            keepalive = server.profile_state.keepalive
            assert keepalive.timeouts == 1 and len(keepalive) == 0
            station.transport.abort()

    run(main())
