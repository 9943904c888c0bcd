"""Hostile or broken peers on a served connection: control-frame limits and bounded work per loop turn.

websockets answers every ping itself, inside ``data_received``, before the application sees anything;
a client sending pings as fast as it can gets every pong, and one ``data_received`` call on a 256 KiB
read (uvloop's TLS protocol, plain TCP) parses and answers some 40,000 of them while every other
station on the loop waits. Two measures, both per connection:

- :class:`ControlBudget`: at most ``FrameLimits.control_frames`` pings and pongs per
  ``FrameLimits.window`` seconds, counted as websockets' protocol receives each frame (``recv_frame``,
  before it queues the pong); one more fails the connection with 1008 (policy violation), after which
  websockets discards whatever the peer still sends. This sits below both relays.
- :class:`FairFeed`: a connection's ``data_received`` hands websockets at most ``bytes_per_turn`` bytes
  per event-loop turn; the rest waits in a backlog (reading from the peer paused meanwhile, through
  :class:`ReadGate`, which keeps websockets' and the relay's own pauses intact) and is fed one slice per
  turn from ``call_soon``. Other connections' callbacks run between the slices.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_LIMITS", "ControlBudget", "FairFeed", "FrameLimits", "ReadGate"]


@dataclass(frozen=True, slots=True)
class FrameLimits:
    """Per-connection limits of a served connection (see the module docstring)."""

    control_frames: int = 100   # pings + pongs a peer may send per window (websockets pings every 20-30 s)
    window: float = 10.0        # seconds
    bytes_per_turn: int = 4096  # received bytes handed to websockets per event-loop turn


DEFAULT_LIMITS = FrameLimits()


class ControlBudget:
    """Counts a connection's control frames in fixed windows; :meth:`spend` is False once over the limit."""

    __slots__ = ("_count", "_limit", "_start", "_window")

    def __init__(self, limits: FrameLimits) -> None:
        self._limit, self._window = limits.control_frames, limits.window
        self._start = -1.0e18
        self._count = 0

    def spend(self, now: float) -> bool:
        if now - self._start >= self._window:
            self._start, self._count = now, 0
        self._count += 1
        return self._count <= self._limit


class ReadGate:
    """A transport proxy whose reading is paused while its owner's :class:`FairFeed` or anyone else
    (websockets' receive queue, the relay's back-pressure) wants it paused; everything else is forwarded."""

    __slots__ = ("_fair_paused", "_other_paused", "transport")

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self._fair_paused = False
        self._other_paused = False

    def pause_reading(self) -> None:
        self._other_paused = True
        self.transport.pause_reading()

    def resume_reading(self) -> None:
        self._other_paused = False
        if not self._fair_paused:
            self.transport.resume_reading()

    def fair_pause(self) -> None:
        if not self._fair_paused:
            self._fair_paused = True
            with contextlib.suppress(AttributeError, RuntimeError):
                self.transport.pause_reading()

    def fair_resume(self) -> None:
        if self._fair_paused:
            self._fair_paused = False
            if not self._other_paused and not self.transport.is_closing():
                with contextlib.suppress(AttributeError, RuntimeError):
                    self.transport.resume_reading()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class FairFeed:
    """Feeds received bytes to ``feed`` at most ``bytes_per_turn`` per event-loop turn (see the module docstring).

    ``stopped()`` says the connection was failed (the rest is dropped: websockets would discard it anyway).
    """

    __slots__ = ("_backlog", "_feed", "_gate", "_loop", "_step", "_stopped")

    def __init__(self, limits: FrameLimits, feed: Callable[[bytes], None], stopped: Callable[[], bool]) -> None:
        self._step = limits.bytes_per_turn
        self._feed, self._stopped = feed, stopped
        self._backlog = bytearray()
        self._gate: ReadGate | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(self, gate: ReadGate) -> None:
        self._gate = gate
        self._loop = asyncio.get_running_loop()

    def received(self, data: bytes) -> None:
        if self._backlog:
            self._backlog += data  # order: behind what waits
            return
        if len(data) <= self._step or self._gate is None:
            self._feed(data)
            return
        self._feed(data[: self._step])
        if self._stopped():
            return
        self._backlog += memoryview(data)[self._step :]
        self._gate.fair_pause()
        assert self._loop is not None
        self._loop.call_soon(self._next)

    def _next(self) -> None:
        if self._stopped() or not self._backlog:
            self._backlog.clear()
        else:
            chunk = bytes(self._backlog[: self._step])
            del self._backlog[: self._step]
            self._feed(chunk)
            if self._backlog and not self._stopped():
                assert self._loop is not None
                self._loop.call_soon(self._next)
                return
            self._backlog.clear()
        if self._gate is not None:
            self._gate.fair_resume()

    def flush(self) -> None:
        """Feed all that waits now (before an EOF or a lost connection reaches websockets: order is kept)."""
        if self._backlog:
            data = bytes(self._backlog)
            self._backlog.clear()
            if not self._stopped():
                self._feed(data)
        if self._gate is not None:
            self._gate.fair_resume()

    @property
    def backlog(self) -> int:
        return len(self._backlog)
