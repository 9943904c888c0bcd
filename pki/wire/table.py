"""The shape of one OCPP version's wire-name table (:class:`WireNames`); the tables are ``v16``, ``v201``, ``v21``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from ocppsec.pki.certmgmt.model import CertificateUse, InstalledType, RootType, Trigger
from ocppsec.pki.versions import OcppVersion

__all__ = ["ConfigName", "SecurityConfigNames", "SecuritySetting", "SlotSetting", "WireNames"]


class SecuritySetting(Enum):
    """A station setting that changes how the station authenticates (the neutral nouns of :class:`SecurityConfigNames`)."""

    BASIC_AUTH_PASSWORD = "basic-auth-password"  # A01
    SECURITY_PROFILE = "security-profile"  # A05 (1.6: a writable key; 2.x: read-only, changed through slots)
    NETWORK_PRIORITY = "network-priority"  # the order of the network connection slots (2.x, A05 / B09)
    ALLOW_PROFILE_DOWNGRADE = "allow-profile-downgrade"  # 3 -> 2 permitted (2.0.1 errata 2025, 2.1)


class SlotSetting(Enum):
    """A value of one network connection slot (SetNetworkProfile, 2.1's NetworkConfiguration component)."""

    SECURITY_PROFILE = "security-profile"
    IDENTITY = "identity"  # 2.1: the Basic-auth username used through this slot
    BASIC_AUTH_PASSWORD = "basic-auth-password"  # 2.1


@dataclass(frozen=True, slots=True)
class ConfigName:
    """Where a setting lives: a 1.6 configuration key (``component`` None) or a 2.x component's variable."""

    name: str
    component: str | None = None


@dataclass(frozen=True, slots=True)
class SecurityConfigNames:
    """The messages and names through which a CSMS changes a station's credentials and security profile.

    ``change_action`` writes ``settings`` (ChangeConfiguration in 1.6: ``key_value``, one key and value per call,
    answered with one status; SetVariables in 2.x: a list of component variables, answered per variable) and
    the station's answer means "stored" when it is one of ``stored_statuses``. ``network_profile_action`` (SetNetworkProfile,
    2.x) writes a whole slot: ``profile_fields`` are the slot values inside its ``connectionData``.
    ``slot_component`` (2.1's NetworkConfiguration, one instance per slot, the instance name being the slot
    number) holds ``slot_variables``.
    """

    change_action: str
    reset_action: str
    stored_statuses: frozenset[str]
    settings: Mapping[SecuritySetting, ConfigName]
    key_value: bool = False
    network_profile_action: str | None = None
    profile_fields: Mapping[SlotSetting, str] | None = None
    slot_component: str | None = None
    slot_variables: Mapping[SlotSetting, str] | None = None


@dataclass(frozen=True, slots=True)
class WireNames:
    """Every name one OCPP version writes on the wire where the versions differ or several areas need it.

    The neutral nouns (:class:`CertificateUse`, :class:`RootType`, ...) are the keys; a noun missing from
    a mapping does not exist in that version.
    """

    version: OcppVersion
    ocpp_module: str  # module of the `ocpp` package with ChargePoint / call / call_result
    format_violation: str  # CallError code for a payload that cannot be read (1.6: FormationViolation)
    schema_suffix: str  # request schema file suffix in the `ocpp` package ("" in 1.6, else "Request")
    trigger_action: str  # TriggerMessage, or 1.6 ExtendedTriggerMessage
    signing_uses: Mapping[CertificateUse, str]  # CertificateSigningUseEnumType (COMBINED: field omitted)
    install_types: Mapping[RootType, str]  # InstallCertificateUseEnumType
    installed_types: Mapping[InstalledType, str]  # GetCertificateIdUseEnumType
    certificate_triggers: Mapping[Trigger, str]  # MessageTriggerEnumType values that ask for a CSR
    firmware_update_action: str  # SignedUpdateFirmware (1.6) / UpdateFirmware
    firmware_status_action: str  # SignedFirmwareStatusNotification (1.6) / FirmwareStatusNotification
    certificate_status_action: str  # GetCertificateStatus (1.6: the messageId inside DataTransfer)
    chain_status_action: str | None  # GetCertificateChainStatus (2.1 only)
    pnc_vendor_id: str | None  # 1.6: the DataTransfer vendorId of the ISO 15118 messages (PNC16 §2.2)
    security_config: SecurityConfigNames  # A01 / A05 / B09: credential and profile changes
    pnc_message_ids: tuple[str, ...] = ()  # 1.6: the DataTransfer messageIds understood here
