"""Certificate revocation lists, built from ledger records (sans-I/O: time and CRL number are arguments).

:func:`build_crl` signs an RFC 5280 v2 CRL for one CA: ``thisUpdate`` = ``at``, ``nextUpdate`` =
``at + validity``, a (non-critical) CRLNumber, the AuthorityKeyIdentifier of the CA, and one entry per
revoked serial with its revocation date and reason code. It signs with any
:class:`~ocppsec.pki.keys.SigningKey` through pyca's builder: token-held keys (PKCS#11) through their
pyca key object (:func:`~ocppsec.pki.keys.as_private_key`).

Reason names follow RFC 5280 §5.3.1 (``keyCompromise``, ``superseded`` ...); :func:`parse_reason`
accepts them in any case and with ``-``/``_`` separators.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509

from ocppsec.pki.builder import signature_hash_for
from ocppsec.pki.errors import UsageError
from ocppsec.pki.keys import SigningKey, as_private_key
from ocppsec.pki.ledger import CertificateRecord

__all__ = [
    "DEFAULT_CRL_VALIDITY",
    "REASONS",
    "CrlEntry",
    "build_crl",
    "crl_entries",
    "parse_reason",
]

DEFAULT_CRL_VALIDITY = timedelta(days=1)

# RFC 5280 reason codes a revocation may carry (removeFromCRL belongs to delta CRLs only).
REASONS: dict[str, x509.ReasonFlags] = {
    f.value.lower(): f for f in x509.ReasonFlags if f is not x509.ReasonFlags.remove_from_crl
}


def parse_reason(text: str) -> x509.ReasonFlags:
    """``keyCompromise`` / ``key-compromise`` / ``KEY_COMPROMISE`` → :class:`x509.ReasonFlags`."""
    key = text.strip().replace("-", "").replace("_", "").lower()
    try:
        return REASONS[key]
    except KeyError:
        raise UsageError(
            f"unknown revocation reason {text!r}",
            hint="use one of " + ", ".join(f.value for f in REASONS.values()),
        ) from None


@dataclass(frozen=True, slots=True)
class CrlEntry:
    """One revoked serial as it goes on the CRL."""

    serial: int
    revoked_at: datetime
    reason: x509.ReasonFlags | None = None


def crl_entries(records: Iterable[CertificateRecord]) -> list[CrlEntry]:
    """CRL entries from the ledger's revoked records (records that are not revoked are skipped)."""
    out: list[CrlEntry] = []
    for r in records:
        if r.status != "revoked" or r.revoked_at is None:
            continue
        reason = parse_reason(r.revocation_reason) if r.revocation_reason else None
        out.append(CrlEntry(int(r.serial, 16), r.revoked_at, reason))
    return out


def build_crl(
    issuer: x509.Certificate,
    key: SigningKey,
    entries: Sequence[CrlEntry],
    *,
    at: datetime,
    number: int,
    validity: timedelta = DEFAULT_CRL_VALIDITY,
) -> x509.CertificateRevocationList:
    """Sign the CRL of ``issuer`` listing ``entries``, valid from ``at`` for ``validity``."""
    if number < 0:
        raise UsageError(f"CRL number must not be negative, got {number}")
    if validity <= timedelta(0):
        raise UsageError("the CRL validity (nextUpdate - thisUpdate) must be positive")
    revoked = []
    for e in entries:
        rb = x509.RevokedCertificateBuilder().serial_number(e.serial).revocation_date(e.revoked_at)
        if e.reason is not None and e.reason is not x509.ReasonFlags.unspecified:
            rb = rb.add_extension(x509.CRLReason(e.reason), critical=False)
        revoked.append(rb.build())
    # The list goes in through the constructor: add_revoked_certificate copies it each time (quadratic).
    builder = (
        x509.CertificateRevocationListBuilder(revoked_certificates=revoked)
        .issuer_name(issuer.subject)
        .last_update(at)
        .next_update(at + validity)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key()),  # type: ignore[arg-type]
                       critical=False)
    )
    return sign_crl_builder(builder, key)


def sign_crl_builder(builder: x509.CertificateRevocationListBuilder, key: SigningKey) -> x509.CertificateRevocationList:
    """Sign a CRL builder with any signing key (token-held keys sign in the token, through pyca's builder)."""
    return builder.sign(as_private_key(key), signature_hash_for(key.public_key()))
