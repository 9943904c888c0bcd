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

from dataclasses import replace

from ocppsec.pki.certmgmt import v201
from ocppsec.pki.certmgmt.model import CertificateUse, InstalledType, RootType, Trigger
from ocppsec.pki.versions import OcppVersion

__all__ = ["CODEC"]

_OEM_ROOT = "OEMRootCertificate"

CODEC = replace(
    v201.CODEC,
    version=OcppVersion.V21,
    ocpp_package="ocpp.v21",
    uses={**v201.CODEC.uses, CertificateUse.V2G20: "V2G20Certificate"},
    roots={**v201.CODEC.roots, RootType.OEM: _OEM_ROOT},
    installed_types={**v201.CODEC.installed_types, InstalledType.OEM_ROOT: _OEM_ROOT},
    triggers={**v201.CODEC.triggers, Trigger.SIGN_V2G20: "SignV2G20Certificate"},
    install_max_chars=10000,
    has_request_id=True,
)
