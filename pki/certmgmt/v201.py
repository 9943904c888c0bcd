"""OCPP 2.0.1 (Edition 3 with the 2025 errata): certificate-management names and shapes.

- SignCertificateRequest ``csr`` <= 5500, ``certificateType`` ChargingStationCertificate | V2GCertificate
  (omitted = one certificate for both connections); responses carry statusInfo (reasonCode ``InvalidCSR``
  for SignCertificate, ``InvalidCertificate`` / ``TooLargeElement`` for CertificateSigned and InstallCertificate).
- CertificateSignedRequest ``certificateChain`` <= 10000 with ``certificateType`` echoed; no requestId.
- Roots: CSMSRootCertificate, ManufacturerRootCertificate, V2GRootCertificate, MORootCertificate;
  GetInstalledCertificateIds adds V2GCertificateChain (children = sub-CAs, M03.FR.05), optional list of types.
- TriggerMessage: SignChargingStationCertificate, SignV2GCertificate, SignCombinedCertificate.
- Events: InvalidChargingStationCertificate (critical), DiscardedRenewedClientCertificate (errata 2025).
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

_ROOTS = {RootType.CSMS: "CSMSRootCertificate", RootType.MANUFACTURER: "ManufacturerRootCertificate",
          RootType.V2G: "V2GRootCertificate", RootType.MO: "MORootCertificate"}

CODEC = Codec(
    version=OcppVersion.V201,
    ocpp_package="ocpp.v201",
    trigger_action="TriggerMessage",
    uses={CertificateUse.CHARGING_STATION: "ChargingStationCertificate", CertificateUse.V2G: "V2GCertificate"},
    roots=_ROOTS,
    installed_types=installed_types_for(_ROOTS, v2g_chain="V2GCertificateChain"),
    triggers={Trigger.SIGN_CHARGING_STATION: "SignChargingStationCertificate", Trigger.SIGN_V2G: "SignV2GCertificate",
              Trigger.SIGN_COMBINED: "SignCombinedCertificate"},
    events={EVENT_INVALID_STATION_CERTIFICATE: EVENT_INVALID_STATION_CERTIFICATE,
            EVENT_DISCARDED_RENEWED: EVENT_DISCARDED_RENEWED,
            EVENT_RECONFIGURATION: EVENT_RECONFIGURATION},
    critical={EVENT_INVALID_STATION_CERTIFICATE: True, EVENT_DISCARDED_RENEWED: True, EVENT_RECONFIGURATION: False},
    install_max_chars=5500,
    has_certificate_type=True,
    has_status_info=True,
    has_request_id=False,
    flat_installed_ids=False,
    schema_suffix="Request",
)
