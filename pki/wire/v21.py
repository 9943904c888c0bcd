"""OCPP 2.1 (Edition 1 with the 2025-09 errata): the 2.0.1 names plus V2G20Certificate, SignV2G20Certificate,
OEMRootCertificate and GetCertificateChainStatus."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

from ocppsec.pki.certmgmt.model import CertificateUse, InstalledType, RootType, Trigger
from ocppsec.pki.versions import OcppVersion
from ocppsec.pki.wire import v201
from ocppsec.pki.wire.table import SlotSetting, WireNames

__all__ = ["NAMES"]

_OEM_ROOT = "OEMRootCertificate"
_BASE = v201.NAMES

NAMES: WireNames = replace(
    _BASE,
    version=OcppVersion.V21,
    ocpp_module="ocpp.v21",
    signing_uses=MappingProxyType({**_BASE.signing_uses, CertificateUse.V2G20: "V2G20Certificate"}),
    install_types=MappingProxyType({**_BASE.install_types, RootType.OEM: _OEM_ROOT}),
    installed_types=MappingProxyType({**_BASE.installed_types, InstalledType.OEM_ROOT: _OEM_ROOT}),
    certificate_triggers=MappingProxyType({**_BASE.certificate_triggers, Trigger.SIGN_V2G20: "SignV2G20Certificate"}),
    chain_status_action="GetCertificateChainStatus",
    # B09 (2.1): a slot's connectionData carries its own Basic-auth username and password, and the
    # NetworkConfiguration component (instance = the slot number) holds the same values as variables.
    security_config=replace(
        _BASE.security_config,
        profile_fields=MappingProxyType({SlotSetting.SECURITY_PROFILE: "securityProfile", SlotSetting.IDENTITY: "identity",
                                         SlotSetting.BASIC_AUTH_PASSWORD: "basicAuthPassword"}),
        slot_component="NetworkConfiguration",
        slot_variables=MappingProxyType({SlotSetting.SECURITY_PROFILE: "SecurityProfile", SlotSetting.IDENTITY: "Identity",
                                         SlotSetting.BASIC_AUTH_PASSWORD: "BasicAuthPassword"}),
    ),
)
