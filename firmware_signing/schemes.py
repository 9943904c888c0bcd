"""Signature schemes for firmware images, and verification of a signature over an image digest.

Firmware schemes (style decision 4, reference §3.2):

- ``ecdsa-sha256``: ECDSA (P-256 or P-384) over SHA-256, DER signature. The default; what deployed
  stations (EVerest, open-ocpp) verify.
- ``rsa-pss-sha256``: RSA-PSS, SHA-256, MGF1-SHA-256, salt length 32. The spec-literal option (L01.FR.04).
- ``rsa-pkcs1v15-sha256``: RSA PKCS#1 v1.5 with SHA-256. The compatibility option.

An RSA signature verified without a declared scheme is tried as PSS, then as PKCS#1 v1.5, and the
result names the scheme that held. :class:`SignatureAlgorithm` is the general parameter set the
verifier works with (hash, ECDSA encoding, PSS salt and MGF hash); the firmware schemes are three
named instances of it, and conformance vectors with other parameters run through the same code.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from ocppsec.firmware_signing.digest import ImageDigest
from ocppsec.firmware_signing.errors import FirmwareSignatureError
from ocppsec.pki.errors import UsageError
from ocppsec.pki.keys import PublicKey, SignatureScheme, describe_public_key

__all__ = [
    "FirmwareScheme",
    "SignatureAlgorithm",
    "default_scheme_for",
    "verify_digest_signature",
    "verify_image_signature",
]

_HASH_OBJECTS: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def _hash(name: str) -> hashes.HashAlgorithm:
    try:
        return _HASH_OBJECTS[name]()
    except KeyError:
        raise UsageError(f"unsupported hash {name!r}") from None


@dataclass(frozen=True, slots=True)
class SignatureAlgorithm:
    """How a signature over a digest is checked: kind, hash and the kind's parameters."""

    kind: Literal["ecdsa", "rsa-pss", "rsa-pkcs1v15"]
    hash: str = "sha256"
    ecdsa_encoding: Literal["der", "p1363"] = "der"
    pss_salt_length: int = 32
    pss_mgf_hash: str = "sha256"

    @property
    def name(self) -> str:
        if self.kind == "ecdsa":
            suffix = "" if self.ecdsa_encoding == "der" else "-p1363"
            return f"ecdsa-{self.hash}{suffix}"
        if self.kind == "rsa-pss":
            return f"rsa-pss-{self.hash}-mgf1-{self.pss_mgf_hash}-salt{self.pss_salt_length}"
        return f"rsa-pkcs1v15-{self.hash}"

    def __str__(self) -> str:
        return self.name


class FirmwareScheme(enum.Enum):
    """The three firmware signature schemes; every result names the one used."""

    ECDSA_SHA256 = "ecdsa-sha256"
    RSA_PSS_SHA256 = "rsa-pss-sha256"
    RSA_PKCS1V15_SHA256 = "rsa-pkcs1v15-sha256"

    @classmethod
    def parse(cls, text: str) -> FirmwareScheme:
        norm = text.strip().lower().replace("_", "-")
        for s in cls:
            if s.value == norm:
                return s
        raise UsageError(
            f"unknown firmware signature scheme {text!r}", hint="use one of " + ", ".join(s.value for s in cls)
        )

    @property
    def algorithm(self) -> SignatureAlgorithm:
        return _ALGORITHMS[self]

    @property
    def key_scheme(self) -> SignatureScheme:
        """The :class:`~ocppsec.pki.keys.SignatureScheme` a key backend signs with."""
        return SignatureScheme(self.value)

    @property
    def is_rsa(self) -> bool:
        return self is not FirmwareScheme.ECDSA_SHA256

    def __str__(self) -> str:
        return self.value


_ALGORITHMS = {
    FirmwareScheme.ECDSA_SHA256: SignatureAlgorithm("ecdsa"),
    FirmwareScheme.RSA_PSS_SHA256: SignatureAlgorithm("rsa-pss", pss_salt_length=32, pss_mgf_hash="sha256"),
    FirmwareScheme.RSA_PKCS1V15_SHA256: SignatureAlgorithm("rsa-pkcs1v15"),
}


def default_scheme_for(public_key: PublicKey) -> FirmwareScheme:
    """ECDSA-SHA256 for EC keys. RSA keys have no default: PSS and PKCS#1 v1.5 are both in use."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return FirmwareScheme.ECDSA_SHA256
    if isinstance(public_key, rsa.RSAPublicKey):
        raise UsageError(
            "an RSA key needs an explicit firmware signature scheme",
            hint="choose rsa-pss-sha256 (OCPP L01.FR.04 as written) or rsa-pkcs1v15-sha256 "
            "(what EVerest and open-ocpp stations verify)",
        )
    raise UsageError(
        f"a {describe_public_key(public_key)} key cannot sign firmware",
        hint="use an ECDSA P-256/P-384 or an RSA key",
    )


def _ecdsa_der(public_key: ec.EllipticCurvePublicKey, signature: bytes, encoding: str) -> bytes:
    n = (public_key.curve.key_size + 7) // 8
    if encoding == "p1363":
        if len(signature) != 2 * n:
            raise FirmwareSignatureError(
                f"signature has the wrong length: {len(signature)} bytes, a raw r||s {public_key.curve.name} "
                f"signature has {2 * n}"
            )
        return utils.encode_dss_signature(int.from_bytes(signature[:n], "big"), int.from_bytes(signature[n:], "big"))
    # DER SEQUENCE { INTEGER r, INTEGER s }: each integer at most n + 1 bytes.
    longest = 2 * (n + 1 + 2) + 3
    if not 8 <= len(signature) <= longest:
        raise FirmwareSignatureError(
            f"signature has the wrong length: {len(signature)} bytes, a DER ECDSA {public_key.curve.name} "
            f"signature has 8 to {longest}"
        )
    try:
        utils.decode_dss_signature(signature)
    except ValueError:
        raise FirmwareSignatureError("signature is not a DER-encoded ECDSA signature") from None
    return signature


def verify_digest_signature(
    public_key: PublicKey, digest: ImageDigest, signature: bytes, algorithm: SignatureAlgorithm
) -> None:
    """Check ``signature`` over the message whose hash is ``digest``; raise :class:`FirmwareSignatureError`."""
    if digest.algorithm != algorithm.hash:
        raise UsageError(f"{algorithm.name} needs a {algorithm.hash} digest, got {digest.algorithm}")
    prehashed = utils.Prehashed(_hash(algorithm.hash))
    try:
        if algorithm.kind == "ecdsa":
            if not isinstance(public_key, ec.EllipticCurvePublicKey):
                raise FirmwareSignatureError(f"{algorithm.name} needs an EC key, the certificate has a "
                                             f"{describe_public_key(public_key)} key")
            der = _ecdsa_der(public_key, signature, algorithm.ecdsa_encoding)
            public_key.verify(der, digest.value, ec.ECDSA(prehashed))
            return
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise FirmwareSignatureError(f"{algorithm.name} needs an RSA key, the certificate has a "
                                         f"{describe_public_key(public_key)} key")
        expected = (public_key.key_size + 7) // 8
        if len(signature) != expected:
            raise FirmwareSignatureError(
                f"signature has the wrong length: {len(signature)} bytes, an RSA-{public_key.key_size} "
                f"signature has {expected}"
            )
        pad: padding.AsymmetricPadding
        if algorithm.kind == "rsa-pss":
            pad = padding.PSS(mgf=padding.MGF1(_hash(algorithm.pss_mgf_hash)), salt_length=algorithm.pss_salt_length)
        else:
            pad = padding.PKCS1v15()
        public_key.verify(signature, digest.value, pad, prehashed)
    except InvalidSignature:
        raise FirmwareSignatureError(
            f"the {algorithm.name} signature does not match the image ({digest.algorithm} {digest.hex[:16]}..., "
            f"{digest.size} bytes)"
        ) from None
    except ValueError as exc:  # out-of-range values pyca refuses before OpenSSL sees them
        raise FirmwareSignatureError(f"the {algorithm.name} signature is malformed ({exc})") from None


def verify_image_signature(
    public_key: PublicKey,
    digest: ImageDigest,
    signature: bytes,
    scheme: FirmwareScheme | SignatureAlgorithm | None = None,
) -> FirmwareScheme | SignatureAlgorithm:
    """Verify a firmware signature; return the scheme that held.

    ``scheme=None``: ECDSA-SHA256 for EC keys; for RSA keys PSS first, then PKCS#1 v1.5.
    """
    if scheme is None:
        if isinstance(public_key, rsa.RSAPublicKey):
            try:
                verify_digest_signature(public_key, digest, signature, FirmwareScheme.RSA_PSS_SHA256.algorithm)
                return FirmwareScheme.RSA_PSS_SHA256
            except FirmwareSignatureError as pss_error:
                try:
                    verify_digest_signature(public_key, digest, signature, FirmwareScheme.RSA_PKCS1V15_SHA256.algorithm)
                except FirmwareSignatureError:
                    if "wrong length" in pss_error.message:
                        raise pss_error from None
                    raise FirmwareSignatureError(
                        f"the signature matches the image neither as rsa-pss-sha256 nor as rsa-pkcs1v15-sha256 "
                        f"({digest.algorithm} {digest.hex[:16]}..., {digest.size} bytes)"
                    ) from None
                return FirmwareScheme.RSA_PKCS1V15_SHA256
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            scheme = FirmwareScheme.ECDSA_SHA256
        else:
            raise FirmwareSignatureError(
                f"a {describe_public_key(public_key)} key is not usable for firmware signatures",
                hint="firmware is signed with ECDSA P-256/P-384 or RSA",
            )
    algorithm = scheme.algorithm if isinstance(scheme, FirmwareScheme) else scheme
    verify_digest_signature(public_key, digest, signature, algorithm)
    return scheme
