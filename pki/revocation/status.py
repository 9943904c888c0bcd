"""OCPP glue for certificate status, version-neutral (wire shapes live in the v16 / v201 / v21 codecs).

CSMS side — :class:`CsmsRevocationService`:

- :meth:`~CsmsRevocationService.certificate_status` (GetCertificateStatus, M06; 1.6 PnC via DataTransfer):
  turn OCSPRequestData into an OCSP request, answer it with our own responder when the issuer is one of
  our CAs (no HTTP round trip), else query ``responderURL``; check the answer; Accepted with the DER
  OCSPResponse, or Failed with a reason. The OCSP status inside may be revoked: "status ≠ validity",
  the station staples whatever the responder said (M06.FR.01-04, 08-09).
- :meth:`~CsmsRevocationService.chain_status` (2.1 GetCertificateChainStatus, M07): per certificate OCSP or
  CRL, ``Good`` / ``Revoked`` / ``Unknown`` / ``Failed`` with nextUpdate, trying each URL in turn.
- :meth:`~CsmsRevocationService.authorize_status` (AuthorizeRequest.iso15118CertificateHashData): the
  contract chain checked the same way, mapped to AuthorizeCertificateStatus.

Station side — :class:`StationOcspCache` (M06.FR.06-10): one GetCertificateStatus per V2G certificate
(SECC leaf and each sub-CA; never the root), refreshed at least weekly and after a certificate update,
ready for OCSP stapling (RFC 6961) towards the EV.
"""

from __future__ import annotations

import base64
import binascii
import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID

from ocppsec.pki.errors import InputError, OcppsecError, UsageError
from ocppsec.pki.hashdata import CertificateHashData, compute_hash_data
from ocppsec.pki.revocation.check import check_serial_status, load_crl
from ocppsec.pki.revocation.client import fetch, fetch_crl
from ocppsec.pki.revocation.ocsp import CertId, CertStatus, OcspResponder, issuer_hashes
from ocppsec.pki.revocation.ocsp_client_core import OcspResult, build_request, check_response

__all__ = [
    "AuthorizeStatus",
    "ChainStatus",
    "ChainStatusItem",
    "ChainStatusRequest",
    "CsmsRevocationService",
    "Source",
    "StationOcspCache",
    "StatusAnswer",
    "ocsp_url_of",
]


class Source(enum.Enum):
    OCSP = "OCSP"
    CRL = "CRL"


class ChainStatus(enum.Enum):
    """CertificateStatusEnumType (2.1 GetCertificateChainStatus): one certificate's status."""

    GOOD = "Good"
    REVOKED = "Revoked"
    UNKNOWN = "Unknown"
    FAILED = "Failed"  # no URL gave an answer


class AuthorizeStatus(enum.Enum):
    """AuthorizeCertificateStatusEnumType values this check can produce."""

    ACCEPTED = "Accepted"
    REVOKED = "CertificateRevoked"
    CHAIN_ERROR = "CertChainError"  # unknown to the issuer's responder, or the status could not be obtained


@dataclass(frozen=True, slots=True)
class StatusAnswer:
    """GetCertificateStatus result: Accepted with the DER OCSPResponse, or Failed with a reason."""

    accepted: bool
    ocsp_der: bytes | None = None
    result: OcspResult | None = None
    reason_code: str | None = None  # statusInfo.reasonCode (≤ 20 chars)
    detail: str | None = None  # statusInfo.additionalInfo

    @property
    def ocsp_base64(self) -> str | None:
        return base64.b64encode(self.ocsp_der).decode("ascii") if self.ocsp_der is not None else None


@dataclass(frozen=True, slots=True)
class ChainStatusRequest:
    hash_data: CertificateHashData
    source: Source
    urls: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ChainStatusItem:
    hash_data: CertificateHashData
    source: Source
    status: ChainStatus
    next_update: datetime


def ocsp_url_of(cert: x509.Certificate) -> str | None:
    """The AIA OCSP URL (OCPP requires one on every V2G certificate that may be checked, M06 remarks)."""
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return None
    for desc in aia:
        if desc.access_method == AuthorityInformationAccessOID.OCSP and isinstance(
            desc.access_location, x509.UniformResourceIdentifier
        ):
            return desc.access_location.value
    return None


Fetcher = Callable[[str, bytes], bytes]
CrlFetcher = Callable[[str], bytes]

_STATUS_WORD = {CertStatus.GOOD: ChainStatus.GOOD, CertStatus.REVOKED: ChainStatus.REVOKED,
                CertStatus.UNKNOWN: ChainStatus.UNKNOWN}
_CRL_WORD = {"good": ChainStatus.GOOD, "revoked": ChainStatus.REVOKED, "unknown": ChainStatus.UNKNOWN}


def _default_fetch(url: str, request: bytes) -> bytes:
    return fetch(url, request)


class CsmsRevocationService:
    """Certificate status for stations: our responder first, then the responder URL they name."""

    def __init__(
        self, *, local: OcspResponder | None = None, fetcher: Fetcher = _default_fetch,
        crl_fetcher: CrlFetcher | None = fetch_crl, issuers: Sequence[x509.Certificate] = (),
    ) -> None:
        self.local = local
        self.fetcher = fetcher
        self.crl_fetcher = crl_fetcher
        self._issuers = list(issuers)
        if local is not None:
            self._issuers += [a.certificate for a in local.authorities]

    def _issuer_for(self, cert_id: CertId) -> x509.Certificate | None:
        for cert in self._issuers:
            if issuer_hashes(cert, cert_id.hash_algorithm) == (cert_id.issuer_name_hash, cert_id.issuer_key_hash):
                return cert
        return None

    def _ocsp(self, cert_id: CertId, url: str, *, at: datetime) -> OcspResult:
        request, _ = build_request(cert_id, with_nonce=False)  # pre-produced answers are what stations staple
        if self.local is not None and self.local.authority_for(cert_id) is not None:
            der = self.local.respond(request, at=at)
        else:
            der = self.fetcher(url, request)
        return check_response(der, cert_id, at=at, issuer=self._issuer_for(cert_id))

    def certificate_status(self, hash_data: CertificateHashData, responder_url: str, *, at: datetime) -> StatusAnswer:
        """GetCertificateStatus: never raises for a bad request or an unreachable responder (Failed)."""
        try:
            cert_id = CertId.from_hash_data(hash_data)
            result = self._ocsp(cert_id, responder_url, at=at)
        except UsageError as exc:
            return StatusAnswer(False, reason_code="InvalidURL", detail=exc.message)
        except OcppsecError as exc:
            return StatusAnswer(False, reason_code="OCSPFailed", detail=exc.message)
        except Exception as exc:  # a custom fetcher's failure must not reach the OCPP layer
            return StatusAnswer(False, reason_code="OCSPFailed", detail=f"{type(exc).__name__}: {exc}")
        return StatusAnswer(True, result.der, result)

    def chain_status(self, requests: Sequence[ChainStatusRequest], *, at: datetime,
                     failed_next_update: timedelta = timedelta(hours=1)) -> list[ChainStatusItem]:
        """GetCertificateChainStatus (2.1): per certificate the first URL that gives an answer wins."""
        out = []
        for req in requests:
            item = None
            for url in req.urls:
                try:
                    item = self._one(req, url, at=at)
                except Exception:  # noqa: S112 - any failure of one URL: try the next, else Failed
                    continue
                break
            out.append(item or ChainStatusItem(req.hash_data, req.source, ChainStatus.FAILED, at + failed_next_update))
        return out

    def _one(self, req: ChainStatusRequest, url: str, *, at: datetime) -> ChainStatusItem:
        cert_id = CertId.from_hash_data(req.hash_data)
        if req.source is Source.OCSP:
            result = self._ocsp(cert_id, url, at=at)
            return ChainStatusItem(req.hash_data, req.source, _STATUS_WORD[result.status], result.next_update or at)
        if self.crl_fetcher is None:
            raise UsageError("no CRL download configured")
        issuer = self._issuer_for(cert_id)
        if issuer is None:
            raise InputError("the CRL issuer is not known here, so its signature cannot be checked")
        crl = load_crl(self.crl_fetcher(url))
        status = check_serial_status(cert_id.serial, issuer, [crl], at=at)
        return ChainStatusItem(req.hash_data, req.source, _CRL_WORD[status.status],
                               status.next_update or crl.next_update_utc or at)

    def authorize_status(self, items: Sequence[tuple[CertificateHashData, str]], *, at: datetime) -> AuthorizeStatus:
        """AuthorizeRequest.iso15118CertificateHashData: every certificate of the contract chain must be good."""
        for hash_data, url in items:
            answer = self.certificate_status(hash_data, url, at=at)
            if answer.result is None:
                return AuthorizeStatus.CHAIN_ERROR
            if answer.result.status is CertStatus.REVOKED:
                return AuthorizeStatus.REVOKED
            if answer.result.status is CertStatus.UNKNOWN:
                return AuthorizeStatus.CHAIN_ERROR
        return AuthorizeStatus.ACCEPTED


# -- station side ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Entry:
    certificate: x509.Certificate
    issuer: x509.Certificate
    hash_data: CertificateHashData
    responder_url: str | None
    der: bytes | None = None
    fetched_at: datetime | None = None
    next_update: datetime | None = None


class StationOcspCache:
    """The station's OCSP answers for its V2G chain (leaf and sub-CAs), for stapling (M06.FR.06-10)."""

    def __init__(self, *, refresh_every: timedelta = timedelta(days=7), hash_algorithm: str = "SHA256") -> None:
        if refresh_every > timedelta(days=7):
            raise UsageError("OCSP answers must be refreshed at least weekly (M06.FR.07)")
        self.refresh_every = refresh_every
        self.hash_algorithm = hash_algorithm
        self._entries: list[_Entry] = []

    def set_chain(self, leaf: x509.Certificate, sub_cas: Sequence[x509.Certificate], root: x509.Certificate) -> None:
        """A (new) V2G certificate chain: every cached answer is dropped and asked again (M06.FR.10)."""
        chain = [leaf, *sub_cas]
        issuers = [*sub_cas, root]
        self._entries = [
            _Entry(c, i, compute_hash_data(c, i, self.hash_algorithm), ocsp_url_of(c))
            for c, i in zip(chain, issuers, strict=True)
        ]

    def due_requests(self, *, at: datetime) -> list[tuple[CertificateHashData, str]]:
        """(hash data, responderURL) of each certificate whose answer is missing, a week old or past nextUpdate."""
        out = []
        for e in self._entries:
            if e.responder_url is None:
                continue
            stale = (e.fetched_at is None or at - e.fetched_at >= self.refresh_every
                     or (e.next_update is not None and at >= e.next_update))
            if stale:
                out.append((e.hash_data, e.responder_url))
        return out

    def missing_responder(self) -> list[x509.Certificate]:
        """Certificates without an AIA OCSP URL: they cannot be asked about (M06 remarks)."""
        return [e.certificate for e in self._entries if e.responder_url is None]

    def accept(self, hash_data: CertificateHashData, ocsp_result: str, *, at: datetime) -> OcspResult:
        """Store a GetCertificateStatusResponse.ocspResult after checking it is about that certificate and signed."""
        n = next((i for i, x in enumerate(self._entries) if x.hash_data.matches(hash_data)), None)
        if n is None:
            raise InputError("the answer is about a certificate not in the station's V2G chain")
        e = self._entries[n]
        try:
            der = base64.b64decode(ocsp_result, validate=True)
        except (binascii.Error, ValueError):
            raise InputError("ocspResult is not base64") from None
        result = check_response(der, CertId.for_certificate(e.certificate, e.issuer, self.hash_algorithm.lower()),
                                at=at, issuer=e.issuer)
        self._entries[n] = _Entry(e.certificate, e.issuer, e.hash_data, e.responder_url, der, at, result.next_update)
        return result

    def staple(self, *, at: datetime) -> list[bytes]:
        """The current DER answers, leaf first (RFC 6961 multi-stapling); empty if the leaf's is missing or stale."""
        out = []
        for e in self._entries:
            if e.der is None or (e.next_update is not None and at >= e.next_update):
                break
            out.append(e.der)
        return out

    def status(self, *, at: datetime) -> list[dict[str, object]]:
        """Per certificate: subject, whether an answer is cached and fresh, and its OCSP status."""
        rows: list[dict[str, object]] = []
        for e in self._entries:
            status = None
            if e.der is not None:
                single = ocsp.load_der_ocsp_response(e.der)
                status = single.certificate_status.name.lower()
            rows.append({"subject": e.certificate.subject.rfc4514_string(), "cached": e.der is not None,
                         "fresh": e.der is not None and (e.next_update is None or at < e.next_update),
                         "status": status, "responder_url": e.responder_url})
        return rows
