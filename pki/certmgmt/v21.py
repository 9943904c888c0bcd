"""OCPP 2.1 (Edition 1 with the 2025-09 errata): certificate-management names and shapes.

Differences from 2.0.1:

- ``V2G20Certificate`` use (ISO 15118-20 SECC, separate TriggerMessage ``SignV2G20Certificate``, A02.FR.22-23);
- SignCertificateRequest ``requestId`` (SHOULD, A02.FR.24) echoed in CertificateSignedRequest (SHALL,
  A02.FR.25; an unknown one is Rejected, A02.FR.26) and ``hashRootCertificate`` naming the V2G root
  to sign under (A02.FR.27);
- ``OEMRootCertificate`` for InstallCertificate / GetInstalledCertificateIds;
- InstallCertificate.certificate <= 10000 (was 5500).
"""

from __future__ import annotations

from ocppsec.pki.certmgmt._codec import Codec
from ocppsec.pki.certmgmt.model import (
    EVENT_DISCARDED_RENEWED,
    EVENT_INVALID_STATION_CERTIFICATE,
    EVENT_RECONFIGURATION,
    CertificateUse,
    InstalledType,
    RootType,
    Trigger,
)
from ocppsec.pki.versions import OcppVersion

__all__ = ["CODEC"]

CODEC = Codec(
    version=OcppVersion.V21,
    ocpp_package="ocpp.v21",
    trigger_action="TriggerMessage",
    uses={CertificateUse.CHARGING_STATION: "ChargingStationCertificate", CertificateUse.V2G: "V2GCertificate",
          CertificateUse.V2G20: "V2G20Certificate"},
    roots={RootType.CSMS: "CSMSRootCertificate", RootType.MANUFACTURER: "ManufacturerRootCertificate",
           RootType.V2G: "V2GRootCertificate", RootType.MO: "MORootCertificate", RootType.OEM: "OEMRootCertificate"},
    installed_types={InstalledType.CSMS_ROOT: "CSMSRootCertificate",
                     InstalledType.MANUFACTURER_ROOT: "ManufacturerRootCertificate",
                     InstalledType.V2G_ROOT: "V2GRootCertificate", InstalledType.MO_ROOT: "MORootCertificate",
                     InstalledType.OEM_ROOT: "OEMRootCertificate", InstalledType.V2G_CHAIN: "V2GCertificateChain"},
    triggers={Trigger.SIGN_CHARGING_STATION: "SignChargingStationCertificate", Trigger.SIGN_V2G: "SignV2GCertificate",
              Trigger.SIGN_V2G20: "SignV2G20Certificate", Trigger.SIGN_COMBINED: "SignCombinedCertificate"},
    events={EVENT_INVALID_STATION_CERTIFICATE: EVENT_INVALID_STATION_CERTIFICATE,
            EVENT_DISCARDED_RENEWED: EVENT_DISCARDED_RENEWED,
            EVENT_RECONFIGURATION: EVENT_RECONFIGURATION},
    critical={EVENT_INVALID_STATION_CERTIFICATE: True, EVENT_DISCARDED_RENEWED: True, EVENT_RECONFIGURATION: False},
    install_max_chars=10000,
    has_certificate_type=True,
    has_status_info=True,
    has_request_id=True,
    flat_installed_ids=False,
    schema_suffix="Request",
)
