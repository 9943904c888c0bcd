"""Building and signing certificates from a profile (pure: time and serial are arguments).

:func:`build_certificate` turns a profile, a subject, a public key and an issuer into a signed
certificate. It signs with any :class:`~ocppsec.pki.keys.SigningKey`: in-memory keys sign through
pyca's builder directly; other backends (PKCS#11) sign the TBS bytes, which are then assembled into
the certificate here.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import cast

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import AuthorityInformationAccessOID

from ocppsec.pki._der import encode_tlv, read_tlv, split_sequence
from ocppsec.pki.errors import UsageError
from ocppsec.pki.keys import (
    KeySpec,
    LocalKey,
    PrivateKey,
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


def stand_in_kind(pub: PublicKey) -> str:
    """``ec:<curve>``, ``rsa`` or ``ed448``: which stand-in key drafts structures for ``pub``."""
    if isinstance(pub, ec.EllipticCurvePublicKey):
        return f"ec:{pub.curve.name}"
    return "rsa" if isinstance(pub, rsa.RSAPublicKey) else "ed448"


def stand_in_for(pub: PublicKey) -> PrivateKey:
    """A cached throw-away private key of ``pub``'s algorithm (and curve), to let pyca draft a structure."""
    return _stand_in_key(stand_in_kind(pub)).private_key


def resign_external(draft_der: bytes, key: SigningKey, body: bytes | None = None) -> bytes:
    """Sign ``SEQUENCE { body, algorithm, BIT STRING }`` (Certificate, CertificateList, CertificationRequest)
    with any signing key: ``draft_der`` was signed by :func:`stand_in_for` (same algorithm, so the
    algorithm identifiers inside are right); its body (or the given replacement) is signed again by ``key``."""
    draft_body, algorithm, _ = split_sequence(draft_der)
    body = draft_body if body is None else body
    pub = key.public_key()
    signature = key.sign(body, _scheme_for(pub, signature_hash_for(pub)))
    return encode_tlv(0x30, body + algorithm + encode_tlv(0x03, b"\x00" + signature))


def sign_builder(builder: x509.CertificateBuilder, key: SigningKey) -> x509.Certificate:
    """Sign a certificate builder with any signing key (token-held keys sign the TBS externally)."""
    pub = key.public_key()
    h = signature_hash_for(pub)
    if isinstance(key, LocalKey):
        return builder.sign(key.private_key, h)
    draft = builder.sign(stand_in_for(pub), h)
    return x509.load_der_x509_certificate(resign_external(draft.public_bytes(Encoding.DER), key))


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

    Certificates an in-memory CA key issues repeatedly (same issuer, profile and URLs) take a fast path:
    the parts that do not change from one certificate to the next (signature algorithm, issuer name,
    basicConstraints, keyUsage, AKI, AIA, CRL DP) are taken, already DER-encoded, from the first
    certificate pyca's builder made for that issuer and profile, and only serial, validity, subject,
    public key and SKI are encoded per certificate. The template is admitted only once its output has
    been checked byte for byte against pyca's builder; the result is the same certificate either way.
    """
    serial = request.serial if request.serial is not None else new_serial()
    if issuer_certificate is not None and isinstance(issuer_key, LocalKey) and not extra_extensions and not request.san_dns:
        fast = _build_from_template(request, serial, issuer_certificate, issuer_key)
        if fast is not None:
            return fast
    return _build_with_pyca(request, serial, issuer_certificate, issuer_key, extra_extensions)


def _build_with_pyca(
    request: CertificateRequest, serial: int, issuer_certificate: x509.Certificate | None, issuer_key: SigningKey,
    extra_extensions: Sequence[tuple[x509.ExtensionType, bool]],
) -> x509.Certificate:
    p = request.profile
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


# -- fast path: per-issuer DER templates ------------------------------------------------------------
_SKI_OID = b"\x06\x03\x55\x1d\x0e"  # id-ce-subjectKeyIdentifier, DER
_MAX_SERIAL_BITS = 159  # pyca refuses serials of 2**159 and above


@dataclass(frozen=True, slots=True)
class _Template:
    """DER pieces of an issuer's certificates that are the same for every certificate of one shape."""

    head: bytes  # [0] version
    algorithm: bytes  # signature AlgorithmIdentifier (in the TBS and after it)
    issuer: bytes  # issuer Name
    ext_before: bytes  # extensions before the SKI, DER, in pyca's order
    ski_prefix: bytes  # the SKI extension up to its 20-byte key identifier
    ext_after: bytes  # extensions after the SKI


_TemplateKey = tuple[x509.Certificate, str, bool, int | None, bool, frozenset[str], bool, str | None, str | None]
_templates: dict[_TemplateKey, _Template | None] = {}  # None: this shape always takes pyca's path
_UNSEEN = _Template(b"", b"", b"", b"", b"", b"")
_MAX_TEMPLATES = 256


def _der_integer(n: int) -> bytes:
    return encode_tlv(0x02, n.to_bytes(n.bit_length() // 8 + 1, "big"))


def _der_time(dt: datetime) -> bytes:
    """RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; whole seconds, as pyca encodes."""
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC)
    hms = f"{dt.month:02d}{dt.day:02d}{dt.hour:02d}{dt.minute:02d}{dt.second:02d}Z".encode()
    if dt.year < 2050:
        return b"\x17\x0d" + f"{dt.year % 100:02d}".encode() + hms
    return b"\x18\x0f" + f"{dt.year:04d}".encode() + hms


def _spki_and_key_id(pub: PublicKey) -> tuple[bytes, bytes]:
    """SubjectPublicKeyInfo DER and the RFC 5280 method-1 key identifier (SHA-1 of the subjectPublicKey bits)."""
    spki = pub.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    _, bits = split_sequence(spki)
    _, start, end = read_tlv(bits)
    return spki, hashlib.sha1(bits[start + 1 : end]).digest()  # noqa: S324 - RFC 5280 key identifier, not a signature


def _tbs_from_template(t: _Template, request: CertificateRequest, serial: int) -> bytes:
    spki, key_id = _spki_and_key_id(request.public_key)
    extensions = t.ext_before + t.ski_prefix + key_id + t.ext_after
    return encode_tlv(0x30, b"".join((
        t.head, _der_integer(serial), t.algorithm, t.issuer,
        encode_tlv(0x30, _der_time(request.not_before) + _der_time(request.not_after)),
        request.subject.public_bytes(), spki, encode_tlv(0xA3, encode_tlv(0x30, extensions)),
    )))


def _template_from(cert: x509.Certificate) -> _Template | None:
    """Cut a certificate pyca built into a template (None when its layout is not the expected one)."""
    der = cert.public_bytes(Encoding.DER)
    tbs, algorithm, _ = split_sequence(der)
    parts = split_sequence(tbs)
    if len(parts) != 8 or parts[0][:1] != b"\xa0" or parts[7][:1] != b"\xa3":
        return None
    head, _serial, _alg, issuer, _validity, _subject, _spki, ext_wrapper = parts
    _, start, end = read_tlv(ext_wrapper)
    extensions = split_sequence(ext_wrapper[start:end])
    ski = [n for n, ext in enumerate(extensions) if ext[2:7] == _SKI_OID]
    if len(ski) != 1 or len(extensions[ski[0]]) < 22:
        return None
    n = ski[0]
    return _Template(head, algorithm, issuer, b"".join(extensions[:n]), extensions[n][:-20], b"".join(extensions[n + 1 :]))


_CURVE_HASH: dict[str, CertHash] = {"secp384r1": hashes.SHA384(), "secp521r1": hashes.SHA512()}


def _issuer_kind(key: LocalKey) -> tuple[str, CertHash | None] | None:
    """Key kind and certificate signature hash of an in-memory issuer key (as :func:`signature_hash_for`)."""
    priv = key.private_key
    if isinstance(priv, ec.EllipticCurvePrivateKey):
        name = priv.curve.name
        return name, _CURVE_HASH.get(name) or hashes.SHA256()
    if isinstance(priv, rsa.RSAPrivateKey):
        return "rsa", hashes.SHA256()
    if isinstance(priv, ed448.Ed448PrivateKey):
        return "ed448", None
    return None


def _local_sign(key: LocalKey, algorithm_hash: CertHash | None, data: bytes) -> bytes:
    priv = key.private_key
    if isinstance(priv, ec.EllipticCurvePrivateKey) and algorithm_hash is not None:
        return priv.sign(data, ec.ECDSA(algorithm_hash))
    if isinstance(priv, rsa.RSAPrivateKey) and algorithm_hash is not None:
        return priv.sign(data, padding.PKCS1v15(), algorithm_hash)
    assert isinstance(priv, ed448.Ed448PrivateKey)  # _issuer_kind admits nothing else
    return priv.sign(data)


def _build_from_template(
    request: CertificateRequest, serial: int, issuer_certificate: x509.Certificate, issuer_key: LocalKey,
) -> x509.Certificate | None:
    """The fast path; None sends the request through pyca's builder (which also raises any input error)."""
    nb = request.not_before
    na = request.not_after
    kind = _issuer_kind(issuer_key)
    nb_year = nb.astimezone(UTC).year if nb.tzinfo is not None else nb.year  # the year encoded (UTCTime from 1950)
    if kind is None or serial <= 0 or serial.bit_length() > _MAX_SERIAL_BITS or nb_year < 1950 or na < nb:
        return None
    p = request.profile
    key: _TemplateKey = (issuer_certificate, kind[0], p.is_ca, p.path_length, p.critical_extensions,
                         p.key_usage, isinstance(request.public_key, rsa.RSAPublicKey), request.ocsp_url, request.crl_url)
    template = _templates.get(key, _UNSEEN)
    if template is _UNSEEN:
        # First certificate of this shape: pyca builds it, and it becomes the template if re-encoding it
        # from the template gives the very same TBS bytes.
        cert = _build_with_pyca(request, serial, issuer_certificate, issuer_key, ())
        made = _template_from(cert)
        if made is not None and _tbs_from_template(made, request, serial) != cert.tbs_certificate_bytes:
            made = None
        if len(_templates) >= _MAX_TEMPLATES:
            _templates.clear()
        _templates[key] = made
        return cert
    if template is None:
        return None
    tbs = _tbs_from_template(template, request, serial)
    signature = _local_sign(issuer_key, kind[1], tbs)
    return x509.load_der_x509_certificate(
        encode_tlv(0x30, tbs + template.algorithm + encode_tlv(0x03, b"\x00" + signature))
    )


# -- batches: one issuer, profile and validity for many certificates ------------------------------------
_EC_SPKI_HEADERS: dict[str, bytes] = {}  # curve name -> DER of pyca's P-xxx SPKI up to the uncompressed point
_KEY_CLASSES: dict[type, str] = {}  # concrete public key type -> "ec" | "rsa" | "other"


def _key_class(pub: PublicKey) -> str:
    """``ec``, ``rsa`` or ``other``, looked up by the key's concrete type (pyca's key ABCs make isinstance slow)."""
    kind = _KEY_CLASSES.get(type(pub))
    if kind is None:
        kind = "ec" if isinstance(pub, ec.EllipticCurvePublicKey) else "rsa" if isinstance(pub, rsa.RSAPublicKey) else "other"
        _KEY_CLASSES[type(pub)] = kind
    return kind


def _spki_for(pub: PublicKey, spki: bytes | None) -> tuple[bytes, bytes]:
    """:func:`_spki_and_key_id`, taking a request's SPKI DER as it is when it is byte for byte what pyca writes.

    For EC keys that is the case when it has pyca's header for the curve (named curve, BIT STRING with
    no unused bits) and an uncompressed point of the curve's size: the point was validated when the key
    was loaded, so its coordinates are canonical. Anything else (compressed points, RSA) is re-encoded."""
    if spki is not None and _key_class(pub) == "ec":
        curve = cast(ec.EllipticCurvePublicKey, pub).curve
        point_len = 1 + 2 * ((curve.key_size + 7) // 8)
        header = _EC_SPKI_HEADERS.get(curve.name)
        if header is None:
            canonical = pub.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
            _EC_SPKI_HEADERS[curve.name] = header = canonical[:-point_len]
        n = len(header)
        if len(spki) == n + point_len and spki[n] == 4 and spki.startswith(header):
            return spki, hashlib.sha1(spki[n:]).digest()  # noqa: S324 - RFC 5280 key identifier, not a signature
    return _spki_and_key_id(pub)


class _BatchBuilder:
    """Builds the certificates of one batch (same issuer, profile, validity and URLs) from DER pieces.

    What :func:`build_certificate` works out per certificate (issuer kind, template lookup, validity
    encoding, signature parameters) is worked out once here; per certificate only the serial, subject,
    SPKI and SKI are encoded and the TBS signed. A request's subject Name and SPKI DER are put into the
    certificate as they are when they are what pyca would encode (the caller vouches for the subject, see
    :func:`ocppsec.pki.names.read_simple_name`; :func:`_spki_for` checks the SPKI). Until the issuer's
    template for a shape has been admitted, and for every shape or issuer key the template path does not
    cover, certificates go through :func:`build_certificate`: the result is the same certificate either way."""

    def __init__(self, profile: Profile, issuer_certificate: x509.Certificate, issuer_key: SigningKey, not_before: datetime,
                 validity_days: int | None, ocsp_url: str | None, crl_url: str | None) -> None:
        self.profile = profile
        self.issuer_certificate = issuer_certificate
        self.issuer_key = issuer_key
        self.not_before = not_before
        self.validity_days = validity_days
        self.ocsp_url = ocsp_url
        self.crl_url = crl_url
        self._sign: Callable[[bytes], bytes] | None = None
        self._validity = b""
        self._keys: dict[bool, _TemplateKey] = {}
        nb = not_before
        na = nb + timedelta(days=validity_days or profile.validity_days)  # as CertificateRequest.not_after
        nb_year = nb.astimezone(UTC).year if nb.tzinfo is not None else nb.year  # the year encoded (UTCTime from 1950)
        kind = _issuer_kind(issuer_key) if isinstance(issuer_key, LocalKey) else None
        if kind is None or nb_year < 1950 or na < nb:
            return
        assert isinstance(issuer_key, LocalKey)
        priv, h = issuer_key.private_key, kind[1]
        if isinstance(priv, ec.EllipticCurvePrivateKey) and h is not None:
            self._sign = functools.partial(priv.sign, signature_algorithm=ec.ECDSA(h))
        elif isinstance(priv, rsa.RSAPrivateKey) and h is not None:
            self._sign = functools.partial(priv.sign, padding=padding.PKCS1v15(), algorithm=h)
        elif isinstance(priv, ed448.Ed448PrivateKey):
            self._sign = priv.sign
        self._validity = encode_tlv(0x30, _der_time(nb) + _der_time(na))
        self._keys = {is_rsa: (issuer_certificate, kind[0], profile.is_ca, profile.path_length, profile.critical_extensions,
                               profile.key_usage, is_rsa, ocsp_url, crl_url) for is_rsa in (False, True)}

    def build(
        self, subject: Callable[[], x509.Name], subject_der: bytes | None, public_key: PublicKey, spki: bytes | None,
        serial: int,
    ) -> tuple[x509.Certificate, bytes]:
        """The certificate and its DER. ``subject`` gives the subject Name (called only when needed);
        ``subject_der``, when given, must be exactly what ``subject().public_bytes()`` returns."""
        sign = self._sign
        if sign is not None and serial > 0 and serial.bit_length() <= _MAX_SERIAL_BITS:
            template = _templates.get(self._keys[_key_class(public_key) == "rsa"])
            if template is not None and template is not _UNSEEN:
                spki_der, key_id = _spki_for(public_key, spki)
                tbs = encode_tlv(0x30, b"".join((
                    template.head, _der_integer(serial), template.algorithm, template.issuer, self._validity,
                    subject_der if subject_der is not None else subject().public_bytes(), spki_der,
                    encode_tlv(0xA3, encode_tlv(0x30, template.ext_before + template.ski_prefix + key_id + template.ext_after)),
                )))
                der = encode_tlv(0x30, tbs + template.algorithm + encode_tlv(0x03, b"\x00" + sign(tbs)))
                return x509.load_der_x509_certificate(der), der
        request = CertificateRequest(self.profile, subject(), public_key, self.not_before, self.validity_days, serial, (),
                                     self.ocsp_url, self.crl_url)
        cert = build_certificate(request, issuer_certificate=self.issuer_certificate, issuer_key=self.issuer_key)
        return cert, cert.public_bytes(Encoding.DER)
