"""Building and signing certificates from a profile (pure: time and serial are arguments).

:func:`build_certificate` turns a profile, a subject, a public key and an issuer into a signed
certificate. It signs with any :class:`~ocppsec.pki.keys.SigningKey`: in-memory keys sign through
pyca's builder directly; other backends (PKCS#11) sign the TBS bytes, which are then assembled into
the certificate here.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import AuthorityInformationAccessOID

from ocppsec.pki._der import encode_tlv, split_sequence
from ocppsec.pki.errors import UsageError
from ocppsec.pki.keys import (
    KeySpec,
    LocalKey,
    PublicKey,
    SignatureScheme,
    SigningKey,
    generate_key,
    key_spec_of,
)
from ocppsec.pki.profiles import Profile

__all__ = [
    "CertificateRequest",
    "build_certificate",
    "new_serial",
    "sign_builder",
    "signature_hash_for",
]

SERIAL_BITS = 127  # random, positive, < 2**127: 16 bytes DER, well over the 64 bits asked for


def new_serial() -> int:
    """A random positive serial of up to 127 bits (CSPRNG); uniqueness is enforced by the ledger."""
    return secrets.randbits(SERIAL_BITS) | (1 << 64)


CertHash = hashes.SHA256 | hashes.SHA384 | hashes.SHA512


def signature_hash_for(pub: PublicKey) -> CertHash | None:
    """Hash an issuer key signs certificates with: P-384→SHA-384, P-521→SHA-512, Ed448→none, else SHA-256."""
    spec = key_spec_of(pub)
    if spec is KeySpec.ED448 or isinstance(pub, ed448.Ed448PublicKey):
        return None
    if spec is KeySpec.P384:
        return hashes.SHA384()
    if spec is KeySpec.P521:
        return hashes.SHA512()
    return hashes.SHA256()


def _scheme_for(pub: PublicKey, h: CertHash | None) -> SignatureScheme:
    if isinstance(pub, ed448.Ed448PublicKey):
        return SignatureScheme.ED448
    name = h.name if h else "sha256"
    if isinstance(pub, ec.EllipticCurvePublicKey):
        return SignatureScheme(f"ecdsa-{name}")
    if isinstance(pub, rsa.RSAPublicKey):
        return SignatureScheme(f"rsa-pkcs1v15-{name}")
    raise UsageError(f"cannot sign certificates with a {type(pub).__name__}")


@cache
def _stand_in_key(kind: str) -> LocalKey:
    """A throw-away key of the same algorithm, used only to let pyca encode the TBS and algorithm."""
    if kind.startswith("ec:"):
        curve = {"secp256r1": KeySpec.P256, "secp384r1": KeySpec.P384, "secp521r1": KeySpec.P521}[kind[3:]]
        return LocalKey(generate_key(curve), "stand-in")
    if kind == "rsa":
        return LocalKey(generate_key(KeySpec.RSA2048), "stand-in")
    return LocalKey(generate_key(KeySpec.ED448), "stand-in")


def sign_builder(builder: x509.CertificateBuilder, key: SigningKey) -> x509.Certificate:
    """Sign a certificate builder with any signing key."""
    pub = key.public_key()
    h = signature_hash_for(pub)
    if isinstance(key, LocalKey):
        return builder.sign(key.private_key, h)
    # External key: let pyca encode the TBS with a stand-in key of the same algorithm, then sign the
    # TBS with the real key and assemble Certificate ::= SEQUENCE { tbs, algorithm, BIT STRING }.
    if isinstance(pub, ec.EllipticCurvePublicKey):
        kind = f"ec:{pub.curve.name}"
    elif isinstance(pub, rsa.RSAPublicKey):
        kind = "rsa"
    else:
        kind = "ed448"
    draft = builder.sign(_stand_in_key(kind).private_key, h)
    tbs, algorithm, _ = split_sequence(draft.public_bytes(Encoding.DER))
    signature = key.sign(draft.tbs_certificate_bytes, _scheme_for(pub, h))
    der = encode_tlv(0x30, tbs + algorithm + encode_tlv(0x03, b"\x00" + signature))
    return x509.load_der_x509_certificate(der)


@dataclass(frozen=True, slots=True)
class CertificateRequest:
    """Everything a new certificate needs besides its issuer. Immutable."""

    profile: Profile
    subject: x509.Name
    public_key: PublicKey
    not_before: datetime
    validity_days: int | None = None  # None: the profile's default
    serial: int | None = None  # None: a fresh random serial
    san_dns: tuple[str, ...] = ()
    ocsp_url: str | None = None
    crl_url: str | None = None

    @property
    def not_after(self) -> datetime:
        return self.not_before + timedelta(days=self.validity_days or self.profile.validity_days)


def _key_usage(names: frozenset[str]) -> x509.KeyUsage:
    flags = {
        n: (n in names)
        for n in (
            "digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
            "key_agreement", "key_cert_sign", "crl_sign",
        )
    }
    return x509.KeyUsage(encipher_only=False, decipher_only=False, **flags)


def build_certificate(
    request: CertificateRequest,
    *,
    issuer_certificate: x509.Certificate | None,
    issuer_key: SigningKey,
    extra_extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
) -> x509.Certificate:
    """Build and sign a certificate for ``request``.

    ``issuer_certificate=None`` makes a self-signed root (``issuer_key`` must then be the subject's key).
    """
    p = request.profile
    serial = request.serial if request.serial is not None else new_serial()
    issuer_name = issuer_certificate.subject if issuer_certificate is not None else request.subject
    ku = _key_usage(p.key_usage)
    if not p.is_ca and isinstance(request.public_key, rsa.RSAPublicKey) and "key_agreement" in p.key_usage:
        # RSA keys cannot agree keys; they encipher instead (static-RSA TLS suites need it).
        ku = _key_usage((p.key_usage - {"key_agreement"}) | {"key_encipherment"})
    builder = (
        x509.CertificateBuilder()
        .subject_name(request.subject)
        .issuer_name(issuer_name)
        .public_key(request.public_key)
        .serial_number(serial)
        .not_valid_before(request.not_before)
        .not_valid_after(request.not_after)
        .add_extension(x509.BasicConstraints(ca=p.is_ca, path_length=p.path_length if p.is_ca else None),
                       critical=p.critical_extensions)
        .add_extension(ku, critical=p.critical_extensions)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(request.public_key), critical=False)
    )
    aki_source = issuer_certificate.public_key() if issuer_certificate is not None else request.public_key
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(aki_source),  # type: ignore[arg-type]
        critical=False,
    )
    if request.san_dns:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(d) for d in request.san_dns]), critical=False
        )
    if request.ocsp_url:
        builder = builder.add_extension(
            x509.AuthorityInformationAccess(
                [x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(request.ocsp_url))]
            ),
            critical=False,
        )
    if request.crl_url:
        builder = builder.add_extension(
            x509.CRLDistributionPoints(
                [x509.DistributionPoint([x509.UniformResourceIdentifier(request.crl_url)], None, None, None)]
            ),
            critical=False,
        )
    for ext, critical in extra_extensions:
        builder = builder.add_extension(ext, critical=critical)
    return sign_builder(builder, issuer_key)
