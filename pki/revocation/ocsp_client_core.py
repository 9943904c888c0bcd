"""OCSP client core (sans-I/O): build a request, check a response.

- :func:`build_request` — an OCSPRequest for a :class:`~ocppsec.pki.revocation.ocsp.CertId` (from a certificate
  and its issuer, or straight from OCPP OCSPRequestData hash values), with an RFC 8954 nonce by default;
- :func:`check_response` — numbered checks: 1. responseStatus successful; 2. one SingleResponse for our
  CertID; 3. nonce echoed (when we sent one); 4. signed by the issuer itself, or by a responder
  certificate the issuer signed that carries id-kp-OCSPSigning (RFC 6960 §4.2.2.2); 5. thisUpdate not
  in the future and nextUpdate not in the past (with ``skew``). Without the issuer certificate (a CSMS
  relaying OCPP hash data) step 4 is skipped and the result says ``signature_checked=False``.

Sending the request over HTTP is :mod:`ocppsec.pki.revocation.client`.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from ocppsec.pki._untrusted import pyca_input
from ocppsec.pki.errors import VerificationError
from ocppsec.pki.revocation.ocsp import CertId, CertStatus, issuer_hashes

__all__ = ["OcspResult", "build_request", "check_response"]

_HASHES: dict[str, type[hashes.SHA1 | hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512,
}


@dataclass(frozen=True, slots=True)
class OcspResult:
    """A checked OCSP answer about one certificate."""

    status: CertStatus
    this_update: datetime
    next_update: datetime | None
    der: bytes  # the whole OCSPResponse, as OCPP's ocspResult carries it (base64)
    revoked_at: datetime | None = None
    reason: x509.ReasonFlags | None = None
    signature_checked: bool = True

    @property
    def base64(self) -> str:
        return base64.b64encode(self.der).decode("ascii")


def build_request(cert_id: CertId, *, nonce: bytes | None = None, with_nonce: bool = True) -> tuple[bytes, bytes | None]:
    """DER OCSPRequest for ``cert_id`` and the nonce it carries (a fresh 16-byte one unless given/disabled)."""
    if nonce is None and with_nonce:
        nonce = os.urandom(16)
    builder = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        cert_id.issuer_name_hash, cert_id.issuer_key_hash, cert_id.serial, _HASHES[cert_id.hash_algorithm]()
    )
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(Encoding.DER), nonce


def _verify_signature(resp: ocsp.OCSPResponse, signer: x509.Certificate) -> bool:
    pub = signer.public_key()
    h = resp.signature_hash_algorithm
    try:
        if isinstance(pub, ec.EllipticCurvePublicKey) and h is not None:
            pub.verify(resp.signature, resp.tbs_response_bytes, ec.ECDSA(h))
        elif isinstance(pub, rsa.RSAPublicKey) and h is not None:
            pub.verify(resp.signature, resp.tbs_response_bytes, padding.PKCS1v15(), h)
        elif isinstance(pub, ed448.Ed448PublicKey | ed25519.Ed25519PublicKey):
            pub.verify(resp.signature, resp.tbs_response_bytes)
        else:
            return False
    except InvalidSignature:
        return False
    return True


def _matches_responder_id(resp: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    if resp.responder_name is not None:
        return resp.responder_name == cert.subject
    key_hash = resp.responder_key_hash
    return key_hash is not None and key_hash == issuer_hashes(cert, "sha1")[1]


def _authorised_signer(resp: ocsp.OCSPResponse, issuer: x509.Certificate) -> x509.Certificate | None:
    if _matches_responder_id(resp, issuer):
        return issuer
    for cert in resp.certificates:
        if not _matches_responder_id(resp, cert) or cert.issuer != issuer.subject:
            continue
        try:
            cert.verify_directly_issued_by(issuer)
            eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except (InvalidSignature, ValueError, TypeError, x509.ExtensionNotFound):
            continue
        if ExtendedKeyUsageOID.OCSP_SIGNING in eku:
            return cert
    return None


def check_response(
    der: bytes, cert_id: CertId, *, at: datetime, issuer: x509.Certificate | None = None, nonce: bytes | None = None,
    skew: timedelta = timedelta(minutes=5),
) -> OcspResult:
    """Check an OCSPResponse about ``cert_id`` (see the module docstring); :class:`VerificationError` if it fails.

    A response pyca cannot parse, or whose fields (times, reason codes, certificates) it cannot read,
    raises :class:`InputError`."""
    with pyca_input("not a readable OCSP response"):
        return _check_response(der, cert_id, at=at, issuer=issuer, nonce=nonce, skew=skew)


def _check_response(
    der: bytes, cert_id: CertId, *, at: datetime, issuer: x509.Certificate | None, nonce: bytes | None, skew: timedelta,
) -> OcspResult:
    resp = ocsp.load_der_ocsp_response(der)
    if resp.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise VerificationError(f"the OCSP responder answered {resp.response_status.name.lower()}")
    singles = list(resp.responses)
    if len(singles) != 1:
        raise VerificationError(f"the OCSP response holds {len(singles)} answers, expected 1")
    single = singles[0]
    got = CertId(single.hash_algorithm.name, single.issuer_name_hash, single.issuer_key_hash, single.serial_number)
    if got != cert_id:
        raise VerificationError("the OCSP response is about another certificate than the one asked for")
    if nonce is not None:
        echoed = next((e.value.nonce for e in resp.extensions if isinstance(e.value, x509.OCSPNonce)), None)
        if echoed != nonce:
            raise VerificationError("the OCSP response does not echo our nonce (replayed or pre-produced)")
    checked = False
    if issuer is not None:
        signer = _authorised_signer(resp, issuer)
        if signer is None:
            raise VerificationError("the OCSP response is signed by neither the issuer nor a responder it authorised")
        if not _verify_signature(resp, signer):
            raise VerificationError("the OCSP response signature does not verify")
        if signer is not issuer and not signer.not_valid_before_utc <= at <= signer.not_valid_after_utc:
            raise VerificationError("the OCSP responder certificate is outside its validity period")
        checked = True
    this_update = single.this_update_utc
    next_update = single.next_update_utc
    if this_update > at + skew:
        raise VerificationError(f"the OCSP response is not yet valid (thisUpdate {this_update:%Y-%m-%dT%H:%M:%SZ})")
    if next_update is not None and next_update < at - skew:
        raise VerificationError(f"the OCSP response is stale (nextUpdate {next_update:%Y-%m-%dT%H:%M:%SZ})")
    status = {ocsp.OCSPCertStatus.GOOD: CertStatus.GOOD, ocsp.OCSPCertStatus.REVOKED: CertStatus.REVOKED,
              ocsp.OCSPCertStatus.UNKNOWN: CertStatus.UNKNOWN}[single.certificate_status]
    revoked_at = single.revocation_time_utc if status is CertStatus.REVOKED else None
    reason = single.revocation_reason if status is CertStatus.REVOKED else None
    return OcspResult(status, this_update, next_update, der, revoked_at, reason, checked)
