"""pyca private-key objects whose ``sign()`` runs elsewhere: in a PKCS#11 token, or in any :class:`SigningKey`.

pyca's four signing builders (``CertificateBuilder``, ``CertificateSigningRequestBuilder``,
``CertificateRevocationListBuilder``, ``ocsp.OCSPResponseBuilder``) take a private-key object and accept
Python subclasses of ``ec.EllipticCurvePrivateKey`` and ``rsa.RSAPrivateKey``. Of the key they call
``sign()`` once with the exact bytes to sign, ``public_key()`` (the CSR builder embeds it; the OCSP
builder checks it against the responder certificate after signing) and, for RSA-PSS with
``MAX_LENGTH``, ``key_size``. So a key that never leaves a token signs through pyca's builders directly,
with no stand-in key and no re-assembly of DER.

- :class:`DelegatedEcKey` / :class:`DelegatedRsaKey`: the two bases. A subclass implements
  ``_sign_ecdsa`` or ``_sign_rsa``; everything pyca asks of a private key that would reveal it
  (``private_bytes``, ``private_numbers``, ``exchange``, ``decrypt``) raises :class:`KeyError_`.
- :func:`as_private_key`: the object to hand to a pyca builder for any :class:`SigningKey`: the pyca key
  itself for in-memory keys, the key's own delegated key when it has one (PKCS#11), else an adapter that
  maps pyca's (padding, hash) arguments to a :class:`SignatureScheme` and calls ``SigningKey.sign``.

pyca does not check the signature ``sign()`` returns. A delegated key therefore verifies its first
signature of each kind (padding, salt, hash) with its public key and raises :class:`KeyError_` when it
does not verify (a token returning garbage, or a public key that is not the private key's), instead of
letting certificates out that nobody can verify.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn, Protocol, Self, runtime_checkable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa, utils
from cryptography.hazmat.primitives.asymmetric.padding import (
    MGF1,
    PSS,
    AsymmetricPadding,
    PKCS1v15,
    calculate_max_pss_salt_length,
)
from cryptography.utils import Buffer

from ocppsec.pki.errors import KeyError_
from ocppsec.pki.keys.base import LocalKey, PrivateKey, SignatureScheme, SigningKey, describe_public_key

__all__ = ["DelegatedEcKey", "DelegatedRsaKey", "HasPrivateKey", "SignHash", "as_private_key", "hash_of", "message_digest",
           "pss_mgf_hash", "pss_salt_length"]

SignHash = hashes.HashAlgorithm | utils.Prehashed  # what sign() hashes with, or what a digest was made with
RsaHash = hashes.HashAlgorithm | utils.Prehashed | utils.NoDigestInfo


def pss_salt_length(pss: PSS, public: rsa.RSAPublicKey, algorithm: hashes.HashAlgorithm) -> int:
    """The salt length, in octets, that pyca writes into the AlgorithmIdentifier for ``pss``.

    ``DIGEST_LENGTH``: the hash length; ``MAX_LENGTH``: the largest the key allows (emLen - hLen - 2);
    an integer as it is. ``AUTO`` is a verification setting and is refused."""
    salt = pss._salt_length  # pyca has no public accessor for the salt length
    if isinstance(salt, int):
        return salt
    if salt is PSS.DIGEST_LENGTH:
        return algorithm.digest_size
    if salt is PSS.MAX_LENGTH:
        return calculate_max_pss_salt_length(public, algorithm)
    raise KeyError_("RSA-PSS salt length AUTO is for verification only; sign with a fixed length")


def pss_mgf_hash(pss: PSS) -> hashes.HashAlgorithm:
    """The hash of a PSS padding's MGF1 (other mask generation functions are refused)."""
    mgf = pss.mgf
    if not isinstance(mgf, MGF1):
        raise KeyError_(f"RSA-PSS with {type(mgf).__name__} is not supported; use MGF1")
    return mgf._algorithm  # pyca has no public accessor for MGF1's hash


def hash_of(algorithm: SignHash) -> hashes.HashAlgorithm:
    """The hash of a signature algorithm argument (the hash a Prehashed digest was made with)."""
    return algorithm._algorithm if isinstance(algorithm, utils.Prehashed) else algorithm


def message_digest(data: bytes, algorithm: SignHash) -> tuple[bytes, hashes.HashAlgorithm]:
    """``(digest, hash)``: ``data`` hashed with ``algorithm``, or ``data`` itself when it is Prehashed."""
    if isinstance(algorithm, utils.Prehashed):
        h = hash_of(algorithm)
        if len(data) != h.digest_size:
            raise KeyError_(f"a {h.name} digest has {h.digest_size} bytes, got {len(data)}")
        return data, h
    hasher = hashes.Hash(algorithm)
    hasher.update(data)
    return hasher.finalize(), algorithm


def _refuse(label: str, what: str) -> NoReturn:
    raise KeyError_(f"the private key {label} stays where it is: {what} is not available",
                    hint="keys held in a token sign; they cannot be exported or used for key agreement")


class _Delegated:
    """What both delegated key types share: a label, refusals, and checking the first signature of each kind."""

    def __init__(self, public: ec.EllipticCurvePublicKey | rsa.RSAPublicKey, label: str) -> None:
        self._label = label
        self._description = describe_public_key(public)
        self._verified: set[tuple[object, ...]] = set()  # kinds of signature seen to verify

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._description}, {self._label!r})"

    @property
    def label(self) -> str:
        return self._label

    def _first_checked(self, kind: tuple[object, ...], verify: Callable[[], None]) -> None:
        """Run ``verify`` (raising InvalidSignature) the first time a signature of ``kind`` is made."""
        if kind in self._verified:
            return
        try:
            verify()
        except (InvalidSignature, ValueError):
            raise KeyError_(f"the key {self._label} made a {kind[0]} signature its public key does not verify",
                            hint="the token's public and private key objects may not belong together") from None
        self._verified.add(kind)

    def private_numbers(self) -> NoReturn:
        _refuse(self._label, "the private numbers")

    def private_bytes(self, encoding: serialization.Encoding, format: serialization.PrivateFormat,
                      encryption_algorithm: serialization.KeySerializationEncryption) -> bytes:
        _refuse(self._label, "the private key encoding")

    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Self:
        return self


class DelegatedEcKey(_Delegated, ec.EllipticCurvePrivateKey):
    """An EC private key for pyca whose ECDSA signatures are made by :meth:`_sign_ecdsa` (DER signatures)."""

    def __init__(self, public: ec.EllipticCurvePublicKey, label: str) -> None:
        super().__init__(public, label)
        self._public = public

    def _sign_ecdsa(self, data: bytes, algorithm: SignHash) -> bytes:
        """Sign ``data`` (a message, or a digest when ``algorithm`` is Prehashed); a DER ECDSA signature."""
        raise NotImplementedError

    def sign(self, data: Buffer, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise KeyError_(f"the EC key {self._label} signs with ECDSA only, not {type(signature_algorithm).__name__}")
        if signature_algorithm.deterministic_signing:
            raise KeyError_(f"the EC key {self._label} cannot sign deterministically (RFC 6979)",
                            hint="sign without ecdsa_deterministic")
        message = bytes(data)
        signature = self._sign_ecdsa(message, signature_algorithm.algorithm)
        self._first_checked(("ECDSA", hash_of(signature_algorithm.algorithm).name),
                            lambda: self._public.verify(signature, message, signature_algorithm))
        return signature

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        _refuse(self._label, "ECDH key agreement")


class DelegatedRsaKey(_Delegated, rsa.RSAPrivateKey):
    """An RSA private key for pyca whose PKCS#1 v1.5 and PSS signatures are made by :meth:`_sign_rsa`."""

    def __init__(self, public: rsa.RSAPublicKey, label: str) -> None:
        super().__init__(public, label)
        self._public = public

    def _sign_rsa(self, data: bytes, pad: PKCS1v15 | PSS, algorithm: SignHash) -> bytes:
        """Sign ``data`` (a message, or a digest when ``algorithm`` is Prehashed) with ``pad``."""
        raise NotImplementedError

    def sign(self, data: bytes, padding: AsymmetricPadding, algorithm: RsaHash) -> bytes:
        pad = padding
        if not isinstance(pad, PKCS1v15 | PSS):
            raise KeyError_(f"the RSA key {self._label} signs with PKCS#1 v1.5 or PSS, not {pad.name}")
        if isinstance(algorithm, utils.NoDigestInfo):
            raise KeyError_(f"the RSA key {self._label} signs DigestInfo-wrapped hashes only")
        message = bytes(data)
        signature = self._sign_rsa(message, pad, algorithm)
        h = hash_of(algorithm)
        kind: tuple[object, ...] = ("RSA PKCS#1 v1.5", h.name)
        if isinstance(pad, PSS):
            kind = ("RSA-PSS", h.name, pss_mgf_hash(pad).name, pss_salt_length(pad, self._public, h))
        self._first_checked(kind, lambda: self._public.verify(signature, message, pad, algorithm))
        return signature

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def decrypt(self, ciphertext: bytes, padding: AsymmetricPadding) -> bytes:
        _refuse(self._label, "RSA decryption")


_ECDSA_SCHEMES = {"sha256": SignatureScheme.ECDSA_SHA256, "sha384": SignatureScheme.ECDSA_SHA384,
                  "sha512": SignatureScheme.ECDSA_SHA512}
_PKCS1V15_SCHEMES = {"sha256": SignatureScheme.RSA_PKCS1V15_SHA256, "sha384": SignatureScheme.RSA_PKCS1V15_SHA384}


def _no_scheme(key: SigningKey, what: str) -> NoReturn:
    raise KeyError_(f"the key {key.label} has no signature scheme for {what}",
                    hint="its backend signs " + ", ".join(s.value for s in SignatureScheme if s.is_rsa or s.is_ecdsa))


class _SchemeEcKey(DelegatedEcKey):
    """Any EC :class:`SigningKey` as a pyca key: ECDSA over SHA-256/384/512 through ``SigningKey.sign``."""

    def __init__(self, key: SigningKey, public: ec.EllipticCurvePublicKey) -> None:
        super().__init__(public, key.label)
        self._key = key

    def _sign_ecdsa(self, data: bytes, algorithm: SignHash) -> bytes:
        scheme = None if isinstance(algorithm, utils.Prehashed) else _ECDSA_SCHEMES.get(algorithm.name)
        if scheme is None:
            _no_scheme(self._key, f"ECDSA with {'a prehashed ' if isinstance(algorithm, utils.Prehashed) else ''}"
                                  f"{hash_of(algorithm).name}")
        return self._key.sign(data, scheme)


class _SchemeRsaKey(DelegatedRsaKey):
    """Any RSA :class:`SigningKey` as a pyca key: PKCS#1 v1.5 (SHA-256/384) and PSS (SHA-256, MGF1-SHA-256, salt 32)."""

    def __init__(self, key: SigningKey, public: rsa.RSAPublicKey) -> None:
        super().__init__(public, key.label)
        self._key = key

    def _sign_rsa(self, data: bytes, pad: PKCS1v15 | PSS, algorithm: SignHash) -> bytes:
        if isinstance(algorithm, utils.Prehashed):
            _no_scheme(self._key, f"a prehashed {hash_of(algorithm).name} digest")
        scheme: SignatureScheme | None
        if isinstance(pad, PSS):
            plain = (algorithm.name == "sha256" and pss_mgf_hash(pad).name == "sha256"
                     and pss_salt_length(pad, self._public, algorithm) == 32)
            scheme = SignatureScheme.RSA_PSS_SHA256 if plain else None
        else:
            scheme = _PKCS1V15_SCHEMES.get(algorithm.name)
        if scheme is None:
            _no_scheme(self._key, f"RSA {pad.name} with {algorithm.name}")
        return self._key.sign(data, scheme)


@runtime_checkable
class HasPrivateKey(Protocol):
    """A :class:`SigningKey` that provides its own pyca private-key object (PKCS#11 keys do)."""

    @property
    def private_key(self) -> PrivateKey: ...


def as_private_key(key: SigningKey) -> PrivateKey:
    """The pyca private-key object that signs with ``key``, for pyca's builders.

    In-memory keys give their pyca key; keys that provide one (``private_key``, e.g. PKCS#11 keys) give
    theirs; any other EC or RSA :class:`SigningKey` is wrapped so that pyca's ``sign()`` calls
    ``SigningKey.sign`` with the matching :class:`SignatureScheme`."""
    if isinstance(key, LocalKey):
        return key.private_key
    if isinstance(key, HasPrivateKey):
        return key.private_key
    public = key.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        return _SchemeEcKey(key, public)
    if isinstance(public, rsa.RSAPublicKey):
        return _SchemeRsaKey(key, public)
    raise KeyError_(f"the {describe_public_key(public)} key {key.label} cannot sign certificates, CSRs, CRLs or OCSP"
                    " responses outside memory", hint="use an EC or RSA key, or a key file")
