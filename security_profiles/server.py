"""CSMS side adapter: :func:`serve` on websockets' asyncio server.

Each accepted TCP connection goes through:

1. (profiles 2/3) the TLS handshake, run here with the event loop's own TLS protocol so that a failed
   handshake is seen and recorded as the security event it means (InvalidTLSVersion,
   InvalidTLSCipherSuite, InvalidChargingStationCertificate, FailedToAuthenticateAtCsms). On asyncio's
   loop the socket read buffer is 4 KiB instead of 256 KiB, which keeps idle connections small; on
   uvloop its compiled TLS protocol is used (its buffer is malloc'ed, so untouched pages cost no RSS).
   A refused ClientHello gets OpenSSL's alert (:mod:`._tls_alert`); a failed or timed-out handshake
   releases the connection at once, and glibc's freed memory is returned after a burst (:mod:`._memory`).
2. websockets' ``process_request`` hook: the facts are collected and :func:`~.handshake.decide` runs
   in a worker thread (the registry lookup may wait for a database, a password hash takes milliseconds)
   unless the registry declares ``nonblocking = True`` and no hash is needed. A refusal is answered with
   its HTTP status and recorded; refusals of identities nobody registered are counted and recorded as one
   event per window (:mod:`._refusals`). An unknown subprotocol completes the handshake without one and
   closes with 1002. The ``admit`` steps (:class:`Admission`) run next and may still refuse a station
   (``before_decide`` is awaited before the decision).
3. the handler gets a :class:`StationConnection`: identity, profile, OCPP version and subprotocol, and
   ``recv``/``send``/``close`` (so an ``ocpp`` package ChargePoint runs on it unchanged).

Every connection has a control-frame budget (1008 when exceeded) and is handled at most
``FrameLimits.bytes_per_turn`` per event-loop turn (:mod:`._fair`); no log record carries a credential
(:mod:`.redact`). ADR 16 has the reasons and the figures.
"""

from __future__ import annotations

import asyncio
import http
import logging
import ssl
import sys
from asyncio import sslproto
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from websockets.asyncio.server import Server, ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.datastructures import Headers
from websockets.exceptions import ProtocolError
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Request, Response
from websockets.typing import Data, Subprotocol

from ocppsec.pki.events.sink import EventSink, NullSink, SafeSink, local_event, peer_station_id
from ocppsec.pki.versions import OcppVersion
from ocppsec.security_profiles import _keepalive, _tls_alert
from ocppsec.security_profiles._fair import DEFAULT_LIMITS, ControlBudget, FairFeed, FrameLimits, ReadGate
from ocppsec.security_profiles._keepalive import IdleKeepalive
from ocppsec.security_profiles._memory import MemoryReturn
from ocppsec.security_profiles._refusals import UnknownIdentities, UnknownReason
from ocppsec.security_profiles._splice import RawFeed
from ocppsec.security_profiles.handshake import Accept, HandshakeFacts, Reject, ServerPolicy, TlsFacts, decide
from ocppsec.security_profiles.profile3 import LeafIdentity
from ocppsec.security_profiles.redact import install_credential_filter
from ocppsec.security_profiles.registry import StationRegistry
from ocppsec.security_profiles.tls import classify_tls_failure, peer_certificate

__all__ = ["DEFAULT_MAX_SIZE", "Admission", "AdmissionStep", "FrameLimits", "StationConnection", "on_uvloop", "serve"]

DEFAULT_MAX_SIZE = 64 * 1024
_log = logging.getLogger("ocppsec.security_profiles.server")
_ws_log = logging.getLogger("websockets.server")  # passed once, else websockets looks it up per connection


class _SmallBufferSSLProtocol(sslproto.SSLProtocol):
    """asyncio's SSLProtocol with a 4 KiB socket read buffer instead of 256 KiB.

    The buffer only carries ciphertext from the socket into OpenSSL's memory BIO, which reassembles
    records of any size; asyncio allocates (and touches) it per connection, so its size is the largest
    part of an idle connection's memory. OCPP frames are small; a large one just takes more reads.
    """

    max_size = 4 * 1024


def on_uvloop(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether ``loop`` is a uvloop loop (without importing uvloop when nobody has)."""
    uv = sys.modules.get("uvloop.loop")
    return uv is not None and isinstance(loop, uv.Loop)


def _tls_protocol(loop: asyncio.AbstractEventLoop, app: asyncio.Protocol, ctx: ssl.SSLContext,
                  waiter: asyncio.Future[None], handshake_timeout: float) -> asyncio.BaseProtocol:
    """The running loop's server-side TLS protocol for ``app``; ``waiter`` completes with the handshake.

    uvloop's own (compiled) protocol on a uvloop loop, which costs less CPU per handshake than asyncio's
    pure-Python one (see benchmarks/profiles.py); asyncio's with a 4 KiB read buffer otherwise.
    """
    if on_uvloop(loop):
        uv = sys.modules["uvloop.loop"]  # its stub does not declare SSLProtocol
        proto: asyncio.BaseProtocol = uv.SSLProtocol(loop, app, ctx, waiter, True, None,
                                                     ssl_handshake_timeout=handshake_timeout, ssl_shutdown_timeout=5.0)
        return proto
    return _SmallBufferSSLProtocol(
        loop, app, ctx, waiter, server_side=True, server_hostname=None,
        ssl_handshake_timeout=handshake_timeout,  # type: ignore[arg-type]  # typeshed says int
        ssl_shutdown_timeout=5.0,
    )


def _now() -> datetime:
    return datetime.now(UTC)


class Admission:
    """An accepted handshake before the station gets its 101: what an admission step may look at.

    Steps (``serve(admit=...)``) run in order after the handshake decision accepted the station and may
    still refuse it (a revoked certificate, an upstream that refuses the station); what they put into
    :attr:`context` reaches the handler as :attr:`StationConnection.context`.

    A step that opens something for the station (the gateway's upstream connection) registers its release
    with :meth:`on_abandon`: it runs when the handler never gets the station - a later refusal, a failing
    step, the station gone before its 101 - and at once when that has happened already.
    """

    __slots__ = ("_abandon", "_ssl_object", "abandoned", "context", "decision", "headers", "peer", "tls")

    def __init__(self, decision: Accept, peer: str, headers: Headers, tls: TlsFacts | None,
                 ssl_object: ssl.SSLObject | None) -> None:
        self.decision = decision
        self.peer = peer
        self.headers = headers
        self.tls = tls
        self._ssl_object = ssl_object
        self.context: dict[str, Any] = {}
        self.abandoned = False
        self._abandon: list[Callable[[], object]] = []

    def on_abandon(self, release: Callable[[], object]) -> None:
        """Call ``release()`` if the handler never gets this station (now, if that is known already)."""
        if self.abandoned:
            release()
        else:
            self._abandon.append(release)

    def abandon(self) -> None:
        """The handler will not get this station: run every release registered (once)."""
        self.abandoned = True
        releases, self._abandon = self._abandon, []
        for release in releases:
            try:
                release()
            except Exception:
                _log.exception("an admission step's release failed")

    def peer_certificate_der(self) -> bytes | None:
        """The station's TLS client certificate (DER), or None without one."""
        if self._ssl_object is None:
            return None
        return self._ssl_object.getpeercert(binary_form=True)


AdmissionStep = Callable[[Admission], Awaitable[Reject | None]]


@dataclass
class _ServeState:
    policy: ServerPolicy
    registry: StationRegistry
    sink: EventSink
    ssl_context: ssl.SSLContext | None
    tls_handshake_timeout: float
    clock: Callable[[], datetime] = _now
    admit: AdmissionStep | None = None
    before_decide: Callable[[str], Awaitable[None]] | None = None
    limits: FrameLimits = DEFAULT_LIMITS
    unknown: UnknownIdentities = field(default_factory=UnknownIdentities)
    memory: MemoryReturn = field(default_factory=MemoryReturn)
    failures: int = 0
    refused: int = 0
    accepted: int = 0
    control_floods: int = 0  # connections closed with 1008 for too many control frames
    refusals: Counter[str] = field(default_factory=Counter)  # refused handshakes per reason
    pending_tls: set[asyncio.Future[None]] = field(default_factory=set)
    keepalive: IdleKeepalive | None = None  # pings silent stations (see _keepalive); None: no keepalive
    _unknown_timer: asyncio.TimerHandle | None = None

    def refuse_unknown(self, reason: UnknownReason, identity: str | None, peer: str) -> None:
        """An identity nobody registered: counted, recorded once per window (see :mod:`._refusals`)."""
        loop = asyncio.get_running_loop()
        summary = self.unknown.note(reason, identity, peer.rpartition(":")[0] or peer, loop.time())
        if summary is not None:
            self.sink.record(local_event("FailedToAuthenticateAtCsms", station_id=summary.station_id,
                                         tech_info=summary.tech_info, at=self.clock()))
        if self._unknown_timer is None:
            self._schedule_unknown(loop)

    def _schedule_unknown(self, loop: asyncio.AbstractEventLoop) -> None:
        due = self.unknown.next_due()
        self._unknown_timer = None if due is None else loop.call_at(due, self._unknown_due, loop)

    def _unknown_due(self, loop: asyncio.AbstractEventLoop) -> None:
        self._unknown_timer = None
        summary = self.unknown.due(loop.time())
        if summary is not None:
            self.sink.record(local_event("FailedToAuthenticateAtCsms", station_id=summary.station_id,
                                         tech_info=summary.tech_info, at=self.clock()))
        self._schedule_unknown(loop)

    def record(self, event_type: str | None, *, identity: str | None, peer: str, tech_info: str,
               version: OcppVersion | None = None) -> None:
        if event_type is None:
            return
        at = self.clock()
        self.sink.record(local_event(event_type, station_id=peer_station_id(identity, peer), tech_info=tech_info,
                                     at=at, version=version))


class StationConnection:
    """An authenticated station: who it is, how it connected, and the WebSocket to talk over."""

    def __init__(self, websocket: ServerConnection, decision: Accept) -> None:
        self.websocket = websocket
        self.identity = decision.identity
        self.profile = decision.profile
        assert decision.version is not None
        assert decision.subprotocol is not None
        self.version: OcppVersion = decision.version
        self.subprotocol: str = decision.subprotocol
        self.context: dict[str, Any] = {}  # what the admission steps handed on (see Admission)

    @property
    def id(self) -> str:
        return self.identity

    @property
    def remote_address(self) -> Any:
        return self.websocket.remote_address

    async def recv(self) -> Data:
        return await self.websocket.recv()

    async def send(self, message: Data) -> None:
        await self.websocket.send(message)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.websocket.close(code, reason)

    async def wait_closed(self) -> None:
        await self.websocket.wait_closed()

    def __aiter__(self) -> AsyncIterator[Data]:
        return self.websocket.__aiter__()

    def __repr__(self) -> str:
        return f"StationConnection(identity={self.identity!r}, profile={self.profile}, version={self.version.value})"


class _ControlFlood(ProtocolError):
    """A peer sent more control frames than its budget (the connection was failed with 1008 already)."""


class _ProfileConnection(RawFeed, ServerConnection):
    """A websockets server connection that runs the TLS handshake itself to observe its failures."""

    # Our own attributes in slots: added to websockets' instance dict they grew it past its size (about
    # 1.5 KiB more per connection, tracemalloc).
    __slots__ = ("_control", "_fair", "_flooded", "_recv_frame", "_tcp_transport", "_tls_started", "admission",
                 "decision", "handed_over", "lost", "peer", "rx_seen", "station")
    _state: _ServeState

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tls_started = False
        self._tcp_transport: asyncio.BaseTransport | None = None
        self.peer = "unknown"
        self.decision: Accept | Reject | None = None
        self.admission: Admission | None = None
        self.station: StationConnection | None = None  # set while the handler runs
        self.handed_over = False  # the handler got this connection (and with it what the admission opened)
        self._control = ControlBudget(self._state.limits)
        self._flooded = False
        self._recv_frame = self.protocol.recv_frame
        self.protocol.recv_frame = self._count_control  # type: ignore[method-assign]
        self._fair = FairFeed(self._state.limits, self._feed_websockets, self._fair_stopped)
        self.lost = False
        self.rx_seen = False  # anything received since the keepalive last looked (see _keepalive)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        ctx = self._state.ssl_context
        if ctx is None or self._tls_started:
            if not self._tls_started:
                self.peer = _peer(transport)
            gate = ReadGate(transport)  # reading paused by websockets, the relay or the fair feed (see _fair)
            self._fair.attach(gate)
            super().connection_made(gate)  # type: ignore[arg-type]
            return
        self._tls_started = True
        self._tcp_transport = transport  # the socket's transport under TLS; its protocol is the TLS protocol
        self.peer = _peer(transport)
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        # asyncio creates the SSLObject in the constructor, uvloop in connection_made: both see the transport
        # a refused ClientHello's alert goes to (see _tls_alert)
        with _tls_alert.next_transport(transport):
            proto = _tls_protocol(loop, self, ctx, waiter, self._state.tls_handshake_timeout)
            transport.set_protocol(proto)
            proto.connection_made(transport)
        self._state.pending_tls.add(waiter)
        waiter.add_done_callback(self._tls_done)

    def _release(self) -> None:
        """The TLS handshake failed or timed out: this connection never opens. Drop the references that make it
        a reference cycle (protocol <-> connection, TLS protocol <-> connection), so it and its OpenSSL state
        are freed now instead of at the next garbage collection (measured in benchmarks/halfopen.py)."""
        self._tcp_transport = None
        self._state.memory.ended()
        self._unhook()
        self.__dict__.pop("protocol", None)

    def _unhook(self) -> None:
        """The connection is lost: drop the references that tie it, its protocol and its fair feed into reference
        cycles (our ``recv_frame`` and ``FairFeed`` hooks, websockets' ``select_subprotocol`` closure), so that
        reference counting frees a closed connection (with its TLS state) as soon as its handler lets go,
        instead of the cyclic collector's next full pass (ADR 23: at 10,000 stations such a pass took 3.5 s)."""
        protocol = self.__dict__.get("protocol")
        if protocol is not None:
            protocol.__dict__.pop("recv_frame", None)
            protocol.select_subprotocol = None
        self._fair = _INERT_FEED

    # -- hostile peers: bounded work per loop turn, control-frame budget (see _fair) ----------------------
    def data_received(self, data: bytes) -> None:
        self.rx_seen = True
        self._fair.received(data)

    def _feed_websockets(self, data: bytes) -> None:
        raw = self.raw_feed  # the splice's, while it relays (it hands websockets what is not a plain data frame)
        if raw is None:
            ServerConnection.data_received(self, data)
        else:
            raw(data)

    def websockets_feed(self, data: bytes) -> None:
        ServerConnection.data_received(self, data)

    def _fair_stopped(self) -> bool:
        return self._flooded

    def eof_received(self) -> None:
        self._fair.flush()
        super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.admission is not None and not self.handed_over:
            self.admission.abandon()  # the handler will never get it: release what the admission steps opened
        self._fair.flush()
        super().connection_lost(exc)
        self._state.memory.ended()
        self._unhook()

    def _count_control(self, frame: Frame) -> None:
        """Wraps the protocol's ``recv_frame``: a ping or pong over the budget fails the connection with 1008
        before websockets answers it (the parser then discards the rest)."""
        if (frame.opcode is Opcode.PING or frame.opcode is Opcode.PONG) and not self._control.spend(self.loop.time()):
            if not self._flooded:
                self._flooded = True
                self._state.control_floods += 1
                _log.warning("closing %s (%s): more than %d control frames in %g s", self.peer,
                             self.station.identity if self.station else "not authenticated",
                             self._state.limits.control_frames, self._state.limits.window)
            self.protocol.fail(CloseCode.POLICY_VIOLATION, "too many control frames")
            raise _ControlFlood("too many control frames")  # ends websockets' parser (its own fail() changes nothing)
        self._recv_frame(frame)

    def _tls_done(self, waiter: asyncio.Future[None]) -> None:
        self._state.pending_tls.discard(waiter)
        if waiter.cancelled():
            self._release()
            return
        exc = waiter.exception()
        if exc is None:
            return
        self._release()
        failure = classify_tls_failure(exc)
        self._state.failures += 1
        _log.info("TLS handshake from %s failed: %s", self.peer, failure.reason)
        try:
            self._state.record(failure.security_event, identity=None, peer=self.peer, tech_info=failure.reason)
        except Exception:
            _log.exception("could not record a TLS failure")


def _ignore(data: bytes) -> None:
    return None


def _stopped() -> bool:
    return True


_INERT_FEED = FairFeed(DEFAULT_LIMITS, _ignore, _stopped)  # a lost connection's: feeds nothing, holds nothing


def _peer(transport: asyncio.BaseTransport) -> str:
    name = transport.get_extra_info("peername")
    if isinstance(name, tuple) and len(name) >= 2:
        return f"{name[0]}:{name[1]}"
    return str(name)


def _offered(headers: Headers) -> tuple[str, ...]:
    out: list[str] = []
    for value in headers.get_all("Sec-WebSocket-Protocol"):
        out.extend(p.strip() for p in value.split(",") if p.strip())
    return tuple(out)


def _peer_leaf(transport: asyncio.BaseTransport, ssl_object: ssl.SSLObject) -> LeafIdentity | x509.Certificate | None:
    """The peer's leaf: from the dict asyncio fetched at the end of the handshake (``getpeercert()``;
    non-empty only for a certificate OpenSSL verified), else parsed from DER."""
    decoded = transport.get_extra_info("peercert")
    if decoded is None:
        return None  # no client certificate
    if decoded:
        try:
            return LeafIdentity.from_peercert(decoded)
        except (KeyError, ValueError, TypeError):
            pass
    return peer_certificate(ssl_object)


def _facts(connection: _ProfileConnection, request: Request) -> HandshakeFacts:
    transport = connection.transport
    ssl_object = transport.get_extra_info("ssl_object")
    tls = None
    if ssl_object is not None:
        cipher = transport.get_extra_info("cipher")
        name = cipher[0] if cipher else "unknown"
        tls = TlsFacts(ssl_object.version() or "unknown", name, _peer_leaf(transport, ssl_object))
    return HandshakeFacts(request.path, request.headers.get("Authorization"), _offered(request.headers), tls, connection.peer)


async def _process_request(connection: ServerConnection, request: Request) -> Response | None:
    assert isinstance(connection, _ProfileConnection)
    state = connection._state
    facts = _facts(connection, request)
    if state.before_decide is not None:
        await state.before_decide(facts.path)
    at = state.clock()
    registry = state.registry
    looked_up: dict[str, bool] = {}  # identity -> registered

    def lookup(identity: str) -> Any:
        record = registry.get(identity)
        looked_up[identity] = record is not None
        return record

    def decide_and_check() -> Accept | Reject:
        decision = decide(facts, state.policy, lookup, at=at)
        if isinstance(decision, Reject) and decision.identity and decision.security_event and \
                decision.identity not in looked_up:
            lookup(decision.identity)  # refused before the registry step: is the name one anybody registered?
        return decision

    needs_hash = facts.authorization is not None and bool(state.policy.profiles & {1, 2})
    if needs_hash or not getattr(registry, "nonblocking", False):
        # a registry lookup may wait for a database, a password hash takes milliseconds: off the loop
        decision = await asyncio.to_thread(decide_and_check)
    else:
        decision = decide_and_check()
    if isinstance(decision, Accept) and state.admit is not None:
        admission = Admission(decision, connection.peer, request.headers, facts.tls,
                              connection.transport.get_extra_info("ssl_object"))
        connection.admission = admission
        if connection.lost:  # the station went away during the decision: nothing to admit
            admission.abandon()
        try:
            refusal = await state.admit(admission)
        except BaseException:
            admission.abandon()
            raise
        if refusal is not None:
            admission.abandon()
            decision = refusal
        elif decision.onboarding and "onboarding" not in admission.context:
            decision = _unclassified(decision)
    elif isinstance(decision, Accept) and decision.onboarding:
        decision = _unclassified(decision)  # no admission step to classify an onboarding candidate: fail closed
    connection.decision = decision
    if isinstance(decision, Reject):
        state.refused += 1
        _log.info("refused %s (%s): %s", decision.identity or connection.peer, decision.requirement, decision.reason)
        reason = _unknown_reason(decision, looked_up)
        state.refusals[reason.value if reason else decision.requirement or decision.security_event or "refused"] += 1
        if reason is not None and decision.security_event is not None:
            state.refuse_unknown(reason, decision.identity or _bad_identity(request.path), connection.peer)
        else:
            state.record(decision.security_event, identity=decision.identity, peer=connection.peer,
                         tech_info=f"{decision.reason} [{decision.requirement}]" if decision.requirement else decision.reason)
        if decision.http_status is None:
            return None  # complete the handshake without a subprotocol, then close (see handler)
        status = http.HTTPStatus(decision.http_status)
        response = connection.respond(status, f"{status.phrase}\n")
        if status == http.HTTPStatus.UNAUTHORIZED:
            response.headers["WWW-Authenticate"] = 'Basic realm="ocpp", charset="UTF-8"'
        return response
    if decision.promote_password or decision.promote_profile:
        await asyncio.to_thread(_promote, state.registry, decision)
    state.accepted += 1
    return None


def _unclassified(decision: Accept) -> Reject:
    return Reject(f"station {decision.identity}: certificate not acceptable and no onboarding admitted it", 403,
                  "InvalidChargingStationCertificate", "A00.FR.407", decision.identity)


def _unknown_reason(decision: Reject, looked_up: dict[str, bool]) -> UnknownReason | None:
    """Whether ``decision`` refused an identity nobody registered (or no valid identity at all)."""
    if decision.identity is None:
        return UnknownReason.MALFORMED
    if looked_up.get(decision.identity) is False:
        return UnknownReason.UNREGISTERED
    return None


def _bad_identity(path: str) -> str:
    return path.rsplit("/", 1)[-1] or path


def _promote(registry: StationRegistry, decision: Accept) -> None:
    record = registry.get(decision.identity)
    if record is None:
        return
    if decision.promote_password and record.pending_password_hash:
        record = replace(record, password_hash=record.pending_password_hash, pending_password_hash=None)
    if decision.promote_profile and record.pending_profile == decision.profile:
        record = replace(record, profile=decision.profile, pending_profile=None)
    registry.update(record)


def _select_subprotocol(connection: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    decision = getattr(connection, "decision", None)
    if isinstance(decision, Accept) and decision.subprotocol is not None:
        return Subprotocol(decision.subprotocol)
    return None


def _keepalive_by_websockets(websocket: ServerConnection, keepalive: IdleKeepalive) -> None:
    """websockets' own keepalive (a ping every interval), for a connection without what IdleKeepalive uses."""
    start = getattr(websocket, "start_keepalive", None)
    if start is None:  # pragma: no cover - a websockets layout this was not written for
        _log.warning("no keepalive for %s: this websockets version has neither", websocket)
        return
    websocket.ping_interval = keepalive.interval
    websocket.ping_timeout = keepalive.timeout
    start()


def serve(
    handler: Callable[[StationConnection], Awaitable[None]],
    host: str | None,
    port: int | None,
    *,
    policy: ServerPolicy,
    registry: StationRegistry,
    ssl_context: ssl.SSLContext | None = None,
    sink: EventSink | None = None,
    max_size: int = DEFAULT_MAX_SIZE,
    open_timeout: float = 10.0,
    tls_handshake_timeout: float = 10.0,
    ping_interval: float | None = 30.0,
    ping_timeout: float | None = 30.0,
    clock: Callable[[], datetime] = _now,
    admit: AdmissionStep | None = None,
    frame_limits: FrameLimits = DEFAULT_LIMITS,
    unknown_window: float = 60.0,
    trim_memory_after: int | None = 500,
    before_decide: Callable[[str], Awaitable[None]] | None = None,
    **kwargs: Any,
) -> Server:
    """Serve OCPP stations at ``policy``'s profile(s); ``handler`` gets each authenticated connection.

    Returns websockets' :class:`~websockets.asyncio.server.Server` (``async with serve(...) as server``).
    ``ssl_context`` is required for profiles 2/3 (see :func:`~.tls.server_context`) and must be ``None``
    for profile 1. ``max_size``: the largest frame accepted (larger ones close with 1009). Responses carry
    no ``Server`` header (pass ``server_header=...`` to add one); other ``kwargs`` go to websockets' ``serve``.
    ``admit``: an async step run after the handshake decision accepted a station, before its 101; it may
    refuse the station with a :class:`~.handshake.Reject` (answered and recorded like any refusal).
    ``frame_limits``: control frames per connection and window (one more: close 1008) and the bytes of one
    connection handled per event-loop turn (see :mod:`._fair`). ``unknown_window``: refusals of identities
    that are not registered are recorded as one event per this many seconds (see :mod:`._refusals`).
    ``trim_memory_after``: after this many connections ended, glibc's freed memory is handed back to the
    system (at most once a minute; ``None``: never; see :mod:`._memory`).
    The registry is consulted in a worker thread unless it says ``nonblocking = True``; ``sink.record`` is
    called on the event loop, so it must not block (``ocppsec.eventlog.queued.QueuedSink`` does not).
    No log record carries a credential (:mod:`.redact` is installed on websockets' loggers and ours).
    ``ping_interval``/``ping_timeout``: a station silent for the interval is pinged, and failed with 1011 when
    nothing arrives within the timeout of the ping; one that sends anything is not pinged (one timer for all
    stations, :mod:`._keepalive`; ``ping_interval=None``: no keepalive).
    ``before_decide``: awaited with the request path before the handshake decision reads the registry (the
    gateway waits there while it is still writing a credential or profile change of that station).
    """
    from ocppsec.pki.errors import UsageError

    if policy.tls and ssl_context is None:
        raise UsageError("profiles 2 and 3 need a TLS server context", hint="see security_profiles.tls.server_context")
    if not policy.tls and ssl_context is not None:
        raise UsageError("profile 1 is plain ws://; do not pass a TLS context")
    safe = SafeSink(sink if sink is not None else NullSink())
    install_credential_filter()
    if ssl_context is not None:
        _tls_alert.install(ssl_context)
    state = _ServeState(policy, registry, safe, ssl_context, tls_handshake_timeout, clock, admit, before_decide,
                        frame_limits, UnknownIdentities(unknown_window), MemoryReturn(trim_memory_after))
    if ping_interval is not None:
        state.keepalive = IdleKeepalive(ping_interval, ping_timeout)
    connection_class = type("ProfileConnection", (_ProfileConnection,), {"_state": state})

    async def _handler(websocket: ServerConnection) -> None:
        assert isinstance(websocket, _ProfileConnection)
        decision = websocket.decision
        if isinstance(decision, Reject):
            await websocket.close(decision.close_code or 1002, decision.reason[:120])
            return
        assert isinstance(decision, Accept)
        station = websocket.station = StationConnection(websocket, decision)
        websocket.handed_over = True
        if websocket.admission is not None:
            station.context = websocket.admission.context
        keepalive = state.keepalive
        if keepalive is not None and not _keepalive.supported(websocket):
            _keepalive_by_websockets(websocket, keepalive)
            keepalive = None
        if keepalive is not None:
            keepalive.add(websocket)
        try:
            await handler(station)
        finally:
            if keepalive is not None:
                keepalive.discard(websocket)
            websocket.station = None  # station <-> connection would be a reference cycle once both are closed

    server = ws_serve(
        _handler, host, port,
        process_request=_process_request,
        select_subprotocol=_select_subprotocol,
        subprotocols=[Subprotocol(s) for s in policy.subprotocols],
        compression=None,
        max_size=max_size,
        open_timeout=open_timeout,
        ping_interval=None,  # state.keepalive pings the stations that are silent, from one timer
        ping_timeout=ping_timeout,
        create_connection=connection_class,
        **{"server_header": None, "logger": _ws_log, **kwargs},
    )
    server.profile_state = state  # type: ignore[attr-defined]
    inner = getattr(server, "server", None)  # websockets < 17.3: serve() wraps the Server that `async with` gives
    if isinstance(inner, Server):
        inner.profile_state = state  # type: ignore[attr-defined]
    return server
