"""The security gateway: profiles 1-3 in front of any CSMS (``ocppsec gateway``).

:mod:`.core` holds :class:`Gateway` (authenticate, open the upstream, relay, observe); :mod:`.csr_signing`
answers the stations' SignCertificate in the gateway. Further parts of the service (revocation at the
handshake, the OCPP changes the gateway follows, the admin listener, configuration, workers) live in
modules of their own beside them.
"""

from __future__ import annotations

from ocppsec.security_profiles.gateway.core import Gateway, GatewayStats, Relay, RelaySession, security_event_from_frame

__all__ = ["Gateway", "GatewayStats", "Relay", "RelaySession", "security_event_from_frame"]
