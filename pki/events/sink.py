"""The one interface every producer of security events writes to: ``sink.record(event)``.

Other components (security profiles on a failed handshake, certificate validation, firmware
verification, the OCPP handlers) only ever see :class:`EventSink`. The event stores of
:mod:`ocppsec.eventlog` implement it, and so do the in-memory :class:`MemorySink` (tests),
:class:`FanOutSink` (several sinks at once), :class:`NullSink` (no store configured) and
:class:`SafeSink` (a store failure is logged, never raised into a connection).

A sink must not raise for a valid event because of a backend outage if it promises durability; the
buffering wrapper :class:`ocppsec.eventlog.store.BufferedSink` gives that promise on top of any store.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Protocol, runtime_checkable

from ocppsec.pki.errors import OcppsecError
from ocppsec.pki.events.model import SecurityEvent, Source, normalize_event
from ocppsec.pki.versions import OcppVersion

__all__ = [
    "EventSink",
    "FanOutSink",
    "MemorySink",
    "NullSink",
    "SafeSink",
    "event_from_error",
    "local_event",
    "peer_station_id",
]

_log = logging.getLogger("ocppsec.events")


@runtime_checkable
class EventSink(Protocol):
    """Receives security events. Keep this tiny and stable."""

    def record(self, event: SecurityEvent) -> None:
        """Accept one event (store it, queue it, forward it)."""


class MemorySink:
    """Keeps events in a list, de-duplicated like the stores; thread-safe. For tests and demos."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[SecurityEvent] = []
        self._keys: set[int] = set()

    def record(self, event: SecurityEvent) -> None:
        with self._lock:
            key = event.dedup_key
            if key not in self._keys:
                self._keys.add(key)
                self._events.append(event)

    @property
    def events(self) -> tuple[SecurityEvent, ...]:
        with self._lock:
            return tuple(self._events)

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)


class FanOutSink:
    """Records each event into every given sink (e.g. the store and a live monitor)."""

    def __init__(self, sinks: Iterable[EventSink]) -> None:
        self._sinks = tuple(sinks)

    def record(self, event: SecurityEvent) -> None:
        for sink in self._sinks:
            sink.record(event)


def event_from_error(error: OcppsecError, *, station_id: str, at: datetime) -> SecurityEvent | None:
    """The security event an error maps to (``error.security_event``), or ``None`` if it maps to none.

    For our own components: ``if (e := event_from_error(err, station_id=cs, at=now)): sink.record(e)``.
    """
    if not error.security_event:
        return None
    return normalize_event(
        station_id=station_id,
        type=error.security_event,
        timestamp=at,
        tech_info=str(error)[:255],
        at=at,
        source=Source.LOCAL,
    )


class NullSink:
    """Discards events (when no event store is configured)."""

    def record(self, event: SecurityEvent) -> None:
        return None


class SafeSink:
    """Wraps a sink so that a failing store never breaks a connection: errors are logged, not raised."""

    def __init__(self, inner: EventSink) -> None:
        self.inner = inner

    def record(self, event: SecurityEvent) -> None:
        try:
            self.inner.record(event)
        except Exception:  # a broken store must not stop a server from serving other stations
            _log.exception("could not record security event %s for %s", event.type, event.station_id)


def peer_station_id(identity: str | None, peer: str) -> str:
    """The station id to file an event under: the identity, or ``peer:<address>`` before it is known."""
    return identity if identity else f"peer:{peer}"


def local_event(
    type: str, *, station_id: str, tech_info: str | None, at: datetime, version: OcppVersion | None = None,
) -> SecurityEvent:
    """An event raised by our own components (techInfo cut to 255 characters, flagged if cut)."""
    return normalize_event(
        station_id=station_id[:255], type=type, timestamp=at, tech_info=tech_info, at=at,
        ocpp_version=version, source=Source.LOCAL,
    )
