"""The gateway's adapter for :mod:`.follow`: the changes a station stored, written to the registry off the loop.

:class:`ChangeFollower` is one per gateway; :meth:`ChangeFollower.session` gives each relayed station a
:class:`FollowSession`, which the relay feeds every frame (synchronously, inside the relay: a substring
test and a dictionary lookup for almost every frame). What the tracker asks for is done here:

- a password is hashed (salted scrypt, :func:`~ocppsec.security_profiles.basic_auth.hash_password`) in a
  worker thread as soon as the CSMS sends it, so that the hash is usually ready when the station answers;
  the clear value is dropped once it is hashed and never logged;
- what the station stored is applied in order by one task per station, which exists only while there
  is something to apply: read the record, :func:`.follow.apply`, write the record, each in a worker thread;
  then one log line and a local ReconfigurationOfSecurityParameters security event (the event the catalogue
  has for changed keys and security profiles), both carrying a note and never a password;
- a station that stored a change usually disconnects at once and reconnects with it (A01, A05): until its
  change is written, :meth:`ChangeFollower.before_decide` (``serve(before_decide=...)``) holds that station's
  next handshake before the decision reads the registry, for at most ``settle_timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from websockets.typing import Data

from ocppsec.pki.errors import InputError, OcppsecError
from ocppsec.pki.events.sink import EventSink, local_event
from ocppsec.pki.versions import OcppVersion
from ocppsec.security_profiles.basic_auth import ScryptCost, hash_password
from ocppsec.security_profiles.gateway.follow import (
    Action,
    Applied,
    ChangeTracker,
    Direction,
    ForgetSecret,
    HashSecret,
    PasswordChanged,
    SlotChanged,
    Unfollowed,
    apply,
)
from ocppsec.security_profiles.identity import identity_from_path
from ocppsec.security_profiles.registry import StationRegistry

__all__ = ["RECONFIGURATION_EVENT", "ChangeFollower", "FollowSession"]

_log = logging.getLogger("ocppsec.security_profiles.gateway.follow")
RECONFIGURATION_EVENT = "ReconfigurationOfSecurityParameters"


class _Settling:
    """The stations with changes not yet written, and an event per station that is set when they are."""

    def __init__(self) -> None:
        self.count: dict[str, int] = {}
        self.done: dict[str, asyncio.Event] = {}

    def begin(self, identity: str) -> None:
        self.count[identity] = self.count.get(identity, 0) + 1
        self.done.setdefault(identity, asyncio.Event())

    def end(self, identity: str) -> None:
        left = self.count.get(identity, 1) - 1
        if left > 0:
            self.count[identity] = left
            return
        self.count.pop(identity, None)
        event = self.done.pop(identity, None)
        if event is not None:
            event.set()


class ChangeFollower:
    """Follows, for every station the gateway relays, the credential and profile changes it stores."""

    def __init__(self, registry: StationRegistry, sink: EventSink, clock: Callable[[], datetime], *,
                 base_path: str = "/", password_cost: ScryptCost | None = None, settle_timeout: float = 5.0) -> None:
        self.registry = registry
        self.sink = sink
        self.clock = clock
        self.base_path = base_path
        self.password_cost = password_cost
        self.settle_timeout = settle_timeout
        self.followed = 0  # changes written to the registry
        self.unfollowed = 0  # changes seen and not followed
        self._settling = _Settling()

    def session(self, identity: str, version: OcppVersion) -> FollowSession:
        return FollowSession(self, identity, version)

    async def before_decide(self, path: str) -> None:
        """Wait (bounded) until the changes of the station at ``path`` are written; return at once otherwise."""
        if not self._settling.done:
            return
        try:
            identity = identity_from_path(path, self.base_path)
        except InputError:
            return
        event = self._settling.done.get(identity)
        if event is None:
            return
        try:
            await asyncio.wait_for(event.wait(), self.settle_timeout)
        except TimeoutError:
            _log.warning("the changes of station %s were not written within %s s; deciding on the registry as it is",
                         identity, self.settle_timeout)


class FollowSession:
    """One relayed station: feed it the frames both ways; :meth:`close` when the connection ends.

    Small while nothing happens (one per relayed station): the hash table and the queue exist only once
    a change is seen."""

    __slots__ = ("_hashes", "_queue", "_worker", "follower", "identity", "tracker", "version")

    def __init__(self, follower: ChangeFollower, identity: str, version: OcppVersion) -> None:
        self.follower = follower
        self.identity = identity
        self.version = version
        self.tracker = ChangeTracker(version)
        self._hashes: dict[int, asyncio.Future[str]] | None = None
        self._queue: collections.deque[Action] | None = None
        self._worker: asyncio.Task[None] | None = None

    # -- the relay's hooks (synchronous, cheap) ----------------------------------------------------
    def to_station(self, message: Data) -> None:
        """A frame the CSMS sends the station."""
        if self.tracker.awaiting or self.tracker.may_act_on(message):
            self._feed(Direction.TO_STATION, message)

    def from_station(self, message: Data) -> None:
        """A frame the station sends the CSMS."""
        if self.tracker.awaiting:
            self._feed(Direction.FROM_STATION, message)

    def _feed(self, direction: Direction, message: Data) -> None:
        try:
            self._take(self.tracker.feed(direction, message, self.follower.clock()))
        except Exception:  # inside the relay (websockets' data_received): a bug here must not cost the connection
            _log.exception("could not follow a frame of station %s", self.identity)

    def _take(self, actions: tuple[Action, ...]) -> None:
        for action in actions:
            if isinstance(action, HashSecret):
                if self._hashes is None:
                    self._hashes = {}
                cost = self.follower.password_cost
                self._hashes[action.ref] = asyncio.ensure_future(
                    asyncio.to_thread(hash_password, action.secret.reveal(), cost=cost))
            elif isinstance(action, ForgetSecret):
                future = self._hashes.pop(action.ref, None) if self._hashes is not None else None
                if future is not None:
                    future.cancel()
            else:
                if self._queue is None:
                    self._queue = collections.deque()
                self._queue.append(action)
                if self._worker is None:
                    self.follower._settling.begin(self.identity)
                    self._worker = asyncio.get_running_loop().create_task(self._work())

    # -- applying ----------------------------------------------------------------------------------
    async def _work(self) -> None:
        queue = self._queue
        assert queue is not None
        try:
            while queue:
                action = queue.popleft()
                try:
                    await self._apply(action)
                except Exception:  # a failure here must never reach the relay
                    _log.exception("could not follow a change of station %s", self.identity)
        finally:
            self._worker = None
            self.follower._settling.end(self.identity)

    async def _apply(self, action: Action) -> None:
        ref = action.ref if isinstance(action, PasswordChanged) else (
            action.password_ref if isinstance(action, SlotChanged) else None)
        password_hash = None
        if ref is not None and self._hashes is not None:
            future = self._hashes.pop(ref, None)
            if future is not None:
                try:
                    password_hash = await future
                except (asyncio.CancelledError, ValueError, MemoryError):
                    password_hash = None
        if isinstance(action, Unfollowed):  # nothing to read or write: its note only
            outcome = Applied(None, action.reason, None, False)
        else:
            outcome = await asyncio.to_thread(self._write, action, password_hash)
        self._report(outcome)

    def _write(self, action: Action, password_hash: str | None) -> Applied:
        """In a worker thread: read the record, apply, write it back."""
        try:
            record = self.follower.registry.get(self.identity)
            if record is None:
                return Applied(None, "the station is no longer registered; the change is not followed", None, False)
            outcome = apply(record, action, self.version, password_hash=password_hash)
            if outcome.record is not None and outcome.record != record:
                self.follower.registry.update(outcome.record)
        except OcppsecError as exc:
            return Applied(None, f"the registry could not be written: {exc.message}"[:200], None, False)
        return outcome

    def _report(self, outcome: Applied) -> None:
        req = f" [{outcome.requirement}]" if outcome.requirement else ""
        if outcome.followed:
            if outcome.record is None:
                _log.info("station %s: %s%s", self.identity, outcome.note, req)
                return
            self.follower.followed += 1
            _log.info("station %s: %s%s", self.identity, outcome.note, req)
        else:
            self.follower.unfollowed += 1
            _log.warning("station %s: %s%s", self.identity, outcome.note, req)
        tech = f"{'' if outcome.followed else 'not followed: '}{outcome.note}{req}"
        self.follower.sink.record(local_event(RECONFIGURATION_EVENT, station_id=self.identity, tech_info=tech[:255],
                                              at=self.follower.clock(), version=self.version))

    async def close(self, timeout: float = 10.0) -> None:
        """The connection ended: finish writing what the station stored (bounded), forget the rest."""
        self._take(self.tracker.close())
        if self._worker is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._worker), timeout)
        for future in (self._hashes or {}).values():
            future.cancel()
        self._hashes = None

