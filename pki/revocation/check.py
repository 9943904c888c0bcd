"""Revocation checking with CRLs, on top of :func:`ocppsec.pki.chain.verify_chain` (pyca does no revocation).

:func:`verify_chain_with_crls` first validates the path (RFC 5280 path building by pyca), then checks
every certificate of the path except the trust anchor against the CRLs given, in numbered steps:

1. **Scope.** A CRL applies to a certificate when its issuer Name equals the certificate's issuer and
   its signature verifies with the issuing certificate's key (a CRL of another CA that happens to list
   the same serial is ignored). An IssuingDistributionPoint limiting the CRL to CA or user certificates
   narrows the scope further; indirect CRLs and CRLs partitioned by reason are refused as unsupported.
2. **The CRL itself** (RFC 5280 §5.2, §6.3.3): the issuer's keyUsage, when present, includes cRLSign;
   the CRL carries a CRLNumber and it is non-critical; it is not a delta CRL; it has no unknown critical
   extension (in the CRL or in an entry). A CRL whose ``thisUpdate`` is after ``at`` is not used.
3. **Status.** The serial listed with a revocation date not after ``at`` → revoked (ChainError subclass
   :class:`RevokedError` with the reason). Not listed in a current CRL (``at`` before ``nextUpdate``) →
   good. Only stale CRLs → unknown (a revocation stays a revocation; absence from an old list proves nothing).
   With ``require=True`` an unknown status is an error too.

:func:`check_crl_status` gives the per-certificate answer (``good`` / ``revoked`` / ``unknown``) without
raising for revocation: OCPP 2.1 GetCertificateChainStatus and the OCSP responder use it.

:func:`index_crl` runs steps 1 and 2 once for one CRL and its issuer and keeps the entries by serial
(:class:`CrlIndex`), so a server answering many lookups against the same CRL (the gateway at every
handshake) pays a dictionary lookup per question instead of a signature check and a scan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from ocppsec.pki.chain import VerifiedChain, verify_chain
from ocppsec.pki.errors import ChainError

__all__ = [
    "CrlError",
    "CrlIndex",
    "RevocationStatus",
    "RevokedError",
    "check_crl_status",
    "check_serial_status",
    "index_crl",
    "load_crl",
    "verify_chain_with_crls",
]

GOOD = "good"
REVOKED = "revoked"
UNKNOWN = "unknown"

# CRL-level and entry-level extensions this checker understands (anything else critical is refused).
_KNOWN_CRL_EXTENSIONS = {
    ExtensionOID.CRL_NUMBER, ExtensionOID.AUTHORITY_KEY_IDENTIFIER, ExtensionOID.ISSUING_DISTRIBUTION_POINT,
    ExtensionOID.ISSUER_ALTERNATIVE_NAME, ExtensionOID.AUTHORITY_INFORMATION_ACCESS,
}
_KNOWN_ENTRY_EXTENSIONS = {x509.CRLReason.oid, x509.InvalidityDate.oid}


class CrlError(ChainError):
    """A CRL that applies to a certificate of the path is unusable (bad signature rules, missing CRLNumber...)."""


class RevokedError(ChainError):
    """A certificate of the path is on its issuer's CRL."""

    def __init__(self, message: str, *, serial: int, reason: x509.ReasonFlags | None, revoked_at: datetime) -> None:
        super().__init__(message, hint="the CA revoked it; the holder needs a new certificate")
        self.serial = serial
        self.reason = reason
        self.revoked_at = revoked_at


@dataclass(frozen=True, slots=True)
class RevocationStatus:
    """Revocation status of one certificate according to the CRLs given."""

    certificate: x509.Certificate | None  # None when asked by serial only (OCPP hash data)
    status: str  # good | revoked | unknown
    reason: x509.ReasonFlags | None = None
    revoked_at: datetime | None = None
    next_update: datetime | None = None  # of the CRL that decided it

    @property
    def revoked(self) -> bool:
        return self.status == REVOKED


def load_crl(data: bytes) -> x509.CertificateRevocationList:
    """A CRL from PEM or DER bytes (ValueError from pyca becomes :class:`CrlError`)."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError as exc:
        raise CrlError(f"not a CRL: {exc}", hint="pass a PEM or DER X.509 CRL") from None


def _describe(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or f"serial {cert.serial_number:x}"


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _signed_by(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    try:
        return crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def _in_scope(crl: x509.CertificateRevocationList, cert: x509.Certificate | None) -> bool:
    """Step 1: issuing distribution point limits (indirect / partitioned-by-reason CRLs are refused)."""
    try:
        idp = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint).value
    except x509.ExtensionNotFound:
        return True
    if idp.indirect_crl:
        raise CrlError(f"the CRL of {crl.issuer.rfc4514_string()} is an indirect CRL, which is not supported")
    if idp.only_some_reasons:
        raise CrlError(f"the CRL of {crl.issuer.rfc4514_string()} covers only some reasons, which is not supported")
    if idp.only_contains_attribute_certs:
        return False
    if cert is None:  # asked by serial only: a CRL limited to CA or user certificates still answers for its part
        return True
    if idp.only_contains_ca_certs and not _is_ca(cert):
        return False
    return not (idp.only_contains_user_certs and _is_ca(cert))


def _check_crl(crl: x509.CertificateRevocationList, issuer: x509.Certificate, at: datetime) -> None:
    """Step 2: the CRL is one we may rely on."""
    who = crl.issuer.rfc4514_string()
    try:
        ku = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
        if not ku.crl_sign:
            raise CrlError(f"the CRL issuer {who} lacks cRLSign in its keyUsage", requirement="RFC5280-6.3.3(f)")
    except x509.ExtensionNotFound:
        pass
    try:
        number = crl.extensions.get_extension_for_class(x509.CRLNumber)
    except x509.ExtensionNotFound:
        raise CrlError(f"the CRL of {who} has no CRLNumber", requirement="RFC5280-5.2.3") from None
    if number.critical:
        raise CrlError(f"the CRL of {who} marks CRLNumber critical", requirement="RFC5280-5.2.3")
    for ext in crl.extensions:
        if ext.oid == ExtensionOID.DELTA_CRL_INDICATOR:
            raise CrlError(f"the CRL of {who} is a delta CRL; pass the complete CRL", requirement="RFC5280-5.2.4")
        if ext.critical and ext.oid not in _KNOWN_CRL_EXTENSIONS:
            raise CrlError(f"the CRL of {who} has an unknown critical extension {ext.oid.dotted_string}")


def _entry_status(
    crl: x509.CertificateRevocationList, cert: x509.Certificate | None, serial: int, at: datetime
) -> RevocationStatus | None:
    entry = crl.get_revoked_certificate_by_serial_number(serial)
    if entry is None or entry.revocation_date_utc > at:
        return None
    reason: x509.ReasonFlags | None = None
    for ext in entry.extensions:
        if ext.critical and ext.oid not in _KNOWN_ENTRY_EXTENSIONS:
            raise CrlError(f"a CRL entry of {crl.issuer.rfc4514_string()} has an unknown critical extension")
        if isinstance(ext.value, x509.CRLReason):
            reason = ext.value.reason
    if reason is x509.ReasonFlags.remove_from_crl:
        return None
    return RevocationStatus(cert, REVOKED, reason, entry.revocation_date_utc, crl.next_update_utc)


def check_crl_status(
    cert: x509.Certificate, issuer: x509.Certificate, crls: Sequence[x509.CertificateRevocationList], *, at: datetime
) -> RevocationStatus:
    """Status of ``cert`` (issued by ``issuer``) under ``crls`` at ``at``; :class:`CrlError` for an unusable CRL."""
    if cert.issuer != issuer.subject:
        return RevocationStatus(cert, UNKNOWN)
    return check_serial_status(cert.serial_number, issuer, crls, at=at, cert=cert)


def check_serial_status(
    serial: int, issuer: x509.Certificate, crls: Sequence[x509.CertificateRevocationList], *, at: datetime,
    cert: x509.Certificate | None = None,
) -> RevocationStatus:
    """Status of the certificate ``issuer`` issued with ``serial`` (OCPP hash data gives no more than that)."""
    best: RevocationStatus | None = None
    for crl in crls:
        if (crl.issuer != issuer.subject or crl.last_update_utc > at or not _signed_by(crl, issuer)
                or not _in_scope(crl, cert)):
            continue  # another CA's CRL, or one issued after ``at`` (it says nothing about that moment)
        _check_crl(crl, issuer, at)
        listed = _entry_status(crl, cert, serial, at)
        if listed is not None:
            return listed
        next_update = crl.next_update_utc
        if next_update is None or at <= next_update:
            best = RevocationStatus(cert, GOOD, next_update=next_update)
    return best or RevocationStatus(cert, UNKNOWN)


def verify_chain_with_crls(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    crls: Sequence[x509.CertificateRevocationList],
    *,
    at: datetime,
    require: bool = False,
    server_name: str | None = None,
    expected_cn: str | None = None,
    max_depth: int | None = None,
    ca_key_usage_optional: bool = False,
) -> VerifiedChain:
    """Validate the path, then check each certificate except the anchor against ``crls`` (see module doc).

    Raises :class:`RevokedError` for a revoked certificate, :class:`CrlError` for an unusable CRL,
    :class:`ChainError` for a path that does not validate or (``require``) a certificate no current CRL covers.
    ``ca_key_usage_optional``: accept CA certificates without keyUsage (RFC 5280 §4.2.1.3 allows it; the
    default web-PKI rule of :func:`verify_chain` requires it, and every OCPP / ISO 15118 CA profile has it).
    """
    verified = verify_chain(leaf, intermediates, roots, at=at, server_name=server_name, expected_cn=expected_cn,
                            max_depth=max_depth, ca_key_usage_optional=ca_key_usage_optional)
    path = verified.chain
    for cert, issuer in pairwise(path):
        status = check_crl_status(cert, issuer, crls, at=at)
        if status.revoked:
            assert status.revoked_at is not None
            reason = status.reason.value if status.reason else "unspecified"
            raise RevokedError(
                f"certificate {_describe(cert)} (serial {cert.serial_number:x}) was revoked on "
                f"{status.revoked_at:%Y-%m-%dT%H:%M:%SZ}, reason {reason}",
                serial=cert.serial_number, reason=status.reason, revoked_at=status.revoked_at,
            )
        if require and status.status == UNKNOWN:
            raise ChainError(
                f"no current CRL of {cert.issuer.rfc4514_string()} covers {_describe(cert)}",
                hint="fetch the issuer's latest CRL (its CRL distribution point)",
            )
    return verified


@dataclass(frozen=True, slots=True)
class CrlIndex:
    """One CRL checked against its issuer (steps 1-2) with its entries by serial; see :func:`index_crl`."""

    issuer: x509.Name
    this_update: datetime
    next_update: datetime | None
    number: int
    entries: Mapping[int, tuple[datetime, x509.ReasonFlags | None]]  # serial -> (revocation date, reason)
    only_ca_certs: bool = False
    only_user_certs: bool = False

    def covers(self, *, ca: bool) -> bool:
        """Whether the CRL speaks for CA certificates (``ca``) or end-entity ones (IssuingDistributionPoint)."""
        return not (self.only_user_certs if ca else self.only_ca_certs)

    def current(self, at: datetime) -> bool:
        """Usable at ``at``: issued by then and not past its nextUpdate (an absent nextUpdate never expires)."""
        return self.this_update <= at and (self.next_update is None or at <= self.next_update)

    def status(self, serial: int, *, at: datetime, ca: bool = False) -> RevocationStatus:
        """Step 3 for the certificate with ``serial``: revoked (listed with a date not after ``at``), good (not
        listed in a current CRL) or unknown (not listed and the CRL not current, or out of its scope)."""
        if not self.covers(ca=ca) or self.this_update > at:
            return RevocationStatus(None, UNKNOWN)
        entry = self.entries.get(serial)
        if entry is not None and entry[0] <= at:
            return RevocationStatus(None, REVOKED, entry[1], entry[0], self.next_update)
        if self.next_update is None or at <= self.next_update:
            return RevocationStatus(None, GOOD, next_update=self.next_update)
        return RevocationStatus(None, UNKNOWN, next_update=self.next_update)


def index_crl(crl: x509.CertificateRevocationList, issuer: x509.Certificate, *, at: datetime) -> CrlIndex:
    """Check ``crl`` against the CA certificate ``issuer`` once (steps 1 and 2) and index its entries.

    :class:`CrlError` when the CRL is not ``issuer``'s (another issuer Name, or its signature does not verify
    with the issuer's key), covers only attribute certificates, or breaks a rule of step 2 (in the CRL or in
    one of its entries). Entries marked removeFromCRL are left out; a revocation date after ``at`` is kept and
    compared when asked (:meth:`CrlIndex.status`).
    """
    who = crl.issuer.rfc4514_string()
    if crl.issuer != issuer.subject:
        raise CrlError(f"the CRL of {who} is not issued by {issuer.subject.rfc4514_string()}")
    if not _signed_by(crl, issuer):
        raise CrlError(f"the signature of the CRL of {who} does not verify with its issuer's key",
                       requirement="RFC5280-6.3.3(g)")
    only_ca = only_user = False
    try:
        idp = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint).value
    except x509.ExtensionNotFound:
        pass
    else:
        _in_scope(crl, None)  # refuses indirect and partitioned-by-reason CRLs
        if idp.only_contains_attribute_certs:
            raise CrlError(f"the CRL of {who} covers attribute certificates only")
        only_ca, only_user = idp.only_contains_ca_certs, idp.only_contains_user_certs
    _check_crl(crl, issuer, at)
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    entries: dict[int, tuple[datetime, x509.ReasonFlags | None]] = {}
    for entry in crl:
        reason: x509.ReasonFlags | None = None
        for ext in entry.extensions:
            if ext.critical and ext.oid not in _KNOWN_ENTRY_EXTENSIONS:
                raise CrlError(f"a CRL entry of {who} has an unknown critical extension")
            if isinstance(ext.value, x509.CRLReason):
                reason = ext.value.reason
        if reason is not x509.ReasonFlags.remove_from_crl:
            entries[entry.serial_number] = (entry.revocation_date_utc, reason)
    return CrlIndex(crl.issuer, crl.last_update_utc, crl.next_update_utc, number, entries, only_ca, only_user)
