"""The issuance ledger: every certificate a PKI directory issued, with serial, role, issuer and status.

:class:`Ledger` is the storage interface (narrow on purpose) and :class:`CertificateRecord` its row;
the implementation is :class:`ocppsec.pki.ledger_sql.SqlLedger` (SQLite file or PostgreSQL), opened by
:func:`ocppsec.pki.ledger_sql.open_ledger`. A certificate counts as issued only once its row is
committed: issuance writes the row in the same transaction that reserves the serial, so a kill at any
moment leaves either nothing or a complete record, and ``UNIQUE(issuer_ca, serial)`` makes a duplicate
serial impossible.

Generations: a renewed CA or named certificate keeps its name, which moves to the new certificate; the
old one is renamed ``NAME@SERIALPREFIX`` (:func:`generation_name`), marked ``superseded_by`` the new one's
fingerprint, and the certificates the old CA issued follow it (their ``issuer_ca``), all in one
transaction (:meth:`Ledger.supersede`). It stays usable (its CRLs, its OCSP answers, the chains of what
it issued) until it is retired (:meth:`Ledger.retire`).

The stored status is ``valid`` or ``revoked``; :meth:`CertificateRecord.status_at` adds what time and the
generations say (expired, not yet valid, superseded, retired).
"""

from __future__ import annotations

import base64
import enum
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

__all__ = ["CertificateRecord", "CertificateStatus", "Ledger", "generation_name", "lineage", "record_for",
           "select_records"]


class CertificateStatus(enum.StrEnum):
    """Where an issued certificate stands.

    The ledger's ``status`` column keeps ``valid`` or ``revoked``; the others are computed at a time by
    :meth:`CertificateRecord.status_at` and never stored."""

    VALID = "valid"
    REVOKED = "revoked"
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    SUPERSEDED = "superseded"  # renewed or rolled over: a newer generation carries the name
    RETIRED = "retired"  # superseded and taken out of service (its key is gone)


def generation_name(name: str, serial: str) -> str:
    """The name a superseded generation of ``name`` keeps: ``name@`` and the first 12 hex digits of its serial."""
    return f"{lineage(name)}@{serial[:12]}"


def lineage(name: str) -> str:
    """The name of the current generation of ``name`` (``csms-root@4f1a...`` -> ``csms-root``)."""
    return name.split("@", 1)[0]


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
    superseded_by: str | None = None  # fingerprint of the generation that replaced it
    retired_at: datetime | None = None

    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.pem.encode())

    @property
    def is_root(self) -> bool:
        """A self-signed CA (its issuer is itself)."""
        return self.is_ca and self.name is not None and self.issuer_ca == self.name

    def status_at(self, at: datetime) -> CertificateStatus:
        """The status at ``at``: revoked, retired, superseded, then by time expired / not yet valid / valid."""
        if self.status is CertificateStatus.REVOKED and (self.revoked_at is None or self.revoked_at <= at):
            return CertificateStatus.REVOKED
        if self.retired_at is not None and self.retired_at <= at:
            return CertificateStatus.RETIRED
        if at >= self.not_after:
            return CertificateStatus.EXPIRED
        if self.superseded_by is not None:
            return CertificateStatus.SUPERSEDED
        if at < self.not_before:
            return CertificateStatus.NOT_YET_VALID
        return CertificateStatus.VALID

    def to_json(self, at: datetime | None = None) -> dict[str, object]:
        """The record as JSON; with ``at`` its ``status`` is :meth:`status_at` (else the stored one)."""
        return {
            "serial": self.serial, "name": self.name, "role": self.role, "issuer": self.issuer_ca,
            "subject": self.subject, "not_before": self.not_before.isoformat(), "not_after": self.not_after.isoformat(),
            "status": (self.status_at(at) if at is not None else self.status).value, "is_ca": self.is_ca,
            "issued_at": self.issued_at.isoformat(), "fingerprint": self.fingerprint, "station": self.station,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "revocation_reason": self.revocation_reason, "superseded_by": self.superseded_by,
            "retired_at": self.retired_at.isoformat() if self.retired_at else None,
        }


def select_records(
    records: Iterable[CertificateRecord], *, at: datetime, roles: Iterable[str] = (), issuers: Iterable[str] = (),
    statuses: Iterable[CertificateStatus] = (), expiring_within: timedelta | None = None,
) -> list[CertificateRecord]:
    """The records matching every filter given (an empty filter matches all): role, issuing CA (a CA's name
    matches each of its generations), status at ``at``, and notAfter before ``at + expiring_within``
    (already expired included)."""
    role_set, issuer_set, status_set = set(roles), {lineage(i) for i in issuers}, set(statuses)
    out = []
    for r in records:
        if role_set and r.role not in role_set:
            continue
        if issuer_set and lineage(r.issuer_ca) not in issuer_set:
            continue
        if status_set and r.status_at(at) not in status_set:
            continue
        if expiring_within is not None and r.not_after >= at + expiring_within:
            continue
        out.append(r)
    return out


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

    def supersede(self, old: CertificateRecord, new: Sequence[CertificateRecord], *, alias: str) -> None:
        """In one transaction: rename ``old`` to ``alias`` and mark it superseded by ``new[0]``, move what it issued
        (``issuer_ca``) and its CRL number to ``alias``, and add ``new`` (the successor first). :class:`DuplicateError`
        (nothing written) if ``old`` no longer carries its name or a new serial clashes."""
        ...

    def retire(self, name: str, at: datetime) -> CertificateRecord:
        """Mark the superseded generation ``name`` retired at ``at``."""
        ...

    def next_crl_number(self, issuer_ca: str) -> int:
        """Reserve the next CRL number of ``issuer_ca`` (monotonic, shared by every node using the ledger)."""
        ...

    def close(self) -> None: ...
