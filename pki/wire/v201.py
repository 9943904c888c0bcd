"""OCPP 2.0.1 (Edition 3 with the 2025 errata): wire names."""

from __future__ import annotations

from types import MappingProxyType

from ocppsec.pki.certmgmt.model import CertificateUse, InstalledType, RootType, Trigger
from ocppsec.pki.versions import OcppVersion
from ocppsec.pki.wire.table import ConfigName, SecurityConfigNames, SecuritySetting, SlotSetting, WireNames

__all__ = ["NAMES"]

_ROOTS = {RootType.CSMS: "CSMSRootCertificate", RootType.MANUFACTURER: "ManufacturerRootCertificate",
          RootType.V2G: "V2GRootCertificate", RootType.MO: "MORootCertificate"}

_SECURITY_CTRLR = "SecurityCtrlr"

_SECURITY_CONFIG = SecurityConfigNames(
    change_action="SetVariables",
    reset_action="Reset",
    # SetVariableStatusEnumType: RebootRequired means stored, effective after a reboot
    stored_statuses=frozenset({"Accepted", "RebootRequired"}),
    settings=MappingProxyType({
        SecuritySetting.BASIC_AUTH_PASSWORD: ConfigName("BasicAuthPassword", _SECURITY_CTRLR),  # A01
        SecuritySetting.SECURITY_PROFILE: ConfigName("SecurityProfile", _SECURITY_CTRLR),  # read-only in 2.x
        SecuritySetting.NETWORK_PRIORITY: ConfigName("NetworkConfigurationPriority", "OCPPCommCtrlr"),  # A05, B09
        SecuritySetting.ALLOW_PROFILE_DOWNGRADE: ConfigName("AllowSecurityProfileDowngrade", _SECURITY_CTRLR),  # errata 2025
    }),
    network_profile_action="SetNetworkProfile",
    profile_fields=MappingProxyType({SlotSetting.SECURITY_PROFILE: "securityProfile"}),
)

NAMES = WireNames(
    version=OcppVersion.V201,
    ocpp_module="ocpp.v201",
    format_violation="FormatViolation",
    schema_suffix="Request",
    trigger_action="TriggerMessage",
    signing_uses=MappingProxyType({CertificateUse.CHARGING_STATION: "ChargingStationCertificate",
                                   CertificateUse.V2G: "V2GCertificate"}),
    install_types=MappingProxyType(_ROOTS),
    installed_types=MappingProxyType({**{InstalledType.for_root(root): name for root, name in _ROOTS.items()},
                                      InstalledType.V2G_CHAIN: "V2GCertificateChain"}),
    certificate_triggers=MappingProxyType({Trigger.SIGN_CHARGING_STATION: "SignChargingStationCertificate",
                                           Trigger.SIGN_V2G: "SignV2GCertificate",
                                           Trigger.SIGN_COMBINED: "SignCombinedCertificate"}),
    firmware_update_action="UpdateFirmware",
    firmware_status_action="FirmwareStatusNotification",
    certificate_status_action="GetCertificateStatus",
    chain_status_action=None,
    pnc_vendor_id=None,
    security_config=_SECURITY_CONFIG,
)
