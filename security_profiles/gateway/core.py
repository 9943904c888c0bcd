"""The security gateway: profiles 1-3 in front of any CSMS.

Stations connect to the gateway at their security profile; the gateway authenticates them and binds
the identity (:func:`~.server.serve`), opens ``upstream/IDENTITY`` with the same OCPP subprotocol before
the station gets its 101 (:mod:`.upstream`: the upstream's refusal becomes the station's HTTP refusal;
the station's profile and certificate facts go to the upstream as request headers) and relays every
message both ways unchanged (text stays text, binary stays binary). It never parses OCPP except to record
the stations' own SecurityEventNotification requests into the event sink on their way through, to follow
the credential and security-profile changes the CSMS makes over OCPP into the registry (:mod:`.follow`,
:mod:`.follower`; ``follow_changes``) and, with ``csr_signing`` (``--sign-csrs``), to answer the stations'
SignCertificate itself and send them CertificateSigned (see :mod:`.csr_signing`); those frames and the
stations' answers to the gateway's CertificateSigned never reach the upstream. With ``calls`` (:mod:`.calls`)
the gateway sends CALLs of its own to stations (the campaigns of :mod:`.campaigns`) and takes their answers
out of the relay the same way; ``listeners`` hear of every station session opened and closed and of every
security event a station reports; a station admitted for onboarding (``context["onboarding"]``) is never
relayed (no upstream is opened for it): ``onboarding`` handles it, and without one it is closed with 1008.

Relay (``relay``): ``splice`` relays each message inside websockets' ``data_received`` with no task per
frame (:mod:`._splice`, on websockets internals; ADR 12), ``tasks`` runs two pump tasks per station on
websockets' public ``recv``/``send``. ``auto`` (the default) splices every connection the splice
supports and falls back to the tasks otherwise (logged once). Which relay a connection got is in
:attr:`Gateway.sessions` while it runs and counted in :attr:`GatewayStats.relays`.

Faults: the upstream unreachable or slower than ``upstream_open_timeout`` -> the station is refused with
503, the upstream refusing -> its status (401, 403, 404; see :mod:`.upstream`); the upstream closing ->
the station is closed with the same code (1011 when the upstream vanished without one); a station
frame over ``max_size`` -> 1009 and the upstream side is closed; a slow reader only slows its own
relay (websockets' write buffer limits; the splice pauses reading the other side, the tasks wait in
``drain``); dead peers are found by pings. One station's trouble never stops the others.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.server import Server
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State
from websockets.typing import Data

from ocppsec.pki.events.ingest import ACTION as SECURITY_EVENT_ACTION
from ocppsec.pki.events.ingest import event_from_frame
from ocppsec.pki.events.model import EventInputError, SecurityEvent
from ocppsec.pki.events.sink import EventSink, NullSink, SafeSink
from ocppsec.pki.versions import OcppVersion
from ocppsec.security_profiles._splice import Splice, unsupported_reason, websockets_supported
from ocppsec.security_profiles.basic_auth import ScryptCost
from ocppsec.security_profiles.gateway.calls import StationCalls
from ocppsec.security_profiles.gateway.csr_signing import CsrSigning, SigningSession, parse_sign_certificate
from ocppsec.security_profiles.gateway.follower import ChangeFollower, FollowSession
from ocppsec.security_profiles.gateway.upstream import CONTEXT_KEY, UpstreamAuth, UpstreamOpener
from ocppsec.security_profiles.handshake import Reject, ServerPolicy
from ocppsec.security_profiles.registry import StationRegistry
from ocppsec.security_profiles.server import DEFAULT_MAX_SIZE, Admission, AdmissionStep, StationConnection, serve

__all__ = ["Gateway", "GatewayStats", "Relay", "RelaySession", "SessionListener", "security_event_from_frame"]

_log = logging.getLogger("ocppsec.security_profiles.gateway")
UPSTREAM_UNAVAILABLE = 1011


class Relay(StrEnum):
    """How the gateway relays a station's messages (see the module docstring)."""

    AUTO = "auto"
    SPLICE = "splice"
    TASKS = "tasks"


@dataclass
class GatewayStats:
    connected: int = 0
    relayed_up: int = 0
    relayed_down: int = 0
    upstream_failures: int = 0
    station_events: int = 0
    answered_locally: int = 0
    per_close_code: dict[int, int] = field(default_factory=dict)
    relays: dict[Relay, int] = field(default_factory=dict)  # connections relayed, per relay (splice / tasks)


@dataclass(eq=False, slots=True, weakref_slot=True)
class RelaySession:
    """One station being relayed: its connection, the gateway's connection to the upstream, and the relay used."""

    station: StationConnection
    upstream: ClientConnection
    relay: Relay
    splice: Splice | None = None  # while the splice relays: its live frame counts (see Gateway.relayed)
    since: datetime | None = None  # when the relay began


class SessionListener(Protocol):
    """Hears of station sessions (called on the event loop; must not block)."""

    def opened(self, station: StationConnection) -> None: ...

    def closed(self, station: StationConnection) -> None: ...

    def station_event(self, station: StationConnection, event: SecurityEvent) -> None: ...


def security_event_from_frame(message: Data, *, station_id: str, version: OcppVersion, at: datetime) -> SecurityEvent | None:
    """The SecurityEvent a station's SecurityEventNotification CALL carries, or ``None``.

    A cheap substring test first, then the kernel's one parser; an unusable event is logged and dropped.
    """
    if isinstance(message, bytes) or SECURITY_EVENT_ACTION not in message:
        return None
    try:
        return event_from_frame(message, station_id=station_id, version=version, at=at)
    except EventInputError as exc:
        _log.info("station %s sent an unusable SecurityEventNotification: %s", station_id, exc.message)
        return None


_NO_HEADERS = Headers()
_SHARED_LOGGERS: dict[logging.Logger, logging.LoggerAdapter[Any]] = {}


def _shared_logger(adapter: Any) -> Any:
    """One ``LoggerAdapter`` per underlying logger for every relayed connection, in place of websockets' own
    per connection (an adapter, its dict and a weak proxy: ~480 bytes, twice per station). websockets' records
    then carry ``websocket=None``; the gateway's own records name the station."""
    base = getattr(adapter, "logger", None)
    if not isinstance(adapter, logging.LoggerAdapter) or not isinstance(base, logging.Logger):
        return adapter
    shared = _SHARED_LOGGERS.get(base)
    if shared is None:
        shared = _SHARED_LOGGERS[base] = logging.LoggerAdapter(base, {"websocket": None})
    return shared


def _drop_handshake(station: StationConnection, upstream: ClientConnection) -> None:
    """Forget the headers of both upgrades (and the station's admission) once the relay starts: nothing reads
    them afterwards, and they are ~6 KiB of every idle connection (ADR 19). The request and response objects
    stay (websockets takes a connection whose ``request``/``response`` is ``None`` to be still in its
    handshake); their headers become one shared empty ``Headers``."""
    for connection in (station.websocket, upstream):
        for message in (connection.request, connection.response):
            if message is not None:
                message.headers = _NO_HEADERS
    if getattr(station.websocket, "admission", None) is not None:
        station.websocket.admission = None  # type: ignore[attr-defined]
    for connection in (station.websocket, upstream):
        # websockets keeps the futures of send() calls waiting for the transport to drain in a deque it
        # only appends to, removes from and walks; an empty deque holds a 64-slot block (760 bytes of every
        # connection, twice per station), an empty list 56 bytes
        waiters = getattr(connection, "drain_waiters", None)
        if type(waiters) is collections.deque and not waiters:
            connection.drain_waiters = []  # type: ignore[assignment]
        protocol = getattr(connection, "protocol", None)
        if protocol is not None and connection.logger is protocol.logger:
            connection.logger = protocol.logger = _shared_logger(protocol.logger)


class Gateway:
    """Relay authenticated stations to ``upstream`` (``ws://`` or ``wss://``; the identity is appended).

    ``relay``: ``auto`` (the splice where it is supported, else tasks), ``tasks`` (always the pump tasks) or
    ``splice`` (as ``auto``, but a websockets version outside the splice's verified range is a
    :class:`~ocppsec.pki.errors.UsageError` here instead of a fallback).

    The hop to the upstream: ``upstream_ssl`` for ``wss://`` (see :func:`.upstream.upstream_context`),
    ``upstream_auth`` for Basic auth; ``upstream_open_timeout`` must be shorter than ``open_timeout`` (the
    station's handshake waits for the upstream). Keepalive: ``ping_interval`` for WebSocket pings to the
    stations (and their timeout); the upstream hop has TCP keepalive after as many seconds of silence
    instead, and WebSocket pings only with ``upstream_ping_interval`` (see :mod:`.upstream`).
    ``follow_changes``: follow the CSMS's credential and profile changes into the registry
    (``password_cost``: the scrypt cost of the hashes it stores).
    """

    def __init__(
        self,
        *,
        policy: ServerPolicy,
        registry: StationRegistry,
        upstream: str,
        ssl_context: ssl.SSLContext | None = None,
        sink: EventSink | None = None,
        max_size: int = DEFAULT_MAX_SIZE,
        upstream_ssl: ssl.SSLContext | None = None,
        upstream_open_timeout: float = 5.0,
        open_timeout: float = 10.0,
        tls_handshake_timeout: float = 10.0,
        ping_interval: float | None = 30.0,
        upstream_ping_interval: float | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        csr_signing: CsrSigning | None = None,
        relay: Relay | str = Relay.AUTO,
        calls: StationCalls | None = None,
        upstream_auth: UpstreamAuth | None = None,
        follow_changes: bool = True,
        password_cost: ScryptCost | None = None,
    ) -> None:
        from ocppsec.pki.errors import UsageError

        if not upstream.startswith(("ws://", "wss://")):
            raise UsageError(f"upstream {upstream!r} is not a ws:// or wss:// URL")
        try:
            self.relay = Relay(relay)
        except ValueError:
            raise UsageError(f"relay {relay!r} is not auto, splice or tasks") from None
        if self.relay is Relay.SPLICE and not websockets_supported():
            from websockets.version import version

            raise UsageError(f"relay 'splice': websockets {version} is not a version the splice was verified on",
                             hint="use relay 'auto' (falls back to tasks) or install a websockets version within "
                                  "ocppsec's dependency bounds")
        if not 0 < upstream_open_timeout < open_timeout:
            raise UsageError(f"the upstream open timeout ({upstream_open_timeout} s) must be positive and shorter than "
                             f"the stations' open timeout ({open_timeout} s)",
                             hint="the station's handshake waits for the upstream to open")
        self.policy = policy
        self.registry = registry
        self.upstream = upstream.rstrip("/")
        self.ssl_context = ssl_context
        self.sink: EventSink = SafeSink(sink if sink is not None else NullSink())
        self._event_sink = sink  # for event_counters()
        self.max_size = max_size
        self.upstream_ssl = upstream_ssl
        self.upstream_open_timeout = upstream_open_timeout
        self.open_timeout = open_timeout
        self.tls_handshake_timeout = tls_handshake_timeout
        self.ping_interval = ping_interval
        self.clock = clock
        self.csr_signing = csr_signing
        self.stats = GatewayStats()
        self.server: Server | None = None
        # the stations being relayed now, in the order they came: a dict used as an ordered set, so a closing
        # station leaves it in O(1) (a list's remove walked all 10,000 of a fleet on every close)
        self.sessions: dict[RelaySession, None] = {}
        self._fallback_logged = False
        # Checks run after the handshake decision accepted a station, before its 101, in this order; the
        # first refusal wins (see server.Admission).
        self.admission_steps: list[AdmissionStep] = []
        self.calls = calls  # the gateway's own calls to stations (see .calls)
        self.listeners: list[SessionListener] = []
        self.onboarding: Callable[[StationConnection], Awaitable[None]] | None = None
        self.campaign_engine: Any = None  # a campaigns.CampaignEngine attaches itself here (service, metrics)
        # ... and then, last, the upstream is opened (see .upstream)
        self.opener = UpstreamOpener(self.upstream, ssl_context=upstream_ssl, auth=upstream_auth,
                                     open_timeout=upstream_open_timeout, ping_interval=upstream_ping_interval,
                                     keepalive=ping_interval if ping_interval is not None else 30.0, max_size=max_size)
        self.follower = ChangeFollower(registry, self.sink, clock, base_path=policy.base_path,
                                       password_cost=password_cost) if follow_changes else None

    def set_ssl_context(self, ctx: ssl.SSLContext | None) -> None:
        """Use ``ctx`` for the TLS handshakes from now on (a reload); connected stations keep theirs."""
        from ocppsec.pki.errors import UsageError

        if (ctx is None) != (self.ssl_context is None):
            raise UsageError("a reload cannot switch the gateway between TLS and plain ws://")
        if ctx is not None:
            from ocppsec.security_profiles import _tls_alert

            _tls_alert.install(ctx)  # as serve() does: a refused ClientHello still gets its alert
        self.ssl_context = ctx
        state = getattr(self.server, "profile_state", None)
        if state is not None:
            state.ssl_context = ctx  # read by every new connection (server._ProfileConnection.connection_made)

    def relayed(self) -> tuple[int, int]:
        """Frames relayed up (station to CSMS) and down so far, the stations being spliced now included."""
        up, down = self.stats.relayed_up, self.stats.relayed_down
        for session in self.sessions:
            splice = session.splice
            if splice is not None:
                up += splice.up.count
                down += splice.down.count
        return up, down

    def event_counters(self) -> dict[str, int | bool]:
        """The event sink's counters (queued, written, spooled, replayed, dropped, ...) if it keeps any
        (``ocppsec.eventlog.queued.QueuedSink`` does), else an empty dict; for metrics."""
        counters = getattr(self._event_sink, "counters", None)
        if counters is None:
            return {}
        value = counters()
        as_dict = getattr(value, "as_dict", None)
        return dict(as_dict()) if as_dict is not None else dict(value)

    def handshake_counters(self) -> dict[str, int]:
        """Counts of the running server, for metrics: TLS failures, refused and accepted handshakes,
        connections closed for control-frame floods, and refusals per reason (``refused:<reason>``)."""
        state = getattr(self.server, "profile_state", None)
        if state is None:
            return {}
        out = {"tls_failures": state.failures, "refused": state.refused, "accepted": state.accepted,
               "control_floods": state.control_floods}
        out.update({f"refused:{reason}": n for reason, n in sorted(state.refusals.items())})
        return out

    def serve(self, host: str, port: int, **kwargs: Any) -> Server:
        """websockets' server running the gateway (``async with gateway.serve(host, port):``)."""
        self.server = serve(
            self.handle, host, port, policy=self.policy, registry=self.registry, ssl_context=self.ssl_context,
            sink=self.sink, max_size=self.max_size, open_timeout=self.open_timeout,
            tls_handshake_timeout=self.tls_handshake_timeout, ping_interval=self.ping_interval,
            ping_timeout=self.ping_interval, clock=self.clock, admit=self._admit,
            before_decide=self.follower.before_decide if self.follower is not None else None, **kwargs,
        )
        return self.server

    async def _admit(self, admission: Admission) -> Reject | None:
        for step in self.admission_steps:
            refusal = await step(admission)
            if refusal is not None:
                return refusal
        if "onboarding" in admission.context:
            return None  # a renewal-only session: nothing is opened upstream
        refusal = await self.opener(admission)  # last: the upstream is opened only for an admitted station
        if refusal is not None:
            self.stats.upstream_failures += 1
        return refusal

    async def handle(self, station: StationConnection) -> None:
        if "onboarding" in station.context:
            await self._local(station)
            return
        upstream: ClientConnection | None = station.context.pop(CONTEXT_KEY, None)
        if upstream is None or upstream.state is not State.OPEN:  # gone while the station got its 101
            self.stats.upstream_failures += 1
            await station.close(UPSTREAM_UNAVAILABLE, "upstream CSMS unavailable")
            if upstream is not None:
                await upstream.close()
            return
        self.stats.connected += 1
        _drop_handshake(station, upstream)
        relay = self._choose_relay(station, upstream)
        session = RelaySession(station, upstream, relay, since=self.clock())
        self.sessions[session] = None
        self.stats.relays[relay] = self.stats.relays.get(relay, 0) + 1
        self._notify("opened", station)
        follow = self.follower.session(station.identity, station.version) if self.follower is not None else None
        try:
            if relay is Relay.SPLICE:
                # no coroutine of its own: the handler's frame is the only one a relayed station keeps
                splice = session.splice = self._start_splice(station, upstream, follow)
                try:
                    await splice.wait()
                finally:
                    session.splice = None
                    self.stats.relayed_up += splice.up.count
                    self.stats.relayed_down += splice.down.count
                del splice
            else:
                await self._pumps(station, upstream, follow)
            if station.websocket.state is not State.OPEN:  # the station went away: tell the upstream
                code = station.websocket.close_code
                await upstream.close(code if code in (1000, 1001) else 1001, "station disconnected")
            else:
                code = upstream.close_code
                forwarded = code if code is not None and code not in (1005, 1006, 1015) else UPSTREAM_UNAVAILABLE
                await station.close(forwarded, (upstream.close_reason or "upstream closed")[:120])
            self.stats.per_close_code[code or 1006] = self.stats.per_close_code.get(code or 1006, 0) + 1
        finally:
            self.stats.connected -= 1
            del self.sessions[session]
            self._notify("closed", station)
            await upstream.close()
            if follow is not None:
                await follow.close()  # what the station stored just before it left is still written

    async def _local(self, station: StationConnection) -> None:
        """A station admitted for onboarding: handled by ``onboarding``, never relayed."""
        if self.onboarding is None:
            await station.close(1008, "not admitted")
            return
        self._notify("opened", station)
        try:
            await self.onboarding(station)
        finally:
            self._notify("closed", station)

    def _notify(self, what: str, station: StationConnection, *args: Any) -> None:
        for listener in self.listeners:
            try:
                getattr(listener, what)(station, *args)
            except Exception:  # a listener's fault never ends the station's session
                _log.exception("session listener %r failed on %s", listener, what)

    def planned_relay(self) -> Relay:
        """The relay stations will get: the splice unless ``relay`` is ``tasks`` or this websockets version is
        outside the splice's verified range (a connection lacking one of its internals still gets the tasks)."""
        return Relay.SPLICE if self.relay is not Relay.TASKS and websockets_supported() else Relay.TASKS

    def _choose_relay(self, station: StationConnection, upstream: ClientConnection) -> Relay:
        """The splice unless ``relay`` is ``tasks`` or a connection lacks what it needs (then logged once)."""
        if self.relay is Relay.TASKS:
            return Relay.TASKS
        reason = unsupported_reason(station.websocket) or unsupported_reason(upstream)
        if reason is None:
            return Relay.SPLICE
        if not self._fallback_logged:
            self._fallback_logged = True
            _log.warning("relaying with two tasks per station instead of the splice: %s", reason)
        return Relay.TASKS

    async def _pumps(self, station: StationConnection, upstream: ClientConnection, follow: FollowSession | None) -> None:
        up = asyncio.create_task(self._pump_up(station, upstream, follow))
        down = asyncio.create_task(self._pump_down(upstream, station, follow))
        _done, pending = await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def _start_splice(self, station: StationConnection, upstream: ClientConnection,
                      follow: FollowSession | None) -> Splice:
        """Relay frame by frame inside websockets' ``data_received`` (see :mod:`._splice`): no task per frame."""
        session = self.csr_signing.session(station.identity, station.version) if self.csr_signing is not None else None
        calls = self.calls

        def observe(message: Data) -> None:
            self._record_station_event(station, message)
            if follow is not None:
                follow.from_station(message)

        inspect: Callable[[Data], bool] | None = None
        handle: Callable[[Data], Awaitable[bool]] | None = None
        if session is not None or calls is not None:  # only then: two closures per station for its whole life

            def inspect(message: Data) -> bool:
                if calls is not None and calls.may_answer(message):
                    return True
                return session is not None and (session.may_answer(message) or
                                                (isinstance(message, str) and "SignCertificate" in message))

            async def handle(message: Data) -> bool:
                return await self._answer_locally(session, station, message)

        splice = Splice(station.websocket, upstream, inspect=inspect, handle=handle, observe=observe,
                        observe_down=follow.to_station if follow is not None else None)
        splice.start()
        return splice

    def _record_station_event(self, station: StationConnection, message: Data) -> None:
        if isinstance(message, bytes) or SECURITY_EVENT_ACTION not in message:
            return
        event = security_event_from_frame(message, station_id=station.identity, version=station.version, at=self.clock())
        if event is not None:
            self.stats.station_events += 1
            self.sink.record(event)
            if self.listeners:
                self._notify("station_event", station, event)

    async def _answer_locally(self, session: SigningSession | None, station: StationConnection, message: Data) -> bool:
        """Handle ``message`` in the gateway if it answers one of the gateway's calls, or is a SignCertificate
        or an answer to our CertificateSigned."""
        if self.calls is not None and self.calls.take(station.identity, message):
            self.stats.answered_locally += 1
            return True
        if session is None:
            return False
        if session.may_answer(message):
            assert isinstance(message, str)
            if await asyncio.to_thread(session.take_response, message, at=self.clock()) is not None:
                self.stats.answered_locally += 1
                return True
        call = parse_sign_certificate(message)
        if call is None:
            return False
        for frame in await asyncio.to_thread(session.answer, call, at=self.clock()):
            await station.send(frame)
        self.stats.answered_locally += 1
        return True

    async def _pump_up(self, station: StationConnection, upstream: ClientConnection, follow: FollowSession | None) -> None:
        session = self.csr_signing.session(station.identity, station.version) if self.csr_signing is not None else None
        try:
            async for message in station:
                if (session is not None or self.calls is not None) and \
                        await self._answer_locally(session, station, message):
                    continue
                self._record_station_event(station, message)
                if follow is not None:
                    follow.from_station(message)
                await upstream.send(message)
                self.stats.relayed_up += 1
        except ConnectionClosed:
            pass

    async def _pump_down(self, upstream: ClientConnection, station: StationConnection, follow: FollowSession | None) -> None:
        try:
            async for message in upstream:
                if follow is not None:
                    follow.to_station(message)
                await station.send(message)
                self.stats.relayed_down += 1
        except ConnectionClosed:
            pass
