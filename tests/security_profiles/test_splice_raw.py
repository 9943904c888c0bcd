"""The splice's raw feed (``_splice._Direction.feed``): plain data frames cross the gateway without websockets'
parser (toward the station as they came, toward the upstream masked under the gateway's key), everything else
still takes websockets' path, in order.

Both ends here are hand-written over plain TCP (profile 1), so the test sees the bytes on the wire: a station
that masks with a key of its choosing and an upstream that records what reaches it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection

from ocppsec.pki.events.sink import MemorySink
from ocppsec.security_profiles.gateway import Gateway
from ocppsec.security_profiles.handshake import ServerPolicy
from ocppsec.security_profiles.registry import MemoryRegistry

from .conftest import CSO, PASSWORD_201, free_port
from .helpers import run

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(opcode: int, payload: bytes, mask: bytes | None = None, *, fin: bool = True) -> bytes:
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 1 << 16:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def parse(buf: bytearray) -> list[tuple[int, bytes]]:
    """Complete frames (opcode, unmasked payload) taken from the front of ``buf``."""
    out = []
    while len(buf) >= 2:
        n, i = buf[1] & 0x7F, 2
        if n == 126:
            if len(buf) < 4:
                break
            n, i = struct.unpack("!H", buf[2:4])[0], 4
        elif n == 127:
            if len(buf) < 10:
                break
            n, i = struct.unpack("!Q", buf[2:10])[0], 10
        mask = None
        if buf[1] & 0x80:
            if len(buf) < i + 4:
                break
            mask, i = bytes(buf[i:i + 4]), i + 4
        if len(buf) < i + n:
            break
        payload = bytes(buf[i:i + n])
        if mask:
            payload = bytes(b ^ mask[k % 4] for k, b in enumerate(payload))
        out.append((buf[0] & 0x0F, payload))
        del buf[:i + n]
    return out


@dataclass
class RawUpstream:
    """An upstream CSMS by hand: answers one upgrade, records every byte after it."""

    received: bytearray = field(default_factory=bytearray)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    writer: asyncio.StreamWriter | None = None
    opened: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        key = next(line.split(":", 1)[1].strip() for line in head.split("\r\n") if line.lower().startswith("sec-websocket-key"))
        accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        writer.write(f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     f"Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: ocpp2.0.1\r\n\r\n".encode())
        self.writer = writer
        self.opened.set()
        while data := await reader.read(65536):
            self.received += data
            self.arrived.set()

    async def until(self, n: int) -> bytes:
        while len(self.received) < n:
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), 10)
        return bytes(self.received)


@contextlib.asynccontextmanager
async def raw_upstream(port: int) -> AsyncIterator[RawUpstream]:
    up = RawUpstream()
    server = await asyncio.start_server(up.handle, "127.0.0.1", port)
    async with server:
        yield up


class RawStation:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.buf = bytearray()

    @classmethod
    async def relayed(cls, port: int, up: RawUpstream) -> RawStation:
        """A station through to ``up``, once the gateway relays: a first frame from the upstream has reached it."""
        station = await cls.open(port)
        await asyncio.wait_for(up.opened.wait(), 10)
        hello = frame(1, b'[2,"csms-1","GetVariables",{}]')
        assert up.writer is not None
        up.writer.write(hello)
        assert await station.raw(len(hello)) == hello
        return station

    @classmethod
    async def open(cls, port: int) -> RawStation:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        auth = base64.b64encode(f"CS-1:{PASSWORD_201}".encode()).decode()
        writer.write(f"GET /CS-1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                     f"Sec-WebSocket-Protocol: ocpp2.0.1\r\nAuthorization: Basic {auth}\r\n\r\n".encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    def close(self, up: RawUpstream) -> None:
        """Both ends go away without closing handshakes (the gateway does not wait for answers nobody sends)."""
        self.writer.close()
        if up.writer is not None:
            up.writer.close()

    async def raw(self, n: int) -> bytes:
        while len(self.buf) < n:
            data = await asyncio.wait_for(self.reader.read(65536), 10)
            assert data, "the gateway closed the connection"
            self.buf += data
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    async def frames(self, count: int) -> list[tuple[int, bytes]]:
        got: list[tuple[int, bytes]] = []
        while True:
            got += parse(self.buf)
            if len(got) >= count:
                return got
            data = await asyncio.wait_for(self.reader.read(65536), 10)
            assert data, f"the gateway closed the connection after {got}"
            self.buf += data


def _gateway(registry: MemoryRegistry, sink: MemorySink, up: int, **kwargs: Any) -> Gateway:
    return Gateway(policy=ServerPolicy(frozenset({1}), cso_name=CSO), registry=registry,
                   upstream=f"ws://127.0.0.1:{up}/upstream", sink=sink, **kwargs)


@contextlib.asynccontextmanager
async def through(gw: Gateway, up_port: int, port: int) -> AsyncIterator[tuple[RawUpstream, RawStation]]:
    """The raw upstream on ``up_port``, ``gw`` on ``port``, and a station relayed through it to the upstream."""
    async with raw_upstream(up_port) as up, gw.serve("127.0.0.1", port):
        yield up, await RawStation.relayed(port, up)


def _on_the_wire(data: bytes) -> list[tuple[bytes, bytes, bytes]]:
    """Each frame's first two bytes, masking key and unmasked payload (masked frames with 7- or 16-bit lengths)."""
    out, i = [], 0
    while i < len(data):
        n, h = data[i + 1] & 0x7F, i + 2
        if n == 126:
            n, h = struct.unpack("!H", data[h:h + 2])[0], h + 2
        key = data[h:h + 4]
        out.append((data[i:i + 2], key, bytes(b ^ key[k % 4] for k, b in enumerate(data[h + 4:h + 4 + n]))))
        i = h + 4 + n
    return out


def test_data_frames_cross_without_websockets_parser(registry: MemoryRegistry, sink: MemorySink, port: int,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    up_port = free_port()
    gw = _gateway(registry, sink, up_port)
    parsed: list[bytes] = []  # what reached websockets' parser on the station's side
    feed = ServerConnection.data_received

    def counting(self: ServerConnection, data: bytes) -> None:
        parsed.append(data)
        feed(self, data)

    monkeypatch.setattr(ServerConnection, "data_received", counting)

    async def main() -> None:
        async with through(gw, up_port, port) as (up, station):
            parsed.clear()
            sent = [('[2,"1","Heartbeat",{"ü":1}]'.encode(), b"\x01\x02\x03\x04"),
                    (bytes(range(200)), b"\xa0\xb1\xc2\xd3"),  # binary, a 16-bit length
                    (b'[2,"2","Heartbeat",{}]', b"\x05\x06\x07\x08")]
            frames = [frame(1 if i != 1 else 2, payload, key) for i, (payload, key) in enumerate(sent)]
            station.writer.write(frames[0] + frames[1])
            station.writer.write(frames[2][:9])  # the header and part of the payload: the raw feed keeps it
            (session,) = gw.sessions
            assert session.splice is not None
            while session.splice.up.partial != frames[2][:9]:
                await asyncio.sleep(0.005)  # until the gateway has read it
            station.writer.write(frames[2][9:])
            wire = _on_the_wire(await up.until(sum(map(len, frames))))
            # the same headers and payloads, masked under the gateway's own keys, not the station's (RFC 6455 5.3)
            assert [(head, payload) for head, _key, payload in wire] == [(f[:2], p) for f, (p, _k) in zip(frames, sent, strict=True)]
            keys = [key for _head, key, _payload in wire]
            assert not {k for _p, k in sent} & set(keys) and len(set(keys)) == 3
            down = frame(1, b'[3,"1",{"currentTime":"2026-01-01T00:00:00Z"}]')
            assert up.writer is not None
            up.writer.write(down)
            assert await station.raw(len(down)) == down  # toward the station: the frame as it came
            assert parsed == []  # none of it went through websockets' parser
            station.close(up)
        assert gw.stats.relayed_up == 3 and gw.stats.relayed_down == 2

    run(main())


def test_control_frames_fragments_and_split_frames_keep_their_order(registry: MemoryRegistry, sink: MemorySink,
                                                                     port: int) -> None:
    up_port = free_port()
    gw = _gateway(registry, sink, up_port)
    mask = b"\x11\x22\x33\x44"

    async def main() -> None:
        async with through(gw, up_port, port) as (up, station):
            last = frame(1, b'[2,"d","Heartbeat",{}]', mask)
            station.writer.write(frame(1, b'[2,"a","Heartbeat",{}]', mask)
                                 + frame(9, b"ping-1", mask)                        # answered by the gateway
                                 + frame(1, b'[2,"b",', mask, fin=False)            # a fragmented message
                                 + frame(0, b'"Heartbeat",{}]', mask)
                                 + frame(1, b'[2,"c","Heartbeat",{}]', mask)
                                 + last[:5])                                        # a frame cut in its header
            await station.writer.drain()
            assert await station.frames(1) == [(0xA, b"ping-1")]
            station.writer.write(last[5:])  # websockets holds the start of this frame: it parses the rest too
            buf = bytearray()
            while len(got := parse(bytearray(buf))) < 4:
                buf = bytearray(await up.until(len(buf) + 1))
            assert got == [(1, b'[2,"a","Heartbeat",{}]'), (1, b'[2,"b","Heartbeat",{}]'), (1, b'[2,"c","Heartbeat",{}]'),
                           (1, b'[2,"d","Heartbeat",{}]')]
            after = frame(1, b'[2,"e","Heartbeat",{}]', mask)
            station.writer.write(after)  # websockets' parser is between frames again: the raw feed relays it
            got_after = _on_the_wire((await up.until(len(buf) + len(after)))[len(buf):])
            assert [(head, payload) for head, _key, payload in got_after] == [(after[:2], b'[2,"e","Heartbeat",{}]')]
            station.close(up)

    run(main())


@pytest.mark.parametrize("size", [5000, 1 << 20], ids=["16-bit-length", "64-bit-length"])
def test_a_frame_over_the_limit_still_closes_1009(registry: MemoryRegistry, sink: MemorySink, port: int, size: int) -> None:
    up_port = free_port()
    gw = _gateway(registry, sink, up_port, max_size=4096)

    async def main() -> None:
        async with through(gw, up_port, port) as (up, station):
            station.writer.write(frame(1, b"x" * size, b"\x01\x02\x03\x04"))
            (opcode, payload), = await station.frames(1)
            assert (opcode, struct.unpack("!H", payload[:2])[0]) == (8, 1009)
            assert not parse(bytearray(up.received))  # nothing of it reached the upstream
            station.close(up)

    run(main())


def test_bad_utf8_on_the_raw_path_closes_1007(registry: MemoryRegistry, sink: MemorySink, port: int) -> None:
    up_port = free_port()
    gw = _gateway(registry, sink, up_port)

    async def main() -> None:
        async with through(gw, up_port, port) as (up, station):
            good = frame(1, b'[2,"a","Heartbeat",{}]', b"\x01\x02\x03\x04")
            station.writer.write(good + frame(1, b"\xff\xfe", b"\x01\x02\x03\x04"))
            (opcode, payload), = await station.frames(1)
            assert (opcode, struct.unpack("!H", payload[:2])[0]) == (8, 1007)
            assert parse(bytearray(up.received))[:1] == [(1, b'[2,"a","Heartbeat",{}]')]
            station.close(up)

    run(main())


def test_parser_idle_only_between_frames() -> None:
    from websockets.protocol import SERVER, Protocol

    from ocppsec.security_profiles._splice import _parser_idle

    protocol = Protocol(SERVER)
    assert _parser_idle(protocol)
    whole = frame(1, b"hello", b"\x01\x02\x03\x04")
    protocol.receive_data(whole[:1])
    assert not _parser_idle(protocol)  # a byte buffered
    protocol.receive_data(whole[1:2])
    assert not protocol.reader.buffer and not _parser_idle(protocol)  # the header taken, the mask awaited
    protocol.receive_data(whole[2:])
    assert [e.data for e in protocol.events_received()] == [b"hello"] and _parser_idle(protocol)
    protocol.receive_data(frame(8, struct.pack("!H", 1000), b"\x01\x02\x03\x04"))
    assert not _parser_idle(protocol)  # closing: websockets discards what follows


def test_a_frame_held_when_the_splice_stops_goes_on_to_websockets(registry: MemoryRegistry, sink: MemorySink,
                                                                  port: int) -> None:
    up_port = free_port()
    gw = _gateway(registry, sink, up_port)
    mask = b"\x01\x02\x03\x04"

    async def main() -> None:
        async with through(gw, up_port, port) as (up, station):
            (session,) = gw.sessions
            assert session.splice is not None
            websocket = session.station.websocket
            split = frame(1, b'[2,"3","Heartbeat",{}]', mask)
            station.writer.write(split[:9])
            while session.splice.up.partial != split[:9]:
                await asyncio.sleep(0.005)  # until the gateway has read it
            assert up.writer is not None
            up.writer.close()  # the upstream goes away: the splice stops, the gateway closes the station
            (opcode, _payload), = await station.frames(1)
            assert opcode == 8
            station.writer.write(split[9:] + frame(8, struct.pack("!H", 1000), mask))  # the frame's rest, the close
            assert await asyncio.wait_for(station.reader.read(), 10) == b""  # the gateway closed the connection
            station.writer.close()
            # websockets read the rest as the end of that frame and then the close: no protocol error
            assert websocket.protocol.parser_exc is None
            assert websocket.protocol.close_rcvd is not None and websocket.protocol.close_rcvd.code == 1000

    run(main())
