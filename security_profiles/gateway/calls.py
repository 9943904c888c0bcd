"""Gateway-originated calls: the gateway sends a CALL to a station and awaits its answer itself.

:meth:`StationCalls.call` sends ``[2, id, action, payload]`` on the station's connection with an id of
the gateway's own (``ocppsec-gw-c-<counter>-<random>``: the upstream's ids never carry the prefix, and the
counter makes two of ours differ) and waits at most ``timeout`` seconds for the CALLRESULT or CALLERROR.
The relay hands every station frame that could be such an answer to :meth:`StationCalls.take` first
(a cheap substring test for the prefix); an answer it takes is never forwarded to the upstream. Every
CALLRESULT / CALLERROR with an id of ours is taken, an answer after the timeout too (counted ``late``
and dropped): the upstream never sees an answer to a call it did not make. An answer from another
station than the one called is dropped the same way and never resolves that station's call.

Answers are :class:`CallAnswer` values; a timeout or a station that went away is one too
(``timed_out``), never an exception. Payloads are checked by the caller against its codec.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["CALL_PREFIX", "CallAnswer", "CallTarget", "StationCalls"]

CALL_PREFIX = "ocppsec-gw-c-"
_log = logging.getLogger("ocppsec.security_profiles.gateway.calls")


class CallTarget(Protocol):
    """Where a call goes: a station connection (identity and ``send``)."""

    @property
    def identity(self) -> str: ...

    async def send(self, message: str | bytes) -> None: ...


@dataclass(frozen=True, slots=True)
class CallAnswer:
    """A station's answer to a gateway call: a CALLRESULT payload, a CALLERROR, or none in time."""

    action: str
    payload: dict[str, Any] | None = None  # the CALLRESULT payload
    error_code: str | None = None  # CALLERROR errorCode
    error_description: str = ""
    timed_out: bool = False  # no answer within the timeout, or the station was gone

    @property
    def ok(self) -> bool:
        return self.payload is not None

    def describe(self) -> str:
        if self.timed_out:
            return f"no answer to {self.action}"
        if self.error_code is not None:
            return f"{self.action}: CALLERROR {self.error_code} {self.error_description}".strip()[:255]
        return f"{self.action}: {json.dumps(self.payload)[:200]}"


def _expire(future: asyncio.Future[CallAnswer]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


@dataclass
class _Pending:
    station_id: str
    action: str
    future: asyncio.Future[CallAnswer]


@dataclass
class StationCalls:
    """Outstanding gateway calls of every station (one per gateway); see the module docstring."""

    default_timeout: float = 30.0
    pending: dict[str, _Pending] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=lambda: {"sent": 0, "answered": 0, "timed_out": 0, "errors": 0,
                                                            "late": 0})
    _ids: itertools.count[int] = field(default_factory=itertools.count)
    _salt: str = field(default_factory=lambda: secrets.token_hex(3))

    def new_id(self) -> str:
        return f"{CALL_PREFIX}{next(self._ids):x}-{self._salt}"

    async def call(self, station: CallTarget, action: str, payload: dict[str, Any], *,
                   timeout: float | None = None) -> CallAnswer:
        """Send ``action`` to ``station`` and wait for its answer (see the module docstring)."""
        unique_id = self.new_id()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[CallAnswer] = loop.create_future()
        self.pending[unique_id] = _Pending(station.identity, action, future)
        frame = json.dumps([2, unique_id, action, payload], separators=(",", ":"), ensure_ascii=False)
        try:
            try:
                await station.send(frame)
            except Exception as exc:  # the connection closed under us: no answer will come
                _log.info("%s: %s not sent: %s", station.identity, action, exc)
                self.counts["timed_out"] += 1
                return CallAnswer(action, timed_out=True, error_description=str(exc)[:200])
            self.counts["sent"] += 1
            # One timer on the future itself: asyncio.wait_for(shield(...)) made two more futures, a task-level
            # timeout and their callbacks per call (about 6 % of the gateway's Python time in a renewal campaign).
            expiry = loop.call_later(timeout or self.default_timeout, _expire, future)
            try:
                answer = await future
            except TimeoutError:
                self.counts["timed_out"] += 1
                return CallAnswer(action, timed_out=True)
            finally:
                expiry.cancel()
        finally:
            self.pending.pop(unique_id, None)
        self.counts["errors" if answer.error_code else "answered"] += 1
        return answer

    def may_answer(self, message: str | bytes) -> bool:
        """Cheap test (no JSON parsing): could ``message`` answer a call of ours (outstanding or late)?"""
        return isinstance(message, str) and CALL_PREFIX in message

    def take(self, station_id: str, message: str | bytes) -> bool:
        """Consume ``message`` if it answers one of ``station_id``'s outstanding calls (True), else False."""
        if not self.may_answer(message):
            return False
        try:
            frame = json.loads(message)
        except ValueError:
            return False
        if not (isinstance(frame, list) and len(frame) >= 3 and frame[0] in (3, 4) and isinstance(frame[1], str)):
            return False
        if not frame[1].startswith(CALL_PREFIX):
            return False
        pending = self.pending.get(frame[1])
        if pending is None or pending.station_id != station_id:
            self.counts["late"] += 1  # after its timeout, or from another station: ours, dropped
            return True
        if pending.future.done():
            return True  # a duplicate answer: still ours, never the upstream's
        if frame[0] == 3 and isinstance(frame[2], dict):
            pending.future.set_result(CallAnswer(pending.action, payload=frame[2]))
        elif frame[0] == 4:
            description = frame[3] if len(frame) > 3 and isinstance(frame[3], str) else ""
            pending.future.set_result(CallAnswer(pending.action, error_code=str(frame[2])[:50],
                                                 error_description=description[:200]))
        else:
            pending.future.set_result(CallAnswer(pending.action, error_code="FormatViolation",
                                                 error_description="unreadable answer"))
        return True
