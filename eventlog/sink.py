"""The one interface every producer of security events writes to: ``sink.record(event)``.

Other components (security profiles on a failed handshake, certificate validation, firmware
verification, the OCPP handlers) only ever see :class:`EventSink`. Stores implement it, and so do the
in-memory :class:`MemorySink` (tests) and :class:`FanOutSink` (several sinks at once).

A sink must not raise for a valid event because of a backend outage if it promises durability; the
buffering wrapper :class:`ocppsec.eventlog.store.BufferedSink` gives that promise on top of any store.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Protocol, runtime_checkable

from ocppsec.eventlog.model import SecurityEvent, Source, normalize_event
from ocppsec.pki.errors import OcppsecError

__all__ = ["EventSink", "FanOutSink", "MemorySink", "event_from_error"]


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
