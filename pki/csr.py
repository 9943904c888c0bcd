"""Certificate signing requests: made on the station, checked by the CA under a policy.

The CSR policy is a pipeline (validate → modify → enforce):

1. **validate** the request itself: PKCS#10 signature, key type and size, signature hash, subject
   attributes (O, CN, C, DC) against the role's :class:`~ocppsec.pki.profiles.Profile` and the
   :class:`PolicyContext` (CSO name, expected station serial, serial registry);
2. **modify**: nothing from the request's extensions is copied — the issued certificate's extensions
   come from the profile alone (no SAN, no EKU unless the profile allows);
3. **enforce**: :func:`verify_csr` raises :class:`~ocppsec.pki.errors.PolicyError` listing *every*
   violation with its requirement ID; :func:`check_csr` returns the report instead.

Both return a :class:`CheckedRequest`: the :class:`CsrReport` together with what the policy read from the
request through pyca's accessors (the subject ``Name`` and the public key), which issuance
(:mod:`ocppsec.pki.issuance`) puts into the certificate without reading the request again. pyca's
``CertificateSigningRequest`` does not cache ``subject`` or ``public_key()``; each is read once here.
"""

from __future__ import annotations

import re
from collections.abc import Container, Mapping
from dataclasses import dataclass, field
from ipaddress import ip_address

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.x509.oid import SignatureAlgorithmOID

from ocppsec.pki._untrusted import PYCA_INPUT_ERRORS, pyca_input
from ocppsec.pki.builder import signature_hash_for
from ocppsec.pki.errors import PolicyError, Violation
from ocppsec.pki.keys import LocalKey, PrivateKey, PublicKey, SigningKey, as_private_key, describe_public_key, key_spec_of
from ocppsec.pki.names import make_name, name_attributes
from ocppsec.pki.profiles import CnKind, Profile

__all__ = [
    "CheckedRequest",
    "CsrReport",
    "PolicyContext",
    "check_csr",
    "check_public_key",
    "check_subject",
    "make_csr",
    "verify_csr",
]

MAX_CSR_PEM_CHARS = 5500  # SignCertificateRequest.csr maxLength (2.0.1 / 2.1 schemas)

_FQDN = re.compile(r"^(?=.{1,253}$)(?:(?!-)[A-Za-z0-9-]{1,63}(?<!-)\.)*(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


@dataclass(frozen=True, slots=True)
class PolicyContext:
    """What the CA knows about the requester. Every field is optional."""

    cso_name: str | None = None  # O of station certificates must equal it (A00.FR.509, A02.FR.13)
    expected_cn: str | None = None  # e.g. the station's serial number, or its SECC ID
    serial_registry: Container[str] | None = None  # known station serial numbers (CN must be in it)
    country: str | None = None


@dataclass(frozen=True, slots=True)
class CsrReport:
    """Outcome of the CSR policy: every violation, and what was found."""

    profile: str
    subject: Mapping[str, list[str]]
    key: str
    violations: tuple[Violation, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_json(self) -> dict[str, object]:
        return {
            "profile": self.profile,
            "subject": dict(self.subject),
            "key": self.key,
            "ok": self.ok,
            "violations": [{"requirement": v.requirement, "message": v.message} for v in self.violations],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckedRequest(CsrReport):
    """The policy's report on a request, with what it read for issuance to reuse.

    A :class:`CsrReport` (same fields, same JSON); besides, the request itself, its subject as pyca's
    ``Name`` and its public key (None when the key algorithm is not supported). These take no part in
    equality or ``repr``."""

    csr: x509.CertificateSigningRequest = field(compare=False, repr=False)
    subject_name: x509.Name = field(compare=False, repr=False)
    public_key: PublicKey | None = field(compare=False, repr=False)

    @property
    def subject_text(self) -> str:
        """The subject as ``Name.rfc4514_string()`` writes it (what the ledger keeps)."""
        return self.subject_name.rfc4514_string()


def _looks_like_url_or_ip(value: str) -> bool:
    if "://" in value or "/" in value or value.lower().startswith(("ws:", "wss:", "http:", "https:")):
        return True
    candidate = value.strip("[]")
    if ":" not in candidate and not candidate.replace(".", "").isdigit():
        return False  # IPv6 needs a colon, IPv4 is digits and dots: spare ip_address its exception path
    try:
        ip_address(candidate)
    except ValueError:
        return False
    return True


def check_public_key(pub: PublicKey, profile: Profile) -> list[Violation]:
    """Key algorithm and size against A00.FR.501-503 and the profile's allowed key types."""
    out: list[Violation] = []
    if isinstance(pub, rsa.RSAPublicKey) and pub.key_size < 2048:
        out.append(Violation("A00.FR.502", f"RSA key of {pub.key_size} bits; at least 2048 are required"))
    elif isinstance(pub, ec.EllipticCurvePublicKey) and pub.curve.key_size < 224:
        out.append(Violation("A00.FR.503", f"EC key on {pub.curve.name} ({pub.curve.key_size} bits); at least 224 are required"))
    elif isinstance(pub, dsa.DSAPublicKey):
        out.append(Violation("A00.FR.504", "DSA keys are not among the recommended algorithms"))
    elif isinstance(pub, ed25519.Ed25519PublicKey) and not profile.allowed_keys:
        out.append(Violation(profile.cite("key"), "Ed25519 keys are not allowed"))
    if not out and key_spec_of(pub) not in profile.allowed_keys:
        allowed = ", ".join(k.value for k in profile.allowed_keys)
        found = describe_public_key(pub)
        out.append(Violation(profile.cite("key"), f"{found} key is not allowed for {profile.name} (allowed: {allowed})"))
    return out


_KeyVerdict = tuple[Profile, tuple[Violation, ...], str]
_key_verdicts: dict[tuple[type, object, int], _KeyVerdict] = {}


def _key_verdict(pub: PublicKey, profile: Profile) -> tuple[tuple[Violation, ...], str]:
    """:func:`check_public_key` and :func:`describe_public_key`, remembered per key type, curve or size and profile.

    Both depend on nothing else (type, curve name and size, RSA modulus size), so requests with keys of
    one kind share the verdict instead of repeating the isinstance checks against pyca's key ABCs."""
    curve = getattr(pub, "curve", None)
    size = (curve.name, curve.key_size) if curve is not None else getattr(pub, "key_size", None)
    key = (type(pub), size, id(profile))
    entry = _key_verdicts.get(key)
    if entry is None or entry[0] is not profile:  # `is`: an id can be reused once a profile is gone
        if len(_key_verdicts) >= 256:
            _key_verdicts.clear()
        entry = _key_verdicts[key] = (profile, tuple(check_public_key(pub, profile)), describe_public_key(pub))
    return entry[1], entry[2]


def _first(attrs: Mapping[str, list[str]], key: str) -> str | None:
    values = attrs.get(key)
    return values[0] if values else None


def check_subject(subject: x509.Name, profile: Profile, ctx: PolicyContext) -> list[Violation]:
    """Subject attribute rules of the profile: required attributes, fixed values, O and CN rules."""
    return _check_attributes(name_attributes(subject), profile, ctx)


def _check_attributes(attrs: Mapping[str, list[str]], profile: Profile, ctx: PolicyContext) -> list[Violation]:
    out: list[Violation] = []
    for key in profile.required_attributes:
        if not attrs.get(key):
            rule = {"O": "o", "CN": "cn", "C": "c", "DC": "dc"}.get(key, key.lower())
            out.append(Violation(profile.cite(rule), f"subject has no {key} attribute"))
    for key, values in attrs.items():
        if len(values) > 1 and key in ("CN", "O"):
            out.append(Violation(profile.cite(key.lower()), f"subject has {len(values)} {key} attributes; expected one"))
    for key, value in profile.fixed_attributes.items():
        if value not in attrs.get(key, []):
            out.append(Violation(profile.cite(key.lower()), f"subject {key} must be {value!r}, found {attrs.get(key) or 'none'}"))
    org = _first(attrs, "O")
    if profile.o_is_cso_name and ctx.cso_name is not None and org is not None and org != ctx.cso_name:
        out.append(Violation(profile.cite("o"), f"subject O {org!r} is not the CSO name {ctx.cso_name!r}"))
    country = _first(attrs, "C")
    if country is not None and not re.fullmatch(r"[A-Z]{2}", country):
        out.append(Violation(profile.cite("c"), f"subject C {country!r} is not a two-letter ISO 3166 code"))
    cn = _first(attrs, "CN")
    if cn is not None:
        out.extend(_check_cn(cn, profile, ctx))
    return out


def _check_cn(cn: str, profile: Profile, ctx: PolicyContext) -> list[Violation]:
    rule = profile.cite("cn")
    kind = profile.cn_kind
    out: list[Violation] = []
    if kind is CnKind.FQDN:
        if _looks_like_url_or_ip(cn) or not _FQDN.match(cn.removeprefix("*.")):
            out.append(Violation(rule, f"CN {cn!r} is not a fully qualified domain name"))
    elif kind in (CnKind.SERIAL, CnKind.SECC_ID):
        if _looks_like_url_or_ip(cn):
            what = kind.value.replace("-", " ")
            out.append(Violation(rule, f"CN {cn!r} looks like a URL or IP address; it must be the {what}"))
        if not cn.strip() or cn != cn.strip():
            out.append(Violation(rule, f"CN {cn!r} is empty or has surrounding spaces"))
    elif kind is CnKind.EMAID:
        plain = cn.replace("-", "")
        if not (re.fullmatch(r"[A-Za-z0-9]+", plain) and 14 <= len(plain) <= 15):
            out.append(Violation(rule, f"CN {cn!r} is not an eMAID (14-15 alphanumerics, dashes allowed)"))
    elif kind is CnKind.PCID and not (re.fullmatch(r"[A-Za-z0-9]+", cn) and 17 <= len(cn) <= 18):
        out.append(Violation(rule, f"CN {cn!r} is not a PCID (17-18 alphanumerics)"))
    if ctx.expected_cn is not None and cn != ctx.expected_cn:
        out.append(Violation(rule, f"CN {cn!r} does not match the requester's {ctx.expected_cn!r}"))
    if ctx.serial_registry is not None and kind is CnKind.SERIAL and cn not in ctx.serial_registry:
        out.append(Violation(rule, f"CN {cn!r} is not a registered station serial number"))
    return out


def _signature_valid(csr: x509.CertificateSigningRequest, pub: PublicKey) -> bool:
    """PKCS#10 self-signature check with the already parsed key (no second parse of the request's key).

    ECDSA and RSA (PKCS#1 v1.5 / PSS) signatures are verified directly with the parameters of the
    request's signature algorithm; anything else goes through pyca's ``is_signature_valid``. Genuine
    SHA-1/MD5 signatures verify here too (pyca's ``is_signature_valid`` says False for them), so a
    weak but genuine signature is reported as A00.FR.504 alone, not as an altered request."""
    try:
        params = csr.signature_algorithm_parameters
        h = csr.signature_hash_algorithm
        if params is None and isinstance(h, hashes.SHA1 | hashes.MD5):  # pyca gives no parameters for these
            params = ec.ECDSA(h) if isinstance(pub, ec.EllipticCurvePublicKey) else padding.PKCS1v15()
        if isinstance(pub, ec.EllipticCurvePublicKey) and isinstance(params, ec.ECDSA):
            pub.verify(csr.signature, csr.tbs_certrequest_bytes, params)
        elif isinstance(pub, rsa.RSAPublicKey) and isinstance(params, padding.PKCS1v15 | padding.PSS) and h is not None:
            pub.verify(csr.signature, csr.tbs_certrequest_bytes, params, h)
        else:
            return csr.is_signature_valid
    except Exception:  # InvalidSignature, UnsupportedAlgorithm, a key/algorithm mismatch
        return False
    return True


# Signature algorithms checked with prebuilt parameters (their hashes are all SHA-256 or stronger):
# ecdsa-with-SHA256/384/512 and sha256/384/512WithRSAEncryption. Others go through _signature_valid.
_EC_SIGNATURES: Mapping[x509.ObjectIdentifier, ec.ECDSA] = {
    SignatureAlgorithmOID.ECDSA_WITH_SHA256: ec.ECDSA(hashes.SHA256()),
    SignatureAlgorithmOID.ECDSA_WITH_SHA384: ec.ECDSA(hashes.SHA384()),
    SignatureAlgorithmOID.ECDSA_WITH_SHA512: ec.ECDSA(hashes.SHA512()),
}
_RSA_SIGNATURES: Mapping[x509.ObjectIdentifier, hashes.HashAlgorithm] = {
    SignatureAlgorithmOID.RSA_WITH_SHA256: hashes.SHA256(),
    SignatureAlgorithmOID.RSA_WITH_SHA384: hashes.SHA384(),
    SignatureAlgorithmOID.RSA_WITH_SHA512: hashes.SHA512(),
}
_PKCS1V15 = padding.PKCS1v15()
_NO_CONTEXT = PolicyContext()
_ALTERED = "CSR signature does not verify (the request was altered or not signed by its key)"


def _signature_hash(csr: x509.CertificateSigningRequest) -> hashes.HashAlgorithm | None:
    """The request's signature hash; None when pyca does not know the signature algorithm."""
    try:
        return csr.signature_hash_algorithm
    except PYCA_INPUT_ERRORS:  # UnsupportedAlgorithm: an unknown signature OID
        return None


def _hash_violations(h: hashes.HashAlgorithm | None, profile: Profile, pub: PublicKey) -> list[Violation]:
    if isinstance(pub, ed448.Ed448PublicKey | ed25519.Ed25519PublicKey):
        return []
    if h is None or isinstance(h, hashes.SHA1 | hashes.MD5):
        name = h.name if h else "none"
        return [Violation("A00.FR.504", f"CSR is signed with {name}; SHA-256 or stronger is required")]
    if h.digest_size < 32:
        return [Violation(profile.cite("hash"), f"CSR signature hash {h.name} is weaker than SHA-256")]
    return []


def _signature_violations(
    csr: x509.CertificateSigningRequest, pub: PublicKey, profile: Profile,
) -> tuple[list[Violation], list[Violation]]:
    """The self-signature's violations and its hash's. Common algorithms are verified with prebuilt
    parameters, picked by OID (their hashes are all strong enough); others through :func:`_signature_valid`."""
    oid = csr.signature_algorithm_oid
    ec_params = _EC_SIGNATURES.get(oid)
    rsa_hash = _RSA_SIGNATURES.get(oid) if ec_params is None else None
    try:
        if ec_params is not None and isinstance(pub, ec.EllipticCurvePublicKey):
            pub.verify(csr.signature, csr.tbs_certrequest_bytes, ec_params)
            return [], []
        if rsa_hash is not None and isinstance(pub, rsa.RSAPublicKey):
            pub.verify(csr.signature, csr.tbs_certrequest_bytes, _PKCS1V15, rsa_hash)
            return [], []
    except Exception:  # InvalidSignature
        return [Violation("RFC2986", _ALTERED)], []
    bad = [] if _signature_valid(csr, pub) else [Violation("RFC2986", _ALTERED)]
    return bad, _hash_violations(_signature_hash(csr), profile, pub)


def check_csr(csr: x509.CertificateSigningRequest, profile: Profile, ctx: PolicyContext | None = None) -> CheckedRequest:
    """Run the whole policy; never raises for policy problems, returns every violation.

    The result is the report (a :class:`CsrReport`) with the subject Name and public key it read. A request
    pyca loaded but whose subject or key it cannot read is reported too (a violation), not raised; any other
    part pyca cannot parse raises :class:`~ocppsec.pki.errors.InputError`."""
    with pyca_input("CSR cannot be parsed", requirement="A02.FR.03"):
        return _check_csr(csr, profile, ctx or _NO_CONTEXT)


def _check_csr(csr: x509.CertificateSigningRequest, profile: Profile, ctx: PolicyContext) -> CheckedRequest:
    violations: list[Violation] = []
    try:
        pub: PublicKey | None = csr.public_key()
    except Exception:  # unsupported key algorithm in the request
        pub = None
        violations.append(Violation(profile.cite("key"), "CSR public key uses an unsupported algorithm"))
    described = "unsupported"
    if pub is not None:
        signature, weak_hash = _signature_violations(csr, pub, profile)
        key_violations, described = _key_verdict(pub, profile)
        violations += signature
        violations += key_violations
        violations += weak_hash
    try:
        name = csr.subject
    except ValueError:  # pyca parses the Name on access: e.g. a UTF8String that is not UTF-8
        name = x509.Name([])
        violations.append(Violation("RFC2986", "CSR subject is not a readable X.501 Name"))
        attrs: dict[str, list[str]] = {}
    else:
        attrs = name_attributes(name)
        violations += _check_attributes(attrs, profile, ctx)
    return CheckedRequest(profile.name, attrs, described, tuple(violations), csr=csr, subject_name=name, public_key=pub)


def verify_csr(csr: x509.CertificateSigningRequest, profile: Profile, ctx: PolicyContext | None = None) -> CheckedRequest:
    """Like :func:`check_csr` but raises :class:`PolicyError` (listing every violation) on failure."""
    report = check_csr(csr, profile, ctx)
    if not report.ok:
        raise PolicyError(f"CSR rejected for profile {profile.name}", report.violations,
                          hint="fix the request and send a new one", security_event=None)
    return report


def _key_usage_ext(profile: Profile) -> x509.KeyUsage:
    u = profile.key_usage
    return x509.KeyUsage(
        digital_signature="digital_signature" in u, content_commitment="content_commitment" in u,
        key_encipherment="key_encipherment" in u, data_encipherment=False, key_agreement="key_agreement" in u,
        key_cert_sign="key_cert_sign" in u, crl_sign="crl_sign" in u, encipher_only=False, decipher_only=False,
    )


def make_csr(
    key: SigningKey | PrivateKey, subject: Mapping[str, str], profile: Profile | None = None,
) -> x509.CertificateSigningRequest:
    """A PKCS#10 request signed by ``key`` (which never leaves the caller), EVerest-style extensions."""
    signing: SigningKey = key if isinstance(key, SigningKey) else LocalKey(key)
    builder = x509.CertificateSigningRequestBuilder().subject_name(make_name(subject))
    if profile is not None:
        ku = _key_usage_ext(profile)
        if isinstance(signing.public_key(), rsa.RSAPublicKey) and ku.key_agreement:
            ku = x509.KeyUsage(True, False, True, False, False, False, False, False, False)
        builder = builder.add_extension(ku, critical=True).add_extension(
            x509.BasicConstraints(ca=profile.is_ca, path_length=None), critical=True
        )
    return sign_csr_builder(builder, signing)


def sign_csr_builder(builder: x509.CertificateSigningRequestBuilder, key: SigningKey) -> x509.CertificateSigningRequest:
    """Sign a CSR builder with any signing key (token-held keys sign in the token, through pyca's builder)."""
    return builder.sign(as_private_key(key), signature_hash_for(key.public_key()))
