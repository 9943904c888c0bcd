"""OCPP 1.6-J with the security white paper (edition 2/3) and the Plug & Charge application note: wire names.

White-paper names where 2.x renamed things (CentralSystemRootCertificate, SignChargePointCertificate,
ExtendedTriggerMessage, SignedUpdateFirmware); one certificate use only (no certificateType field on
the wire, the name is what the codec reports); ISO 15118 messages inside DataTransfer (PNC16 §2.2).
"""

from __future__ import annotations

from types import MappingProxyType

from ocppsec.pki.certmgmt.model import CertificateUse, InstalledType, RootType, Trigger
from ocppsec.pki.versions import OcppVersion
from ocppsec.pki.wire.table import ConfigName, SecurityConfigNames, SecuritySetting, WireNames

__all__ = ["NAMES"]

_ROOTS = {RootType.CSMS: "CentralSystemRootCertificate", RootType.MANUFACTURER: "ManufacturerRootCertificate"}

NAMES = WireNames(
    version=OcppVersion.V16,
    ocpp_module="ocpp.v16",
    format_violation="FormationViolation",
    schema_suffix="",
    trigger_action="ExtendedTriggerMessage",
    signing_uses=MappingProxyType({CertificateUse.CHARGING_STATION: "ChargingStationCertificate"}),
    install_types=MappingProxyType(_ROOTS),
    installed_types=MappingProxyType({InstalledType.for_root(root): name for root, name in _ROOTS.items()}),
    certificate_triggers=MappingProxyType({Trigger.SIGN_CHARGING_STATION: "SignChargePointCertificate"}),
    firmware_update_action="SignedUpdateFirmware",
    firmware_status_action="SignedFirmwareStatusNotification",
    certificate_status_action="GetCertificateStatus",
    chain_status_action=None,
    pnc_vendor_id="org.openchargealliance.iso15118pnc",
    # White paper §7: AuthorizationKey (write-only, A01) and SecurityProfile (only increases, A05.FR.01) are
    # configuration keys; ChangeConfiguration answers Accepted, RebootRequired, Rejected or NotSupported.
    security_config=SecurityConfigNames(
        change_action="ChangeConfiguration",
        reset_action="Reset",
        stored_statuses=frozenset({"Accepted", "RebootRequired"}),
        settings=MappingProxyType({SecuritySetting.BASIC_AUTH_PASSWORD: ConfigName("AuthorizationKey"),
                                   SecuritySetting.SECURITY_PROFILE: ConfigName("SecurityProfile")}),
        key_value=True,
    ),
    pnc_message_ids=("Authorize", "GetCertificateStatus"),
)
