"""The splice's raw feed: a station's bytes, cut into chunks, against websockets' own parser.

Input: two fields split at the separator: the cut points (each byte a chunk length, 0 taken as 1) and the
bytes a station sends after its upgrade. They go through :meth:`~ocppsec.security_profiles._splice._Direction.feed`
chunk by chunk, with sans-I/O websockets protocols for both connections (the station's server side with a
4 KiB limit, the gateway's client side toward the upstream). Nothing may raise, and the differential check:
the messages the upstream can read off what the splice wrote are the messages websockets' parser delivers
from the same bytes in one piece (until it fails the connection), whatever the cuts. Control frames reach
websockets' side the same way (the pongs the station gets are compared too).
"""

from __future__ import annotations

from typing import Any

from websockets.frames import Frame, Opcode
from websockets.protocol import CLIENT, SERVER, Protocol, State

from ocppsec.security_profiles._splice import _Direction

from ._harness import fields, harness, join

ALLOWED: tuple[type[Exception], ...] = ()
LIMIT = 4096
_DATA = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)


class _Transport:
    def __init__(self) -> None:
        self.wire = bytearray()

    def write(self, data: bytes) -> None:
        self.wire += data

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False


class _Connection:
    """What the splice's direction uses of a websockets connection, over a sans-I/O protocol."""

    def __init__(self, protocol: Protocol) -> None:
        self.protocol = protocol
        self.transport = _Transport()
        self.paused = False
        self.direction: _Direction | None = None
        self.others: list[Frame] = []  # frames websockets' side kept (control frames)

    def process_event(self, event: Any) -> None:
        self.others.append(event)

    def send_data(self) -> None:
        for data in self.protocol.data_to_send():
            self.transport.write(data)

    def websockets_feed(self, data: bytes) -> None:
        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            assert self.direction is not None
            self.direction.process_event(event)
        self.send_data()


def _messages(frames: list[Frame]) -> list[tuple[Opcode, bytes]]:
    out: list[tuple[Opcode, bytes]] = []
    parts: list[bytes] = []
    opcode = Opcode.TEXT
    for f in frames:
        if f.opcode not in _DATA:
            continue
        if f.opcode is not Opcode.CONT:
            opcode = f.opcode
        parts.append(bytes(f.data))
        if f.fin:
            out.append((opcode, b"".join(parts)))
            parts = []
    return out


def _reference(data: bytes) -> tuple[list[tuple[Opcode, bytes]], bytes | None]:
    """websockets' messages from ``data`` in one piece (text that is not UTF-8 ends them, as the splice fails
    the connection there), and what websockets answered (pongs), or None once the connection was failed."""
    protocol = Protocol(SERVER, max_size=LIMIT)
    protocol.receive_data(data)
    out = []
    for opcode, payload in _messages(list(protocol.events_received())):
        if opcode is Opcode.TEXT:
            try:
                payload.decode()
            except UnicodeDecodeError:
                return out, None
        out.append((opcode, payload))
    answered = b"".join(protocol.data_to_send())
    return out, answered if protocol.state is State.OPEN else None


@harness(ALLOWED)
def TestOneInput(data: bytes) -> None:
    cuts, stream = fields(data, 2)
    src = _Connection(Protocol(SERVER, max_size=LIMIT))
    dst = _Connection(Protocol(CLIENT))
    direction = _Direction(src, dst, inspect=None, handle=None, observe=None)
    src.direction = direction
    i = k = 0
    while i < len(stream):
        step = max(1, cuts[k % len(cuts)]) if cuts else len(stream)
        direction.feed(stream[i:i + step])
        i, k = i + step, k + 1
    upstream = Protocol(SERVER)  # reads what the gateway wrote as a client: masked frames
    upstream.receive_data(bytes(dst.transport.wire))
    relayed = _messages(list(upstream.events_received()))
    expected, answered = _reference(stream)
    assert relayed == expected, (relayed, expected)  # an incomplete last frame is in neither
    assert upstream.state is State.OPEN  # the splice never wrote a malformed frame
    if answered is not None:
        assert bytes(src.transport.wire) == answered  # the same pongs, in the same order


def _frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bytes = b"\x01\x02\x03\x04") -> bytes:
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big"))
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def seeds() -> dict[str, bytes]:
    heartbeat = _frame(1, b'[2,"1","Heartbeat",{}]')
    return {
        "plain-whole": join(b"", heartbeat * 3),
        "plain-cut-in-header": join(b"\x01\x05\x40", heartbeat * 3),
        "ping-between": join(b"\x07", heartbeat + _frame(9, b"p") + heartbeat),
        "fragments": join(b"\x03\x11", _frame(1, b'[2,"2",', fin=False) + _frame(0, b'"Heartbeat",{}]') + heartbeat),
        "binary-16-bit-length": join(b"\xff", _frame(2, bytes(300)) + heartbeat),
        "over-the-limit": join(b"\x80", _frame(1, b"x" * (LIMIT + 1)) + heartbeat),
        "bad-utf8": join(b"", heartbeat + _frame(1, b"\xff\xfe") + heartbeat),
        "unmasked-from-a-station": join(b"", b"\x81\x02hi" + heartbeat),
        "close-then-data": join(b"\x04", _frame(8, b"\x03\xe8") + heartbeat),
    }
