"""Key types and the key-backend interface.

A :class:`KeySpec` names a key algorithm and size (``rsa2048``, ``p256``, ``p521``, ``ed448`` ...).
A :class:`SigningKey` is what every signer in ocppsec uses: it exposes the public key and signs bytes
with an explicit :class:`SignatureScheme`. Local keys (:class:`LocalKey`) wrap a pyca private key;
the PKCS#11 backend provides token-held keys with the same interface.

Private keys never appear in ``repr`` or logs.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)

from ocppsec.pki.errors import KeyError_, UsageError

__all__ = [
    "KeySpec",
    "LocalKey",
    "PrivateKey",
    "PublicKey",
    "SignatureScheme",
    "SigningKey",
    "describe_public_key",
    "generate_key",
    "key_spec_of",
    "pss_padding",
    "public_key_bits",
]

PublicKey = CertificatePublicKeyTypes
PrivateKey = CertificateIssuerPrivateKeyTypes


class KeySpec(enum.Enum):
    """Key algorithms used by the OCPP and ISO 15118 profiles."""

    RSA2048 = "rsa2048"
    RSA3072 = "rsa3072"
    RSA4096 = "rsa4096"
    P256 = "p256"
    P384 = "p384"
    P521 = "p521"
    ED448 = "ed448"

    @classmethod
    def parse(cls, text: str) -> KeySpec:
        norm = text.strip().lower().replace("-", "").replace("_", "")
        aliases = {
            "secp256r1": "p256", "prime256v1": "p256", "ecp256": "p256",
            "secp384r1": "p384", "ecp384": "p384", "secp521r1": "p521", "ecp521": "p521",
        }
        norm = aliases.get(norm, norm)
        for spec in cls:
            if spec.value == norm:
                return spec
        raise UsageError(
            f"unknown key type {text!r}", hint="use one of " + ", ".join(s.value for s in cls)
        )

    @property
    def is_rsa(self) -> bool:
        return self.value.startswith("rsa")

    @property
    def is_ec(self) -> bool:
        return self in (KeySpec.P256, KeySpec.P384, KeySpec.P521)

    @property
    def default_hash(self) -> str | None:
        """The signature hash a key of this spec signs certificates with (None for EdDSA)."""
        return {KeySpec.P384: "sha384", KeySpec.P521: "sha512", KeySpec.ED448: None}.get(self, "sha256")


_CURVES: dict[KeySpec, ec.EllipticCurve] = {
    KeySpec.P256: ec.SECP256R1(),
    KeySpec.P384: ec.SECP384R1(),
    KeySpec.P521: ec.SECP521R1(),
}


def generate_key(spec: KeySpec) -> PrivateKey:
    """Generate a fresh private key (CSPRNG from OpenSSL, as RFC 4210 §4.2.1.3 asks)."""
    if spec.is_rsa:
        return rsa.generate_private_key(public_exponent=65537, key_size=int(spec.value[3:]))
    if spec is KeySpec.ED448:
        return ed448.Ed448PrivateKey.generate()
    return ec.generate_private_key(_CURVES[spec])


def key_spec_of(key: PublicKey | PrivateKey) -> KeySpec | None:
    """The :class:`KeySpec` of a key, or None when no spec matches (e.g. RSA-1024, P-192)."""
    pub = key.public_key() if hasattr(key, "private_bytes") else key  # type: ignore[union-attr]
    if isinstance(pub, rsa.RSAPublicKey):
        return {2048: KeySpec.RSA2048, 3072: KeySpec.RSA3072, 4096: KeySpec.RSA4096}.get(pub.key_size)
    if isinstance(pub, ec.EllipticCurvePublicKey):
        for spec, curve in _CURVES.items():
            if pub.curve.name == curve.name:
                return spec
        return None
    if isinstance(pub, ed448.Ed448PublicKey):
        return KeySpec.ED448
    return None


def public_key_bits(pub: PublicKey) -> int:
    """Key size in bits (RSA modulus, EC field size); 448 for Ed448, 255 for Ed25519; 0 when unknown."""
    if isinstance(pub, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        return pub.key_size
    if isinstance(pub, ed448.Ed448PublicKey):
        return 448
    if isinstance(pub, ed25519.Ed25519PublicKey):
        return 255
    return 0


def describe_public_key(pub: PublicKey) -> str:
    """Short human name: ``RSA-2048``, ``EC secp256r1``, ``Ed448``."""
    if isinstance(pub, rsa.RSAPublicKey):
        return f"RSA-{pub.key_size}"
    if isinstance(pub, ec.EllipticCurvePublicKey):
        return f"EC {pub.curve.name}"
    return type(pub).__name__.replace("PublicKey", "").lstrip("_")


class SignatureScheme(enum.Enum):
    """How bytes are signed: algorithm + hash + padding, always explicit."""

    ECDSA_SHA256 = "ecdsa-sha256"
    ECDSA_SHA384 = "ecdsa-sha384"
    ECDSA_SHA512 = "ecdsa-sha512"
    RSA_PSS_SHA256 = "rsa-pss-sha256"
    RSA_PKCS1V15_SHA256 = "rsa-pkcs1v15-sha256"
    RSA_PKCS1V15_SHA384 = "rsa-pkcs1v15-sha384"
    ED448 = "ed448"
    ED25519 = "ed25519"

    @classmethod
    def parse(cls, text: str) -> SignatureScheme:
        for s in cls:
            if s.value == text.strip().lower():
                return s
        raise UsageError(
            f"unknown signature scheme {text!r}", hint="use one of " + ", ".join(s.value for s in cls)
        )

    @property
    def hash_algorithm(self) -> hashes.HashAlgorithm | None:
        name = self.value.rsplit("-", 1)[-1]
        return {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}.get(name)

    @property
    def is_rsa(self) -> bool:
        return self.value.startswith("rsa")

    @property
    def is_ecdsa(self) -> bool:
        return self.value.startswith("ecdsa")


def pss_padding() -> padding.PSS:
    """RSA-PSS with MGF1 over the same hash and salt length = hash length (the OCPP firmware option)."""
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)


@runtime_checkable
class SigningKey(Protocol):
    """A private key that can sign, wherever it lives (file, memory, HSM)."""

    def public_key(self) -> PublicKey:
        """The matching public key."""
        ...

    def sign(self, data: bytes, scheme: SignatureScheme) -> bytes:
        """Sign ``data`` (the message, not a digest) with ``scheme``; ECDSA signatures are DER."""
        ...

    @property
    def label(self) -> str:
        """Where the key lives, for messages (never the key itself)."""
        ...


@dataclass(frozen=True, slots=True, repr=False)
class LocalKey:
    """A private key held in process memory (loaded from a key file, or freshly generated)."""

    private_key: PrivateKey
    label: str = "memory"

    def __repr__(self) -> str:
        return f"LocalKey({describe_public_key(self.public_key())}, {self.label!r})"

    def public_key(self) -> PublicKey:
        return self.private_key.public_key()

    def sign(self, data: bytes, scheme: SignatureScheme) -> bytes:
        key = self.private_key
        h = scheme.hash_algorithm
        if isinstance(key, ec.EllipticCurvePrivateKey) and scheme.is_ecdsa and h is not None:
            return key.sign(data, ec.ECDSA(h))
        if isinstance(key, rsa.RSAPrivateKey) and h is not None:
            if scheme is SignatureScheme.RSA_PSS_SHA256:
                return key.sign(data, pss_padding(), h)
            if scheme in (SignatureScheme.RSA_PKCS1V15_SHA256, SignatureScheme.RSA_PKCS1V15_SHA384):
                return key.sign(data, padding.PKCS1v15(), h)
        if isinstance(key, ed448.Ed448PrivateKey) and scheme is SignatureScheme.ED448:
            return key.sign(data)
        if isinstance(key, ed25519.Ed25519PrivateKey) and scheme is SignatureScheme.ED25519:
            return key.sign(data)
        raise KeyError_(
            f"a {describe_public_key(self.public_key())} key cannot sign with {scheme.value}",
            hint="choose a scheme that matches the key type",
        )
