"""The gateway's guard: revocation at the handshake, and the re-check of connected stations.

:class:`StationGuard` adds one admission step to a :class:`~.core.Gateway` (the first of ``Gateway.admission_steps``):
a profile-3 station's certificate is checked by the :class:`~.revocation_io.RevocationChecker` before the
station gets its 101 (refused: HTTP 403, InvalidChargingStationCertificate). The certificate goes into the
connection's context (``station.context["station_certificate"]``).

While the gateway runs (``async with guard:``), every connected station (``Gateway.sessions``) is checked
again whenever what decided its admission changes, and closed with **1008** (policy violation) and a
security event when it no longer holds:

- its certificate revoked (a CRL reloaded, the ledger read, an OCSP answer fetched again; found by the
  checker's listeners) -> InvalidChargingStationCertificate;
- the station removed from the registry (``ocppsec stations remove``; found by the registry snapshot)
  -> FailedToAuthenticateAtCsms, what its next handshake would record;
- its registered profile changed so that the profile it is connected at is no longer accepted (A05.FR.07;
  the registry snapshot) -> ReconfigurationOfSecurityParameters (the event of a changed security profile).

A change wakes the sweep at once; the sweep also runs every ``interval`` seconds, checking stations that
were admitted after the last change (the window between the admission step and the session list) and
fetching connected stations' expired OCSP answers again in the background. Only a definite revocation
closes a connection: an unknown status (a source unavailable) refuses new handshakes under fail-closed
but drops nobody. The time from a change in a source to the close is the source's poll interval plus
one sweep (see ADR 17).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from dataclasses import dataclass, field

from ocppsec.pki.errors import InputError
from ocppsec.pki.events.sink import local_event
from ocppsec.security_profiles import events as ev
from ocppsec.security_profiles.gateway.core import Gateway, RelaySession
from ocppsec.security_profiles.gateway.revocation import (
    REQUIREMENT,
    StationCertificate,
    Status,
    admission_refusal,
    revocation_close,
)
from ocppsec.security_profiles.gateway.revocation_io import RevocationChecker
from ocppsec.security_profiles.handshake import Reject
from ocppsec.security_profiles.registry_snapshot import RegistryChange, RegistrySnapshot
from ocppsec.security_profiles.server import Admission

__all__ = ["CERTIFICATE_CONTEXT_KEY", "POLICY_VIOLATION", "GuardStats", "StationGuard"]

_log = logging.getLogger("ocppsec.security_profiles.gateway.guard")
CERTIFICATE_CONTEXT_KEY = "station_certificate"
POLICY_VIOLATION = 1008
RECONFIGURATION = "ReconfigurationOfSecurityParameters"
PARSED_MAX = 32_768  # station certificates kept parsed (their DER and a few fields: about 1.5 KB each)


@dataclass
class GuardStats:
    refused: int = 0  # handshakes refused for revocation (or an unknown status under fail-closed)
    admitted_unknown: int = 0  # handshakes admitted with an unknown status (fail-open)
    closed: dict[str, int] = field(default_factory=dict)  # connected stations closed, per security event
    sweeps: int = 0


class StationGuard:
    """Revocation at the handshake and the re-check of ``gateway``'s connected stations (module docstring).

    ``revocation``: the checker (None: no revocation checks, only the registry re-check). ``registry``: the
    snapshot the gateway looks stations up in (None: no registry re-check; a plain registry has no change
    notifications). Construct before ``gateway.serve()``; run with ``async with guard:`` around it.
    """

    def __init__(self, gateway: Gateway, *, revocation: RevocationChecker | None = None,
                 registry: RegistrySnapshot | None = None, interval: float = 1.0) -> None:
        self.gateway = gateway
        self.revocation = revocation
        self.registry = registry
        self.interval = interval
        self.stats = GuardStats()
        self._seen: weakref.WeakKeyDictionary[RelaySession, tuple[int, int]] = weakref.WeakKeyDictionary()
        self._closing: weakref.WeakSet[RelaySession] = weakref.WeakSet()
        self._closes: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._sweeper: asyncio.Task[None] | None = None
        self._parsed: dict[bytes, StationCertificate] = {}  # DER -> facts: a reconnecting station is not parsed again
        self._unsubscribe: list[object] = []
        if revocation is not None:
            gateway.admission_steps.insert(0, self.admit)  # first: a revoked station costs the upstream nothing

    # -- the handshake ------------------------------------------------------------------------------------
    async def admit(self, admission: Admission) -> Reject | None:
        """The admission step: a profile-3 station's certificate against the revocation sources."""
        checker = self.revocation
        if checker is None or admission.decision.profile != 3:
            return None
        der = admission.peer_certificate_der()
        if der is None:
            return None
        identity = admission.decision.identity
        cert = self._parsed.get(der)
        if cert is None:
            try:
                cert = StationCertificate.from_der(der)
            except InputError as exc:
                self.stats.refused += 1
                return Reject(exc.message, 403, ev.INVALID_CS_CERTIFICATE, REQUIREMENT, identity)
            if len(self._parsed) >= PARSED_MAX:
                self._parsed.clear()
            self._parsed[der] = cert
        admission.context[CERTIFICATE_CONTEXT_KEY] = cert
        verdict = await checker.verdict(cert)
        checker.checks += 1
        refusal = admission_refusal(cert, verdict, checker.fail, identity=identity)
        if refusal is not None:
            self.stats.refused += 1
            checker.refused += 1
        elif verdict.status is Status.UNKNOWN:
            self.stats.admitted_unknown += 1
            _log.warning("admitted %s with revocation status unknown (fail-open): %s", identity,
                         "; ".join(f.describe() for f in verdict.unknowns))
        return refusal

    # -- the re-check -------------------------------------------------------------------------------------
    def _versions(self) -> tuple[int, int]:
        return (self.revocation.generation if self.revocation is not None else 0,
                self.registry.version if self.registry is not None else 0)

    def sweep(self) -> None:
        """Check every connected station whose admission facts changed since it was last checked."""
        self.stats.sweeps += 1
        now = self._versions()
        for session in list(self.gateway.sessions):
            if session in self._closing:
                continue
            cert = session.station.context.get(CERTIFICATE_CONTEXT_KEY)
            if self.revocation is not None and isinstance(cert, StationCertificate):
                self.revocation.refresh_ocsp(cert)
            seen = self._seen.get(session)
            if seen == now:
                continue
            self._seen[session] = now
            if self.registry is not None and (seen is None or seen[1] != now[1]) and self._registry_check(session):
                continue
            if self.revocation is not None and isinstance(cert, StationCertificate) and (seen is None or seen[0] != now[0]):
                why = revocation_close(cert, self.revocation.verdict_now(cert))
                if why is not None:
                    self._close(session, ev.INVALID_CS_CERTIFICATE, why, "certificate revoked")

    def _registry_check(self, session: RelaySession) -> bool:
        assert self.registry is not None
        station = session.station
        record = self.registry.get(station.identity)
        if record is None:
            self._close(session, ev.FAILED_TO_AUTHENTICATE, f"station {station.identity} was removed from the registry",
                        "station removed from the registry")
            return True
        if station.profile not in record.accepted_profiles:
            self._close(session, RECONFIGURATION,
                        f"registered security profile of {station.identity} is now {record.profile}; connected at "
                        f"profile {station.profile} [A05.FR.07]", "security profile changed")
            return True
        return False

    def _close(self, session: RelaySession, event_type: str, tech_info: str, reason: str) -> None:
        self._closing.add(session)
        station = session.station
        self.stats.closed[event_type] = self.stats.closed.get(event_type, 0) + 1
        _log.warning("closing %s (1008): %s", station.identity, tech_info)
        self.gateway.sink.record(local_event(event_type, station_id=station.identity, tech_info=tech_info,
                                             at=self.gateway.clock(), version=station.version))
        task = asyncio.get_running_loop().create_task(station.close(POLICY_VIOLATION, reason))
        self._closes.add(task)
        task.add_done_callback(self._closes.discard)

    def wake(self) -> None:
        """Run the sweep now (from the loop's thread)."""
        self._wake.set()

    async def _sweep_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            try:
                self.sweep()
            except Exception:
                _log.exception("re-checking the connected stations failed")

    # -- lifecycle ----------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the revocation sources (raising if one cannot be used) and the re-check of connected stations."""
        if self._sweeper is not None:
            return
        loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        if self.revocation is not None:
            await self.revocation.start()
            self._unsubscribe.append(self.revocation.add_listener(lambda _what: self.wake()))
        if self.registry is not None:
            def on_change(change: RegistryChange) -> None:
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(self.wake)

            self._unsubscribe.append(self.registry.subscribe(on_change))
        self._sweeper = loop.create_task(self._sweep_forever())

    async def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()  # type: ignore[operator]
        self._unsubscribe.clear()
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        if self._closes:
            await asyncio.gather(*self._closes, return_exceptions=True)
        if self.revocation is not None:
            await self.revocation.stop()

    async def __aenter__(self) -> StationGuard:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
