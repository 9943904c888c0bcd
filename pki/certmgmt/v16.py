"""OCPP 1.6-J with the security white paper (edition 2/3): certificate-management names and shapes.

- SignCertificate.req has only ``csr`` (<= 5500); CertificateSigned.req only ``certificateChain``
  (<= 10000): no certificateType, no requestId, and responses have no statusInfo (so no reasonCode on
  the wire; the reason goes into the security event's techInfo).
- Root types: ``CentralSystemRootCertificate`` and ``ManufacturerRootCertificate`` only (V2G / MO roots go
  through DataTransfer per the PNC application note, which this module does not wrap).
- Trigger: ``ExtendedTriggerMessage`` with ``SignChargePointCertificate``.
- GetInstalledCertificateIds asks for exactly one type and answers a flat ``certificateHashData`` list.
- Event: ``InvalidChargePointCertificate`` (not critical in 1.6); DiscardedRenewedClientCertificate does not
  exist in 1.6 and is only logged. InstallCertificate.certificate <= 5500.
"""

from __future__ import annotations

from ocppsec.pki.certmgmt.codec import Codec, installed_types_for
from ocppsec.pki.certmgmt.model import (
    EVENT_DISCARDED_RENEWED,
    EVENT_INVALID_STATION_CERTIFICATE,
    EVENT_RECONFIGURATION,
    CertificateUse,
    RootType,
    Trigger,
)
from ocppsec.pki.versions import OcppVersion

__all__ = ["CODEC"]

_ROOTS = {RootType.CSMS: "CentralSystemRootCertificate", RootType.MANUFACTURER: "ManufacturerRootCertificate"}

CODEC = Codec(
    version=OcppVersion.V16,
    ocpp_package="ocpp.v16",
    trigger_action="ExtendedTriggerMessage",
    uses={CertificateUse.CHARGING_STATION: "ChargingStationCertificate"},
    roots=_ROOTS,
    installed_types=installed_types_for(_ROOTS),
    triggers={Trigger.SIGN_CHARGING_STATION: "SignChargePointCertificate"},
    events={EVENT_INVALID_STATION_CERTIFICATE: "InvalidChargePointCertificate", EVENT_DISCARDED_RENEWED: None,
            EVENT_RECONFIGURATION: EVENT_RECONFIGURATION},
    critical={"InvalidChargePointCertificate": False, EVENT_RECONFIGURATION: False},
    install_max_chars=5500,
    has_certificate_type=False,
    has_status_info=False,
    has_request_id=False,
    flat_installed_ids=True,
    schema_suffix="",
)
