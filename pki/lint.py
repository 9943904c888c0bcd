"""Lint a certificate against its role's profile: every deviation, each with its requirement ID."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import AuthorityInformationAccessOID

from ocppsec.pki.csr import PolicyContext, check_public_key, check_subject
from ocppsec.pki.errors import PolicyError, Violation
from ocppsec.pki.keys import KeySpec, key_spec_of
from ocppsec.pki.names import name_value
from ocppsec.pki.profiles import PROFILES, CnKind, Family, Profile

__all__ = ["LintReport", "guess_profile", "lint_certificate", "verify_profile"]

_KU_NAMES = (
    "digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
    "key_agreement", "key_cert_sign", "crl_sign",
)


@dataclass(frozen=True, slots=True)
class LintReport:
    profile: str
    subject: str
    violations: tuple[Violation, ...]

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_json(self) -> dict[str, object]:
        return {
            "profile": self.profile, "subject": self.subject, "ok": self.ok,
            "violations": [{"requirement": v.requirement, "message": v.message} for v in self.violations],
        }


def _ku_set(ku: x509.KeyUsage) -> set[str]:
    out = set()
    for n in _KU_NAMES:
        if getattr(ku, n):
            out.add(n)
    return out


def _ext(cert: x509.Certificate, cls: type[x509.ExtensionType]) -> x509.Extension[x509.ExtensionType] | None:
    try:
        return cert.extensions.get_extension_for_class(cls)
    except x509.ExtensionNotFound:
        return None
    except ValueError:
        return None


def _signature_violations(cert: x509.Certificate, p: Profile) -> list[Violation]:
    h = cert.signature_hash_algorithm
    issuer_is_eddsa = h is None
    if not issuer_is_eddsa and isinstance(h, hashes.SHA1 | hashes.MD5):
        return [Violation("A00.FR.504", f"signed with {h.name}; SHA-256 or stronger is required")]
    ecdsa_sha256 = isinstance(h, hashes.SHA256) and cert.signature_algorithm_oid.dotted_string == "1.2.840.10045.4.3.2"
    if p.family is Family.ISO15118_2 and not ecdsa_sha256:
        return [Violation(p.cite("algorithm"), "ISO 15118-2 certificates are signed with ecdsa-with-SHA256")]
    if p.family is Family.ISO15118_20 and not (issuer_is_eddsa or isinstance(h, hashes.SHA512)):
        return [Violation(p.cite("algorithm"), "ISO 15118-20 certificates are signed with ecdsa-with-SHA512 or Ed448")]
    if h is not None and h.digest_size < 32:
        return [Violation(p.cite("hash"), f"signature hash {h.name} is weaker than SHA-256")]
    return []


def _server_san_violations(
    cert: x509.Certificate, p: Profile, san: x509.Extension[x509.ExtensionType] | None,
) -> list[Violation]:
    """A server certificate names its FQDN in subjectAltName too: TLS clients that ignore the CN (Go, rustls,
    browsers' stacks; RFC 6125 §6.4.4 makes the CN a fallback only) refuse it otherwise. The CN stays (A00.FR.510)."""
    cn = name_value(cert.subject, "CN")
    names = san.value.get_values_for_type(x509.DNSName) if san is not None else []  # type: ignore[attr-defined]
    if not names:
        return [Violation(p.cite("server_san"), f"no subjectAltName dNSName: clients that ignore the CN refuse it; "
                                                f"add {cn or 'the FQDN'} as dNSName (and keep it as CN, A00.FR.510)")]
    if cn and cn.lower() not in (str(n).lower() for n in names):
        return [Violation(p.cite("server_san"), f"the CN {cn} is not among the subjectAltName dNSNames {', '.join(names)}")]
    return []


def lint_certificate(cert: x509.Certificate, profile: Profile, ctx: PolicyContext | None = None) -> LintReport:
    """Every deviation of ``cert`` from ``profile`` (returns a report; never raises for findings)."""
    p = profile
    v: list[Violation] = []
    v += check_public_key(cert.public_key(), p)
    v += _signature_violations(cert, p)
    if cert.serial_number <= 0:
        v.append(Violation(p.cite("serial"), "serial number must be a positive integer"))
    elif cert.serial_number.bit_length() > 159:
        v.append(Violation(p.cite("serial"), "serial number is longer than 20 octets (RFC 5280 4.1.2.2)"))
    elif cert.serial_number.bit_length() < 64:
        v.append(Violation(p.cite("serial"), "serial number has fewer than 64 bits; use random serials"))
    v += check_subject(cert.subject, p, ctx or PolicyContext())
    bc = _ext(cert, x509.BasicConstraints)
    if bc is None:
        v.append(Violation(p.cite("basic_constraints"), "basicConstraints extension is missing"))
    else:
        bcv = bc.value
        assert isinstance(bcv, x509.BasicConstraints)
        if bcv.ca != p.is_ca:
            v.append(Violation(p.cite("basic_constraints"), f"basicConstraints cA is {bcv.ca}, the profile needs {p.is_ca}"))
        if p.is_ca and p.path_length is not None and bcv.path_length != p.path_length:
            v.append(Violation(p.cite("basic_constraints"),
                               f"pathLenConstraint is {bcv.path_length}, the profile needs {p.path_length}"))
        if p.critical_extensions and not bc.critical:
            v.append(Violation(p.cite("basic_constraints"), "basicConstraints must be critical"))
    ku = _ext(cert, x509.KeyUsage)
    if ku is None:
        v.append(Violation(p.cite("key_usage"), "keyUsage extension is missing"))
    else:
        kuv = ku.value
        assert isinstance(kuv, x509.KeyUsage)
        have = _ku_set(kuv)
        want = set(p.key_usage)
        if isinstance(cert.public_key(), rsa.RSAPublicKey) and "key_agreement" in want:
            want = (want - {"key_agreement"}) | {"key_encipherment"}
        if have != want:
            v.append(Violation(p.cite("key_usage"), f"keyUsage is {sorted(have)}, the profile needs {sorted(want)}"))
        if p.critical_extensions and not ku.critical:
            v.append(Violation(p.cite("key_usage"), "keyUsage must be critical"))
    if not p.allow_eku and _ext(cert, x509.ExtendedKeyUsage) is not None:
        v.append(Violation(p.cite("eku"), "extendedKeyUsage is present; OCPP recommends none (ISO 15118 compatibility)"))
    san = _ext(cert, x509.SubjectAlternativeName)
    if not p.allow_san and san is not None:
        v.append(Violation(p.cite("san"), "subjectAltName is present; identity must be the subject CN alone"))
    if p.cn_kind is CnKind.FQDN:
        v += _server_san_violations(cert, p, san)
    if p.max_der_size is not None:
        size = len(cert.public_bytes(Encoding.DER))
        if size > p.max_der_size:
            v.append(Violation(p.cite("size"), f"DER size {size} bytes exceeds {p.max_der_size}"))
    if p.require_ocsp_aia:
        aia = _ext(cert, x509.AuthorityInformationAccess)
        has_ocsp = aia is not None and any(
            d.access_method == AuthorityInformationAccessOID.OCSP for d in aia.value  # type: ignore[attr-defined]
        )
        if not has_ocsp:
            v.append(Violation(p.cite("aia"), "no OCSP URL in authorityInfoAccess (needed for GetCertificateStatus)"))
    if cert.not_valid_after_utc <= cert.not_valid_before_utc:
        v.append(Violation(p.cite("validity"), "notAfter is not after notBefore"))
    if p.is_root and cert.issuer != cert.subject:
        v.append(Violation(p.cite("issuer"), "a root must be self-issued"))
    return LintReport(p.name, cert.subject.rfc4514_string(), tuple(v))


def verify_profile(cert: x509.Certificate, profile: Profile, ctx: PolicyContext | None = None) -> LintReport:
    report = lint_certificate(cert, profile, ctx)
    if not report.ok:
        raise PolicyError(f"certificate does not follow profile {profile.name}", report.violations)
    return report


def guess_profile(cert: x509.Certificate) -> Profile:
    """Best guess of a certificate's role from its content (DC, CA flags, key type, CN shape)."""
    pub = cert.public_key()
    spec = key_spec_of(pub)
    suffix = "-20" if spec in (KeySpec.P521, KeySpec.ED448) or isinstance(pub, ed448.Ed448PublicKey) else ""
    dc = name_value(cert.subject, "DC")
    bc = _ext(cert, x509.BasicConstraints)
    bcv = bc.value if bc is not None else None
    is_ca = bool(bcv is not None and isinstance(bcv, x509.BasicConstraints) and bcv.ca)
    self_issued = cert.issuer == cert.subject
    if is_ca:
        assert isinstance(bcv, x509.BasicConstraints)
        family = {"V2G": "cpo", "CPS": "cps", "MO": "mo", "OEM": "oem"}.get(dc or "")
        if self_issued:
            if family is None:
                return PROFILES["manufacturer-root" if bcv.path_length == 0 else "csms-root"]
            return PROFILES[{"cpo": "v2g-root", "cps": "v2g-root"}.get(family, f"{family}-root") + suffix]
        if family is not None:
            level = 1 if bcv.path_length == 1 else 2
            return PROFILES[f"{family}-sub-ca-{level}{suffix}"]
        return PROFILES["cso-sub-ca"]
    leaf = {"CPO": "secc", "MO": "contract", "OEM": "oem-provisioning", "CPS": "cps-leaf"}.get(dc or "")
    if leaf is not None:
        return PROFILES[leaf + suffix]
    ku = _ext(cert, x509.KeyUsage)
    kuv = ku.value if ku is not None else None
    if isinstance(kuv, x509.KeyUsage) and kuv.digital_signature and not kuv.key_agreement and not kuv.key_encipherment:
        return PROFILES["firmware-signing"]
    cn = name_value(cert.subject, "CN") or ""
    if "." in cn and not cn.replace(".", "").isdigit():
        return PROFILES["csms-server-rsa" if isinstance(pub, rsa.RSAPublicKey) else "csms-server-ecdsa"]
    _ = ec
    return PROFILES["charging-station"]
