"""The signing CA behind the certificate service: a small interface and two local implementations.

:class:`CertificateSigner` is all the service needs from a CA: which profile a use is issued under,
whether it can sign for a use (and, in 2.1, under the V2G root named by ``hashRootCertificate``), and
``sign`` for a batch of already policy-checked requests, returning leaf-first chains without the root.

- :class:`AuthoritySigner` signs with in-memory :class:`~ocppsec.pki.hierarchy.CertificateAuthority`
  objects (tests, examples, a CSMS that keeps its CA in an HSM-backed ``SigningKey``).
- :class:`LocalCaSigner` signs with the CAs of an on-disk :class:`~ocppsec.pki.directory.PkiDirectory`
  and records every certificate in its ledger (one transaction per CA and batch, tagged with the station).

Both issue through one :class:`~ocppsec.pki.issuance.IssuancePipeline` per use (CA and profile). An order
carries the service's policy result (:attr:`SigningOrder.checked`): the pipeline signs from it without
reading the request again; an order without one is checked under the use's profile first.

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

from ocppsec.pki.certmgmt.model import CertificateUse
from ocppsec.pki.csr import CheckedRequest
from ocppsec.pki.directory import PkiDirectory
from ocppsec.pki.errors import PolicyError, UsageError
from ocppsec.pki.hashdata import CertificateHashData, compute_hash_data
from ocppsec.pki.hierarchy import CertificateAuthority
from ocppsec.pki.issuance import IssuancePipeline
from ocppsec.pki.ledger import CertificateRecord, Ledger
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
    checked: CheckedRequest | None = None  # the service's policy result for ``csr`` (what the policy read)


@dataclass(frozen=True, slots=True)
class SignedChain:
    """What a CA returns: the leaf, its sub-CAs (issuer first) and, when known, the root (never sent)."""

    leaf: x509.Certificate
    sub_cas: tuple[x509.Certificate, ...]
    root: x509.Certificate | None
    issuer: str
    record: CertificateRecord | None = None  # the ledger row of the leaf, when the CA made one

    def chain_pem(self) -> str:
        """The CertificateSigned ``certificateChain``: leaf first, then the sub-CAs, no root."""
        leaf = self.record.pem if self.record is not None else certificates_to_pem((self.leaf,))
        return leaf + certificates_to_pem(self.sub_cas)


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
    """Signs with in-memory CAs, one per use (missing uses are refused); records into ``ledger`` when given."""

    def __init__(
        self, cas: Mapping[CertificateUse, CertificateAuthority], *, profiles: Mapping[CertificateUse, str] | None = None,
        validity_days: Mapping[CertificateUse, int] | None = None, ocsp_url: str | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        self._cas = dict(cas)
        self._profiles = {use: get_profile(name) for use, name in (profiles or DEFAULT_PROFILES).items()}
        self._validity = dict(validity_days or {})
        self._ocsp_url = ocsp_url
        self._ledger = ledger
        self._pipelines: dict[CertificateUse, IssuancePipeline] = {}

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

    def pipeline(self, use: CertificateUse) -> IssuancePipeline:
        """The issuance pipeline of ``use``: its CA and profile, notBefore backdated by :data:`CLOCK_SKEW`."""
        pipeline = self._pipelines.get(use)
        if pipeline is None:
            ca = self.authority(use)
            profile = self.profile_for(use)
            ocsp = self._ocsp_url.replace("{issuer}", ca.name) if self._ocsp_url and profile.require_ocsp_aia else None
            pipeline = self._pipelines[use] = IssuancePipeline(
                ca, profile, ledger=self._ledger, validity_days=self._validity.get(use), ocsp_url=ocsp, backdate=CLOCK_SKEW,
            )
        return pipeline

    def sign(self, orders: Sequence[SigningOrder], *, at: datetime) -> list[SignedChain]:
        """Sign every order, grouped by use: each group is one batch of its pipeline (one ledger transaction)."""
        chains: list[SignedChain | None] = [None] * len(orders)
        groups: dict[CertificateUse, list[int]] = {}
        for n, order in enumerate(orders):
            groups.setdefault(order.use, []).append(n)
        for use, members in groups.items():
            pipeline = self.pipeline(use)
            requests = [self._checked(pipeline, orders[n]) for n in members]
            issued = pipeline.issue_checked(requests, at=at, stations=[orders[n].station_id for n in members])
            for n, result in zip(members, issued, strict=True):
                ic = result.issued
                chains[n] = SignedChain(ic.certificate, ic.sub_cas, ic.root, pipeline.issuer_name, result.record)
        return [c for c in chains if c is not None]

    @staticmethod
    def _checked(pipeline: IssuancePipeline, order: SigningOrder) -> CheckedRequest:
        """The order's policy result when it is for this request and profile; else the profile's policy now."""
        checked = order.checked
        if checked is None or checked.csr is not order.csr or checked.profile != pipeline.profile.name:
            checked = pipeline.validate(order.csr)
        if not checked.ok:
            raise PolicyError(f"CSR of {order.station_id} rejected for profile {pipeline.profile.name}", checked.violations)
        return checked


class LocalCaSigner(AuthoritySigner):
    """Signs with the CAs of a PKI directory and records each certificate (with its station) in the ledger.

    ``cas`` maps uses to CA names in the directory (default :data:`DEFAULT_CAS`, uses whose CA the
    directory lacks are left out). Each batch of a CA is recorded in one ledger transaction before it is
    returned; on a serial clash the batch is signed again with fresh serials.
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
        super().__init__(resolved, profiles=profiles, validity_days=validity_days, ocsp_url=ocsp, ledger=pki.ledger)
        self.pki = pki
