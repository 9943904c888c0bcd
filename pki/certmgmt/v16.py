"""OCPP 1.6-J with the security white paper (edition 2/3): certificate-management shapes.

- SignCertificate.req has only ``csr`` (<= 5500); CertificateSigned.req only ``certificateChain``
  (<= 10000): no certificateType, no requestId, and responses have no statusInfo (so no reasonCode on
  the wire; the reason goes into the security event's techInfo).
- Root types: ``CentralSystemRootCertificate`` and ``ManufacturerRootCertificate`` only (V2G / MO roots go
  through DataTransfer per the PNC application note, which this module does not wrap).
- Trigger: ``ExtendedTriggerMessage`` with ``SignChargePointCertificate``.
- GetInstalledCertificateIds asks for exactly one type and answers a flat ``certificateHashData`` list.
- Event: ``InvalidChargePointCertificate`` (not critical in 1.6); DiscardedRenewedClientCertificate does not
  exist in 1.6 and is only logged. InstallCertificate.certificate <= 5500.

The names are the 1.6 table of :mod:`ocppsec.pki.wire`; the events' the catalogue's.
"""

from __future__ import annotations

from ocppsec.pki.certmgmt.codec import Codec
from ocppsec.pki.wire import v16 as wire_v16

__all__ = ["CODEC"]

CODEC = Codec(
    wire=wire_v16.NAMES,
    install_max_chars=5500,
    has_certificate_type=False,
    has_status_info=False,
    has_request_id=False,
    flat_installed_ids=True,
)
