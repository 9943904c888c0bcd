"""The issuance pipeline: certificates byte for byte what pyca's builder makes, policy verdicts, ledger rows."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocppsec.pki import Hierarchy
from ocppsec.pki.builder import CertificateRequest, CertificateTemplate, build_certificate, signature_hash_for
from ocppsec.pki.csr import CheckedRequest, CsrReport, PolicyContext, check_csr, make_csr
from ocppsec.pki.directory import PkiDirectory
from ocppsec.pki.errors import DuplicateError, PolicyError, UsageError
from ocppsec.pki.hierarchy import CertificateAuthority, HierarchyConfig
from ocppsec.pki.issuance import DEFAULT_BACKDATE, IssuancePipeline
from ocppsec.pki.keys import LocalKey, PrivateKey, PublicKey, SigningKey
from ocppsec.pki.ledger import CertificateRecord, record_for
from ocppsec.pki.ledger_sql import open_ledger
from ocppsec.pki.names import make_name, name_attributes
from ocppsec.pki.pem import pem_blocks
from ocppsec.pki.profiles import PROFILES, Profile

from .corpus import AT, CASES, Factory, iso20_config

CSO = "Example CSO"
STATION = {"O": CSO, "CN": "SN-0001"}


@pytest.fixture(scope="module")
def h() -> Hierarchy:
    return Hierarchy.build(iso20_config("ed448"), at=AT)


def _key_usage(names: frozenset[str]) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature="digital_signature" in names, content_commitment="content_commitment" in names,
        key_encipherment="key_encipherment" in names, data_encipherment="data_encipherment" in names,
        key_agreement="key_agreement" in names, key_cert_sign="key_cert_sign" in names, crl_sign="crl_sign" in names,
        encipher_only=False, decipher_only=False,
    )


def reference(request: CertificateRequest, issuer: x509.Certificate | None, key: PrivateKey,
              extra: Sequence[tuple[x509.ExtensionType, bool]] = ()) -> x509.Certificate:
    """The certificate written out as one plain pyca builder chain: what every issuance path must equal."""
    p = request.profile
    usage = p.key_usage
    if not p.is_ca and isinstance(request.public_key, rsa.RSAPublicKey) and "key_agreement" in usage:
        usage = (usage - {"key_agreement"}) | {"key_encipherment"}
    assert request.serial is not None
    b = (x509.CertificateBuilder().subject_name(request.subject)
         .issuer_name(issuer.subject if issuer is not None else request.subject).public_key(request.public_key)
         .serial_number(request.serial).not_valid_before(request.not_before).not_valid_after(request.not_after)
         .add_extension(x509.BasicConstraints(ca=p.is_ca, path_length=p.path_length if p.is_ca else None),
                        critical=p.critical_extensions)
         .add_extension(_key_usage(usage), critical=p.critical_extensions)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(request.public_key), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(  # type: ignore[arg-type]
             issuer.public_key() if issuer is not None else request.public_key), critical=False))
    if request.san_dns:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in request.san_dns]), critical=False)
    if request.ocsp_url:
        b = b.add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
            AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(request.ocsp_url))]), critical=False)
    if request.crl_url:
        b = b.add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
            [x509.UniformResourceIdentifier(request.crl_url)], None, None, None)]), critical=False)
    for ext, critical in extra:
        b = b.add_extension(ext, critical=critical)
    return b.sign(key, signature_hash_for(key.public_key()))


def _private(ca: CertificateAuthority) -> PrivateKey:
    assert isinstance(ca.key, LocalKey)
    return ca.key.private_key


SUBJECTS = [
    make_name({"O": CSO, "CN": "SN-0001"}),
    make_name({"C": "DE", "O": "Ünïcødé GmbH", "DC": "CPO", "CN": "DE*EXA*E1234567"}),
    x509.Name([x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, "b"),
                                               x509.NameAttribute(NameOID.ORGANIZATION_NAME, "a")])]),
    x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "printable", _type=x509.name._ASN1Type.PrintableString)]),
    x509.Name([]),
]
TIMES = [AT, AT.replace(microsecond=987654), datetime(2049, 12, 31, 23, 59, 59), datetime(2051, 6, 1, tzinfo=UTC),
         AT.astimezone(timezone(timedelta(hours=-5))), datetime(1950, 1, 1, tzinfo=UTC)]
SERIALS = [1, 127, 128, 255, 256, 2**63, 2**64 - 1, 2**126 + 5, 2**159 - 1]


@pytest.mark.parametrize(("profile", "ca"), [("charging-station", "csms-root"), ("csms-server-rsa", "csms-root"),
                                             ("secc", "cpo-sub-ca-2"), ("secc-20", "cpo-sub-ca-2-20"),
                                             ("cpo-sub-ca-2", "cpo-sub-ca-1"), ("firmware-signing", "manufacturer-root")])
def test_template_equals_plain_pyca_builder(h: Hierarchy, profile: str, ca: str) -> None:
    """build_certificate and one CertificateTemplate reused across shapes give the reference bytes."""
    authority = h.ca(ca)
    p = PROFILES[profile]
    keys: list[PublicKey] = [ec.generate_private_key(ec.SECP256R1()).public_key(),
                             ec.generate_private_key(ec.SECP521R1()).public_key(),
                             rsa.generate_private_key(65537, 2048).public_key(), ed448.Ed448PrivateKey.generate().public_key()]
    templates = {(ocsp, crl): CertificateTemplate(p, issuer_certificate=authority.certificate, issuer_key=authority.key,
                                                  ocsp_url=ocsp, crl_url=crl)
                 for ocsp in (None, "http://ocsp.example.com/x") for crl in (None, "http://crl/x")}
    n = 0
    for i, subject in enumerate(SUBJECTS):
        for j, at in enumerate(TIMES):
            pub = keys[(i + j) % len(keys)]
            for ocsp in (None, "http://ocsp.example.com/x"):
                crl = None if j % 2 else "http://crl/x"
                serial = SERIALS[(i * 7 + j) % len(SERIALS)]
                request = CertificateRequest(p, subject, pub, at, 30 + j * 4000, serial, (), ocsp, crl)
                expected = reference(request, authority.certificate, _private(authority))
                one = build_certificate(request, issuer_certificate=authority.certificate, issuer_key=authority.key)
                reused = templates[(ocsp, crl)].build(request)
                assert one.tbs_certificate_bytes == expected.tbs_certificate_bytes == reused.tbs_certificate_bytes, (i, j)
                assert one.signature_algorithm_oid == expected.signature_algorithm_oid
                one.verify_directly_issued_by(authority.certificate)
                reused.verify_directly_issued_by(authority.certificate)
                n += 1
    assert n == len(SUBJECTS) * len(TIMES) * 2


def test_roots_san_and_extra_extensions_equal_plain_pyca_builder(h: Hierarchy) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    root = CertificateRequest(PROFILES["csms-root"], make_name({"O": "X", "CN": "Root"}), key.public_key(), AT, None, 9)
    made = build_certificate(root, issuer_certificate=None, issuer_key=LocalKey(key))
    assert made.tbs_certificate_bytes == reference(root, None, key).tbs_certificate_bytes
    ca = h.ca("csms-root")
    server = CertificateRequest(PROFILES["csms-server-rsa"], make_name({"O": CSO, "CN": "csms.example.com"}),
                                rsa.generate_private_key(65537, 2048).public_key(), AT, None, 77, ("csms.example.com",))
    extra = ((x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False),)
    made = build_certificate(server, issuer_certificate=ca.certificate, issuer_key=ca.key, extra_extensions=extra)
    assert made.tbs_certificate_bytes == reference(server, ca.certificate, _private(ca), extra).tbs_certificate_bytes
    assert made.extensions.get_extension_for_class(x509.KeyUsage).value.key_encipherment  # RSA: no keyAgreement


def test_bad_input_still_raises_like_pyca(h: Hierarchy) -> None:
    authority = h.ca("csms-root")
    p = PROFILES["charging-station"]
    pub = ec.generate_private_key(ec.SECP256R1()).public_key()
    subject = make_name({"O": CSO, "CN": "SN-1"})
    for serial in (0, -1, 2**159):
        with pytest.raises(ValueError, match="serial"):
            build_certificate(CertificateRequest(p, subject, pub, AT, None, serial),
                              issuer_certificate=authority.certificate, issuer_key=authority.key)
    with pytest.raises(ValueError):
        build_certificate(CertificateRequest(p, subject, pub, datetime(1949, 12, 31, tzinfo=UTC), None, 7),
                          issuer_certificate=authority.certificate, issuer_key=authority.key)


@pytest.mark.parametrize("curve_or_rsa", ["rsa", "p384"])
def test_rsa_and_p384_issuers(curve_or_rsa: str) -> None:
    priv = rsa.generate_private_key(65537, 2048) if curve_or_rsa == "rsa" else ec.generate_private_key(ec.SECP384R1())
    key = LocalKey(priv, "root")
    root = build_certificate(CertificateRequest(PROFILES["csms-root"], make_name({"O": "X", "CN": "Root"}), key.public_key(),
                                                AT, None, 9), issuer_certificate=None, issuer_key=key)
    for n in range(3):
        pub = ec.generate_private_key(ec.SECP256R1()).public_key()
        request = CertificateRequest(PROFILES["charging-station"], make_name({"O": "X", "CN": f"SN-{n}"}), pub, AT, None,
                                     1000 + n, (), "http://ocsp.example.com/root")
        made = build_certificate(request, issuer_certificate=root, issuer_key=key)
        assert made.tbs_certificate_bytes == reference(request, root, priv).tbs_certificate_bytes
        made.verify_directly_issued_by(root)


# -- ledger rows ----------------------------------------------------------------------------------------
def test_ledger_record_pem_and_fingerprint_are_pycas(h: Hierarchy) -> None:
    """record_for writes PEM and SHA-256 fingerprint itself; they must equal pyca's, at every base64 line length."""
    lengths: set[int] = set()
    for n in range(1, 400):  # until a DER length whose base64 fills its last line exactly has been seen
        if 0 in lengths and n > 60:
            break
        subject = {"O": CSO + "x" * (n // 64), "CN": "S" * (1 + n % 64)}  # CN: at most 64 octets
        cert = h.issue_leaf("charging-station", ca="csms-root", subject=subject, at=AT).certificate
        lengths.add(len(cert.public_bytes(Encoding.DER)) % 48)
        rec = record_for(cert, issuer_ca="csms-root", role="charging-station", issued_at=AT)
        assert rec.pem == cert.public_bytes(Encoding.PEM).decode()
        assert rec.fingerprint == cert.fingerprint(hashes.SHA256()).hex()
        assert rec.subject == cert.subject.rfc4514_string() and not rec.is_ca
    assert 0 in lengths  # a DER length whose base64 fills its last line exactly


def test_issue_many_records_what_record_for_reads_back(tmp_path: Path) -> None:
    """The pipeline builds ledger rows from the values it put in; they equal rows read back from the certificates."""
    pki = PkiDirectory.init(tmp_path / "pki", HierarchyConfig.default(), passphrase=None, at=AT)
    profile = PROFILES["charging-station"]
    subjects = [STATION, {"O": CSO, "CN": "Zähler, \"Nr\" +1"}, {"O": CSO, "CN": "#x"}, {"O": CSO, "CN": "x" * 64}]
    csrs = [make_csr(ec.generate_private_key(ec.SECP256R1()), s, profile) for s in subjects]
    csrs.append(make_csr(rsa.generate_private_key(65537, 2048), {"O": CSO, "CN": "SN-RSA"}, profile))
    at = AT.replace(microsecond=123456)
    results = pki.issue_many(csrs, ca="csms-root", at=at, station="CS-1")
    for res in results:
        cert = res.issued.certificate
        assert res.record == record_for(cert, issuer_ca="csms-root", role="charging-station", issued_at=at, station="CS-1")
        stored = pki.ledger.find_serial(res.record.serial, "csms-root")[0]
        assert replace(stored, issued_at=at) == res.record  # the ledger keeps issued_at to the second
    pki.close()


def _tlv(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


_ECDSA_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")
_P256 = ec.generate_private_key(ec.SECP256R1())


def _signed_request(subject_der: bytes, spki: bytes | None = None,
                    key: ec.EllipticCurvePrivateKey = _P256) -> x509.CertificateSigningRequest:
    """A P-256 request with exactly these subject and SPKI bytes (signed by hand: pyca's builder re-encodes)."""
    spki = spki or key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    info = _tlv(0x30, b"\x02\x01\x00" + subject_der + spki + b"\xa0\x00")
    signature = key.sign(info, ec.ECDSA(hashes.SHA256()))
    return x509.load_der_x509_csr(_tlv(0x30, info + _ECDSA_SHA256 + _tlv(0x03, b"\x00" + signature)))


def _compressed_point_csr(key: ec.EllipticCurvePrivateKey, subject: x509.Name) -> x509.CertificateSigningRequest:
    """A request whose SPKI carries the compressed point (pyca's builder always writes it uncompressed)."""
    algorithm = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)[2:2 + 21]
    point = key.public_key().public_bytes(Encoding.X962, PublicFormat.CompressedPoint)
    return _signed_request(subject.public_bytes(), _tlv(0x30, algorithm + _tlv(0x03, b"\x00" + point)), key)


def test_issue_many_builds_what_pycas_builder_builds(tmp_path: Path) -> None:
    """Batch issuance from CSRs equals the plain builder fed with the request's subject and key, for plain
    subjects, multi-valued RDNs, BMPStrings, compressed points, RSA and P-384 keys, and odd times."""
    pki = PkiDirectory.init(tmp_path / "pki", HierarchyConfig.default(), passphrase=None, at=AT)
    profile = PROFILES["charging-station"]
    authority = pki.ca("csms-root")
    multi = x509.Name([x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.ORGANIZATION_NAME, CSO),
                                                       x509.NameAttribute(NameOID.COMMON_NAME, "SN-7")])])
    bmp = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, CSO),
                     x509.NameAttribute(NameOID.COMMON_NAME, "SN-8", _type=x509.name._ASN1Type.BMPString)])
    p256 = ec.generate_private_key(ec.SECP256R1())
    csrs = [
        make_csr(ec.generate_private_key(ec.SECP256R1()), STATION, profile),
        make_csr(ec.generate_private_key(ec.SECP256R1()), {"O": CSO, "CN": "Zähler, \"Nr\" +1"}, profile),
        make_csr(ec.generate_private_key(ec.SECP384R1()), STATION, profile),
        make_csr(rsa.generate_private_key(65537, 2048), STATION, profile),
        x509.CertificateSigningRequestBuilder().subject_name(multi).sign(p256, hashes.SHA256()),
        x509.CertificateSigningRequestBuilder().subject_name(bmp).sign(p256, hashes.SHA256()),
        _compressed_point_csr(p256, make_name(STATION)),
    ]
    assert csrs[-1].public_key() == p256.public_key()
    for at in (AT, AT.replace(microsecond=5), AT.astimezone(timezone(timedelta(hours=-5))), datetime(2031, 6, 1)):
        for batch in (csrs, csrs[:1], csrs[::-1]):
            for res in pki.issue_many(batch, ca="csms-root", at=at, validity_days=None if at is AT else 1500):
                cert = res.issued.certificate
                csr = next(c for c in batch if c.public_key() == cert.public_key() and c.subject == cert.subject)
                # notBefore lies DEFAULT_BACKDATE before the issuance time (A02.FR.06 clock skew)
                request = CertificateRequest(profile, csr.subject, csr.public_key(), at - DEFAULT_BACKDATE,
                                             None if at is AT else 1500, cert.serial_number, (),
                                             "http://ocsp.example.com/csms-root", None)
                assert cert.tbs_certificate_bytes == reference(request, authority.certificate, _private(authority)).tbs_certificate_bytes
                cert.verify_directly_issued_by(authority.certificate)
                assert res.record.subject == csr.subject.rfc4514_string()
                assert (res.record.not_before, res.record.not_after) == (cert.not_valid_before_utc, cert.not_valid_after_utc)
                assert res.report.csr is csr and res.report.ok
    pki.close()


# -- the pipeline's steps -----------------------------------------------------------------------------------
class CountingLedger:
    """A ledger (``open_ledger``) that counts transactions and can refuse the first ``clashes`` batches."""

    def __init__(self, path: Path, clashes: int = 0) -> None:
        self.inner = open_ledger(path)
        self.adds: list[int] = []
        self.clashes = clashes

    def add(self, records: Sequence[CertificateRecord]) -> None:
        self.adds.append(len(records))
        if self.clashes:
            self.clashes -= 1
            raise DuplicateError("serial clash (simulated)")
        self.inner.add(records)

    def count(self) -> int:
        return len(self.inner.all())

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def _pipeline(h: Hierarchy, tmp_path: Path, clashes: int = 0, **kwargs: object) -> tuple[IssuancePipeline, CountingLedger]:
    ledger = CountingLedger(tmp_path / "ledger.db", clashes)
    return IssuancePipeline(h.ca("csms-root"), PROFILES["charging-station"], ledger=ledger,
                            context=PolicyContext(cso_name=CSO), **kwargs), ledger  # type: ignore[arg-type]


def test_steps_one_by_one_give_what_issue_one_gives(h: Hierarchy, tmp_path: Path) -> None:
    pipeline, ledger = _pipeline(h, tmp_path, ocsp_url="http://ocsp.example.com/csms-root", backdate=timedelta(minutes=5))
    csr = make_csr(ec.generate_private_key(ec.SECP256R1()), STATION, PROFILES["charging-station"])
    checked = pipeline.validate(csr)
    assert isinstance(checked, CheckedRequest) and isinstance(checked, CsrReport) and checked.ok
    assert checked.subject_name == csr.subject and checked.public_key == csr.public_key()
    builder = pipeline.apply_profile(checked, at=AT, serial=4242)
    cert = pipeline.sign(builder)
    assert cert.not_valid_before_utc == AT - timedelta(minutes=5)
    request = CertificateRequest(PROFILES["charging-station"], csr.subject, csr.public_key(), AT - timedelta(minutes=5),
                                 None, 4242, (), "http://ocsp.example.com/csms-root")
    assert cert.tbs_certificate_bytes == reference(request, h.ca("csms-root").certificate, _private(h.ca("csms-root"))).tbs_certificate_bytes
    one = pipeline.issue_one(csr, at=AT, station="CS-9")
    assert one.record.station == "CS-9" and one.record == record_for(one.issued.certificate, issuer_ca="csms-root",
                                                                      role="charging-station", issued_at=AT, station="CS-9")
    assert ledger.adds == [1] and ledger.count() == 1
    assert one.issued.sub_cas == () and one.issued.root == h.ca("csms-root").certificate


def test_a_batch_is_one_transaction_and_a_clash_signs_it_again(h: Hierarchy, tmp_path: Path) -> None:
    pipeline, ledger = _pipeline(h, tmp_path, clashes=1)
    csrs = [make_csr(ec.generate_private_key(ec.SECP256R1()), {"O": CSO, "CN": f"SN-{n}"}, PROFILES["charging-station"])
            for n in range(5)]
    results = pipeline.issue_many(csrs, at=AT)
    assert ledger.adds == [5, 5] and ledger.count() == 5  # refused once, then signed again and recorded at once
    assert sorted(r.serial for r in ledger.all()) == sorted(r.record.serial for r in results)
    (tmp_path / "stuck").mkdir()
    stuck, stuck_ledger = _pipeline(h, tmp_path / "stuck", clashes=3)
    with pytest.raises(DuplicateError, match="after 3 attempts"):
        stuck.issue_many(csrs[:2], at=AT)
    assert stuck_ledger.count() == 0


def test_policy_failures_issue_nothing(h: Hierarchy, tmp_path: Path) -> None:
    pipeline, ledger = _pipeline(h, tmp_path)
    profile = PROFILES["charging-station"]
    good = make_csr(ec.generate_private_key(ec.SECP256R1()), STATION, profile)
    other_cso = make_csr(ec.generate_private_key(ec.SECP256R1()), {"O": "Other CSO", "CN": "SN-2"}, profile)
    with pytest.raises(PolicyError, match=r"request 2") as info:
        pipeline.issue_many([good, other_cso], at=AT)
    assert [v.requirement for v in info.value.violations] == [profile.cite("o")]
    with pytest.raises(PolicyError):
        pipeline.issue_one(good, at=AT, ctx=PolicyContext(cso_name=CSO, expected_cn="SN-9999"))
    assert ledger.adds == [] and ledger.count() == 0
    # a request that did not pass (or passed another profile) is refused by the later steps too
    failed = pipeline.validate(other_cso)
    secc = check_csr(good, PROFILES["secc"])
    for request in (failed, secc):
        with pytest.raises(UsageError, match="has not passed the charging-station policy"):
            pipeline.issue_checked([request], at=AT)
    assert ledger.count() == 0


def test_pipeline_refuses_a_profile_the_ca_does_not_issue(h: Hierarchy) -> None:
    with pytest.raises(UsageError, match="is issued by") as info:
        IssuancePipeline(h.ca("manufacturer-root"), PROFILES["charging-station"])
    assert info.value.requirement == PROFILES["charging-station"].cite("issuer")
    with pytest.raises(UsageError, match="positive number of days"):
        IssuancePipeline(h.ca("csms-root"), PROFILES["charging-station"], validity_days=0)


def test_without_a_ledger_rows_are_made_but_kept_nowhere(h: Hierarchy) -> None:
    pipeline = IssuancePipeline(h.ca("cpo-sub-ca-2"), PROFILES["secc"], context=PolicyContext(cso_name=CSO))
    csr = make_csr(ec.generate_private_key(ec.SECP256R1()), {"C": "DE", "O": CSO, "DC": "CPO", "CN": "DE*EXA*E1"},
                   PROFILES["secc"])
    result = pipeline.issue_one(csr, at=AT)
    assert result.record.issuer_ca == "cpo-sub-ca-2" and result.record.role == "secc"
    assert result.issued.sub_cas == h.ca("cpo-sub-ca-2").sub_cas and len(result.issued.sub_cas) == 2


# -- the policy: verdicts, and nothing raised for what pyca loads --------------------------------------------
def test_reports_of_the_corpus_and_of_every_signature_algorithm(factory: Factory) -> None:
    """Every corpus request and a request of each common signature algorithm: the verdict the corpus names."""
    cases = [(x509.load_pem_x509_csr(c.build(factory)), c) for c in CASES if c.kind == "csr"]
    assert len(cases) > 20
    for csr, case in cases:
        report = check_csr(csr, PROFILES[case.profile], case.context())
        assert isinstance(report, CheckedRequest)
        assert report.subject == name_attributes(csr.subject) and report.subject_text == csr.subject.rfc4514_string()
        assert (report.public_key == csr.public_key()) if report.public_key is not None else report.key == "unsupported"
        assert case.requirement in {v.requirement for v in report.violations}, case.filename
    rsa_key = rsa.generate_private_key(65537, 2048)
    for hash_ in (hashes.SHA256(), hashes.SHA384(), hashes.SHA512()):
        for key in (rsa_key, ec.generate_private_key(ec.SECP384R1())):
            csr = x509.CertificateSigningRequestBuilder().subject_name(make_name(STATION)).sign(key, hash_)
            assert check_csr(csr, PROFILES["charging-station"]).ok, hash_.name
    pss = padding.PSS(padding.MGF1(hashes.SHA256()), 32)
    csr = x509.CertificateSigningRequestBuilder().subject_name(make_name(STATION)).sign(rsa_key, hashes.SHA256(), rsa_padding=pss)
    assert check_csr(csr, PROFILES["charging-station"]).ok
    secc = {"C": "DE", "O": CSO, "DC": "CPO", "CN": "DE*EXA*E1"}
    assert check_csr(make_csr(ed448.Ed448PrivateKey.generate(), secc), PROFILES["secc-20"]).ok


def test_a_signature_by_another_key_is_reported(factory: Factory) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    spki = other.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    csr = _signed_request(make_name(STATION).public_bytes(), spki)  # signed by _P256, carries other's key
    report = check_csr(csr, PROFILES["charging-station"])
    assert [v.requirement for v in report.violations] == ["RFC2986"]


def test_unreadable_subject_is_a_violation_not_an_exception() -> None:
    bad_utf8 = _tlv(0x30, _tlv(0x31, _tlv(0x30, _tlv(0x06, bytes.fromhex("550403")) + _tlv(0x0C, b"\xff\xfe"))))
    csr = _signed_request(bad_utf8)
    with pytest.raises(ValueError):
        _ = csr.subject  # pyca refuses to read it
    report = check_csr(csr, PROFILES["charging-station"])
    assert not report.ok and report.subject == {} and "not a readable X.501 Name" in report.violations[-1].message


_OID_HEX = {"CN": "550403", "O": "55040a", "C": "550406", "DC": "0992268993f22c640119", "ST": "550408", "L": "550407",
            "OU": "55040b", "serialNumber": "550405"}
U, P, IA5, BMP = 0x0C, 0x13, 0x16, 0x1E
_ATTR = st.tuples(st.sampled_from(sorted(_OID_HEX)), st.sampled_from([U, U, P, IA5, BMP]),
                  st.one_of(st.text(max_size=70).map(lambda s: s.encode("utf-8", "surrogatepass")),
                            st.text(alphabet="ABCxyz09 '()+,-./:=?*#\\\"", max_size=8).map(str.encode),
                            st.binary(max_size=70)))


def _raw_name(rdns: list[list[tuple[str, int, bytes]]]) -> bytes:
    return _tlv(0x30, b"".join(
        _tlv(0x31, b"".join(_tlv(0x30, _tlv(0x06, bytes.fromhex(_OID_HEX[k])) + _tlv(tag, v)) for k, tag, v in rdn))
        for rdn in rdns))


@pytest.mark.filterwarnings("ignore:Attribute's length must be")  # pyca warns about odd C / CN lengths
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(_ATTR, min_size=1, max_size=2), max_size=5))
def test_random_subjects_are_reported_and_issued_as_pyca_reads_them(h: Hierarchy, rdns: list[list[tuple[str, int, bytes]]]) -> None:
    """Whatever subject a request pyca loads carries, check_csr reports it (never raises); what passes is
    issued with the subject pyca reads from the request."""
    try:
        csr = _signed_request(_raw_name(rdns))
    except ValueError:  # pyca refuses the request itself
        return
    profile = Profile("any", "test", PROFILES["charging-station"].family, False, None, frozenset({"digital_signature"}),
                      PROFILES["charging-station"].allowed_keys, PROFILES["charging-station"].default_key, 30,
                      required_attributes=())
    report = check_csr(csr, profile)
    try:
        name = csr.subject
    except ValueError:
        assert not report.ok and report.subject == {}
        return
    assert report.subject == name_attributes(name) and report.subject_name == name
    if report.ok:
        cert = IssuancePipeline(h.ca("csms-root"), profile).issue_checked([report], at=AT)[0].issued.certificate
        assert cert.subject == name and cert.subject.public_bytes() == name.public_bytes()


# -- PEM framing --------------------------------------------------------------------------------------------
_REGEX_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)\r?\n?-----END \1-----\r?\n?", re.DOTALL)
_PEM_PIECES = st.sampled_from([b"-----BEGIN CERTIFICATE REQUEST-----\n", b"-----END CERTIFICATE REQUEST-----",
                               b"-----BEGIN CERTIFICATE-----\r\n", b"-----END CERTIFICATE-----\n", b"-----BEGIN X",
                               b"-----END ", b"MIIB", b"\r", b"\n", b" ", b"-", b"-----", b"garbage", b"-----BEGIN a-----\n"])


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(_PEM_PIECES, st.binary(max_size=4)), max_size=12).map(b"".join))
def test_pem_blocks_frame_like_the_pem_grammar(data: bytes) -> None:
    """pem_blocks finds exactly the blocks of the regular expression that defines the framing."""
    assert pem_blocks(data) == [(m.group(1).decode(), m.group(0)) for m in _REGEX_BLOCK.finditer(data)]


def test_signing_key_protocol_is_all_a_ca_needs(h: Hierarchy) -> None:
    """A CA key that is neither in memory nor PKCS#11 (only sign(data, scheme)) issues through the pipeline."""
    from ocppsec.pki.keys import SignatureScheme

    inner = h.ca("csms-root").key
    assert isinstance(inner, LocalKey)

    class Remote:
        label = "remote"

        def public_key(self) -> PublicKey:
            return inner.public_key()

        def sign(self, data: bytes, scheme: SignatureScheme) -> bytes:
            return inner.sign(data, scheme)

    key: SigningKey = Remote()
    authority = CertificateAuthority("csms-root", PROFILES["csms-root"], h.ca("csms-root").certificate, key)
    csr = make_csr(ec.generate_private_key(ec.SECP256R1()), STATION, PROFILES["charging-station"])
    cert = IssuancePipeline(authority, PROFILES["charging-station"]).issue_one(csr, at=AT).issued.certificate
    cert.verify_directly_issued_by(authority.certificate)
