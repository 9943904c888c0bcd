"""The gateway's hop to the upstream CSMS: opened before the station's 101, told what the CSMS cannot see.

:class:`UpstreamOpener` is the gateway's last admission step (:class:`~ocppsec.security_profiles.server.Admission`):
after the handshake decision (and every other admission step) accepted a station, it opens
``UPSTREAM/IDENTITY`` with the station's subprotocol, and only then does the station get its 101. So the
upstream's refusal reaches the station as an HTTP refusal instead of an accepted connection closed at
once (a CSMS refusing a lower profile after an upgrade, A05.FR.07; an unknown station):

======================================  ===================================
upstream                                the station is answered
======================================  ===================================
101 with the station's subprotocol      101 (the relay starts)
401, 403, 404                           the same status
503                                     503
any other refusal, another subprotocol  502
unreachable, TLS failure, no answer     503
within ``open_timeout``
======================================  ===================================

The open connection waits in the admission's context (:data:`CONTEXT_KEY`) for the relay; it is closed
if the station never gets that far (:meth:`~ocppsec.security_profiles.server.Admission.on_abandon`).

Request headers to the upstream (:func:`station_headers`) carry what only the gateway saw, the TLS layer:

==============================  ============================================================================
``X-OCPP-Security-Profile``     the profile the station connected with: ``1``, ``2`` or ``3``
``X-OCPP-Client-Cert-SHA256``   SHA-256 of the station's client certificate (DER), 64 lowercase hex digits
``X-OCPP-Client-Cert-Serial``   its serial number, lowercase hex without leading zeros (as CertificateHashData)
``X-OCPP-Client-Cert-Subject``  its subject, RFC 4514 (``CN=CS-0001,O=ACME CSO``); bytes outside printable
                                ASCII and ``%`` are percent-encoded as UTF-8
``X-OCPP-Client-Cert-Not-After``  its notAfter, ``YYYY-MM-DDTHH:MM:SSZ``
==============================  ============================================================================

The certificate headers are sent only when the station presented a client certificate. The upstream
request is written by the gateway alone: no header of the station's request is forwarded, so a station
cannot send these headers (or any other) to the upstream.

Liveness of the hop: the kernel's TCP keepalive (:func:`tcp_keepalive`: probes after ``keepalive`` seconds
of silence, a dead CSMS noticed within about ``keepalive`` + 30 s, also while frames wait unacknowledged)
instead of WebSocket pings, which cost the gateway a task wake-up, a frame each way and a timeout per
connection and interval: at 10,000 stations and 30 s, 333 pings a second on this hop alone (ADR 23).
``ping_interval`` turns WebSocket pings on for the hop as well (an upstream behind a proxy that drops
silent WebSocket connections, since TCP probes do not reach past a proxy).

The hop itself may be protected: ``wss://`` with the upstream's CA roots and, if the upstream wants one,
a client certificate (:func:`upstream_context`), and/or HTTP Basic auth (:class:`UpstreamAuth`). Neither
the Authorization header nor a frame's payload reaches a log record: the upstream connections log through
websockets' client logger, on which :func:`~ocppsec.security_profiles.server.serve` installs the credential
filter (:mod:`ocppsec.security_profiles.redact`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import inspect
import logging
import ssl
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI
from websockets.typing import Subprotocol

from ocppsec.pki.errors import UsageError
from ocppsec.security_profiles import events as ev
from ocppsec.security_profiles._splice import RawFeed
from ocppsec.security_profiles.gateway._certfacts import certificate_facts
from ocppsec.security_profiles.handshake import Reject
from ocppsec.security_profiles.server import Admission
from ocppsec.security_profiles.tls import CertChain, load_cert_chain, load_roots

__all__ = [
    "CONTEXT_KEY",
    "FORWARDED_REFUSALS",
    "HEADER_CERT_NOT_AFTER",
    "HEADER_CERT_SERIAL",
    "HEADER_CERT_SHA256",
    "HEADER_CERT_SUBJECT",
    "HEADER_PROFILE",
    "STATION_FACT_HEADERS",
    "UpstreamAuth",
    "UpstreamConnection",
    "UpstreamOpener",
    "refusal_for",
    "station_headers",
    "upstream_context",
]

_log = logging.getLogger("ocppsec.security_profiles.gateway")

CONTEXT_KEY = "ocppsec.gateway.upstream"
HEADER_PROFILE = "X-OCPP-Security-Profile"
HEADER_CERT_SHA256 = "X-OCPP-Client-Cert-SHA256"
HEADER_CERT_SERIAL = "X-OCPP-Client-Cert-Serial"
HEADER_CERT_SUBJECT = "X-OCPP-Client-Cert-Subject"
HEADER_CERT_NOT_AFTER = "X-OCPP-Client-Cert-Not-After"
STATION_FACT_HEADERS = (HEADER_PROFILE, HEADER_CERT_SHA256, HEADER_CERT_SERIAL, HEADER_CERT_SUBJECT, HEADER_CERT_NOT_AFTER)
FORWARDED_REFUSALS = frozenset({401, 403, 404, 503})
_SAFE = "".join(c for c in string.printable if c not in "%\t\n\r\x0b\x0c")


@dataclass(frozen=True, slots=True)
class UpstreamAuth:
    """HTTP Basic credentials for the hop to the upstream; the password never appears in ``repr``."""

    username: str
    password: str = field(repr=False)

    @classmethod
    def parse(cls, text: str) -> UpstreamAuth:
        """``user:password`` (the password may contain ``:``)."""
        username, sep, password = text.partition(":")
        if not sep or not username or not password:
            raise UsageError("upstream Basic auth must be USER:PASSWORD", hint="e.g. export UPSTREAM_AUTH='gateway:...'")
        return cls(username, password)

    @property
    def header(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")

    def __repr__(self) -> str:
        return f"UpstreamAuth(username={self.username!r}, password=<redacted>)"


def upstream_context(roots: Sequence[str | Path] = (), client_chain: CertChain | None = None) -> ssl.SSLContext:
    """A client context for the hop to a ``wss://`` upstream: TLS 1.2+, its certificate checked against
    ``roots`` (default: the system's) and its host name; ``client_chain`` when the upstream asks for one."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # certificate and host name checked
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if not roots:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    load_roots(ctx, roots, what="upstream CA file")  # only these roots, not the system's as well; read and named as --trust is
    if client_chain is not None:
        load_cert_chain(ctx, client_chain, what="upstream client")  # our key loader first: never an OpenSSL prompt
    return ctx


def _header_text(text: str) -> str:
    return quote(text, safe=_SAFE)


def station_headers(profile: int, certificate_der: bytes | None) -> list[tuple[str, str]]:
    """The request headers that tell the upstream the station's profile and client certificate (if any)."""
    headers = [(HEADER_PROFILE, str(profile))]
    if not certificate_der:
        return headers
    headers.append((HEADER_CERT_SHA256, hashlib.sha256(certificate_der).hexdigest()))
    facts = certificate_facts(certificate_der)
    if facts is None:  # the TLS layer verified it; a field pyca cannot read is no reason to refuse here
        _log.info("the station certificate could not be read for the upstream headers (fingerprint only)")
        return headers
    headers += [
        (HEADER_CERT_SERIAL, facts.serial_hex),
        (HEADER_CERT_SUBJECT, _header_text(facts.subject)),
        (HEADER_CERT_NOT_AFTER, facts.not_after.strftime("%Y-%m-%dT%H:%M:%SZ")),
    ]
    return headers


KEEPALIVE_PROBES = 3
KEEPALIVE_PROBE_INTERVAL = 10


def tcp_keepalive(transport: asyncio.BaseTransport, idle: float) -> None:
    """Kernel keepalive on ``transport``'s TCP socket: probes after ``idle`` seconds without traffic, every
    10 s, 3 unanswered close it; unacknowledged data also closes it after ``idle`` + 30 s (Linux). Options a
    platform lacks are skipped; a transport without a TCP socket is left as it is."""
    import socket

    sock = transport.get_extra_info("socket")
    if sock is None or getattr(sock, "type", None) != socket.SOCK_STREAM:
        return
    seconds = max(1, int(idle))
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    for name, value in (("TCP_KEEPIDLE", seconds), ("TCP_KEEPINTVL", KEEPALIVE_PROBE_INTERVAL),
                        ("TCP_KEEPCNT", KEEPALIVE_PROBES),
                        ("TCP_USER_TIMEOUT", (seconds + KEEPALIVE_PROBES * KEEPALIVE_PROBE_INTERVAL) * 1000)):
        if hasattr(socket, name):
            options.append((socket.IPPROTO_TCP, getattr(socket, name), value))
    try:
        for level, option, value in options:
            sock.setsockopt(level, option, value)
    except OSError as exc:  # pragma: no cover - a socket family without these options
        _log.debug("TCP keepalive not set on the upstream socket: %s", exc)


def refusal_for(status: int | None, identity: str, detail: str) -> Reject:
    """The refusal the station gets when the upstream did not open (``status``: its HTTP status, None if none)."""
    if status is None:
        return Reject(f"upstream CSMS unavailable: {detail}"[:200], 503, None, None, identity)
    if status in FORWARDED_REFUSALS:
        event = ev.FAILED_TO_AUTHENTICATE if status != 503 else None
        return Reject(f"the upstream CSMS refused the station with HTTP {status}", status, event, None, identity)
    return Reject(f"the upstream CSMS answered HTTP {status}"[:200], 502, None, None, identity)


def _upstream_proxy(upstream: str) -> dict[str, Any]:
    """websockets' ``proxy=`` for the upstream, looked up in the environment once.

    websockets (15 and later) looks the proxy up in the environment on every connect unless it is given
    one; every URL the opener opens has the upstream's scheme, host and port, so one lookup answers for all.
    Older websockets have no proxy support and get nothing.
    """
    if "proxy" not in inspect.signature(ws_connect).parameters:
        return {}
    try:
        from websockets.proxy import get_proxy
        from websockets.uri import parse_uri
    except ImportError:  # a layout this was not written for: websockets keeps looking it up per connect
        return {}
    try:
        return {"proxy": get_proxy(parse_uri(upstream))}
    except (InvalidURI, ValueError) as exc:
        raise UsageError(f"upstream {upstream!r} is not a WebSocket URL: {exc}") from None


class UpstreamOpener:
    """The admission step that opens ``upstream/IDENTITY`` (see the module docstring).

    The upstream's proxy (``ws_proxy``/``https_proxy``/``no_proxy``... in the environment, as websockets
    reads them) is looked up once, here; an upstream that is no WebSocket URL is a
    :class:`~ocppsec.pki.errors.UsageError`.
    """

    def __init__(self, upstream: str, *, ssl_context: ssl.SSLContext | None = None, auth: UpstreamAuth | None = None,
                 open_timeout: float = 5.0, ping_interval: float | None = None, keepalive: float | None = 30.0,
                 max_size: int = 64 * 1024) -> None:
        self.upstream = upstream.rstrip("/")
        self.ssl_context = ssl_context
        self.auth = auth
        self.open_timeout = open_timeout
        self.ping_interval = ping_interval
        self.keepalive = keepalive
        self.max_size = max_size
        self._proxy = _upstream_proxy(self.upstream)

    def url(self, identity: str) -> str:
        return f"{self.upstream}/{quote(identity, safe='')}"

    async def __call__(self, admission: Admission) -> Reject | None:
        if admission.abandoned:
            return None  # the station is gone already; the handler will not run
        decision = admission.decision
        assert decision.subprotocol is not None
        headers: list[tuple[str, str]] = station_headers(decision.profile, admission.peer_certificate_der())
        if self.auth is not None:
            headers.append(("Authorization", self.auth.header))
        url = self.url(decision.identity)
        refusal = None
        try:
            upstream = await ws_connect(
                url, subprotocols=[Subprotocol(decision.subprotocol)], compression=None, max_size=self.max_size,
                open_timeout=self.open_timeout, ping_interval=self.ping_interval, ping_timeout=self.ping_interval,
                ssl=self.ssl_context if url.startswith("wss://") else None, additional_headers=headers,
                create_connection=UpstreamConnection, **self._proxy,
            )
        except InvalidStatus as exc:
            refusal = refusal_for(exc.response.status_code, decision.identity, "")
        except (OSError, InvalidHandshake, TimeoutError, EOFError) as exc:
            refusal = refusal_for(None, decision.identity, f"{type(exc).__name__}: {exc}")
        else:
            if upstream.subprotocol != decision.subprotocol:
                _close_later(upstream, 1002, "subprotocol mismatch")  # not waited for: the station waits
                refusal = Reject(f"the upstream CSMS answered {decision.subprotocol} with subprotocol "
                                 f"{upstream.subprotocol}", 502, None, None, decision.identity)
            else:
                if self.keepalive is not None:
                    tcp_keepalive(upstream.transport, self.keepalive)
                admission.context[CONTEXT_KEY] = upstream
                admission.on_abandon(lambda: _close_later(upstream, 1001, "station went away"))
                return None
        _log.warning("upstream %s for %s: %s", url, decision.identity, refusal.reason)
        return refusal


class UpstreamConnection(RawFeed, ClientConnection):
    """websockets' client connection, whose received bytes the splice may relay before websockets parses them
    (:class:`~ocppsec.security_profiles._splice.RawFeed`)."""

    def data_received(self, data: bytes) -> None:
        raw = self.raw_feed
        if raw is None:
            ClientConnection.data_received(self, data)
        else:
            raw(data)

    def websockets_feed(self, data: bytes) -> None:
        ClientConnection.data_received(self, data)


_closing: set[asyncio.Task[None]] = set()


def _close_later(upstream: ClientConnection, code: int, reason: str) -> None:
    """Close an upstream connection nobody will relay, in the background (also from a synchronous callback)."""
    task = asyncio.get_running_loop().create_task(upstream.close(code, reason))
    _closing.add(task)
    task.add_done_callback(_closing.discard)
