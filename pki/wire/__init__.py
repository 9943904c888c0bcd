"""OCPP wire names, one table per version (:mod:`.v16`, :mod:`.v201`, :mod:`.v21`).

Every name an OCPP version writes on the wire for the certificate, firmware and certificate-status
messages (enum values such as InstallCertificateUseEnumType, the action names that differ between
versions, the `ocpp` package module and its CallError code for unreadable payloads) and for the changes of
a station's credentials and security profile (configuration keys, components and variables:
:class:`SecurityConfigNames`) lives here and only here; the area codecs (:mod:`ocppsec.pki.certmgmt`,
:mod:`ocppsec.pki.revocation`, :mod:`ocppsec.firmware_signing`, :mod:`ocppsec.pki.chargepoint`, the
gateway's :mod:`ocppsec.security_profiles.gateway.follow`) read it. Security event names and their
critical flags are the event catalogue's (:mod:`ocppsec.pki.events.catalogue`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ocppsec.pki.versions import OcppVersion
from ocppsec.pki.wire import v16, v21, v201
from ocppsec.pki.wire.table import ConfigName, SecurityConfigNames, SecuritySetting, SlotSetting, WireNames

__all__ = ["WIRE", "ConfigName", "SecurityConfigNames", "SecuritySetting", "SlotSetting", "WireNames", "wire_names"]

WIRE: Mapping[OcppVersion, WireNames] = MappingProxyType(
    {OcppVersion.V16: v16.NAMES, OcppVersion.V201: v201.NAMES, OcppVersion.V21: v21.NAMES}
)


def wire_names(version: OcppVersion | str) -> WireNames:
    """The table of ``version`` (an :class:`OcppVersion` or any spelling :meth:`OcppVersion.parse` takes)."""
    return WIRE[version if isinstance(version, OcppVersion) else OcppVersion.parse(version)]
