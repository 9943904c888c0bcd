"""The issuance ledger: every certificate a PKI directory issued, with serial, role, issuer and status.

:class:`Ledger` is the storage interface (narrow on purpose) and :class:`CertificateRecord` its row;
the implementation is :class:`ocppsec.pki.ledger_sql.SqlLedger` (SQLite file or PostgreSQL), opened by
:func:`ocppsec.pki.ledger_sql.open_ledger`. A certificate counts as issued only once its row is
committed: issuance writes the row in the same transaction that reserves the serial, so a kill at any
moment leaves either nothing or a complete record, and ``UNIQUE(issuer_ca, serial)`` makes a duplicate
serial impossible.
"""

from __future__ import annotations

import base64
import enum
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

__all__ = ["CertificateRecord", "CertificateStatus", "Ledger", "record_for"]


class CertificateStatus(enum.StrEnum):
    """Where an issued certificate stands (the ledger's ``status`` column keeps the value)."""

    VALID = "valid"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class CertificateRecord:
    """One issued certificate as the ledger keeps it."""

    serial: str  # lowercase hex, no leading zeros
    issuer_ca: str  # name of the issuing CA in this directory (the root's own name for a root)
    role: str  # profile name
    subject: str
    not_before: datetime
    not_after: datetime
    issued_at: datetime
    fingerprint: str  # SHA-256 of the DER, hex
    pem: str
    name: str | None = None  # CAs and named certificates (csms-server-rsa, ...)
    is_ca: bool = False
    key_ref: str | None = None  # "file:keys/x.key.pem" or a pkcs11: URI, for keys this PKI holds
    status: CertificateStatus = CertificateStatus.VALID
    revoked_at: datetime | None = None
    revocation_reason: str | None = None
    station: str | None = None  # charging-station identity the certificate was issued for

    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.pem.encode())

    def to_json(self) -> dict[str, object]:
        return {
            "serial": self.serial, "name": self.name, "role": self.role, "issuer": self.issuer_ca,
            "subject": self.subject, "not_before": self.not_before.isoformat(), "not_after": self.not_after.isoformat(),
            "status": self.status.value, "is_ca": self.is_ca, "issued_at": self.issued_at.isoformat(),
            "fingerprint": self.fingerprint, "station": self.station,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "revocation_reason": self.revocation_reason,
        }


def record_for(
    cert: x509.Certificate, *, issuer_ca: str, role: str, issued_at: datetime, name: str | None = None,
    key_ref: str | None = None, station: str | None = None,
) -> CertificateRecord:
    """Build the ledger row of a freshly signed certificate (pure)."""
    bc_ca = False
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        bc_ca = bc.ca
    except x509.ExtensionNotFound:
        pass
    return _record(cert, cert.subject, bc_ca, issuer_ca=issuer_ca, role=role, issued_at=issued_at, name=name,
                   key_ref=key_ref, station=station)


def _record(
    cert: x509.Certificate, subject: x509.Name, is_ca: bool, *, issuer_ca: str, role: str, issued_at: datetime,
    name: str | None = None, key_ref: str | None = None, station: str | None = None,
) -> CertificateRecord:
    """:func:`record_for` with the subject and CA flag supplied by an issuer that just encoded them into ``cert``."""
    der = cert.public_bytes(Encoding.DER)  # one serialisation for both the fingerprint and the PEM
    return CertificateRecord(
        serial=format(cert.serial_number, "x"), issuer_ca=issuer_ca, role=role,
        subject=subject.rfc4514_string(), not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc, issued_at=issued_at,
        fingerprint=hashlib.sha256(der).hexdigest(), pem=_certificate_pem(der),
        name=name, is_ca=is_ca, key_ref=key_ref, station=station,
    )



def _certificate_pem(der: bytes) -> str:
    """PEM exactly as ``Certificate.public_bytes(Encoding.PEM)`` writes it (64-character lines)."""
    b64 = base64.b64encode(der).decode("ascii")
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


class Ledger(Protocol):
    """What issuance, listing and revocation need from storage."""

    def add(self, records: Sequence[CertificateRecord]) -> None:
        """Insert all records in one transaction; :class:`DuplicateError` (and nothing written) on a clash."""
        ...

    def get_named(self, name: str) -> CertificateRecord | None: ...

    def find_serial(self, serial: str, issuer_ca: str | None = None) -> list[CertificateRecord]: ...

    def all(self) -> list[CertificateRecord]: ...

    def expiring(self, before: datetime) -> list[CertificateRecord]: ...

    def count(self) -> int:
        """How many certificates the ledger holds."""
        ...

    def revoke(self, serial: str, issuer_ca: str, at: datetime, reason: str) -> CertificateRecord:
        """Mark the certificate revoked (:class:`~ocppsec.pki.errors.NotFoundError` if there is none)."""
        ...

    def revoked(self, issuer_ca: str) -> list[CertificateRecord]: ...

    def next_crl_number(self, issuer_ca: str) -> int:
        """Reserve the next CRL number of ``issuer_ca`` (monotonic, shared by every node using the ledger)."""
        ...

    def close(self) -> None: ...
