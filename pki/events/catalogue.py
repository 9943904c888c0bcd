"""The OCPP security event catalogue, as data.

Every security event named by the OCPP 1.6 security white paper (edition 2/3), OCPP 2.0.1 (Appendix 1
v1.3 with the 2023 errata criticality, i.e. the v1.4 CSV) and OCPP 2.1 (Appendix v2.0), with:

- the *canonical* name (the 2.0.1 / 2.1 spelling) and the 1.6 spelling where it differs;
- the critical flag per version (``None``: the event does not exist in that version);
- a one-line description and the requirements that mandate it.

Names are matched exactly (they are case-sensitive identifiers in OCPP). Unknown and vendor types are
not errors: :func:`lookup` returns ``None`` for them and callers keep the name verbatim.

The criticality differs between versions (the certificate, TLS and firmware-signature events are not
critical in 1.6 but are in 2.0.1 / 2.1): never assume the flags of one version for another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ocppsec.pki.versions import OcppVersion

__all__ = [
    "CATALOGUE",
    "EventDefinition",
    "canonical_name",
    "is_critical",
    "lookup",
    "name_for",
]


@dataclass(frozen=True, slots=True)
class EventDefinition:
    """One security event of the catalogue."""

    name: str
    """The 2.0.1 / 2.1 name (canonical)."""
    v16_name: str | None
    """The 1.6 security white paper name, or ``None`` if the event does not exist in 1.6."""
    critical_v16: bool | None
    critical_v201: bool | None
    critical_v21: bool | None
    description: str
    requirements: tuple[str, ...] = ()

    def critical(self, version: OcppVersion) -> bool | None:
        """The critical flag in ``version``; ``None`` if the event is not defined there."""
        if version is OcppVersion.V16:
            return self.critical_v16
        return self.critical_v201 if version is OcppVersion.V201 else self.critical_v21

    def name_in(self, version: OcppVersion) -> str:
        """The spelling used on the wire in ``version`` (the canonical name when 1.6 has none)."""
        if version is OcppVersion.V16 and self.v16_name is not None:
            return self.v16_name
        return self.name

    def defined_in(self, version: OcppVersion) -> bool:
        return self.critical(version) is not None


_SAME = "="  # the 1.6 name equals the canonical name


def _e(
    name: str,
    v16: str | None,
    c16: bool | None,
    c201: bool | None,
    c21: bool | None,
    description: str,
    *requirements: str,
) -> EventDefinition:
    v16_name = name if v16 == _SAME else v16
    return EventDefinition(name, v16_name, c16, c201, c21, description, tuple(requirements))


_DEFINITIONS: tuple[EventDefinition, ...] = (
    _e("FirmwareUpdated", _SAME, True, True, True, "The firmware was updated.", "L01.FR.31"),
    _e(
        "FailedToAuthenticateAtCsms",
        "FailedToAuthenticateAtCentralSystem",
        False, False, False,
        "The CSMS rejected the charging station's credentials.",
    ),
    _e(
        "CsmsFailedToAuthenticate",
        "CentralSystemFailedToAuthenticate",
        False, False, False,
        "The charging station rejected the CSMS's credentials.",
    ),
    _e(
        "SettingSystemTime", _SAME, True, True, True,
        "The system time was changed (2.0.1: by more than ClockCtrlr.TimeAdjustmentReportingThreshold).",
    ),
    _e("StartupOfTheDevice", _SAME, True, True, True, "The charging station booted."),
    _e("ResetOrReboot", _SAME, True, True, True, "The charging station was reset or rebooted."),
    _e("SecurityLogWasCleared", _SAME, True, True, True, "The security log was cleared."),
    _e(
        "ReconfigurationOfSecurityParameters", _SAME, False, False, False,
        "Security parameters (keys, security profile) were changed.",
    ),
    _e("MemoryExhaustion", _SAME, True, True, True, "Flash or RAM memory is getting full."),
    _e(
        "InvalidMessages", _SAME, False, False, False,
        "Invalid OCPP messages or messages with a bad signature were received.",
    ),
    _e("AttemptedReplayAttacks", _SAME, False, False, False, "A replayed message was received."),
    _e("TamperDetectionActivated", _SAME, True, True, True, "A physical tamper sensor was triggered."),
    _e(
        "InvalidFirmwareSignature", _SAME, False, True, True,
        "The firmware signature is invalid (2.0.1 critical per the 2023 errata).",
        "L01.FR.03",
    ),
    _e(
        "InvalidFirmwareSigningCertificate", _SAME, False, True, True,
        "The firmware signing certificate is invalid (2.0.1 critical per the 2023 errata).",
        "L01.FR.02",
    ),
    _e(
        "InvalidCsmsCertificate",
        "InvalidCentralSystemCertificate",
        False, True, True,
        "The CSMS certificate is invalid or could not be verified.",
        "A00.FR.310", "A00.FR.413",
    ),
    _e(
        "InvalidChargingStationCertificate",
        "InvalidChargePointCertificate",
        False, True, True,
        "The certificate received in CertificateSigned is invalid.",
        "A02.FR.07",
    ),
    _e(
        "DiscardedRenewedClientCertificate", None, None, True, True,
        "A renewed client certificate was discarded because no connection could be made with it "
        "(2.0.1 via errata A02.FR.29, criticality as in 2.1).",
        "A02.FR.29",
    ),
    _e(
        "InvalidTLSVersion", _SAME, False, True, True,
        "The CSMS offered a TLS version below 1.2.",
        "A00.FR.316", "A00.FR.419",
    ),
    _e(
        "InvalidTLSCipherSuite", _SAME, False, True, True,
        "The CSMS offered only cipher suites that are not allowed.",
        "A00.FR.323", "A00.FR.426",
    ),
    _e(
        "MaintenanceLoginAccepted", None, None, True, True,
        'A local maintenance login succeeded; techInfo SHOULD be {"user": ..., "origin": ...}.',
    ),
    _e(
        "MaintenanceLoginFailed", None, None, True, True,
        'A local maintenance login failed; techInfo SHOULD be {"user": ..., "origin": ...}.',
    ),
)

CATALOGUE: Mapping[str, EventDefinition] = MappingProxyType({d.name: d for d in _DEFINITIONS})
"""Canonical name -> definition, in the order of the specification tables."""

_BY_ANY_NAME: Mapping[str, EventDefinition] = MappingProxyType(
    {**{d.v16_name: d for d in _DEFINITIONS if d.v16_name}, **CATALOGUE}
)


def lookup(name: str) -> EventDefinition | None:
    """The definition for a name in any version's spelling; ``None`` for unknown or vendor types."""
    return _BY_ANY_NAME.get(name)


def canonical_name(name: str) -> str:
    """The 2.0.1 / 2.1 name for ``name``; unknown and vendor names are returned verbatim."""
    definition = _BY_ANY_NAME.get(name)
    return definition.name if definition is not None else name


def name_for(name: str, version: OcppVersion) -> str:
    """The wire spelling of ``name`` (any version's spelling) in ``version``; unknown names verbatim."""
    definition = _BY_ANY_NAME.get(name)
    return definition.name_in(version) if definition is not None else name


_CRITICAL: dict[tuple[str, str], bool | None] = {
    (name, v.value): d.critical(v) for name, d in _BY_ANY_NAME.items() for v in OcppVersion
}


def is_critical(name: str, version: OcppVersion) -> bool | None:
    """Whether ``name`` is a critical event in ``version``; ``None`` if unknown there (vendor type)."""
    return _CRITICAL.get((name, version._value_))  # _value_: a plain attribute, .value a slow property
