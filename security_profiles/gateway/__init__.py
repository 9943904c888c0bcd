"""The security gateway: profiles 1-3 in front of any CSMS (``ocppsec gateway``).

:mod:`.core` holds :class:`Gateway` (authenticate, open the upstream, relay, observe); :mod:`.csr_signing`
answers the stations' SignCertificate in the gateway; :mod:`.guard` (:class:`StationGuard`) checks station
certificates against the revocation sources of :mod:`.revocation_io` (decided in :mod:`.revocation`) at the
handshake and closes connected stations whose certificate, registration or profile no longer holds;
:mod:`.upstream` opens the upstream before the station's 101 and tells it the station's profile and
certificate (:class:`UpstreamAuth`, :func:`upstream_context` for the hop); :mod:`.follow` (pure) and
:mod:`.follower` follow the password and security-profile changes the CSMS makes over OCPP into the
registry. Further parts of the service (the admin listener, configuration, workers) live in modules of
their own beside them.
"""

from __future__ import annotations

from ocppsec.security_profiles.gateway.core import Gateway, GatewayStats, Relay, RelaySession, security_event_from_frame
from ocppsec.security_profiles.gateway.follower import ChangeFollower
from ocppsec.security_profiles.gateway.guard import StationGuard
from ocppsec.security_profiles.gateway.revocation import FailMode
from ocppsec.security_profiles.gateway.revocation_io import CrlFile, CrlUrl, LedgerSource, OcspChecker, RevocationChecker
from ocppsec.security_profiles.gateway.upstream import UpstreamAuth, station_headers, upstream_context

__all__ = [
    "ChangeFollower",
    "CrlFile",
    "CrlUrl",
    "FailMode",
    "Gateway",
    "GatewayStats",
    "LedgerSource",
    "OcspChecker",
    "Relay",
    "RelaySession",
    "RevocationChecker",
    "StationGuard",
    "UpstreamAuth",
    "security_event_from_frame",
    "station_headers",
    "upstream_context",
]
