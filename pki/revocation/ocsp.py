"""RFC 6960 OCSP responder core (sans-I/O: bytes in, bytes out, time passed in as ``at``).

:class:`OcspResponder` answers for one or more CAs of a PKI directory, looking each serial up in the
ledger: ``good`` (issued, not revoked), ``revoked`` (with revocation time and reason) or ``unknown``
(never issued by that CA). Every answer is an OCSPResponse; nothing raises on bad input:

- not DER, not an OCSPRequest, more than one certificate asked about, a nonce over 32 octets
  (RFC 8954) → ``malformedRequest``;
- an issuer (issuerNameHash + issuerKeyHash) none of our CAs has → ``unauthorized``;
- an unexpected failure → ``internalError``.

Responses are signed by the CA's delegated responder (:func:`issue_responder_certificate`: keyUsage
digitalSignature, extendedKeyUsage id-kp-OCSPSigning, id-pkix-ocsp-nocheck, short-lived, issued by the
CA it answers for, RFC 6960 §4.2.2.2) or, without one, by the CA itself. The responder certificate goes
in the response so clients can check it. Any :class:`~ocppsec.pki.keys.SigningKey` signs through pyca's
builder, PKCS#11 ones included (through their pyca key object, :func:`~ocppsec.pki.keys.as_private_key`).

**Pre-produced responses** (RFC 5019 style): :meth:`OcspResponder.preproduce` signs one response per
certificate and CertID hash algorithm ahead of time; requests without a nonce are served from that cache
until ``refresh_before`` ahead of their nextUpdate, when :meth:`OcspResponder.refresh` re-signs them;
``refresh`` also drops cached answers whose ledger status changed (a revocation on another CSMS node).
Requests with a nonce are answered on demand and echo it. pyca stamps ``producedAt`` from the clock.
"""

from __future__ import annotations

import enum
import hashlib
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from ocppsec.pki.builder import CertificateRequest, build_certificate, signature_hash_for
from ocppsec.pki.errors import InputError, UsageError
from ocppsec.pki.hashdata import CertificateHashData
from ocppsec.pki.keys import KeySpec, SigningKey, as_private_key, key_spec_of
from ocppsec.pki.ledger import CertificateRecord
from ocppsec.pki.profiles import Family, Profile
from ocppsec.pki.revocation.crl import parse_reason

__all__ = [
    "OCSP_RESPONDER_ROLE",
    "CertId",
    "CertStatus",
    "OcspAuthority",
    "OcspRequestError",
    "OcspResponder",
    "ParsedRequest",
    "Preproduced",
    "SerialLookup",
    "issue_responder_certificate",
    "parse_request",
    "responder_profile",
]

OCSP_RESPONDER_ROLE = "ocsp-responder"
MAX_NONCE_OCTETS = 32  # RFC 8954 §2.1
_HASHES: Mapping[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512,
}


class OcspRequestError(InputError):
    """An OCSP request that cannot be answered as asked (answered ``malformedRequest``)."""


class CertStatus(enum.Enum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class CertId:
    """RFC 6960 CertID: which certificate a request or response is about."""

    hash_algorithm: str  # sha1 | sha256 | sha384 | sha512
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial: int

    @property
    def issuer_key(self) -> tuple[str, bytes, bytes]:
        return (self.hash_algorithm, self.issuer_name_hash, self.issuer_key_hash)

    @classmethod
    def from_hash_data(cls, hd: CertificateHashData) -> CertId:
        """From OCPP CertificateHashData / OCSPRequestData (hex fields, SHA256/384/512)."""
        try:
            return cls(hd.hash_algorithm.lower(), bytes.fromhex(hd.issuer_name_hash), bytes.fromhex(hd.issuer_key_hash),
                       int(hd.serial_number, 16))
        except ValueError:
            raise InputError("OCSPRequestData hashes must be whole bytes of hex") from None

    def to_hash_data(self) -> CertificateHashData:
        if self.hash_algorithm == "sha1":
            raise UsageError("OCPP CertificateHashData has no SHA-1 form")
        return CertificateHashData(self.hash_algorithm.upper(), self.issuer_name_hash.hex(), self.issuer_key_hash.hex(),
                                   format(self.serial, "x"))

    @classmethod
    def for_certificate(cls, cert: x509.Certificate, issuer: x509.Certificate, algorithm: str = "sha256") -> CertId:
        name_hash, key_hash = issuer_hashes(issuer, algorithm)
        return cls(algorithm, name_hash, key_hash, cert.serial_number)


def issuer_hashes(issuer: x509.Certificate, algorithm: str) -> tuple[bytes, bytes]:
    """(issuerNameHash, issuerKeyHash) of the certificates ``issuer`` signs."""
    from ocppsec.pki.hashdata import _public_key_bits

    return (hashlib.new(algorithm, issuer.subject.public_bytes()).digest(),
            hashlib.new(algorithm, _public_key_bits(issuer)).digest())


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    cert_id: CertId
    nonce: bytes | None


def parse_request(der: bytes) -> ParsedRequest:
    """Parse an OCSPRequest; :class:`OcspRequestError` for anything we would answer malformedRequest."""
    try:
        req = ocsp.load_der_ocsp_request(der)
        algorithm = req.hash_algorithm.name
        cert_id = CertId(algorithm, req.issuer_name_hash, req.issuer_key_hash, req.serial_number)
        nonce: bytes | None = None
        for ext in req.extensions:
            if isinstance(ext.value, x509.OCSPNonce):
                nonce = ext.value.nonce
            elif ext.critical:
                raise OcspRequestError(f"unsupported critical request extension {ext.oid.dotted_string}")
    except OcspRequestError:
        raise
    except (ValueError, TypeError, NotImplementedError, x509.UnsupportedGeneralNameType) as exc:
        raise OcspRequestError(f"not a usable OCSP request: {exc}") from None
    except Exception as exc:  # pyca may raise its own internal errors on hostile DER
        raise OcspRequestError(f"not a usable OCSP request: {type(exc).__name__}") from None
    if algorithm not in _HASHES:
        raise OcspRequestError(f"unsupported CertID hash algorithm {algorithm}")
    if cert_id.serial < 0:  # RFC 5280 §4.1.2.2: serial numbers are positive
        raise OcspRequestError("the CertID serial number is negative")
    if nonce is not None and not 1 <= len(nonce) <= MAX_NONCE_OCTETS:
        raise OcspRequestError(f"nonce of {len(nonce)} octets (RFC 8954 allows 1-{MAX_NONCE_OCTETS})")
    return ParsedRequest(cert_id, nonce)


def responder_profile(family: Family = Family.CSO, validity_days: int = 30) -> Profile:
    """The delegated OCSP responder profile (not an OCPP role, so not in PROFILES)."""
    return Profile(
        name=OCSP_RESPONDER_ROLE, description="Delegated OCSP responder (id-kp-OCSPSigning, ocsp-nocheck)",
        family=family, is_ca=False, path_length=None, key_usage=frozenset({"digital_signature"}),
        allowed_keys=(KeySpec.P256, KeySpec.P384, KeySpec.P521, KeySpec.RSA2048, KeySpec.RSA3072, KeySpec.ED448),
        default_key=KeySpec.P256, validity_days=validity_days, allow_eku=True,
    )


def responder_key_spec(ca_key: SigningKey) -> KeySpec:
    """Same algorithm as the CA: P-256 for P-256/RSA CAs' peers, P-521 for -20 CAs, Ed448 for Ed448 CAs."""
    spec = key_spec_of(ca_key.public_key())
    if spec is None or spec.is_rsa:
        return KeySpec.P256
    return spec


def issue_responder_certificate(
    ca_certificate: x509.Certificate, ca_key: SigningKey, responder_key: SigningKey, *, at: datetime,
    validity: timedelta = timedelta(days=30), serial: int | None = None, family: Family = Family.CSO,
) -> x509.Certificate:
    """A delegated responder certificate for the CA (EKU OCSPSigning, ocsp-nocheck: clients do not check it)."""
    days = max(1, validity.days)
    cn = f"OCSP Responder for {ca_certificate.subject.rfc4514_string()}"[:64]
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, cn)] + [
        a for a in ca_certificate.subject if a.oid == x509.NameOID.ORGANIZATION_NAME
    ])
    request = CertificateRequest(responder_profile(family, days), subject, responder_key.public_key(), at, days, serial)
    return build_certificate(
        request, issuer_certificate=ca_certificate, issuer_key=ca_key,
        extra_extensions=((x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), False), (x509.OCSPNoCheck(), False)),
    )


@dataclass(frozen=True, slots=True)
class OcspAuthority:
    """One CA the responder answers for: its certificate, its name in the ledger, and who signs."""

    name: str
    certificate: x509.Certificate
    signer_certificate: x509.Certificate  # the delegated responder, or the CA certificate itself
    signer_key: SigningKey

    @property
    def delegated(self) -> bool:
        return self.signer_certificate != self.certificate


class SerialLookup(Protocol):
    """What the responder needs from the ledger (any :class:`~ocppsec.pki.ledger.Ledger` has it)."""

    def find_serial(self, serial: str, issuer_ca: str | None = None) -> list[CertificateRecord]: ...

    def revoked(self, issuer_ca: str) -> list[CertificateRecord]: ...

    def all(self) -> list[CertificateRecord]: ...


@dataclass(slots=True)
class _Cached:
    der: bytes
    status: CertStatus
    refresh_at: datetime


@dataclass(frozen=True, slots=True)
class Preproduced:
    """A pre-produced answer as served from memory, with the times an HTTP cache needs (RFC 5019 §6.2)."""

    der: bytes
    this_update: datetime
    next_update: datetime
    refresh_at: datetime  # when the responder re-signs it (before next_update)


@dataclass
class _Stats:
    preproduced_hits: int = 0
    on_demand: int = 0
    malformed: int = 0
    unauthorized: int = 0
    errors: int = 0
    by_status: dict[str, int] = field(default_factory=lambda: {s.value: 0 for s in CertStatus})


def _status_of(record: CertificateRecord | None) -> CertStatus:
    if record is None:
        return CertStatus.UNKNOWN
    return CertStatus.REVOKED if record.status == "revoked" else CertStatus.GOOD


class OcspResponder:
    """Answers OCSP requests for ``authorities`` from ``ledger`` (a Ledger: find_serial / revoked / all)."""

    def __init__(
        self,
        authorities: Sequence[OcspAuthority],
        ledger: SerialLookup,
        *,
        validity: timedelta = timedelta(hours=24),
        refresh_before: timedelta = timedelta(hours=6),
        preproduce_algorithms: Sequence[str] = ("sha1", "sha256"),
    ) -> None:
        if not authorities:
            raise UsageError("an OCSP responder needs at least one CA")
        if refresh_before >= validity:
            raise UsageError("refresh_before must be shorter than the response validity")
        self.authorities = tuple(authorities)
        self._ledger = ledger
        self.validity = validity
        self.refresh_before = refresh_before
        self.preproduce_algorithms = tuple(preproduce_algorithms)
        self._by_issuer: dict[tuple[str, bytes, bytes], OcspAuthority] = {}
        for auth in self.authorities:
            for alg in _HASHES:
                name_hash, key_hash = issuer_hashes(auth.certificate, alg)
                self._by_issuer[(alg, name_hash, key_hash)] = auth
        self._cache: dict[CertId, _Cached] = {}
        self.generation = 0  # changes whenever cached answers are replaced (caches in front of this one check it)
        self._revoked_seen: dict[str, frozenset[str]] = {}
        self._lock = threading.Lock()
        self.stats = _Stats()

    # -- answering --------------------------------------------------------------------------------
    def respond(self, der: bytes, *, at: datetime) -> bytes:
        """The DER OCSPResponse for a DER OCSPRequest. Never raises."""
        try:
            try:
                parsed = parse_request(der)
            except OcspRequestError:
                self.stats.malformed += 1
                return self.unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
            return self.respond_parsed(parsed, at=at)
        except Exception:
            self.stats.errors += 1
            return self.unsuccessful(ocsp.OCSPResponseStatus.INTERNAL_ERROR)

    @staticmethod
    def unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
        return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(Encoding.DER)

    def preproduced(self, cert_id: CertId, *, at: datetime) -> Preproduced | None:
        """The pre-produced answer for ``cert_id`` still served at ``at`` (memory only: no ledger, no signing)."""
        with self._lock:
            cached = self._cache.get(cert_id)
        if cached is None or at >= cached.refresh_at:
            return None
        self.stats.preproduced_hits += 1
        self.stats.by_status[cached.status.value] += 1
        next_update = cached.refresh_at + self.refresh_before
        return Preproduced(cached.der, next_update - self.validity, next_update, cached.refresh_at)

    def authority_for(self, cert_id: CertId) -> OcspAuthority | None:
        return self._by_issuer.get(cert_id.issuer_key)

    def respond_parsed(self, parsed: ParsedRequest, *, at: datetime) -> bytes:
        cert_id = parsed.cert_id
        auth = self.authority_for(cert_id)
        if auth is None:
            self.stats.unauthorized += 1
            return self.unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        if parsed.nonce is None:
            with self._lock:
                cached = self._cache.get(cert_id)
            if cached is not None and at < cached.refresh_at:
                self.stats.preproduced_hits += 1
                self.stats.by_status[cached.status.value] += 1
                return cached.der
        record = self._lookup(auth, cert_id.serial)
        status = _status_of(record)
        der = self._sign(auth, cert_id, record, at=at, nonce=parsed.nonce)
        self.stats.on_demand += 1
        self.stats.by_status[status.value] += 1
        if parsed.nonce is None and status is not CertStatus.UNKNOWN:
            with self._lock:
                self._cache[cert_id] = _Cached(der, status, at + self.validity - self.refresh_before)
        return der

    def status(self, cert_id: CertId) -> tuple[CertStatus, CertificateRecord | None]:
        """Ledger status of a CertID (``unknown`` also for an issuer we do not serve)."""
        auth = self.authority_for(cert_id)
        if auth is None:
            return CertStatus.UNKNOWN, None
        record = self._lookup(auth, cert_id.serial)
        return _status_of(record), record

    def _lookup(self, auth: OcspAuthority, serial: int) -> CertificateRecord | None:
        rows = self._ledger.find_serial(format(serial, "x"), auth.name)
        return rows[0] if rows else None

    def _sign(
        self, auth: OcspAuthority, cert_id: CertId, record: CertificateRecord | None, *, at: datetime,
        nonce: bytes | None,
    ) -> bytes:
        status = _status_of(record)
        revoked_at = reason = None
        if status is CertStatus.REVOKED:
            assert record is not None
            revoked_at = record.revoked_at or at
            reason = parse_reason(record.revocation_reason) if record.revocation_reason else None
            if reason is x509.ReasonFlags.unspecified:
                reason = None
        pyca_status = {CertStatus.GOOD: ocsp.OCSPCertStatus.GOOD, CertStatus.REVOKED: ocsp.OCSPCertStatus.REVOKED,
                       CertStatus.UNKNOWN: ocsp.OCSPCertStatus.UNKNOWN}[status]
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            cert_id.issuer_name_hash, cert_id.issuer_key_hash, cert_id.serial, _HASHES[cert_id.hash_algorithm](),
            pyca_status, at, at + self.validity, revoked_at, reason,
        )
        if auth.delegated:
            builder = builder.certificates([auth.signer_certificate])
        if nonce is not None:
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        return _sign_response(builder, auth.signer_certificate, auth.signer_key)

    # -- pre-production ---------------------------------------------------------------------------
    def preproduce(self, *, at: datetime, records: Iterable[CertificateRecord] | None = None) -> int:
        """Sign a response for every certificate the served CAs issued (each pre-produce algorithm)."""
        by_name = {a.name: a for a in self.authorities}
        rows = records if records is not None else self._ledger.all()
        fresh: dict[CertId, _Cached] = {}
        for rec in rows:
            auth = by_name.get(rec.issuer_ca)
            if auth is None or (rec.name is not None and rec.name == rec.issuer_ca):
                continue  # not ours, or a root's self-issued record
            for alg in self.preproduce_algorithms:
                name_hash, key_hash = issuer_hashes(auth.certificate, alg)
                cert_id = CertId(alg, name_hash, key_hash, int(rec.serial, 16))
                der = self._sign(auth, cert_id, rec, at=at, nonce=None)
                fresh[cert_id] = _Cached(der, _status_of(rec), at + self.validity - self.refresh_before)
        with self._lock:
            self._cache.update(fresh)
            self.generation += 1
        for auth in self.authorities:
            self._revoked_seen[auth.name] = frozenset(
                r.serial for r in self._ledger.revoked(auth.name)
            )
        return len(fresh)

    def refresh(self, *, at: datetime) -> int:
        """Drop answers whose status changed in the ledger; re-sign those due. Returns how many were re-signed."""
        changed: set[tuple[str, int]] = set()
        for auth in self.authorities:
            now_revoked = frozenset(r.serial for r in self._ledger.revoked(auth.name))
            before = self._revoked_seen.get(auth.name, frozenset())
            changed |= {(auth.name, int(s, 16)) for s in now_revoked ^ before}
            self._revoked_seen[auth.name] = now_revoked
        with self._lock:
            items = list(self._cache.items())
        redo: list[CertId] = []
        for cert_id, cached in items:
            owner = self.authority_for(cert_id)
            if owner is not None and ((owner.name, cert_id.serial) in changed or at >= cached.refresh_at):
                redo.append(cert_id)
        for cert_id in redo:
            owner = self.authority_for(cert_id)
            assert owner is not None
            record = self._lookup(owner, cert_id.serial)
            der = self._sign(owner, cert_id, record, at=at, nonce=None)
            with self._lock:
                self._cache[cert_id] = _Cached(der, _status_of(record), at + self.validity - self.refresh_before)
                self.generation += 1
        return len(redo)

    @property
    def cached(self) -> int:
        return len(self._cache)


def _sign_response(builder: ocsp.OCSPResponseBuilder, signer: x509.Certificate, key: SigningKey) -> bytes:
    """Sign with any key through pyca's builder (responder ID: the SHA-1 hash of the signer's key)."""
    builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, signer)
    return builder.sign(as_private_key(key), signature_hash_for(key.public_key())).public_bytes(Encoding.DER)
