"""The gateway's relays (the ``_splice`` and the task fallback): order, fragments, early frames, bad UTF-8,
both directions; which relay ``auto`` chooses, and the fallback on a websockets version outside the
splice's verified range (logged once)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosed

from ocppsec.pki.errors import UsageError
from ocppsec.pki.events.sink import MemorySink
from ocppsec.security_profiles import _splice
from ocppsec.security_profiles.client import connect
from ocppsec.security_profiles.gateway import Gateway, Relay
from ocppsec.security_profiles.handshake import ServerPolicy
from ocppsec.security_profiles.registry import MemoryRegistry

from .conftest import CSO, PASSWORD_201, RelayCase, free_port
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


def _gateway(registry: MemoryRegistry, sink: MemorySink, up: int, relay: str) -> Gateway:
    return Gateway(policy=ServerPolicy(frozenset({1}), cso_name=CSO), registry=registry,
                   upstream=f"ws://127.0.0.1:{up}/upstream", sink=sink, relay=relay)


def test_relay_keeps_order_fragments_and_early_frames(registry: MemoryRegistry, sink: MemorySink, port: int,
                                                      relay: RelayCase) -> None:
    up = free_port()
    gw = _gateway(registry, sink, up, relay.option)
    assert gw.planned_relay() == relay.expected

    async def main() -> None:
        async with slow_then_echo_upstream(up, 0.3) as got, gw.serve("127.0.0.1", port):
            c = await connect(f"ws://127.0.0.1:{port}/", "CS-1", profile=1, password=PASSWORD_201)
            early = [f'[2,"{i}","Heartbeat",{{}}]' for i in range(50)]
            for m in early:  # sent while the gateway is still opening the upstream
                await c.send(m)
            await c.send(iter(['[2,"frag",', '"DataTransfer",{"vendorId":"ü"}]']))  # fragmented text message
            await c.send(b"\x00\xffbinary")
            assert await c.recv() == '[2,"csms-1","GetVariables",{}]'  # downstream works too
            assert [str(s.relay) for s in gw.sessions] == [relay.expected]
            echoed = [await c.recv() for _ in range(52)]
            assert echoed == [*early, '[2,"frag","DataTransfer",{"vendorId":"ü"}]', b"\x00\xffbinary"]
            assert got == echoed
            await c.close()
        assert gw.stats.relayed_up == 52 and gw.stats.relayed_down == 53
        assert gw.stats.relays == {relay.expected: 1}

    run(main())


def test_relay_invalid_utf8_closes_1007(registry: MemoryRegistry, sink: MemorySink, port: int, relay: RelayCase) -> None:
    up = free_port()
    gw = _gateway(registry, sink, up, relay.option)

    async def main() -> None:
        async with slow_then_echo_upstream(up, 0) as got, gw.serve("127.0.0.1", port):
            c = await connect(f"ws://127.0.0.1:{port}/", "CS-1", profile=1, password=PASSWORD_201)
            assert await c.recv() == '[2,"csms-1","GetVariables",{}]'
            assert [str(s.relay) for s in gw.sessions] == [relay.expected]
            c.protocol.send_text(b"\xff\xfe not utf-8")  # bypass the client's own encoding
            c.send_data()
            with pytest.raises(ConnectionClosed):
                await c.recv()
            assert c.close_code == 1007
            assert got == []

    run(main())


def test_unsupported_websockets_version_falls_back_to_tasks_logged_once(
        registry: MemoryRegistry, sink: MemorySink, port: int, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """websockets outside the verified range: ``auto`` relays with tasks (one warning for the gateway's
    life, not one per station) and ``splice`` refuses to construct."""
    monkeypatch.setattr(_splice, "_websockets_version", "18.0")
    assert not _splice.websockets_supported()
    with pytest.raises(UsageError, match="verified"):
        _gateway(registry, sink, 1, "splice")
    with pytest.raises(UsageError, match="auto, splice or tasks"):
        _gateway(registry, sink, 1, "fast")
    up = free_port()
    gw = _gateway(registry, sink, up, "auto")
    assert gw.planned_relay() is Relay.TASKS

    async def main() -> None:
        async with slow_then_echo_upstream(up, 0), gw.serve("127.0.0.1", port):
            for n in range(2):
                c = await connect(f"ws://127.0.0.1:{port}/", "CS-1", profile=1, password=PASSWORD_201)
                assert await c.recv() == '[2,"csms-1","GetVariables",{}]'
                await c.send(f"message {n}")
                assert await c.recv() == f"message {n}"
                assert [s.relay for s in gw.sessions] == [Relay.TASKS]
                await c.close()
        assert gw.stats.relays == {Relay.TASKS: 2}

    with caplog.at_level(logging.WARNING, logger="ocppsec.security_profiles.gateway"):
        run(main())
    warnings = [r.getMessage() for r in caplog.records if "instead of the splice" in r.getMessage()]
    assert len(warnings) == 1
    assert "websockets 18.0 is outside the versions the splice was verified on (>=14.1,<18)" in warnings[0]


def test_connection_without_the_internals_is_not_spliced() -> None:
    """supported() looks at every internal the splice uses, not only at the version."""

    class Bare:
        pass

    reason = _splice.unsupported_reason(Bare())
    assert reason == "Bare has no process_event"
    assert not _splice.supported(Bare())


def test_websockets_queue_behaves_the_same_on_the_splices_frame_list() -> None:
    """Once spliced, websockets' frame queue is a list (no 760-byte empty deque); websockets' own SimpleQueue
    still gets its frames in order from it, should any reach it after the splice stopped."""
    from websockets.asyncio.messages import SimpleQueue

    async def main() -> list[Any]:
        got = []
        for make in (None, _splice._FrameList):
            queue: SimpleQueue[str] = SimpleQueue()
            if make is not None:
                queue.queue = make()  # type: ignore[assignment]
            for item in ("a", "b", "c"):
                queue.put(item)
            first = await queue.get()
            second = await queue.get()
            queue.put_back([first, second])  # websockets puts frames back in their order
            waiter = asyncio.ensure_future(queue.get())
            drained = [await queue.get() if i else await waiter for i in range(3)]
            late = asyncio.ensure_future(queue.get())
            await asyncio.sleep(0)
            queue.put("d")
            got.append((drained, await late, len(queue)))
        return got

    deque_run, list_run = asyncio.run(main())
    assert deque_run == list_run == (["a", "b", "c"], "d", 0)


def test_relayed_connections_share_websockets_logger_and_queue_no_frames(registry: MemoryRegistry, sink: MemorySink,
                                                                          port: int, relay: RelayCase) -> None:
    """Per station, websockets' per-connection logger adapter (and, spliced, its frame deque) are dropped at the
    handover; what the station and the upstream send each other still arrives, and websockets still logs."""
    up = free_port()
    gw = _gateway(registry, sink, up, relay.option)

    async def main() -> None:
        async with slow_then_echo_upstream(up, 0.0), gw.serve("127.0.0.1", port):
            stations = [await connect(f"ws://127.0.0.1:{port}/", "CS-1", profile=1, password=PASSWORD_201)
                        for _ in range(2)]
            for c in stations:
                assert await c.recv() == '[2,"csms-1","GetVariables",{}]'
            loggers = {id(side.logger) for s in gw.sessions for side in (s.station.websocket, s.upstream)}
            assert len(loggers) == 2  # one for the served side, one for the upstream side
            for s in gw.sessions:
                for side in (s.station.websocket, s.upstream):
                    assert side.logger is side.protocol.logger
                    assert side.logger.logger.name.startswith(("websockets", "ocppsec"))
                    queue = side.recv_messages.frames.queue
                    assert type(queue) is (_splice._FrameList if s.relay == "splice" else collections.deque)
            for i, c in enumerate(stations):
                await c.send(f'[2,"{i}","Heartbeat",{{}}]')
                assert await c.recv() == f'[2,"{i}","Heartbeat",{{}}]'
                await c.close()

    run(main())


def test_checking_a_connection_again_and_again_keeps_nothing(registry: MemoryRegistry, sink: MemorySink,
                                                             port: int) -> None:
    """``unsupported_reason`` runs for every relayed station and allocates nothing that stays: it looks attributes
    up by interned names (CPython's type attribute cache keeps a reference to each name it is asked for, so
    names split afresh on each call piled up there, up to its 4,096 entries, and pushed out the entries the
    relay itself hits), and the version check is parsed once."""
    up = free_port()
    gw = _gateway(registry, sink, up, "splice")

    async def main() -> None:
        async with slow_then_echo_upstream(up, 0.0), gw.serve("127.0.0.1", port):
            c = await connect(f"ws://127.0.0.1:{port}/", "CS-1", profile=1, password=PASSWORD_201)
            assert await c.recv() == '[2,"csms-1","GetVariables",{}]'
            (s,) = gw.sessions
            sides = (s.station.websocket, s.upstream)
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                for _ in range(500):
                    assert all(_splice.unsupported_reason(side) is None for side in sides)
                kept = tracemalloc.get_traced_memory()[0] - before
            finally:
                tracemalloc.stop()
            assert kept < 16_384, kept  # names split on every call: about 150,000 bytes
            await c.send('[2,"1","Heartbeat",{}]')
            assert await c.recv() == '[2,"1","Heartbeat",{}]'
            await c.close()

    run(main())
