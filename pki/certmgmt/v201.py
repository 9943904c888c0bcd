"""OCPP 2.0.1 (Edition 3 with the 2025 errata): certificate-management shapes.

- SignCertificateRequest ``csr`` <= 5500, ``certificateType`` ChargingStationCertificate | V2GCertificate
  (omitted = one certificate for both connections); responses carry statusInfo (reasonCode ``InvalidCSR``
  for SignCertificate, ``InvalidCertificate`` / ``TooLargeElement`` for CertificateSigned and InstallCertificate).
- CertificateSignedRequest ``certificateChain`` <= 10000 with ``certificateType`` echoed; no requestId.
- Roots: CSMSRootCertificate, ManufacturerRootCertificate, V2GRootCertificate, MORootCertificate;
  GetInstalledCertificateIds adds V2GCertificateChain (children = sub-CAs, M03.FR.05), optional list of types.
- TriggerMessage: SignChargingStationCertificate, SignV2GCertificate, SignCombinedCertificate.
- Events: InvalidChargingStationCertificate (critical), DiscardedRenewedClientCertificate (errata 2025).

The names are the 2.0.1 table of :mod:`ocppsec.pki.wire`; the events' the catalogue's.
"""

from __future__ import annotations

from ocppsec.pki.certmgmt.codec import Codec
from ocppsec.pki.wire import v201 as wire_v201

__all__ = ["CODEC"]

CODEC = Codec(
    wire=wire_v201.NAMES,
    install_max_chars=5500,
    has_certificate_type=True,
    has_status_info=True,
    has_request_id=False,
    flat_installed_ids=False,
)
