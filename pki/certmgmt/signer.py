"""The signing CA behind the certificate service: a small interface and two local implementations.

:class:`CertificateSigner` is all the service needs from a CA: which profile a use is issued under,
whether it can sign for a use (and, in 2.1, under the V2G root named by ``hashRootCertificate``), and
``sign`` for a batch of already policy-checked requests, returning leaf-first chains without the root.

- :class:`AuthoritySigner` signs with in-memory :class:`~ocppsec.pki.hierarchy.CertificateAuthority`
  objects (tests, examples, a CSMS that keeps its CA in an HSM-backed ``SigningKey``).
- :class:`LocalCaSigner` signs with the CAs of an on-disk :class:`~ocppsec.pki.directory.PkiDirectory`
  and records every certificate in its ledger (one transaction per batch, tagged with the station).

Plugging in an external CA (A02.FR.04 says the CSMS SHOULD forward CSRs to a CA server): write a class
with the same three methods. For an **EST** server (RFC 7030), ``sign`` POSTs each CSR's DER
(base64, ``application/pkcs10``) to ``/.well-known/est/simpleenroll`` (Hubject/OPCP use
``/cpo/simpleenroll`` for SECC certificates) over TLS with the CSMS's client certificate, parses the
returned ``application/pkcs7-mime`` certs-only bundle, fetches the sub-CAs from ``/cacerts`` once,
and returns ``SignedChain(leaf, sub_cas=(Sub-CA 2, Sub-CA 1), root=None)`` — the service never sends
the root. A **roaming-platform CA** (e.g. a Plug & Charge PKI operator's REST API) is the same shape:
map :class:`~ocppsec.pki.certmgmt.model.CertificateUse` to the platform's product, submit, poll until
the certificate is ready (``sign`` may block; the OCPP adapter calls it off the event loop), and raise
:class:`~ocppsec.pki.errors.BackendError` when the platform refuses or times out, which the service
turns into "no CertificateSigned" so that the station's back-off (A02.FR.17-19) retries later.
``profile_for`` tells the service which local CSR policy to run before forwarding (it can return the
ISO 15118 profiles unchanged); ``can_sign`` returns a reason when the platform has no CA for the root
the station asked for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from cryptography import x509

from ocppsec.pki.builder import CertificateRequest, build_certificate, new_serial
from ocppsec.pki.certmgmt.model import CertificateUse
from ocppsec.pki.directory import PkiDirectory
from ocppsec.pki.errors import DuplicateError, UsageError
from ocppsec.pki.hashdata import CertificateHashData, compute_hash_data
from ocppsec.pki.hierarchy import CertificateAuthority
from ocppsec.pki.ledger import record_for
from ocppsec.pki.pem import certificates_to_pem
from ocppsec.pki.profiles import Profile, get_profile

__all__ = [
    "DEFAULT_CAS",
    "DEFAULT_PROFILES",
    "AuthoritySigner",
    "CertificateSigner",
    "LocalCaSigner",
    "SignedChain",
    "SigningOrder",
]

DEFAULT_PROFILES: Mapping[CertificateUse, str] = {
    CertificateUse.CHARGING_STATION: "charging-station",
    CertificateUse.COMBINED: "charging-station",
    CertificateUse.V2G: "secc",
    CertificateUse.V2G20: "secc-20",
}
DEFAULT_CAS: Mapping[CertificateUse, str] = {
    CertificateUse.CHARGING_STATION: "csms-root",
    CertificateUse.COMBINED: "csms-root",
    CertificateUse.V2G: "cpo-sub-ca-2",
    CertificateUse.V2G20: "cpo-sub-ca-2-20",
}
CLOCK_SKEW = timedelta(minutes=5)  # notBefore is backdated so a station a little behind still sees "valid now"


@dataclass(frozen=True, slots=True)
class SigningOrder:
    """One CSR that passed the service's policy, to be signed for ``station_id``."""

    csr: x509.CertificateSigningRequest
    use: CertificateUse
    station_id: str
    hash_root: CertificateHashData | None = None


@dataclass(frozen=True, slots=True)
class SignedChain:
    """What a CA returns: the leaf, its sub-CAs (issuer first) and, when known, the root (never sent)."""

    leaf: x509.Certificate
    sub_cas: tuple[x509.Certificate, ...]
    root: x509.Certificate | None
    issuer: str

    def chain_pem(self) -> str:
        """The CertificateSigned ``certificateChain``: leaf first, then the sub-CAs, no root."""
        return certificates_to_pem((self.leaf, *self.sub_cas))


class CertificateSigner(Protocol):
    """What :class:`~ocppsec.pki.certmgmt.service.CertificateService` needs from a CA."""

    def profile_for(self, use: CertificateUse) -> Profile:
        """The certificate profile whose CSR policy applies to ``use``."""
        ...

    def can_sign(self, use: CertificateUse, hash_root: CertificateHashData | None) -> str | None:
        """``None`` if this CA signs ``use`` (under the root ``hash_root`` names), else the reason why not."""
        ...

    def sign(self, orders: Sequence[SigningOrder], *, at: datetime) -> list[SignedChain]:
        """Sign every order (same order back); raise an :class:`~ocppsec.pki.errors.OcppsecError` on failure."""
        ...


def _root_matches(root: x509.Certificate, wanted: CertificateHashData) -> bool:
    return compute_hash_data(root, root, wanted.hash_algorithm).matches(wanted)


class AuthoritySigner:
    """Signs with in-memory CAs, one per use (missing uses are refused)."""

    def __init__(
        self, cas: Mapping[CertificateUse, CertificateAuthority], *, profiles: Mapping[CertificateUse, str] | None = None,
        validity_days: Mapping[CertificateUse, int] | None = None, ocsp_url: str | None = None,
    ) -> None:
        self._cas = dict(cas)
        self._profiles = {use: get_profile(name) for use, name in (profiles or DEFAULT_PROFILES).items()}
        self._validity = dict(validity_days or {})
        self._ocsp_url = ocsp_url

    def profile_for(self, use: CertificateUse) -> Profile:
        try:
            return self._profiles[use]
        except KeyError:
            raise UsageError(f"no certificate profile configured for {use.value} certificates") from None

    def authority(self, use: CertificateUse) -> CertificateAuthority:
        try:
            return self._cas[use]
        except KeyError:
            raise UsageError(f"this CA does not sign {use.value} certificates") from None

    def can_sign(self, use: CertificateUse, hash_root: CertificateHashData | None) -> str | None:
        ca = self._cas.get(use)
        if ca is None or use not in self._profiles:
            return f"no CA configured for {use.value} certificates"
        if hash_root is not None and not _root_matches(ca.root, hash_root):
            return "the requested root (hashRootCertificate) is not the root of this CA"
        return None

    def _build(self, order: SigningOrder, at: datetime, serial: int) -> SignedChain:
        ca = self.authority(order.use)
        profile = self.profile_for(order.use)
        ocsp = self._ocsp_url.replace("{issuer}", ca.name) if self._ocsp_url and profile.require_ocsp_aia else None
        request = CertificateRequest(profile, order.csr.subject, order.csr.public_key(), at - CLOCK_SKEW,
                                     self._validity.get(order.use), serial, (), ocsp)
        cert = build_certificate(request, issuer_certificate=ca.certificate, issuer_key=ca.key)
        return SignedChain(cert, ca.sub_cas, ca.root, ca.name)

    def sign(self, orders: Sequence[SigningOrder], *, at: datetime) -> list[SignedChain]:
        return [self._build(o, at, new_serial()) for o in orders]


class LocalCaSigner(AuthoritySigner):
    """Signs with the CAs of a PKI directory and records each certificate (with its station) in the ledger.

    ``cas`` maps uses to CA names in the directory (default :data:`DEFAULT_CAS`, uses whose CA the
    directory lacks are left out). The batch is recorded in one ledger transaction before it is returned;
    on a serial clash the whole batch is signed again with fresh serials.
    """

    def __init__(
        self, pki: PkiDirectory, *, cas: Mapping[CertificateUse, str] | None = None,
        profiles: Mapping[CertificateUse, str] | None = None, validity_days: Mapping[CertificateUse, int] | None = None,
    ) -> None:
        wanted = dict(cas or DEFAULT_CAS)
        explicit = cas is not None
        resolved: dict[CertificateUse, CertificateAuthority] = {}
        for use, name in wanted.items():
            rec = pki.ledger.get_named(name)
            if rec is None or not rec.is_ca:
                if explicit:
                    raise UsageError(f"no CA named {name!r} in {pki.path}", hint="see `ocppsec pki list`")
                continue
            resolved[use] = pki.ca(name)
        ocsp = pki.config.network.get("ocsp_url", "") or None
        super().__init__(resolved, profiles=profiles, validity_days=validity_days, ocsp_url=ocsp)
        self.pki = pki

    def sign(self, orders: Sequence[SigningOrder], *, at: datetime) -> list[SignedChain]:
        for _attempt in range(3):
            chains = [self._build(o, at, new_serial()) for o in orders]
            records = [
                record_for(c.leaf, issuer_ca=c.issuer, role=self.profile_for(o.use).name, issued_at=at, station=o.station_id)
                for o, c in zip(orders, chains, strict=True)
            ]
            try:
                self.pki.ledger.add(records)
            except DuplicateError:
                continue
            return chains
        raise DuplicateError("could not record the signed batch after three attempts")
