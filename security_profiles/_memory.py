"""Memory that ended connections freed goes back to the operating system after a burst (glibc).

2,000 half-open TLS connections cost a server about 30 KiB each (OpenSSL's per-connection state and
record buffers, the connection objects). Once they time out, everything is freed (no object stays alive:
see ``serve()``'s ``_release``), but glibc keeps the freed chunks in its heap: RSS stayed at the peak
(about 100 MiB against 41 MiB before, benchmarks/halfopen.py) because live allocations sit above them.
``malloc_trim(0)`` hands those pages back (down to 47 MiB) and takes 10-16 ms with a 100 MiB heap, so
:class:`MemoryReturn` runs it in a worker thread, only once a burst of at least ``after`` ended
connections is over, and at most once per ``interval`` seconds. Without glibc (musl, macOS) it does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
from collections.abc import Callable

__all__ = ["MemoryReturn"]

_log = logging.getLogger("ocppsec.security_profiles.server")


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    with contextlib.suppress(OSError, AttributeError):
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
        return trim
    return None


class MemoryReturn:
    """Counts ended connections; after a burst, ``malloc_trim(0)`` in a worker thread (see the module docstring).

    Once ``after`` connections ended since the last trim, the trim runs when none ended for ``quiet``
    seconds (the burst is over), at the latest ``quiet_max`` seconds later, and never twice within ``interval``.
    """

    def __init__(self, after: int | None = 500, interval: float = 60.0, quiet: float = 2.0, quiet_max: float = 30.0) -> None:
        self.after, self.interval, self.quiet, self.quiet_max = after, interval, quiet, quiet_max
        self.trims = 0
        self._trim = _malloc_trim() if after else None
        self._ended = 0
        self._next = 0.0  # no trim before this (loop time)
        self._quiet_until = 0.0
        self._latest = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._running = False

    def ended(self) -> None:
        """A connection ended (its TLS handshake failed or timed out, or it closed)."""
        if self._trim is None or self.after is None:
            return
        self._ended += 1
        if self._ended < self.after:
            return
        loop = asyncio.get_running_loop()
        self._quiet_until = loop.time() + self.quiet
        if self._timer is None and not self._running:
            self._latest = loop.time() + self.quiet_max
            self._timer = loop.call_at(self._target(), self._fire, loop)

    def _target(self) -> float:
        return max(min(self._quiet_until, self._latest), self._next)

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        target = self._target()
        if loop.time() < target:
            self._timer = loop.call_at(target, self._fire, loop)
            return
        assert self._trim is not None
        self._ended, self._running, self._next = 0, True, loop.time() + self.interval
        loop.run_in_executor(None, self._trim, 0).add_done_callback(self._done)

    def _done(self, future: asyncio.Future[int]) -> None:
        self._running = False
        if future.cancelled() or future.exception() is not None:
            _log.debug("malloc_trim failed: %r", None if future.cancelled() else future.exception())
            return
        self.trims += 1

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
