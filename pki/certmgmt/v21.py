"""OCPP 2.1 (Edition 1 with the 2025-09 errata): certificate-management shapes.

Differences from 2.0.1:

- ``V2G20Certificate`` use (ISO 15118-20 SECC, separate TriggerMessage ``SignV2G20Certificate``, A02.FR.22-23);
- SignCertificateRequest ``requestId`` (SHOULD, A02.FR.24) echoed in CertificateSignedRequest (SHALL,
  A02.FR.25; an unknown one is Rejected, A02.FR.26) and ``hashRootCertificate`` naming the V2G root
  to sign under (A02.FR.27);
- ``OEMRootCertificate`` for InstallCertificate / GetInstalledCertificateIds;
- InstallCertificate.certificate <= 10000 (was 5500).

The names are the 2.1 table of :mod:`ocppsec.pki.wire`.
"""

from __future__ import annotations

from dataclasses import replace

from ocppsec.pki.certmgmt import v201
from ocppsec.pki.wire import v21 as wire_v21

__all__ = ["CODEC"]

CODEC = replace(v201.CODEC, wire=wire_v21.NAMES, install_max_chars=10000, has_request_id=True)
