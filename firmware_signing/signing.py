"""Signing a firmware image: hash the chunks, sign the digest with any key backend, check the result.

Key backends sign messages (:class:`~ocppsec.pki.keys.SigningKey`); a 1 GiB image is not a message
one hands to a signer, so the image is hashed here in one pass and the *digest* is signed:
in-memory keys through pyca's ``Prehashed``, other backends through ``sign_digest`` (the PKCS#11 key
of :mod:`ocppsec.pki.keys.pkcs11` implements it: CKM_ECDSA / CKM_RSA_PKCS_PSS / CKM_RSA_PKCS with a
DigestInfo). Every new signature is verified against the public key before it is returned.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from ocppsec.firmware_signing.digest import Chunk, ImageDigest, hash_chunks
from ocppsec.firmware_signing.errors import EmptyImageError, FirmwareSignatureError
from ocppsec.firmware_signing.schemes import FirmwareScheme, default_scheme_for, verify_image_signature
from ocppsec.pki.errors import BackendError, KeyError_, UsageError
from ocppsec.pki.keys import LocalKey, PublicKey, SignatureScheme, SigningKey, describe_public_key, pss_padding

__all__ = [
    "DigestSigningKey",
    "FirmwareSignature",
    "sign_chunks",
    "sign_digest",
    "sign_image_digest",
    "signing_scheme",
]


@runtime_checkable
class DigestSigningKey(SigningKey, Protocol):
    """A key backend that can sign a precomputed digest (needed for streaming large images)."""

    def sign_digest(self, digest: bytes, scheme: SignatureScheme) -> bytes:
        """Sign ``digest`` (already hashed with ``scheme``'s hash); ECDSA signatures are DER."""
        ...


@dataclass(frozen=True, slots=True)
class FirmwareSignature:
    """A detached firmware signature: the bytes, the scheme, the image digest and the signing certificate."""

    signature: bytes
    scheme: FirmwareScheme
    digest: ImageDigest
    signing_certificate: x509.Certificate | None = None
    key_label: str = ""

    @property
    def b64(self) -> str:
        """The signature as OCPP carries it (``firmware.signature``)."""
        return base64.b64encode(self.signature).decode("ascii")

    @property
    def certificate_pem(self) -> str | None:
        """The signing certificate as OCPP carries it (``firmware.signingCertificate``)."""
        if self.signing_certificate is None:
            return None
        return self.signing_certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")

    def as_dict(self) -> dict[str, object]:
        return {
            "scheme": self.scheme.value,
            "signature": self.b64,
            "digest": {"algorithm": self.digest.algorithm, "value": self.digest.hex, "size": self.digest.size},
            "signingCertificate": self.certificate_pem,
        }


def _same_key(a: PublicKey, b: PublicKey) -> bool:
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    return a.public_bytes(serialization.Encoding.DER, fmt) == b.public_bytes(serialization.Encoding.DER, fmt)


def sign_digest(key: SigningKey, digest: ImageDigest, scheme: FirmwareScheme) -> bytes:
    """Sign an image digest with any key backend (DER for ECDSA)."""
    if digest.algorithm != "sha256":
        raise UsageError(f"firmware signatures use SHA-256 (L01.FR.04), got a {digest.algorithm} digest")
    if isinstance(key, LocalKey):
        private = key.private_key
        prehashed = utils.Prehashed(hashes.SHA256())
        if scheme is FirmwareScheme.ECDSA_SHA256 and isinstance(private, ec.EllipticCurvePrivateKey):
            return private.sign(digest.value, ec.ECDSA(prehashed))
        if isinstance(private, rsa.RSAPrivateKey):
            if scheme is FirmwareScheme.RSA_PSS_SHA256:
                return private.sign(digest.value, pss_padding(), prehashed)
            if scheme is FirmwareScheme.RSA_PKCS1V15_SHA256:
                return private.sign(digest.value, padding.PKCS1v15(), prehashed)
        raise KeyError_(
            f"a {describe_public_key(key.public_key())} key cannot sign with {scheme.value}",
            hint="ecdsa-sha256 needs an EC key; rsa-pss-sha256 and rsa-pkcs1v15-sha256 need an RSA key",
        )
    if isinstance(key, DigestSigningKey):
        return key.sign_digest(digest.value, scheme.key_scheme)
    raise BackendError(
        f"key backend {key.label!r} cannot sign a precomputed digest",
        hint="firmware images are streamed; use a key file or a PKCS#11 key",
    )


def signing_scheme(key: SigningKey, certificate: x509.Certificate | None, scheme: FirmwareScheme | None) -> FirmwareScheme:
    """Check that ``key`` belongs to ``certificate`` (when given) and fits ``scheme``; return the scheme.

    ``scheme=None`` picks ECDSA-SHA256 for EC keys and asks for an explicit choice for RSA keys. These are
    the checks :func:`sign_chunks` makes before it hashes the image (a file adapter hashing in the
    background makes them while the image is being hashed)."""
    public = key.public_key()
    if certificate is not None and not _same_key(certificate.public_key(), public):
        raise UsageError(
            f"the key {key.label} does not belong to the signing certificate "
            f"{certificate.subject.rfc4514_string()}",
            hint="pass the firmware-signing certificate issued for this key",
        )
    chosen = scheme if scheme is not None else default_scheme_for(public)
    if chosen.is_rsa != isinstance(public, rsa.RSAPublicKey):
        raise UsageError(
            f"scheme {chosen.value} does not fit a {describe_public_key(public)} key",
            hint="ecdsa-sha256 for EC keys; rsa-pss-sha256 or rsa-pkcs1v15-sha256 for RSA keys",
        )
    return chosen


def sign_image_digest(
    digest: ImageDigest, key: SigningKey, certificate: x509.Certificate | None, scheme: FirmwareScheme
) -> FirmwareSignature:
    """Sign the digest of a whole image (``scheme`` from :func:`signing_scheme`) and check the signature."""
    if digest.size == 0:
        raise EmptyImageError("the firmware image is empty; refusing to sign it", hint="check the build output")
    signature = sign_digest(key, digest, scheme)
    try:
        verify_image_signature(key.public_key(), digest, signature, scheme)
    except FirmwareSignatureError as exc:
        raise BackendError(f"key backend {key.label} produced a signature that does not verify ({exc})") from None
    return FirmwareSignature(signature, scheme, digest, certificate, key.label)


def sign_chunks(
    chunks: Iterable[Chunk],
    key: SigningKey,
    certificate: x509.Certificate | None = None,
    *,
    scheme: FirmwareScheme | None = None,
) -> FirmwareSignature:
    """Hash the image (SHA-256, one pass) and sign it with ``key``.

    ``certificate``, when given, must hold the key's public key (the firmware-signing certificate).
    ``scheme=None`` picks ECDSA-SHA256 for EC keys and asks for an explicit choice for RSA keys.
    """
    chosen = signing_scheme(key, certificate, scheme)
    return sign_image_digest(hash_chunks(chunks, "sha256"), key, certificate, chosen)
