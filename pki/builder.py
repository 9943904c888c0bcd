"""Building and signing certificates from a profile (pure: time and serial are arguments).

:class:`CertificateTemplate` is what one issuer puts into every certificate of one profile: the issuer
name, basicConstraints, keyUsage, the AuthorityKeyIdentifier, AIA (OCSP) and CRL distribution point,
built once. It hands out pyca ``CertificateBuilder`` objects (immutable, so a base builder with issuer,
validity, basicConstraints and keyUsage is shared by every certificate of a batch) and signs them with
any :class:`~ocppsec.pki.keys.SigningKey` through pyca's builder: in-memory keys directly, other backends
(PKCS#11) through their pyca key object (:func:`~ocppsec.pki.keys.as_private_key`).
:func:`build_certificate` is the one-certificate form. Either way the certificate is exactly what
pyca's builder makes from these values: extensions in the order basicConstraints, keyUsage, SKI, AKI,
SAN, AIA, CRL DP, then any extra ones.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed448, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID

from ocppsec.pki.keys import KeySpec, PublicKey, SigningKey, as_private_key, key_spec_of
from ocppsec.pki.profiles import Profile

__all__ = [
    "DEFAULT_BACKDATE",
    "CertificateRequest",
    "CertificateTemplate",
    "build_certificate",
    "new_serial",
    "sign_builder",
    "signature_hash_for",
]

# How far notBefore lies before the issuance time: stations refuse certificates that are not valid yet
# (A02.FR.06, 2025 errata), and their clocks drift; the errata ask the CSMS to allow for that skew.
DEFAULT_BACKDATE = timedelta(minutes=5)

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


def sign_builder(builder: x509.CertificateBuilder, key: SigningKey) -> x509.Certificate:
    """Sign a certificate builder with any signing key, with the hash :func:`signature_hash_for` picks."""
    return builder.sign(as_private_key(key), signature_hash_for(key.public_key()))


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


class CertificateTemplate:
    """What one issuer puts into every certificate of one profile, built once (immutable).

    ``issuer_certificate=None`` makes self-signed roots (the subject is the issuer and ``issuer_key`` the
    subject's key). Use :meth:`builder` for one certificate, or :meth:`base` once per validity and
    :meth:`complete` per certificate; :meth:`sign` signs either.
    """

    __slots__ = ("_aia", "_aki", "_bc", "_crl_dp", "_extra", "_hash", "_issuer_name", "_ku", "_ku_rsa", "_private",
                 "issuer_certificate", "issuer_key", "profile")

    def __init__(
        self, profile: Profile, *, issuer_certificate: x509.Certificate | None, issuer_key: SigningKey,
        ocsp_url: str | None = None, crl_url: str | None = None,
        extra_extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
    ) -> None:
        self.profile = profile
        self.issuer_certificate = issuer_certificate
        self.issuer_key = issuer_key
        self._private = as_private_key(issuer_key)
        self._hash = signature_hash_for(issuer_key.public_key())
        self._issuer_name = issuer_certificate.subject if issuer_certificate is not None else None
        p = profile
        self._bc = x509.BasicConstraints(ca=p.is_ca, path_length=p.path_length if p.is_ca else None)
        self._ku = _key_usage(p.key_usage)
        # RSA keys cannot agree keys; they encipher instead (static-RSA TLS suites need it).
        self._ku_rsa = (_key_usage((p.key_usage - {"key_agreement"}) | {"key_encipherment"})
                        if not p.is_ca and "key_agreement" in p.key_usage else None)
        self._aki = (x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_certificate.public_key())  # type: ignore[arg-type]
                     if issuer_certificate is not None else None)
        self._aia = x509.AuthorityInformationAccess(
            [x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url))]
        ) if ocsp_url else None
        self._crl_dp = x509.CRLDistributionPoints(
            [x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)]
        ) if crl_url else None
        self._extra = tuple(extra_extensions)

    def base(self, not_before: datetime, not_after: datetime, *, rsa_subject: bool = False) -> x509.CertificateBuilder:
        """The part shared by a batch: issuer name, validity, basicConstraints, keyUsage (for RSA or other keys)."""
        builder = x509.CertificateBuilder().not_valid_before(not_before).not_valid_after(not_after)
        if self._issuer_name is not None:
            builder = builder.issuer_name(self._issuer_name)
        ku = self._ku_rsa if rsa_subject and self._ku_rsa is not None else self._ku
        critical = self.profile.critical_extensions
        return builder.add_extension(self._bc, critical=critical).add_extension(ku, critical=critical)

    def rsa_subject(self, public_key: PublicKey) -> bool:
        """Whether ``public_key`` needs the RSA flavour of :meth:`base` (only profiles with keyAgreement differ)."""
        return self._ku_rsa is not None and isinstance(public_key, rsa.RSAPublicKey)

    def complete(
        self, base: x509.CertificateBuilder, subject: x509.Name, public_key: PublicKey, serial: int,
        san_dns: Sequence[str] = (),
    ) -> x509.CertificateBuilder:
        """``base`` with the certificate's own parts: subject, key, serial, SKI, AKI, SAN, AIA, CRL DP, extras."""
        builder = base.subject_name(subject).public_key(public_key).serial_number(serial).add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        if self._issuer_name is None:  # self-signed: issuer and AKI from the subject
            builder = builder.issuer_name(subject)
            aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key)  # type: ignore[arg-type]
        else:
            assert self._aki is not None
            aki = self._aki
        builder = builder.add_extension(aki, critical=False)
        if san_dns:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in san_dns]), critical=False)
        if self._aia is not None:
            builder = builder.add_extension(self._aia, critical=False)
        if self._crl_dp is not None:
            builder = builder.add_extension(self._crl_dp, critical=False)
        for ext, critical in self._extra:
            builder = builder.add_extension(ext, critical=critical)
        return builder

    def builder(
        self, subject: x509.Name, public_key: PublicKey, serial: int, not_before: datetime, not_after: datetime,
        san_dns: Sequence[str] = (),
    ) -> x509.CertificateBuilder:
        """The unsigned certificate for one subject and key."""
        base = self.base(not_before, not_after, rsa_subject=self.rsa_subject(public_key))
        return self.complete(base, subject, public_key, serial, san_dns)

    def sign(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        """Sign with the issuer key (through pyca's builder, whatever backend holds the key)."""
        return builder.sign(self._private, self._hash)

    def build(self, request: CertificateRequest) -> x509.Certificate:
        """Build and sign the certificate for ``request`` (its serial, or a fresh one)."""
        serial = request.serial if request.serial is not None else new_serial()
        return self.sign(self.builder(request.subject, request.public_key, serial, request.not_before, request.not_after,
                                      request.san_dns))


def build_certificate(
    request: CertificateRequest,
    *,
    issuer_certificate: x509.Certificate | None,
    issuer_key: SigningKey,
    extra_extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
) -> x509.Certificate:
    """Build and sign a certificate for ``request``.

    ``issuer_certificate=None`` makes a self-signed root (``issuer_key`` must then be the subject's key).
    Issuing many certificates of one profile: keep a :class:`CertificateTemplate` (what
    :mod:`ocppsec.pki.issuance` does) instead of building one per call.
    """
    template = CertificateTemplate(request.profile, issuer_certificate=issuer_certificate, issuer_key=issuer_key,
                                   ocsp_url=request.ocsp_url, crl_url=request.crl_url, extra_extensions=extra_extensions)
    return template.build(request)
