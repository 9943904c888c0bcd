"""A generated negative corpus: one certificate or CSR per broken requirement.

Every file breaks exactly one rule of one profile. Its name says which requirement the library must cite:
``<kind>_<requirement>_<what>.pem`` with ``kind`` = ``cert`` | ``csr`` and the requirement ID made
file-name safe by :func:`slug` (``/`` → ``+``, other unsafe runs → ``-``), e.g.
``csr_A00.FR.502_rsa1024.pem``, ``cert_V2G2-010_oversize.pem``. ``manifest.json`` records, per file, the
profile to check it against and the policy context (CSO name, expected CN, serial registry).

The certificates are built here with pyca's builder (not with ocppsec's), signed by the CAs of a real
in-memory hierarchy, so the only thing wrong in each file is the one deliberate defect. SHA-1 signatures,
which pyca no longer produces, are made by re-signing the to-be-signed bytes by hand.

Write it to disk with ``python -m tests.pki.corpus OUTDIR``.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from ocppsec.pki import PROFILES, Hierarchy, HierarchyConfig, PolicyContext, default_config_text

AT = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
CSO = "Example CSO"
OCSP = "http://ocsp.example.com/ocsp"

_OIDS = {
    "C": NameOID.COUNTRY_NAME, "O": NameOID.ORGANIZATION_NAME, "DC": NameOID.DOMAIN_COMPONENT,
    "CN": NameOID.COMMON_NAME,
}


def slug(requirement: str) -> str:
    """File-name form of a requirement ID: ``A00.FR.509/A02.FR.13`` → ``A00.FR.509+A02.FR.13``."""
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", requirement.replace("/", "+")).strip("-")


def parse_filename(name: str) -> tuple[str, str, str]:
    """``(kind, requirement slug, what)`` of a corpus file name."""
    kind, req, what = name.removesuffix(".pem").split("_", 2)
    return kind, req, what


def iso20_config(key: str = "p521") -> HierarchyConfig:
    """The default hierarchy with the ISO 15118-20 twins switched on (``key`` = p521 or ed448)."""
    text = default_config_text()
    text = text.replace("enabled = false", "enabled = true", 1).replace('key = "p521"', f'key = "{key}"', 1)
    assert "enabled = true" in text and f'key = "{key}"' in text
    return HierarchyConfig.from_toml(text)


def make_key(spec: str) -> Any:
    """A private key: p192/p256/p384/p521, rsa1024/rsa2048, dsa2048, ed25519, ed448."""
    curves = {"p192": ec.SECP192R1(), "p256": ec.SECP256R1(), "p384": ec.SECP384R1(), "p521": ec.SECP521R1()}
    if spec in curves:
        return ec.generate_private_key(curves[spec])
    if spec.startswith("rsa"):
        return rsa.generate_private_key(65537, int(spec[3:]))
    if spec == "dsa2048":
        return dsa.generate_private_key(2048)
    if spec == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if spec == "ed448":
        return ed448.Ed448PrivateKey.generate()
    raise ValueError(spec)


# -- minimal DER, written here so the corpus does not lean on the code it tests --------------------------
def _tlv(data: bytes, pos: int) -> tuple[int, int]:
    """(value start, element end) of the DER element at ``pos``."""
    first = data[pos + 1]
    if first < 0x80:
        return pos + 2, pos + 2 + first
    n = first & 0x7F
    length = int.from_bytes(data[pos + 2 : pos + 2 + n], "big")
    return pos + 2 + n, pos + 2 + n + length


def _children(seq: bytes) -> list[bytes]:
    start, end = _tlv(seq, 0)
    out, pos = [], start
    while pos < end:
        _, elem_end = _tlv(seq, pos)
        out.append(seq[pos:elem_end])
        pos = elem_end
    return out


def _seq(*parts: bytes, tag: int = 0x30) -> bytes:
    body = b"".join(parts)
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


SHA1_RSA = bytes.fromhex("300d06092a864886f70d0101050500")  # sha1WithRSAEncryption, NULL params
SHA1_ECDSA = bytes.fromhex("300906072a8648ce3d0401")  # ecdsa-with-SHA1


def _sha1_sign(key: Any, data: bytes) -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives.asymmetric import padding

    if isinstance(key, rsa.RSAPrivateKey):
        return SHA1_RSA, key.sign(data, padding.PKCS1v15(), hashes.SHA1())
    return SHA1_ECDSA, key.sign(data, ec.ECDSA(hashes.SHA1()))


def resign_certificate_sha1(cert: x509.Certificate, issuer_key: Any) -> x509.Certificate:
    """The same certificate, signed again by ``issuer_key`` with SHA-1 (pyca refuses to do this)."""
    tbs, _alg, _sig = _children(cert.public_bytes(serialization.Encoding.DER))
    parts = _children(tbs)
    probe_alg, _ = _sha1_sign(issuer_key, b"")
    parts[2] = probe_alg  # TBSCertificate.signature must equal the outer algorithm
    new_tbs = _seq(*parts)
    alg, signature = _sha1_sign(issuer_key, new_tbs)
    return x509.load_der_x509_certificate(_seq(new_tbs, alg, _seq(b"\x00" + signature, tag=0x03)))


def resign_csr_sha1(csr: x509.CertificateSigningRequest, key: Any) -> x509.CertificateSigningRequest:
    info, _alg, _sig = _children(csr.public_bytes(serialization.Encoding.DER))
    alg, signature = _sha1_sign(key, info)
    return x509.load_der_x509_csr(_seq(info, alg, _seq(b"\x00" + signature, tag=0x03)))


def corrupt_csr_signature(csr: x509.CertificateSigningRequest) -> x509.CertificateSigningRequest:
    """Flip one bit in the signature value: the CSR still parses, but no longer verifies."""
    der = bytearray(csr.public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0x01
    return x509.load_der_x509_csr(bytes(der))


# -- templates: a correct certificate of every profile the corpus breaks ---------------------------------
@dataclass(frozen=True)
class Template:
    issuer: str | None  # CA name in the hierarchy; None = self-signed root
    subject: Mapping[str, str]
    key: str = "p256"
    ocsp: bool = False
    san: tuple[str, ...] = ()  # a server certificate names its FQDN as dNSName too (RFC 6125)


_CPO = {"C": "DE", "O": CSO, "DC": "V2G"}
_MO = {"C": "DE", "O": "Example MO", "DC": "MO"}
TEMPLATES: Mapping[str, Template] = {
    "csms-root": Template(None, {"C": "DE", "O": CSO, "CN": "Example CSO CSMS Root CA"}),
    "cso-sub-ca": Template("csms-root", {"C": "DE", "O": CSO, "CN": "Station Sub-CA"}),
    "csms-server-rsa": Template("csms-root", {"O": CSO, "CN": "csms.example.com"}, "rsa2048", san=("csms.example.com",)),
    "csms-server-ecdsa": Template("csms-root", {"O": CSO, "CN": "csms.example.com"}, san=("csms.example.com",)),
    "charging-station": Template("csms-root", {"O": CSO, "CN": "SN-0001"}),
    "manufacturer-root": Template(None, {"C": "DE", "O": "Example Manufacturer", "CN": "Manufacturer Root"}),
    "firmware-signing": Template("manufacturer-root", {"O": "Example Manufacturer", "CN": "Firmware Signing"}),
    "v2g-root": Template(None, {**_CPO, "CN": "V2G Root CA"}),
    "cpo-sub-ca-1": Template("v2g-root", {**_CPO, "CN": "CPO Sub-CA 1"}),
    "cpo-sub-ca-2": Template("cpo-sub-ca-1", {**_CPO, "CN": "CPO Sub-CA 2"}),
    "secc": Template("cpo-sub-ca-2", {"C": "DE", "O": CSO, "DC": "CPO", "CN": "DE*EXA*E1234567"}, ocsp=True),
    "secc-20": Template("cpo-sub-ca-2-20", {"C": "DE", "O": CSO, "DC": "CPO", "CN": "DE*EXA*E1234567"}, "p521", ocsp=True),
    "mo-sub-ca-1": Template("mo-root", {**_MO, "CN": "MO Sub-CA 1"}),
    "contract": Template("mo-sub-ca-2", {**_MO, "CN": "DEEXAC12345678"}, ocsp=True),
    "oem-provisioning": Template("oem-sub-ca-2", {"DC": "OEM", "CN": "WMIEXAMPLE1234567"}),
}

_DEFAULT = object()


def _name(attrs: Mapping[str, str | None] | Sequence[tuple[str, str]]) -> x509.Name:
    items = attrs.items() if isinstance(attrs, Mapping) else attrs
    return x509.Name([x509.NameAttribute(_OIDS[k], v) for k, v in items if v is not None])


def issuer_hash(key: Any) -> hashes.HashAlgorithm | None:
    """The hash an issuer key signs with: P-384→SHA-384, P-521→SHA-512, EdDSA→none, else SHA-256."""
    if isinstance(key, ed448.Ed448PrivateKey | ed25519.Ed25519PrivateKey):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return {"secp384r1": hashes.SHA384(), "secp521r1": hashes.SHA512()}.get(key.curve.name, hashes.SHA256())
    return hashes.SHA256()


class Factory:
    """Builds corpus files from one in-memory hierarchy (ISO 15118-20 twins on, P-521)."""

    def __init__(self, at: datetime = AT) -> None:
        self.at = at
        self._keys: dict[str, Any] = {}

    @cached_property
    def hierarchy(self) -> Hierarchy:
        return Hierarchy.build(iso20_config("p521"), at=self.at)

    def key(self, spec: str) -> Any:
        if spec not in self._keys:
            self._keys[spec] = make_key(spec)
        return self._keys[spec]

    def cert(
        self,
        profile: str,
        *,
        subject: Mapping[str, str | None] | Sequence[tuple[str, str]] | None = None,
        key: str | None = None,
        signature_hash: Any = _DEFAULT,
        sha1: bool = False,
        key_usage: set[str] | None = None,
        ku_critical: bool = True,
        ku_missing: bool = False,
        bc: tuple[bool, int | None] | object | None = _DEFAULT,
        bc_critical: bool = True,
        eku: Sequence[x509.ObjectIdentifier] = (),
        san: Sequence[str] | object = _DEFAULT,
        ocsp: str | object | None = _DEFAULT,
        serial: int = 0x1F2E3D4C5B6A79880102030405060708,
        not_after: datetime | None = None,
        issuer: str | object | None = _DEFAULT,
    ) -> bytes:
        """PEM of a certificate of ``profile`` with exactly the given deviations from its template."""
        t = TEMPLATES[profile]
        p = PROFILES[profile]
        subj = _name({**t.subject, **subject} if isinstance(subject, Mapping) else subject) if subject is not None else _name(t.subject)
        private = self.key(key or t.key)
        pub = private.public_key()
        issuer_name = t.issuer if issuer is _DEFAULT else issuer
        if issuer_name is None:
            issuer_cert, issuer_key = None, private
        else:
            ca = self.hierarchy.ca(str(issuer_name))
            issuer_cert, issuer_key = ca.certificate, ca.key.private_key  # type: ignore[attr-defined]
        if key_usage is None:
            key_usage = set(p.key_usage)
            if isinstance(pub, rsa.RSAPublicKey) and "key_agreement" in key_usage:
                key_usage = (key_usage - {"key_agreement"}) | {"key_encipherment"}
        ku = x509.KeyUsage(
            digital_signature="digital_signature" in key_usage, content_commitment="content_commitment" in key_usage,
            key_encipherment="key_encipherment" in key_usage, data_encipherment="data_encipherment" in key_usage,
            key_agreement="key_agreement" in key_usage, key_cert_sign="key_cert_sign" in key_usage,
            crl_sign="crl_sign" in key_usage, encipher_only=False, decipher_only=False,
        )
        extensions: list[tuple[x509.ExtensionType, bool]] = [(x509.SubjectKeyIdentifier.from_public_key(pub), False)]
        if not ku_missing:
            extensions.append((ku, ku_critical))
        builder = (
            x509.CertificateBuilder()
            .subject_name(subj)
            .issuer_name(issuer_cert.subject if issuer_cert is not None else subj)
            .public_key(pub)
            .serial_number(serial)
            .not_valid_before(self.at)
            .not_valid_after(not_after or self.at + timedelta(days=p.validity_days))
        )
        for ext, critical in extensions:
            builder = builder.add_extension(ext, critical=critical)
        bc_value = (p.is_ca, p.path_length if p.is_ca else None) if bc is _DEFAULT else bc
        if bc_value is not None:
            ca_flag, path_len = bc_value  # type: ignore[misc]
            builder = builder.add_extension(x509.BasicConstraints(ca=ca_flag, path_length=path_len), critical=bc_critical)
        if eku:
            builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
        names = t.san if san is _DEFAULT else san
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in names]),  # type: ignore[attr-defined]
                                            critical=False)
        ocsp_url = (OCSP if t.ocsp else None) if ocsp is _DEFAULT else ocsp
        if ocsp_url:
            builder = builder.add_extension(x509.AuthorityInformationAccess([
                x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(str(ocsp_url)))
            ]), critical=False)
        h = issuer_hash(issuer_key) if signature_hash is _DEFAULT else signature_hash
        cert = builder.sign(issuer_key, h)
        if sha1:
            cert = resign_certificate_sha1(cert, issuer_key)
        return cert.public_bytes(serialization.Encoding.PEM)

    def csr_obj(
        self,
        subject: Mapping[str, str | None] | Sequence[tuple[str, str]],
        *,
        key: str = "p256",
        signature_hash: Any = _DEFAULT,
    ) -> x509.CertificateSigningRequest:
        private = self.key(key)
        h = issuer_hash(private) if signature_hash is _DEFAULT else signature_hash
        return x509.CertificateSigningRequestBuilder().subject_name(_name(subject)).sign(private, h)

    def csr(self, subject: Mapping[str, str | None] | Sequence[tuple[str, str]], **kw: Any) -> bytes:
        return self.csr_obj(subject, **kw).public_bytes(serialization.Encoding.PEM)


# -- the cases ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    kind: str  # "cert" | "csr"
    requirement: str  # exactly what the library must cite
    what: str
    profile: str
    build: Callable[[Factory], bytes]
    cso_name: str | None = CSO
    expected_cn: str | None = None
    serial_registry: tuple[str, ...] | None = None

    @property
    def filename(self) -> str:
        return f"{self.kind}_{slug(self.requirement)}_{self.what}.pem"

    def context(self) -> PolicyContext:
        return PolicyContext(cso_name=self.cso_name, expected_cn=self.expected_cn, serial_registry=self.serial_registry)

    def manifest(self) -> dict[str, Any]:
        return {"kind": self.kind, "requirement": self.requirement, "profile": self.profile, "cso_name": self.cso_name,
                "expected_cn": self.expected_cn,
                "serial_registry": list(self.serial_registry) if self.serial_registry is not None else None}


def _oversize_secc(f: Factory) -> bytes:
    url = OCSP + "/" + "x" * 400
    return f.cert("secc", ocsp=url)


def _cert(req: str, what: str, profile: str, **mutation: Any) -> Case:
    return Case("cert", req, what, profile, lambda f: f.cert(profile, **mutation))


def _csr(req: str, what: str, profile: str, subject: Mapping[str, str | None] | Sequence[tuple[str, str]],
         build: Callable[[Factory], bytes] | None = None, **kw: Any) -> Case:
    ctx_keys = {k: kw.pop(k) for k in ("expected_cn", "serial_registry") if k in kw}
    return Case("csr", req, what, profile, build or (lambda f: f.csr(subject, **kw)), **ctx_keys)


STATION = {"O": CSO, "CN": "SN-0001"}
SECC = {"C": "DE", "O": CSO, "DC": "CPO", "CN": "DE*EXA*E1234567"}
CSMS = {"O": CSO, "CN": "csms.example.com"}
ST, CS = "charging-station", "csms-server-ecdsa"
KU_ISO = "ISO15118-2 Annex F (KeyUsage critical)"
ST_O = "A00.FR.509/A02.FR.13"

CASES: tuple[Case, ...] = (
    # --- charging-station certificate (A00.FR.5xx)
    _cert("A00.FR.514", "eku_present", ST, eku=[ExtendedKeyUsageOID.CLIENT_AUTH]),
    _cert("A00.FR.511", "san_present", ST, san=["cs0001.example.com"]),
    _cert("A00.FR.511", "cn_url", ST, subject={"CN": "wss://csms.example.com/ocpp/SN-0001"}),
    _cert("A00.FR.511", "cn_ip", ST, subject={"CN": "192.0.2.7"}),
    _cert("A00.FR.511", "cn_missing", ST, subject={"CN": None}),
    _cert(ST_O, "wrong_o", ST, subject={"O": "Other CSO"}),
    _cert(ST_O, "no_o", ST, subject={"O": None}),
    _cert("A00.FR.502", "rsa1024", ST, key="rsa1024"),
    _cert("A00.FR.503", "p192", ST, key="p192"),
    _cert("A00.FR.504", "dsa", ST, key="dsa2048"),
    _cert("A00.FR.504", "sha1", ST, sha1=True),
    _cert("A00.FR.501-503", "ed25519", ST, key="ed25519"),
    _cert("A00.FR.508", "serial_32bit", ST, serial=0x12345678),
    _cert("A00.FR.512", "ku_not_critical", ST, ku_critical=False),
    _cert("A00.FR.512", "ku_missing", ST, ku_missing=True),
    _cert("A00.FR.512", "ku_cert_sign", ST, key_usage={"digital_signature", "key_agreement", "key_cert_sign"}),
    _cert("RFC5280-4.2.1.9", "bc_missing", ST, bc=None),
    _cert("RFC5280-4.2.1.9", "bc_not_critical", ST, bc_critical=False),
    _cert("RFC5280-4.2.1.9", "bc_ca_true", ST, bc=(True, None)),
    _cert("RFC5280-4.1.2.5", "zero_validity", ST, not_after=AT),
    # --- CSMS server certificates
    _cert("A00.FR.510", "cn_not_fqdn", CS, subject={"CN": "CSMS server"}, san=["CSMS server"]),
    _cert("A00.FR.510", "cn_url", CS, subject={"CN": "https://csms.example.com/"}, san=["https://csms.example.com/"]),
    _cert("RFC6125-6.4.4", "server_no_san", CS, san=[]),
    _cert("RFC6125-6.4.4", "server_san_lacks_cn", CS, san=["other.example.com"]),
    _cert("A00.FR.503", "p521", CS, key="p521"),
    _cert("A00.FR.514", "eku_server_auth", CS, eku=[ExtendedKeyUsageOID.SERVER_AUTH]),
    _cert("A00.FR.502", "csms_rsa1024", "csms-server-rsa", key="rsa1024"),
    _cert("A00.FR.502", "p256_key", "csms-server-rsa", key="p256"),
    # --- roots and the manufacturer hierarchy
    _cert("A00.FR.509", "root_no_o", "csms-root", subject={"O": None}),
    _cert("A00.FR.601", "root_not_self_issued", "csms-root", issuer="manufacturer-root"),
    _cert("RFC5280-4.2.1.9", "root_ca_false", "csms-root", bc=(False, None)),
    _cert("RFC5280-4.2.1.9", "manufacturer_root_pathlen_missing", "manufacturer-root", bc=(True, None)),
    _cert("A00.FR.514", "firmware_eku_code_signing", "firmware-signing", eku=[ExtendedKeyUsageOID.CODE_SIGNING]),
    _cert("A00.FR.512", "firmware_ku_key_encipherment", "firmware-signing", key_usage={"digital_signature", "key_encipherment"}),
    _cert("A00.FR.504", "cso_sub_ca_sha1", "cso-sub-ca", sha1=True),
    _cert("RFC5280-4.2.1.9", "cso_sub_ca_pathlen_1", "cso-sub-ca", bc=(True, 1)),
    # --- ISO 15118-2 CAs
    _cert("ISO15118-2 Annex F", "v2g_root_dc_missing", "v2g-root", subject={"DC": None}),
    _cert("V2G2-006", "v2g_root_sha384", "v2g-root", signature_hash=hashes.SHA384()),
    _cert("V2G2-009", "cpo_sub_ca_1_pathlen_0", "cpo-sub-ca-1", bc=(True, 0)),
    _cert("V2G2-009", "cpo_sub_ca_2_pathlen_1", "cpo-sub-ca-2", bc=(True, 1)),
    _cert("V2G2-009", "cpo_sub_ca_2_pathlen_missing", "cpo-sub-ca-2", bc=(True, None)),
    _cert("V2G2-009", "mo_sub_ca_1_pathlen_2", "mo-sub-ca-1", bc=(True, 2)),
    _cert(KU_ISO, "cpo_sub_ca_2_ku_not_critical", "cpo-sub-ca-2", ku_critical=False),
    _cert(KU_ISO, "cpo_sub_ca_1_ku_digital_signature", "cpo-sub-ca-1", key_usage={"key_cert_sign", "crl_sign", "digital_signature"}),
    # --- SECC leaf (ISO 15118-2)
    Case("cert", "V2G2-010", "oversize", "secc", _oversize_secc),
    _cert("V2G2-006", "sha384", "secc", signature_hash=hashes.SHA384()),
    _cert("V2G2-007", "p384", "secc", key="p384"),
    _cert("V2G2-007", "rsa2048", "secc", key="rsa2048"),
    _cert("Hubject 3.7 (DC=CPO)", "secc_dc_missing", "secc", subject={"DC": None}),
    _cert("Hubject 3.7 (DC=CPO)", "secc_dc_v2g", "secc", subject={"DC": "V2G"}),
    _cert("M06 remarks (responderURL)", "secc_aia_ocsp_missing", "secc", ocsp=None),
    _cert("ISO3166-1", "secc_c_missing", "secc", subject={"C": None}),
    _cert("ISO3166-1", "secc_c_lowercase", "secc", subject={"C": "de"}),
    _cert("A02 alt. scenario (CN = SeccId)", "secc_cn_url", "secc", subject={"CN": "https://secc.example.com"}),
    _cert("A00.FR.514", "secc_eku_present", "secc", eku=[ExtendedKeyUsageOID.SERVER_AUTH]),
    _cert(KU_ISO, "secc_ku_not_critical", "secc", ku_critical=False),
    _cert(KU_ISO, "secc_ku_missing_key_agreement", "secc", key_usage={"digital_signature"}),
    _cert("V2G2-009", "secc_bc_not_critical", "secc", bc_critical=False),
    _cert("A00.FR.504", "secc_sha1", "secc", sha1=True),
    # --- ISO 15118-20
    _cert("ISO15118-20 (ecdsa-with-SHA512/Ed448)", "secc20_sha256", "secc-20", signature_hash=hashes.SHA256()),
    _cert("ISO15118-20 (P-521/Ed448)", "secc20_p256", "secc-20", key="p256"),
    # --- contract and OEM provisioning
    _cert("ISO15118-2 eMAID (14-15 chars)", "contract_cn_too_long", "contract", subject={"CN": "DEEXAC1234567890X"}),
    _cert("M06 remarks", "contract_aia_ocsp_missing", "contract", ocsp=None),
    _cert("ISO15118-2 PCID (17-18 chars)", "oem_provisioning_cn_short", "oem-provisioning", subject={"CN": "PCID1"}),
    # --- CSRs: charging station
    _csr("A00.FR.502", "rsa1024", ST, STATION, key="rsa1024"),
    _csr("A00.FR.503", "p192", ST, STATION, key="p192"),
    _csr("A00.FR.504", "dsa", ST, STATION, key="dsa2048"),
    _csr("A00.FR.501-503", "ed25519", ST, STATION, key="ed25519"),
    _csr("A00.FR.504", "sha1", ST, STATION, lambda f: resign_csr_sha1(f.csr_obj(STATION), f.key("p256"))
         .public_bytes(serialization.Encoding.PEM)),
    _csr("A00.FR.506", "sha224", ST, STATION, signature_hash=hashes.SHA224()),
    _csr("RFC2986", "bad_signature", ST, STATION, lambda f: corrupt_csr_signature(f.csr_obj(STATION))
         .public_bytes(serialization.Encoding.PEM)),
    _csr("A00.FR.511", "cn_url", ST, {"O": CSO, "CN": "https://cs.example.com/SN-0001"}),
    _csr("A00.FR.511", "cn_ws_url", ST, {"O": CSO, "CN": "ws:cs.example.com"}),
    _csr("A00.FR.511", "cn_ipv4", ST, {"O": CSO, "CN": "10.1.2.3"}),
    _csr("A00.FR.511", "cn_ipv6", ST, {"O": CSO, "CN": "[2001:db8::1]"}),
    _csr("A00.FR.511", "cn_missing", ST, {"O": CSO}),
    _csr("A00.FR.511", "cn_trailing_space", ST, {"O": CSO, "CN": "SN-0001 "}),
    _csr("A00.FR.511", "two_cns", ST, [("O", CSO), ("CN", "SN-0001"), ("CN", "SN-0002")]),
    _csr("A00.FR.511", "cn_not_expected", ST, STATION, expected_cn="SN-0002"),
    _csr("A00.FR.511", "cn_not_registered", ST, STATION, serial_registry=("SN-0002", "SN-0003")),
    _csr(ST_O, "wrong_o", ST, {"O": "Other CSO", "CN": "SN-0001"}),
    _csr(ST_O, "no_o", ST, {"CN": "SN-0001"}),
    _csr(ST_O, "two_os", ST, [("O", CSO), ("O", CSO), ("CN", "SN-0001")]),
    # --- CSRs: CSMS server
    _csr("A00.FR.510", "cn_not_fqdn", CS, {"O": CSO, "CN": "csms server"}),
    _csr("A00.FR.510", "cn_ip", CS, {"O": CSO, "CN": "192.0.2.1"}),
    _csr("A00.FR.502", "csms_rsa1024", "csms-server-rsa", CSMS, key="rsa1024"),
    _csr("A00.FR.503", "p521", CS, CSMS, key="p521"),
    # --- CSRs: SECC
    _csr("V2G2-007", "secc_p384", "secc", SECC, key="p384"),
    _csr("V2G2-007", "secc_rsa2048", "secc", SECC, key="rsa2048"),
    _csr("Hubject 3.7 (DC=CPO)", "secc_dc_missing", "secc", {**SECC, "DC": None}),
    _csr("ISO3166-1", "secc_c_missing", "secc", {**SECC, "C": None}),
    _csr("A02 alt. scenario (CN = SeccId)", "secc_cn_ip", "secc", {**SECC, "CN": "192.0.2.9"}),
    _csr("ISO15118-20 (P-521/Ed448)", "secc20_p256", "secc-20", SECC, key="p256"),
    _csr("ISO15118-20 (P-521/Ed448)", "secc20_ed25519", "secc-20", SECC, key="ed25519"),
)


def _check_unique() -> None:
    names = [c.filename for c in CASES]
    dupes = {n for n in names if names.count(n) > 1}
    assert not dupes, dupes


_check_unique()


def write_corpus(outdir: Path | str, factory: Factory | None = None) -> list[Path]:
    """Write every corpus file and ``manifest.json`` into ``outdir``; return the files."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    f = factory or Factory()
    paths = []
    for case in CASES:
        path = out / case.filename
        path.write_bytes(case.build(f))
        paths.append(path)
    manifest = {c.filename: c.manifest() for c in CASES}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0].startswith("-"):
        print("usage: python -m tests.pki.corpus OUTDIR", file=sys.stderr)
        return 2
    paths = write_corpus(args[0])
    print(f"wrote {len(paths)} corpus files and manifest.json to {args[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
