"""CertificateHashData: the RFC 6960 CertID of a certificate, in hex, as OCPP carries it.

- ``issuerNameHash``: hash of the DER of the certificate's *issuer* Name.
- ``issuerKeyHash``: hash of the issuer's subjectPublicKey BIT STRING contents (no tag, length or
  unused-bits octet).
- ``serialNumber``: hex without leading zeros.

ocppsec emits lowercase hex (one canonical case, as deployed stations do) and compares
case-insensitively, with serial leading zeros ignored (docs/adr/0002-certificate-hash-data.md).
Version differences (1.6 / 2.0.1 / 2.1) are only in which certificate types a chain entry may name;
the hash data object itself is the same in all three.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ocppsec.pki._der import read_tlv, split_sequence
from ocppsec.pki._untrusted import pyca_input
from ocppsec.pki.errors import InputError, UsageError

__all__ = [
    "HASH_ALGORITHMS",
    "CertificateHashData",
    "CertificateHashDataChain",
    "compute_hash_data",
    "find_matching",
]

HASH_ALGORITHMS = {"SHA256": "sha256", "SHA384": "sha384", "SHA512": "sha512"}
_HEX = set("0123456789abcdefABCDEF")


def _norm_hash_name(name: str) -> str:
    key = name.upper().replace("-", "")
    if key not in HASH_ALGORITHMS:
        raise UsageError(f"unknown hash algorithm {name!r}", hint="use SHA256, SHA384 or SHA512")
    return key


def _public_key_bits(cert: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING contents, without the unused-bits octet.

    Read from the certificate's own DER, not re-encoded from the key: an issuer whose EC point is stored
    compressed must hash exactly those bytes (RFC 6960 §4.1.1), as OCSP responders and stations do.
    """
    fields = split_sequence(cert.tbs_certificate_bytes)
    if fields[0][0] == 0xA0:  # [0] EXPLICIT version
        fields = fields[1:]
    spki = fields[5]  # serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo
    _, bitstring = split_sequence(spki)
    _, start, end = read_tlv(bitstring)
    return bitstring[start + 1 : end]


@dataclass(frozen=True, slots=True)
class CertificateHashData:
    """OCPP CertificateHashDataType (1.6 security WP, 2.0.1, 2.1)."""

    hash_algorithm: str  # "SHA256" | "SHA384" | "SHA512"
    issuer_name_hash: str
    issuer_key_hash: str
    serial_number: str

    def to_ocpp(self) -> dict[str, str]:
        return {
            "hashAlgorithm": self.hash_algorithm,
            "issuerNameHash": self.issuer_name_hash,
            "issuerKeyHash": self.issuer_key_hash,
            "serialNumber": self.serial_number,
        }

    @classmethod
    def from_ocpp(cls, data: Mapping[str, Any]) -> CertificateHashData:
        """Parse and check an OCPP object (field limits: hashes <= 128 chars, serial <= 40)."""
        try:
            alg = _norm_hash_name(str(data["hashAlgorithm"]))
            name_hash, key_hash, serial = (str(data[k]) for k in ("issuerNameHash", "issuerKeyHash", "serialNumber"))
        except KeyError as exc:
            raise InputError(f"CertificateHashData lacks {exc}") from None
        except UsageError as exc:
            raise InputError(exc.message, hint=exc.hint) from None
        for label, value, limit in (("issuerNameHash", name_hash, 128), ("issuerKeyHash", key_hash, 128),
                                    ("serialNumber", serial, 40)):
            if not value or len(value) > limit or not set(value) <= _HEX:
                raise InputError(f"CertificateHashData.{label} must be 1-{limit} hex digits, got {value[:50]!r}")
        return cls(alg, name_hash, key_hash, serial)

    def canonical(self) -> tuple[str, str, str, str]:
        """Comparison key: upper-case algorithm, lower-case hex, serial without leading zeros."""
        return (
            self.hash_algorithm.upper(),
            self.issuer_name_hash.lower(),
            self.issuer_key_hash.lower(),
            self.serial_number.lower().lstrip("0") or "0",
        )

    def matches(self, other: CertificateHashData) -> bool:
        return self.canonical() == other.canonical()


def compute_hash_data(
    cert: x509.Certificate, issuer: x509.Certificate | None = None, hash_algorithm: str = "SHA256"
) -> CertificateHashData:
    """Hash data of ``cert``; ``issuer`` is the certificate that signed it (itself for a root)."""
    alg = _norm_hash_name(hash_algorithm)
    issuer = issuer if issuer is not None else cert
    with pyca_input("certificate cannot be read for its hash data"):
        if cert.issuer != issuer.subject:
            raise InputError(
                f"{issuer.subject.rfc4514_string()} is not the issuer of {cert.subject.rfc4514_string()}",
                hint="pass the certificate that signed it (the certificate itself for a root)",
            )
        h = HASH_ALGORITHMS[alg]
        name_hash = hashlib.new(h, cert.issuer.public_bytes()).hexdigest()
        key_hash = hashlib.new(h, _public_key_bits(issuer)).hexdigest()
    return CertificateHashData(alg, name_hash, key_hash, format(cert.serial_number, "x"))


def _cert_der_key(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


@dataclass(frozen=True, slots=True)
class CertificateHashDataChain:
    """GetInstalledCertificateIds entry: a certificate of a type, with its sub-CAs as children (M03.FR.05)."""

    certificate_type: str
    certificate_hash_data: CertificateHashData
    child_certificate_hash_data: tuple[CertificateHashData, ...] = ()

    def to_ocpp(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "certificateType": self.certificate_type,
            "certificateHashData": self.certificate_hash_data.to_ocpp(),
        }
        if self.child_certificate_hash_data:
            out["childCertificateHashData"] = [c.to_ocpp() for c in self.child_certificate_hash_data]
        return out

    @classmethod
    def for_chain(
        cls, certificate_type: str, chain: Sequence[x509.Certificate], root: x509.Certificate | None = None,
        hash_algorithm: str = "SHA256",
    ) -> CertificateHashDataChain:
        """Leaf-first ``chain`` (no root) → leaf hash data with the sub-CAs' as children."""
        if not chain:
            raise InputError("empty certificate chain")
        issuers = [*chain[1:], root]
        hashes = []
        for cert, issuer in zip(chain, issuers, strict=True):
            if issuer is None:  # top sub-CA without the root given: only possible for a self-signed one
                issuer = cert
            hashes.append(compute_hash_data(cert, issuer, hash_algorithm))
        return cls(certificate_type, hashes[0], tuple(hashes[1:]))


def find_matching(wanted: CertificateHashData, candidates: Sequence[CertificateHashData]) -> int | None:
    """Index of the first candidate matching ``wanted`` (case-insensitive), or None."""
    key = wanted.canonical()
    for n, c in enumerate(candidates):
        if c.canonical() == key:
            return n
    return None
