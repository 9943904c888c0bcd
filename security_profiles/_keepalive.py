"""Keepalive for a fleet: ping only the connections that have been silent, from one timer for all of them.

websockets' own keepalive runs a task per connection that pings every ``ping_interval`` whatever the
traffic, and waits for each pong under a timeout. A station that sends anything (its own pings, which
OCPP stations send every WebSocketPingInterval, its Heartbeats, any message) shows that it is alive,
so pinging it as well doubles the keepalive traffic for nothing: at 10,000 stations pinging every 20 s
and a server pinging every 30 s, 833 ping/pong exchanges a second, each costing both ends a TLS record
each way (measured in benchmarks/lifecycle.py, ADR 23).

:class:`IdleKeepalive` keeps the set of open connections; each one's ``data_received`` sets its
``rx_seen`` flag. One timer, every quarter of the interval (at most 5 s), walks the set: a connection
that received anything since the last walk is alive; one that has been silent for ``interval`` gets a
ping; one that received nothing within ``timeout`` of its ping fails with 1011 "keepalive ping timeout",
as websockets' keepalive does. A connection is thus pinged after ``interval`` to ``interval`` + a quarter
of silence, and failed ``timeout`` to ``timeout`` + a quarter after the ping.

It writes pings through websockets' sans-I/O protocol (:data:`INTERNALS`); :func:`supported` says
whether a connection has them, and :func:`~ocppsec.security_profiles.server.serve` leaves keepalive to
websockets where it does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from typing import Any

from websockets.frames import CloseCode
from websockets.protocol import State

__all__ = ["INTERNALS", "IdleKeepalive", "supported"]

_log = logging.getLogger("ocppsec.security_profiles.server")

INTERNALS = ("protocol.state", "protocol.send_ping", "protocol.fail", "send_data", "send_context")
# split once and interned, as in _splice: names split afresh pile up in CPython's type attribute cache
_PATHS = tuple(tuple(sys.intern(part) for part in path.split(".")) for path in INTERNALS)


def supported(connection: Any) -> bool:
    """Whether ``connection`` (a websockets asyncio connection) has what :class:`IdleKeepalive` uses."""
    for parts in _PATHS:
        target = connection
        for part in parts:
            target = getattr(target, part, None)
            if target is None:
                return False
    return True


class IdleKeepalive:
    """Pings the connections added to it when they have been silent for ``interval`` seconds; fails them
    (1011) when nothing arrives within ``timeout`` seconds of the ping (``None``: never)."""

    def __init__(self, interval: float, timeout: float | None) -> None:
        self.interval = interval
        self.timeout = timeout
        self.tick = min(max(interval / 4, 0.05), 5.0)
        self.pings = 0  # pings sent
        self.timeouts = 0  # connections failed for a missing pong
        self._connections: dict[Any, list[float | None]] = {}  # connection -> [silent since, ping sent at]
        self._timer: asyncio.TimerHandle | None = None
        self._failing: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._connections)

    def add(self, connection: Any) -> None:
        """Watch ``connection`` (open, with an ``rx_seen`` flag its ``data_received`` sets)."""
        loop = asyncio.get_running_loop()
        connection.rx_seen = False
        self._connections[connection] = [loop.time(), None]
        if self._timer is None:
            self._timer = loop.call_later(self.tick, self._walk)

    def discard(self, connection: Any) -> None:
        self._connections.pop(connection, None)
        if not self._connections and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _walk(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for connection, marks in list(self._connections.items()):
            if connection.rx_seen:
                connection.rx_seen = False
                marks[0], marks[1] = now, None
                continue
            if connection.protocol.state is not State.OPEN:
                continue  # closing: websockets' close timeout takes over
            sent = marks[1]
            if sent is not None:
                if self.timeout is not None and now - sent >= self.timeout:
                    self._fail(connection)
                continue
            silent_since = marks[0]
            assert silent_since is not None
            if now - silent_since >= self.interval:
                self._ping(connection)
                marks[1] = now
        self._timer = loop.call_later(self.tick, self._walk) if self._connections else None

    def _ping(self, connection: Any) -> None:
        try:
            connection.protocol.send_ping(os.urandom(4))
            connection.send_data()
        except Exception as exc:  # the transport went away under us: its connection_lost follows
            _log.debug("keepalive ping not sent: %s", exc)
            return
        self.pings += 1

    def _fail(self, connection: Any) -> None:
        self.timeouts += 1
        self._connections.pop(connection, None)

        async def fail() -> None:
            with contextlib.suppress(Exception):  # already closing or closed: nothing more to do
                async with connection.send_context():
                    connection.protocol.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")

        task = asyncio.get_running_loop().create_task(fail())
        self._failing.add(task)
        task.add_done_callback(self._failing.discard)
