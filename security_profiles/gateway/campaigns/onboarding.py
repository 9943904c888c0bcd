"""Onboarding: a profile-3 station with an expired or a factory certificate renewed in a session of its own.

A station whose registry record allows it (``StationRecord.onboarding``) and whose client certificate the
handshake accepts only as an onboarding candidate (``ServerPolicy.onboarding``; it fails nothing but the
validity period or the CSO name in O) is classified by :meth:`StationOnboarding.classify`, an admission
step: **expired** when the certificate was issued by one of our CAs and has expired (A00.FR.429-430),
**factory** when it was issued by a configured manufacturer root (A00.FR.806-807). Anything else stays
unclassified, and ``serve()`` refuses it (403, A00.FR.407). The manufacturer roots are trusted by the TLS
context for this only: a certificate they issued that passes the handshake as a normal profile-3
certificate is refused by the same step (403, A00.FR.806).

A classified station is never relayed (no upstream is opened for it, the CSMS hears nothing of it).
:meth:`StationOnboarding.handle` (the gateway's ``onboarding`` handler) answers its BootNotification
itself with Pending, answers any other CALL with a CALLERROR SecurityError, starts (or joins) a renewal
campaign for it in the :class:`~.engine.CampaignEngine` (TriggerMessage / ExtendedTriggerMessage, the
SignCertificate answered and CertificateSigned sent by the gateway's CSR signing) and, once the station
accepted its new certificate, closes the connection (1000) so that it reconnects with it as a normal
profile-3 station; that reconnect is what completes the campaign's row.

The TLS context must let an expired certificate through to the handshake decision (which refuses it
unless onboarding admits it): :func:`allow_expired_client_certificates` sets OpenSSL's
``X509_V_FLAG_NO_CHECK_TIME`` on it; the path is still verified by OpenSSL, the validity period then by
the handshake (A00.FR.403).
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from cryptography import x509

from ocppsec.pki._untrusted import PYCA_INPUT_ERRORS
from ocppsec.pki.lifecycle.campaign import CampaignOptions
from ocppsec.security_profiles.gateway.campaigns.engine import CampaignEngine
from ocppsec.security_profiles.gateway.csr_signing import parse_sign_certificate
from ocppsec.security_profiles.handshake import Reject
from ocppsec.security_profiles.registry import Onboarding, StationRegistry
from ocppsec.security_profiles.server import Admission, StationConnection

__all__ = ["NO_CHECK_TIME", "StationOnboarding", "allow_expired_client_certificates"]

_log = logging.getLogger("ocppsec.security_profiles.gateway.campaigns")
NO_CHECK_TIME = 0x200000  # OpenSSL X509_V_FLAG_NO_CHECK_TIME
RENEWED_CLOSE = 1000


def allow_expired_client_certificates(ctx: ssl.SSLContext) -> None:
    """Let OpenSSL verify client certificate paths without the validity period (the handshake checks it)."""
    ctx.verify_flags = ssl.VerifyFlags(int(ctx.verify_flags) | NO_CHECK_TIME)


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except Exception:  # InvalidSignature, ValueError, TypeError: not this issuer
        return False
    return True


class StationOnboarding:
    """The onboarding admission step (:meth:`classify`) and session handler (:meth:`handle`); see the module
    docstring. :meth:`install` puts both into ``engine``'s gateway."""

    def __init__(self, engine: CampaignEngine, registry: StationRegistry, *, our_cas: Sequence[x509.Certificate],
                 manufacturer_roots: Sequence[x509.Certificate] = (), pending_interval: int = 60,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 options: CampaignOptions | None = None) -> None:
        self.engine = engine
        self.registry = registry
        self.our_cas = list(our_cas)
        self.manufacturer_roots = list(manufacturer_roots)
        self.pending_interval = pending_interval
        self.clock = clock
        self.options = options or CampaignOptions(max_in_flight=1, max_attempts=3, timeout=60)
        self.counts: dict[str, int] = {"admitted": 0, "renewed": 0, "unclassified": 0}

    def install(self) -> None:
        gateway = self.engine.gateway
        gateway.admission_steps.append(self.classify)
        gateway.onboarding = self.handle

    # -- admission --------------------------------------------------------------------------------
    def kind_of(self, cert: x509.Certificate, allowed: frozenset[Onboarding], *, at: datetime) -> Onboarding | None:
        """Which onboarding ``cert`` qualifies for under ``allowed`` (None: none)."""
        if Onboarding.EXPIRED in allowed and cert.not_valid_after_utc < at and \
                any(_issued_by(cert, ca) for ca in self.our_cas):
            return Onboarding.EXPIRED
        if Onboarding.FACTORY in allowed and any(_issued_by(cert, root) for root in self.manufacturer_roots):
            return Onboarding.FACTORY
        return None

    async def classify(self, admission: Admission) -> Reject | None:
        decision = admission.decision
        if not getattr(decision, "onboarding", False):
            return self._factory_only(admission)
        der = admission.peer_certificate_der()
        record = await asyncio.to_thread(self.registry.get, decision.identity)
        kind = None
        if der and record is not None:
            try:
                cert = x509.load_der_x509_certificate(der)
            except PYCA_INPUT_ERRORS:
                cert = None
            if cert is not None:
                kind = self.kind_of(cert, record.onboarding, at=self.clock())
        if kind is None:
            self.counts["unclassified"] += 1
            return None  # serve() refuses an unclassified candidate (A00.FR.407)
        admission.context["onboarding"] = kind
        self.counts["admitted"] += 1
        _log.info("%s: admitted for onboarding (%s certificate)", decision.identity, kind.value)
        return None

    def _factory_only(self, admission: Admission) -> Reject | None:
        """A certificate of a manufacturer root passes TLS (the root is trusted for onboarding) but is admitted
        for onboarding only, never as a normal profile-3 station."""
        if not self.manufacturer_roots:
            return None
        der = admission.peer_certificate_der()
        if not der:
            return None
        try:
            cert = x509.load_der_x509_certificate(der)
        except PYCA_INPUT_ERRORS:
            return None
        issuer = cert.issuer
        if any(root.subject == issuer and _issued_by(cert, root) for root in self.manufacturer_roots):
            identity = admission.decision.identity
            return Reject(f"station {identity}: a factory certificate is admitted for onboarding only", 403,
                          "InvalidChargingStationCertificate", "A00.FR.806", identity)
        return None

    # -- the renewal-only session -----------------------------------------------------------------
    async def handle(self, station: StationConnection) -> None:
        gateway = self.engine.gateway
        signing = gateway.csr_signing
        calls = gateway.calls
        if signing is None or calls is None:
            await station.close(1008, "onboarding needs CSR signing")
            return
        session = signing.session(station.identity, station.version)
        kind = station.context.get("onboarding")
        await self.engine.renew_station(station.identity, self.options,
                                        detail={"onboarding": kind.value if isinstance(kind, Onboarding) else None})
        async for message in station:
            if calls.take(station.identity, message):
                continue
            if isinstance(message, str) and session.may_answer(message):
                outcome = await asyncio.to_thread(session.take_response, message, at=self.clock())
                if outcome is not None:
                    if outcome.accepted:
                        self.counts["renewed"] += 1
                        await station.close(RENEWED_CLOSE, "renewed: reconnect with the new certificate")
                        return
                    continue
            call = parse_sign_certificate(message)
            if call is not None:
                for frame in await asyncio.to_thread(session.answer, call, at=self.clock()):
                    await station.send(frame)
                continue
            answer = self._answer(message)
            if answer is not None:
                await station.send(answer)

    def _answer(self, message: str | bytes) -> str | None:
        """BootNotification: Pending; any other CALL: CALLERROR SecurityError; answers to nobody: nothing."""
        try:
            frame = json.loads(message)
        except ValueError:
            return None
        if not (isinstance(frame, list) and len(frame) >= 3 and frame[0] == 2 and isinstance(frame[1], str)):
            return None
        unique_id, action = frame[1], frame[2]
        if action == "BootNotification":
            now = self.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
            payload: dict[str, Any] = {"status": "Pending", "currentTime": now, "interval": self.pending_interval}
            return json.dumps([3, unique_id, payload], separators=(",", ":"))
        return json.dumps([4, unique_id, "SecurityError", "renewal-only session: only the certificate renewal runs",
                           {}], separators=(",", ":"))

