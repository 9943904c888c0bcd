"""The shape of one OCPP version's wire-name table (:class:`WireNames`); the tables are ``v16``, ``v201``, ``v21``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ocppsec.pki.certmgmt.model import CertificateUse, InstalledType, RootType, Trigger
from ocppsec.pki.versions import OcppVersion

__all__ = ["WireNames"]


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
    pnc_message_ids: tuple[str, ...] = ()  # 1.6: the DataTransfer messageIds understood here
