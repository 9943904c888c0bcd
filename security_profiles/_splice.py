"""A frame-level relay between two websockets asyncio connections, without a task per frame.

The gateway used to run two pump tasks per station (``async for message in a: await b.send(message)``):
every frame went through websockets' message queue, woke a task, and passed an async context manager
and ``drain`` on the way out. A :class:`Splice` instead hooks each connection's ``process_event`` (the
method websockets calls for every parsed frame inside ``data_received``) and writes each complete
message to the other connection right there, synchronously. Flow control replaces ``drain``: when
the destination's transport buffer is over its high-water mark (``pause_writing``), reading from the
source is paused until it drains (``resume_writing``).

Messages that need the gateway's attention (``inspect`` returns True: a SignCertificate, an answer to
the gateway's own CertificateSigned) go to ``handle`` in one worker task; while it runs, the source is
paused and later messages wait behind it, so the order of messages never changes. Fragmented
messages are reassembled (within websockets' ``max_size``) and relayed as one frame, as websockets'
own ``recv``/``send`` did. Text that is not UTF-8 fails the source connection with 1007.

Relies on websockets' asyncio ``Connection`` internals, listed in :data:`INTERNALS` (and in ADR 12):
:func:`supported` says whether a connection is one the splice can drive - websockets' version inside
:data:`WEBSOCKETS_VERIFIED` (the range the splice was verified on, the same as the dependency's bounds in
pyproject.toml) and every internal present - and the gateway falls back to its pump tasks otherwise.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import os
import re
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.frames import CloseCode, Frame, Opcode
from websockets.protocol import SERVER, Protocol, State
from websockets.streams import StreamReader
from websockets.version import version as _websockets_version

try:  # what websockets' own parser unmasks with: its C speedup, else its pure-Python fallback
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets built without its C extension
    from websockets.utils import apply_mask

__all__ = ["INTERNALS", "WEBSOCKETS_VERIFIED", "RawFeed", "Splice", "supported", "unsupported_reason", "websockets_supported"]

_log = logging.getLogger("ocppsec.security_profiles.gateway")
_DATA = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)
Message = str | bytes

WEBSOCKETS_VERIFIED: tuple[tuple[int, ...], tuple[int, ...]] = ((14, 1), (18,))
"""websockets versions the splice was verified on: from the first (inclusive) to the second (exclusive).
pyproject.toml's ``websockets>=14.1,<18`` says the same; a test keeps the two equal."""

# What the splice uses of a websockets asyncio Connection (attribute path, what it must be).
INTERNALS: tuple[tuple[str, str], ...] = (
    ("process_event", "method"),        # replaced per connection: called by data_received for every parsed frame
    ("protocol.state", "attribute"),    # the sans-I/O protocol: OPEN or not
    ("protocol.send_text", "method"),
    ("protocol.send_binary", "method"),
    ("protocol.fail", "method"),        # 1007 on text that is not UTF-8
    ("send_data", "method"),            # writes what the protocol has to send to the transport
    ("transport.pause_reading", "method"),
    ("transport.resume_reading", "method"),
    ("transport.is_closing", "method"),
    ("paused", "attribute"),            # set by pause_writing when the transport buffer is over its high-water mark
    ("resume_writing", "method"),       # replaced per connection: the destination drained
    ("recv_messages.frames.queue", "attribute"),  # frames queued before the splice started; then a list
    ("recv_messages.maybe_resume", "method"),
    ("connection_lost_waiter", "attribute"),  # the future wait_closed awaits: done once the transport is lost
)


_MISSING = object()
# Since 3.10 every frozenset() is a new 216-byte object: one shared empty set of pauses for every direction.
_NO_PAUSES: frozenset[str] = frozenset()
# The attribute names split once and interned: CPython's type attribute cache keeps a reference to each name
# looked up, so names split afresh for every station piled up there (up to its 4,096 entries: 150-220 KB)
# and pushed out the entries the relay itself hits.
_PATHS = tuple((path, tuple(sys.intern(name) for name in path.split(".")), kind) for path, kind in INTERNALS)


class _FrameList(list):  # type: ignore[type-arg]
    """What websockets' message queue (``SimpleQueue.queue``) holds once the splice drives the connection.

    After :meth:`_Direction.take_queued` websockets' queue stays empty (frames go to the splice), but an empty
    ``collections.deque`` still holds a 64-slot block: 760 bytes, twice per station. This list (56 bytes)
    answers the few deque methods ``SimpleQueue`` calls, should frames reach it again after :meth:`Splice.stop`.
    """

    __slots__ = ()

    def popleft(self) -> Any:
        return self.pop(0)

    def extendleft(self, items: Any) -> None:
        self[0:0] = list(items)[::-1]


_QUEUES = (collections.deque, _FrameList)


@functools.lru_cache(maxsize=8)  # asked on every relayed connection, for the same one or two versions
def _version_tuple(text: str) -> tuple[int, ...]:
    match = re.match(r"\d+(?:\.\d+)*", text)
    return tuple(int(part) for part in match.group(0).split(".")) if match else ()


def websockets_supported(version: str | None = None) -> bool:
    """Whether websockets ``version`` (default: the one imported) is inside :data:`WEBSOCKETS_VERIFIED`."""
    low, high = WEBSOCKETS_VERIFIED
    found = _version_tuple(_websockets_version if version is None else version)
    return bool(found) and low <= found < high


def _range_text() -> str:
    low, high = WEBSOCKETS_VERIFIED
    return f">={'.'.join(map(str, low))},<{'.'.join(map(str, high))}"


def unsupported_reason(connection: Any) -> str | None:
    """Why the splice cannot drive ``connection`` (``None`` when it can)."""
    if not websockets_supported():
        return f"websockets {_websockets_version} is outside the versions the splice was verified on ({_range_text()})"
    for path, names, kind in _PATHS:
        target: Any = connection
        for name in names:
            target = getattr(target, name, _MISSING)
            if target is _MISSING:
                return f"{type(connection).__name__} has no {path}"
        if kind == "method" and not callable(target):
            return f"{type(connection).__name__}.{path} is not callable"
    if not isinstance(connection.recv_messages.frames.queue, _QUEUES):
        return f"{type(connection).__name__}.recv_messages.frames.queue is not a deque"
    if not isinstance(connection.connection_lost_waiter, asyncio.Future):
        return f"{type(connection).__name__}.connection_lost_waiter is not a future"
    return None


def supported(connection: Any) -> bool:
    """True if ``connection`` is a websockets asyncio connection the splice can drive (see :func:`unsupported_reason`)."""
    return unsupported_reason(connection) is None


class RawFeed:
    """A websockets asyncio connection whose received bytes the splice may take before websockets parses them.

    A class mixing this in calls :attr:`raw_feed` (when set) with every received chunk instead of websockets'
    ``data_received``, and offers that one as :meth:`websockets_feed`. The splice sets :attr:`raw_feed` while
    it runs (see :meth:`_Direction.feed`) and takes it out in :meth:`Splice.stop`.
    """

    raw_feed: Callable[[bytes], None] | None = None

    def websockets_feed(self, data: bytes) -> None:  # pragma: no cover - every class mixing this in overrides it
        raise NotImplementedError


_AT_EOF = getattr(getattr(StreamReader, "at_eof", None), "__code__", None)
_PARSE = getattr(getattr(Protocol, "parse", None), "__code__", None)


def _parser_idle(protocol: Any) -> bool:
    """Whether websockets' parser of ``protocol`` waits between two frames with nothing buffered: then the next
    received bytes start a frame, and a complete data frame may be relayed as it came (:meth:`_Direction.feed`).

    Between frames websockets' ``Protocol.parse`` generator (delegated to by the server's and the client's
    ``parse``) waits in ``StreamReader.at_eof``; inside a frame it waits in ``Frame.parse`` (the header or payload
    incomplete), with the header's bytes taken out of the buffer already, so an empty buffer alone does not tell.
    After a close, ``discard`` waits in ``at_eof`` too, but not below ``Protocol.parse``, and the state is not
    OPEN. Anything unexpected here answers False: websockets parses.
    """
    try:
        if protocol.state is not State.OPEN or protocol.reader.buffer:
            return False
        outer, inner = None, protocol.parser  # the server's and the client's parse delegate to Protocol.parse
        while (deeper := inner.gi_yieldfrom) is not None:
            outer, inner = inner, deeper
        return inner.gi_code is _AT_EOF and outer is not None and outer.gi_code is _PARSE
    except AttributeError:
        return False


def _frame_limit(protocol: Any) -> int | None:
    """The largest payload websockets accepts on ``protocol`` in one unfragmented frame (``None``: no limit); 0
    when this websockets names its limits differently, so that every frame takes websockets' path."""
    found = False
    limit: int | None = None
    for name in ("max_message_size", "max_fragment_size", "max_size"):  # websockets 15+ has the first two, 14 the last
        if hasattr(protocol, name):
            found = True
            value = getattr(protocol, name)
            if value is not None:
                limit = value if limit is None else min(limit, value)
    return limit if found else 0


class _MaskKeys:
    """Masking keys for the frames the gateway writes as a client (the upstream hop), from the kernel's CSPRNG
    1,024 at a time instead of four bytes (a system call) per frame as websockets takes them."""

    __slots__ = ("at", "pool")

    def __init__(self) -> None:
        self.pool = b""
        self.at = 0

    def take(self) -> bytes:
        at = self.at
        if at >= len(self.pool):
            self.pool, at = os.urandom(4096), 0
        self.at = at + 4
        return self.pool[at:at + 4]

    def reset(self) -> None:
        self.pool, self.at = b"", 0


_KEYS = _MaskKeys()
os.register_at_fork(after_in_child=_KEYS.reset)  # a forked worker never repeats its parent's keys


class _Direction:
    """One direction of the splice: frames parsed on ``src`` are written to ``dst``."""

    # two per station for the connection's life: slots, not an instance dict (which 3.11 grows past 8 keys)
    __slots__ = ("backlog", "count", "dst", "failed", "fragment_opcode", "fragments", "handle", "inspect", "limit", "mask_bit",
                 "observe", "original_process_event", "partial", "reading_paused_by", "src", "worker")

    def __init__(self, src: Any, dst: Any, *, inspect: Callable[[Message], bool] | None,
                 handle: Callable[[Message], Awaitable[bool]] | None, observe: Callable[[Message], None] | None) -> None:
        self.src, self.dst = src, dst
        self.inspect, self.handle, self.observe = inspect, handle, observe
        self.count = 0
        self.fragments: list[bytes] = []
        self.fragment_opcode = Opcode.TEXT
        # a list and a frozenset, not a deque and a set: both are empty nearly always, and an empty deque holds
        # a 64-slot block (760 bytes, against 56), an empty set 216 bytes (the empty frozenset is shared)
        self.backlog: list[Message] = []
        self.worker: asyncio.Task[None] | None = None
        self.original_process_event = src.process_event
        self.reading_paused_by: frozenset[str] = _NO_PAUSES
        self.partial = b""  # the start of a frame the raw feed waits to have whole (see feed)
        self.failed = False  # src failed by the splice (text that is not UTF-8)
        protocol = src.protocol
        self.mask_bit = 0x80 if getattr(protocol, "side", None) is SERVER else 0  # a server reads masked frames
        self.limit = _frame_limit(protocol)

    # -- bytes, before websockets' parser -----------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Bytes received on ``src`` (as :attr:`RawFeed.raw_feed`): complete, unfragmented text and binary frames
        are relayed with their own header, everything else goes to websockets' own ``data_received``.

        A frame read by the station's side is masked, and the gateway's hop to the upstream must mask; one read
        by the upstream's side is not, and the station's must not: so each frame's header is valid on the other
        connection unchanged. Toward the station the frame goes on as it came; toward the upstream with the
        payload masked again under a key of the gateway's (RFC 6455 5.3: the client's key must be one the sender
        of the payload cannot predict; :class:`_MaskKeys`). That saves websockets' parse, its ``Frame``, the
        re-framing and a system call per frame for the key. The payload is unmasked (websockets' C
        ``apply_mask``), checked (text must be UTF-8, the size within ``max_size``) and shown to the observers
        and ``inspect`` as websockets' parser would have delivered it. Control frames, fragments, reserved bits,
        frames over the limit, bad UTF-8 and any frame while websockets' parser is inside one (:func:`_parser_idle`)
        take websockets' path, which answers pings, closes and fails connections as before, in order. The start
        of an incomplete frame waits in :attr:`partial` (at most ``max_size`` and a header), and goes to websockets
        if the splice stops first."""
        if self.partial:
            data = self.partial + data
            self.partial = b""
        src = self.src
        if self.fragments or self.backlog or not _parser_idle(src.protocol):
            src.websockets_feed(data)
            return
        end, i, mask_bit, limit = len(data), 0, self.mask_bit, self.limit
        while i < end:
            if end - i < 2:
                break
            b0, b1 = data[i], data[i + 1]
            if (b0 != 0x81 and b0 != 0x82) or (b1 & 0x80) != mask_bit:
                src.websockets_feed(data[i:])
                return
            n, h = b1 & 0x7F, i + 2
            if n == 126:
                if end - h < 2:
                    break
                n, h = (data[h] << 8) | data[h + 1], h + 2
            if n == 127 or (limit is not None and n > limit):  # 127: a 64-bit length, over any limit here
                src.websockets_feed(data[i:])
                return
            if mask_bit:
                if end - h < 4:
                    break
                key, h = data[h:h + 4], h + 4
            if end - h < n:
                break
            payload = data[h:h + n]
            if mask_bit:
                payload = apply_mask(payload, key)
            message: Message
            if b0 == 0x81:
                try:
                    message = payload.decode()
                except UnicodeDecodeError:
                    src.websockets_feed(data[i:])  # websockets' path fails the connection with 1007
                    return
            else:
                message = payload
            frame_end = h + n
            if mask_bit:  # the upstream hop gets the gateway's own key (RFC 6455 5.3), not the station's choice
                new_key = _KEYS.take()
                self.relay(message, data[i:h - 4] + new_key + apply_mask(payload, new_key))
            else:
                self.relay(message, data[i:frame_end])
            i = frame_end
            if self.backlog:  # the gateway handles a message now: the rest waits behind it, on websockets' path
                if i < end:
                    src.websockets_feed(data[i:])
                return
        if i < end:
            self.partial = data[i:]

    def relay(self, message: Message, raw: bytes) -> None:
        """A whole message from :meth:`feed`, and its frame as it goes on to ``dst``."""
        if self._held(message):
            return
        dst = self.dst
        if dst.protocol.state is not State.OPEN:
            return  # the other side is closing; the splice's owner ends the session
        dst.transport.write(raw)
        self.count += 1
        if dst.paused:
            self.pause("destination")

    # -- flow control ------------------------------------------------------------------------------
    def pause(self, why: str) -> None:
        if not self.reading_paused_by:
            with contextlib.suppress(AttributeError, RuntimeError):
                self.src.transport.pause_reading()
        self.reading_paused_by |= {why}

    def resume(self, why: str) -> None:
        if why in self.reading_paused_by:
            self.reading_paused_by = self.reading_paused_by - {why} or _NO_PAUSES
            if not self.reading_paused_by and not self.src.transport.is_closing():
                with contextlib.suppress(AttributeError, RuntimeError):
                    self.src.transport.resume_reading()

    # -- frames ------------------------------------------------------------------------------------
    def process_event(self, event: Any) -> None:
        if not isinstance(event, Frame) or event.opcode not in _DATA:
            self.original_process_event(event)
            return
        if self.failed:
            return  # failed with 1007 below: what websockets parsed from the same read after that is not relayed
        if not event.fin or self.fragments:
            if event.opcode is not Opcode.CONT:
                self.fragment_opcode = event.opcode
            self.fragments.append(bytes(event.data))
            if not event.fin:
                return
            data, opcode = b"".join(self.fragments), self.fragment_opcode
            self.fragments.clear()
        else:
            data, opcode = bytes(event.data), event.opcode
        message: Message
        if opcode is Opcode.TEXT:
            try:
                message = data.decode()
            except UnicodeDecodeError:
                self.failed = True
                self.src.protocol.fail(CloseCode.INVALID_DATA, "invalid UTF-8")
                self.src.send_data()
                return
        else:
            message = data
        self.message(message)

    def message(self, message: Message) -> None:
        if not self._held(message):
            self.forward(message)

    def _held(self, message: Message) -> bool:
        """Show ``message`` to the observer; True if it waits in the backlog instead (``inspect`` picked it for the
        gateway, or an earlier one is being handled), in which case the worker forwards it later, in order."""
        if self.observe is not None:
            self.observe(message)
        if self.backlog or (self.inspect is not None and self.inspect(message)):
            self.backlog.append(message)
            if self.worker is None:
                self.pause("backlog")
                self.worker = asyncio.get_running_loop().create_task(self._work())
            return True
        return False

    def forward(self, message: Message) -> None:
        dst = self.dst
        if dst.protocol.state is not State.OPEN:
            return  # the other side is closing; the splice's owner ends the session
        if isinstance(message, str):
            dst.protocol.send_text(message.encode())
        else:
            dst.protocol.send_binary(message)
        dst.send_data()
        self.count += 1
        if dst.paused:
            self.pause("destination")

    async def _work(self) -> None:
        try:
            while self.backlog:
                message = self.backlog[0]
                handled = False
                if self.handle is not None and self.inspect is not None and self.inspect(message):
                    try:
                        handled = await self.handle(message)
                    except Exception:
                        _log.exception("gateway handler failed; relaying the message unchanged")
                del self.backlog[0]
                if not handled:
                    self.forward(message)
        finally:
            self.worker = None
            self.resume("backlog")

    def take_queued(self) -> None:
        """Move messages websockets already queued on ``src`` (before the splice) into the splice, in order."""
        queue = self.src.recv_messages.frames.queue
        frames = list(queue)
        queue.clear()
        self.src.recv_messages.frames.queue = _FrameList()
        self.src.recv_messages.maybe_resume()
        for frame in frames:
            self.process_event(frame)


class Splice:
    """Relay complete messages between ``a`` and ``b`` (websockets asyncio connections) frame-synchronously.

    ``inspect(message)`` (a -> b only) picks messages for ``handle(message)``, which returns True when it
    consumed the message (else it is relayed); ``observe(message)`` sees every a -> b message first,
    ``observe_down(message)`` every b -> a message. Observers run inside ``data_received``: keep them cheap.
    """

    __slots__ = ("__weakref__", "_done", "_resume_a", "_resume_b", "a", "b", "down", "up")

    def __init__(self, a: Any, b: Any, *, inspect: Callable[[Message], bool] | None = None,
                 handle: Callable[[Message], Awaitable[bool]] | None = None,
                 observe: Callable[[Message], None] | None = None,
                 observe_down: Callable[[Message], None] | None = None) -> None:
        self.a, self.b = a, b
        self.up = _Direction(a, b, inspect=inspect, handle=handle, observe=observe)
        self.down = _Direction(b, a, inspect=None, handle=None, observe=observe_down)
        self._resume_a = a.resume_writing
        self._resume_b = b.resume_writing
        self._done: asyncio.Future[None] | None = None

    def start(self) -> None:
        """Install the hooks and relay what each side queued before; call with no ``await`` in between."""
        self.a.process_event = self.up.process_event
        self.b.process_event = self.down.process_event
        self.a.resume_writing = self._a_drained
        self.b.resume_writing = self._b_drained
        self.up.take_queued()
        self.down.take_queued()
        for conn, direction in ((self.a, self.up), (self.b, self.down)):
            # a frame is valid on the other connection as it came only if that one is of the other side
            if isinstance(conn, RawFeed) and getattr(direction.src.protocol, "side", None) is not getattr(
                    direction.dst.protocol, "side", None):
                conn.raw_feed = direction.feed

    def _a_drained(self) -> None:
        self._resume_a()
        self.down.resume("destination")

    def _b_drained(self) -> None:
        self._resume_b()
        self.up.resume("destination")

    def wait(self) -> asyncio.Future[None]:
        """A future done once either connection is closed (its transport lost); the splice has stopped by the
        time an ``await`` of it returns. Cancelling the future (or the task awaiting it) stops the splice too.

        Two done-callbacks on websockets' ``connection_lost_waiter`` (what its ``wait_closed`` awaits) and no
        coroutine: ``asyncio.wait`` on both ``wait_closed()`` took two tasks, two coroutines and two shields per
        station, and a coroutine with a closure still about 0.5 KiB, for the connection's whole life."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._done = done
        # added before any awaiting task's wake-up: the splice has stopped when that task resumes
        done.add_done_callback(self._finish)
        for waiter in (self.a.connection_lost_waiter, self.b.connection_lost_waiter):
            waiter.add_done_callback(self._lost)
        return done

    def _lost(self, _: asyncio.Future[None]) -> None:
        done = self._done
        if done is not None and not done.done():
            done.set_result(None)

    def _finish(self, _: asyncio.Future[None]) -> None:
        # the callbacks reference the splice: taken out here, so no connection -> waiter -> splice cycle is left
        self._done = None
        for waiter in (self.a.connection_lost_waiter, self.b.connection_lost_waiter):
            waiter.remove_done_callback(self._lost)
        for direction in (self.up, self.down):
            if direction.worker is not None:
                direction.worker.cancel()
        self.stop()

    def stop(self) -> None:
        """Take the hooks out again: the connections then hold no reference to the splice, so none of the three
        is left in a reference cycle and reference counting frees them once closed (ADR 23). Frames parsed
        after this go to websockets' own queue, as before :meth:`start`."""
        for conn in (self.a, self.b):
            for name in ("process_event", "resume_writing", "raw_feed"):
                conn.__dict__.pop(name, None)
        for direction in (self.up, self.down):
            partial, direction.partial = direction.partial, b""
            if partial and direction.src.protocol.state is State.OPEN:
                direction.src.websockets_feed(partial)  # the start of a frame the raw feed held: websockets goes on from it
