"""Revocation status of every certificate of a validated path, from CRLs and OCSP, trust anchor included.

:func:`verify_chain_with_crls` (:mod:`.check`) stops at the trust anchor, as RFC 5280 does; an operator
who revoked a root in the ledger still wants to hear it. :func:`check_path_revocation` asks, for each
certificate of a :class:`~ocppsec.pki.chain.VerifiedChain` (leaf first):

1. the CRLs given, through :func:`~.check.check_crl_status` (scope, the CRL's own rules, then the entry); the
   trust anchor is checked against CRLs it signed itself: a root that lists its own serial is revoked;
2. when an OCSP lookup is given (:func:`ocsp_lookup`, the HTTP adapter: the certificate's AIA responder or
   one URL), the responder, whose answer is checked against the issuer (:mod:`.ocsp_client_core` checks);
3. revoked by either source wins; else good by either; else unknown.

:func:`verify_path_revocation` raises :class:`~.check.RevokedError` for the first revoked certificate
and, with ``require``, :class:`~ocppsec.pki.errors.ChainError` for a certificate below the anchor that no
source could answer for. Sans-I/O but for :func:`ocsp_lookup`, which imports the HTTP client when called.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

from cryptography import x509

from ocppsec.pki.chain import VerifiedChain
from ocppsec.pki.errors import ChainError, OcppsecError
from ocppsec.pki.revocation.check import GOOD, REVOKED, UNKNOWN, RevocationStatus, RevokedError, check_crl_status

__all__ = ["OcspLookup", "PathRevocation", "PathStatus", "check_path_revocation", "ocsp_lookup", "verify_path_revocation"]

# (certificate, issuer) -> its status, or None when the lookup has nothing to ask (no responder URL)
OcspLookup = Callable[[x509.Certificate, x509.Certificate], RevocationStatus | None]


@dataclass(frozen=True, slots=True)
class PathStatus:
    """One certificate of the path: its status, which source decided it, and why when unknown."""

    certificate: x509.Certificate
    status: str  # good | revoked | unknown
    source: str | None = None  # crl | ocsp
    reason: x509.ReasonFlags | None = None
    revoked_at: datetime | None = None
    anchor: bool = False
    detail: str = ""

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string() or f"serial {self.certificate.serial_number:x}"

    def to_json(self) -> dict[str, object]:
        return {"subject": self.subject, "serial": format(self.certificate.serial_number, "x"), "status": self.status,
                "source": self.source, "reason": self.reason.value if self.reason else None,
                "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None, "anchor": self.anchor,
                "detail": self.detail or None}


@dataclass(frozen=True, slots=True)
class PathRevocation:
    """The status of every certificate of a path, leaf first, trust anchor last."""

    entries: tuple[PathStatus, ...]

    @property
    def revoked(self) -> PathStatus | None:
        return next((e for e in self.entries if e.status == REVOKED), None)

    @property
    def unknown(self) -> tuple[PathStatus, ...]:
        """Certificates below the anchor no source answered for (an anchor's status is usually unknown)."""
        return tuple(e for e in self.entries if e.status == UNKNOWN and not e.anchor)

    def to_json(self) -> list[dict[str, object]]:
        return [e.to_json() for e in self.entries]


def _combine(cert: x509.Certificate, answers: Sequence[tuple[str, RevocationStatus]], anchor: bool,
             detail: str) -> PathStatus:
    for source, st in answers:
        if st.status == REVOKED:
            return PathStatus(cert, REVOKED, source, st.reason, st.revoked_at, anchor)
    for source, st in answers:
        if st.status == GOOD:
            return PathStatus(cert, GOOD, source, anchor=anchor)
    return PathStatus(cert, UNKNOWN, None, anchor=anchor, detail=detail or "no CRL or OCSP answer covers it")


def check_path_revocation(
    chain: VerifiedChain, *, at: datetime, crls: Sequence[x509.CertificateRevocationList] = (),
    ocsp: OcspLookup | None = None,
) -> PathRevocation:
    """The status of every certificate of ``chain`` at ``at`` (see the module docstring); never raises for a status."""
    pairs = [*pairwise(chain.chain), (chain.root, chain.root)]
    entries = []
    for n, (cert, issuer) in enumerate(pairs):
        anchor = n == len(pairs) - 1
        answers: list[tuple[str, RevocationStatus]] = []
        detail = ""
        if crls:
            answers.append(("crl", check_crl_status(cert, issuer, crls, at=at)))
        if ocsp is not None:
            try:
                answer = ocsp(cert, issuer)
            except OcppsecError as exc:
                answer, detail = None, f"OCSP: {exc}"
            if answer is not None:
                answers.append(("ocsp", answer))
        entries.append(_combine(cert, answers, anchor, detail))
    return PathRevocation(tuple(entries))


def verify_path_revocation(
    chain: VerifiedChain, *, at: datetime, crls: Sequence[x509.CertificateRevocationList] = (),
    ocsp: OcspLookup | None = None, require: bool = True,
) -> PathRevocation:
    """:func:`check_path_revocation`, raising :class:`RevokedError` for a revoked certificate (the anchor
    included) and, with ``require``, :class:`ChainError` for one below the anchor whose status is unknown."""
    report = check_path_revocation(chain, at=at, crls=crls, ocsp=ocsp)
    bad = report.revoked
    if bad is not None:
        assert bad.revoked_at is not None
        what = "the trust anchor " if bad.anchor else "certificate "
        reason = bad.reason.value if bad.reason else "unspecified"
        source = (bad.source or "?").upper()
        raise RevokedError(f"{what}{bad.subject} (serial {bad.certificate.serial_number:x}) was revoked on "
                           f"{bad.revoked_at:%Y-%m-%dT%H:%M:%SZ}, reason {reason} (by {source})",
                           serial=bad.certificate.serial_number, reason=bad.reason, revoked_at=bad.revoked_at)
    if require and report.unknown:
        first = report.unknown[0]
        raise ChainError(f"the revocation status of {first.subject} is unknown: {first.detail}",
                         hint="pass the issuer's current CRL with --crl, or an OCSP responder with --ocsp URL")
    return report


def ocsp_lookup(url: str | None = None, *, at: datetime, timeout: float = 10.0) -> OcspLookup:
    """An :data:`OcspLookup` over HTTP: ``url``, else each certificate's AIA OCSP URL (nothing to ask without one).

    Answers are checked against the issuer (signature, nonce, freshness); an unreachable responder or a bad
    answer raises (:func:`check_path_revocation` turns it into an unknown status with the reason)."""

    def lookup(cert: x509.Certificate, issuer: x509.Certificate) -> RevocationStatus | None:
        from ocppsec.pki.revocation.client import query
        from ocppsec.pki.revocation.ocsp import CertId, CertStatus
        from ocppsec.pki.revocation.status import ocsp_url_of

        target = url or ocsp_url_of(cert)
        if target is None:
            return None
        result = query(target, CertId.for_certificate(cert, issuer), at=at, issuer=issuer, timeout=timeout)
        status = {CertStatus.GOOD: GOOD, CertStatus.REVOKED: REVOKED}.get(result.status, UNKNOWN)
        return RevocationStatus(cert, status, result.reason, result.revoked_at, result.next_update)

    return lookup
