"""Fast paths give exactly what the straightforward pyca calls give: certificate templates, ledger rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocppsec.pki import Hierarchy
from ocppsec.pki import builder as B
from ocppsec.pki.builder import CertificateRequest, build_certificate
from ocppsec.pki.keys import LocalKey
from ocppsec.pki.names import make_name
from ocppsec.pki.profiles import PROFILES

from .corpus import AT, CASES, Factory, iso20_config


@pytest.fixture(scope="module")
def h() -> Hierarchy:
    return Hierarchy.build(iso20_config("ed448"), at=AT)


def _slow(request: CertificateRequest, issuer: x509.Certificate, key: LocalKey) -> x509.Certificate:
    assert request.serial is not None
    return B._build_with_pyca(request, request.serial, issuer, key, ())


SUBJECTS = [
    make_name({"O": "Example CSO", "CN": "SN-0001"}),
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
def test_fast_path_equals_pyca_builder(h: Hierarchy, profile: str, ca: str) -> None:
    authority = h.ca(ca)
    assert isinstance(authority.key, LocalKey)
    p = PROFILES[profile]
    keys = [ec.generate_private_key(ec.SECP256R1()).public_key(), ec.generate_private_key(ec.SECP521R1()).public_key(),
            rsa.generate_private_key(65537, 2048).public_key(), ed448.Ed448PrivateKey.generate().public_key()]
    n = 0
    for i, subject in enumerate(SUBJECTS):
        for j, at in enumerate(TIMES):
            pub = keys[(i + j) % len(keys)]
            for ocsp in (None, "http://ocsp.example.com/x"):
                serial = SERIALS[(i * 7 + j) % len(SERIALS)]
                request = CertificateRequest(p, subject, pub, at, 30 + j * 4000, serial, (), ocsp, None if j % 2 else "http://crl/x")
                fast = build_certificate(request, issuer_certificate=authority.certificate, issuer_key=authority.key)
                slow = _slow(request, authority.certificate, authority.key)
                assert fast.tbs_certificate_bytes == slow.tbs_certificate_bytes, (profile, i, j, ocsp)
                assert fast.signature_algorithm_oid == slow.signature_algorithm_oid
                fast.verify_directly_issued_by(authority.certificate)
                n += 1
    assert n == len(SUBJECTS) * len(TIMES) * 2
    shapes = [k for k in B._templates if k[0] == authority.certificate]
    assert shapes and all(B._templates[k] is not None for k in shapes)  # the templates were admitted and used


def test_bad_input_still_raises_like_pyca(h: Hierarchy) -> None:
    authority = h.ca("csms-root")
    p = PROFILES["charging-station"]
    pub = ec.generate_private_key(ec.SECP256R1()).public_key()
    subject = make_name({"O": "Example CSO", "CN": "SN-1"})
    build_certificate(CertificateRequest(p, subject, pub, AT, None, 5), issuer_certificate=authority.certificate,
                      issuer_key=authority.key)  # template exists now
    for serial in (0, -1, 2**159):
        with pytest.raises(ValueError, match="serial"):
            build_certificate(CertificateRequest(p, subject, pub, AT, None, serial),
                              issuer_certificate=authority.certificate, issuer_key=authority.key)
    with pytest.raises(ValueError):
        build_certificate(CertificateRequest(p, subject, pub, datetime(1949, 12, 31, tzinfo=UTC), None, 7),
                          issuer_certificate=authority.certificate, issuer_key=authority.key)


@pytest.mark.parametrize("curve_or_rsa", ["rsa", "p384"])
def test_fast_path_with_rsa_and_p384_issuers(curve_or_rsa: str) -> None:
    priv = rsa.generate_private_key(65537, 2048) if curve_or_rsa == "rsa" else ec.generate_private_key(ec.SECP384R1())
    key = LocalKey(priv, "root")
    root = build_certificate(CertificateRequest(PROFILES["csms-root"], make_name({"O": "X", "CN": "Root"}), key.public_key(), AT, None, 9),
                             issuer_certificate=None, issuer_key=key)
    for n in range(3):
        pub = ec.generate_private_key(ec.SECP256R1()).public_key()
        request = CertificateRequest(PROFILES["charging-station"], make_name({"O": "X", "CN": f"SN-{n}"}), pub, AT, None, 1000 + n,
                                     (), "http://ocsp.example.com/root")
        fast = build_certificate(request, issuer_certificate=root, issuer_key=key)
        assert fast.tbs_certificate_bytes == _slow(request, root, key).tbs_certificate_bytes
        fast.verify_directly_issued_by(root)


def test_ledger_record_pem_and_fingerprint_are_pycas(h: Hierarchy) -> None:
    """record_for writes PEM and SHA-256 fingerprint itself; they must equal pyca's, at every base64 line length."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.serialization import Encoding

    from ocppsec.pki.ledger import record_for

    lengths: set[int] = set()
    for n in range(1, 400):  # until a DER length whose base64 fills its last line exactly has been seen
        if 0 in lengths and n > 60:
            break
        subject = {"O": "Example CSO" + "x" * (n // 64), "CN": "S" * (1 + n % 64)}  # CN: at most 64 octets
        cert = h.issue_leaf("charging-station", ca="csms-root", subject=subject, at=AT).certificate
        lengths.add(len(cert.public_bytes(Encoding.DER)) % 48)
        rec = record_for(cert, issuer_ca="csms-root", role="charging-station", issued_at=AT)
        assert rec.pem == cert.public_bytes(Encoding.PEM).decode()
        assert rec.fingerprint == cert.fingerprint(hashes.SHA256()).hex()
        assert rec.subject == cert.subject.rfc4514_string() and not rec.is_ca
    assert 0 in lengths  # a DER length whose base64 fills its last line exactly


def test_issue_many_records_what_record_for_reads_back(tmp_path: Path) -> None:
    """issue_many builds ledger rows from the values it encoded; they equal rows read back from the certificates."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from ocppsec.pki.csr import make_csr
    from ocppsec.pki.directory import PkiDirectory
    from ocppsec.pki.hierarchy import HierarchyConfig
    from ocppsec.pki.ledger import record_for

    pki = PkiDirectory.init(tmp_path / "pki", HierarchyConfig.default(), passphrase=None, at=AT)
    profile = PROFILES["charging-station"]
    subjects = [{"O": "Example CSO", "CN": "SN-0001"}, {"O": "Example CSO", "CN": "Zähler, \"Nr\" +1"}, {"O": "Example CSO", "CN": "#x"}]
    csrs = [make_csr(ec.generate_private_key(ec.SECP256R1()), s, profile) for s in subjects]
    csrs.append(make_csr(rsa.generate_private_key(65537, 2048), {"O": "Example CSO", "CN": "SN-RSA"}, profile))
    at = AT.replace(microsecond=123456)
    results = pki.issue_many(csrs, ca="csms-root", at=at, station="CS-1")
    for res in results:
        cert = res.issued.certificate
        assert res.record == record_for(cert, issuer_ca="csms-root", role="charging-station", issued_at=at, station="CS-1")
        assert pki.ledger.find_serial(res.record.serial, "csms-root")[0].pem == cert.public_bytes(Encoding.PEM).decode()
    pki.close()


# -- the CSR policy reads the request's DER once: same report as through pyca's accessors ---------------
_OID_HEX = {"CN": "550403", "O": "55040a", "C": "550406", "DC": "0992268993f22c640119", "ST": "550408", "L": "550407",
            "OU": "55040b", "serialNumber": "550405"}
_P256 = ec.generate_private_key(ec.SECP256R1())


def _der(tag: int, body: bytes) -> bytes:
    from ocppsec.pki._der import encode_tlv

    return encode_tlv(tag, body)


def _csr_with_subject(subject_der: bytes, key: ec.EllipticCurvePrivateKey = _P256) -> x509.CertificateSigningRequest:
    """A P-256 request whose subject is exactly ``subject_der`` (signed by hand: pyca would re-encode it)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    spki = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    info = _der(0x30, b"\x02\x01\x00" + subject_der + spki + b"\xa0\x00")
    signature = key.sign(info, ec.ECDSA(hashes.SHA256()))
    return x509.load_der_x509_csr(_der(0x30, info + bytes.fromhex("300a06082a8648ce3d040302") + _der(0x03, b"\x00" + signature)))


def _raw_name(rdns: list[list[tuple[str, int, bytes]]]) -> bytes:
    return _der(0x30, b"".join(
        _der(0x31, b"".join(_der(0x30, _der(0x06, bytes.fromhex(_OID_HEX[k])) + _der(tag, v)) for k, tag, v in rdn))
        for rdn in rdns))


def _pyca_reading(csr: x509.CertificateSigningRequest) -> tuple[dict[str, list[str]], str, bytes] | None:
    """name_attributes, rfc4514_string and the re-encoding of pyca's Name; None when pyca raises or warns."""
    import warnings

    from ocppsec.pki.names import name_attributes

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            name = csr.subject
            return name_attributes(name), name.rfc4514_string(), name.public_bytes()
        except (ValueError, Warning):
            return None


def _assert_name_read_like_pyca(subject_der: bytes) -> bool:
    """The one-pass reading equals pyca's, and the subject DER is what pyca's builder would write; True if read."""
    from ocppsec.pki.csr import PolicyContext, _check_csr, _check_csr_with_pyca, _csr_parts
    from ocppsec.pki.names import read_simple_name

    try:
        csr = _csr_with_subject(subject_der)
    except ValueError:  # pyca refuses the request (e.g. a PrintableString with '*'): never reaches the policy
        assert read_simple_name(subject_der) is None
        return False
    parts = _csr_parts(csr)
    assert parts is not None and parts[1] == subject_der
    fast = read_simple_name(subject_der)
    pyca = _pyca_reading(csr)
    if fast is None:
        return False
    assert pyca is not None, subject_der.hex()
    assert fast == pyca[:2]
    assert pyca[2] == subject_der  # so the certificate may carry the request's subject bytes as they are
    profile = PROFILES["charging-station"]
    checked = _check_csr(csr, profile)
    assert checked.subject_der == subject_der and checked.subject_text == pyca[1]
    assert checked.report == _check_csr_with_pyca(csr, profile, PolicyContext()).report
    return True


U, P, IA5, BMP, T61 = 0x0C, 0x13, 0x16, 0x1E, 0x14
NAME_CASES: list[tuple[list[list[tuple[str, int, bytes]]], bool]] = [
    ([[("O", U, b"Example CSO")], [("CN", U, b"SN-0001")]], True),
    ([[("C", P, b"DE")], [("O", U, "Ünïcødé GmbH".encode())], [("DC", IA5, b"CPO")], [("CN", U, b"DE*EXA*E1234567")]], True),
    ([[("CN", U, 'Zähler, "Nr" +1; <a> \\ b'.encode())]], True),
    ([[("CN", U, b"#x")], [("O", U, b" lead")], [("OU", U, b"trail ")], [("L", U, b" ")], [("ST", U, b"a\x00b")]], True),
    ([[("O", U, b"")], [("CN", U, b"x" * 64)]], True),
    ([[("CN", P, b"Printable (ok) = +,-./:?'")]], True),
    ([], True),
    ([[("CN", U, b"x" * 65)]], False),  # pyca warns: CN over 64 octets
    ([[("CN", U, b"")]], False),  # pyca warns: empty CN
    ([[("C", P, b"DEU")]], False),  # pyca warns: C not 2 characters
    ([[("CN", U, b"\xff\xfe")]], False),  # not UTF-8: pyca raises
    ([[("CN", P, b"not*printable@")]], False),
    ([[("CN", IA5, "Zähler".encode())]], False),
    ([[("CN", BMP, "SN".encode("utf-16-be"))]], False),
    ([[("CN", T61, b"SN")]], False),
    ([[("serialNumber", P, b"1234")], [("CN", U, b"SN")]], False),  # attribute type outside ATTRIBUTE_OIDS
    ([[("CN", U, b"a"), ("O", U, b"b")]], False),  # multi-valued RDN
    ([[("O", U, b"o" * 130)], [("CN", U, b"SN")]], False),  # RDN longer than 127 octets
]


@pytest.mark.parametrize(("rdns", "read"), NAME_CASES)
def test_simple_names_read_like_pyca(rdns: list[list[tuple[str, int, bytes]]], read: bool) -> None:
    assert _assert_name_read_like_pyca(_raw_name(rdns)) is read


def test_long_names_read_like_pyca() -> None:
    """Names of 128 octets and more (long-form outer length) are read too."""
    rdns = [[("C", P, b"DE")], [("ST", U, b"s" * 60)], [("O", U, b"o" * 60)], [("OU", U, b"u" * 60)], [("DC", IA5, b"CPO")],
            [("CN", U, b"c" * 64)]]
    assert len(_raw_name(rdns)) > 255
    assert _assert_name_read_like_pyca(_raw_name(rdns[2:]))  # 128-255 octets
    assert _assert_name_read_like_pyca(_raw_name(rdns))


_ATTR = st.tuples(st.sampled_from(sorted(_OID_HEX)), st.sampled_from([U, U, P, IA5, BMP]),
                  st.one_of(st.text(max_size=70).map(lambda s: s.encode("utf-8", "surrogatepass")),
                            st.text(alphabet="ABCxyz09 '()+,-./:=?*#\\\"", max_size=8).map(str.encode),
                            st.binary(max_size=70)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(_ATTR, min_size=1, max_size=2), max_size=5))
def test_random_names_read_like_pyca_or_left_to_it(rdns: list[list[tuple[str, int, bytes]]]) -> None:
    _assert_name_read_like_pyca(_raw_name(rdns))


def test_check_csr_fast_path_equals_pyca_accessors(factory: Factory) -> None:
    """Every corpus request and a request of each signature algorithm: the same report both ways."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    from ocppsec.pki.csr import PolicyContext, _check_csr, _check_csr_with_pyca, _csr_parts, make_csr

    cases = [(x509.load_pem_x509_csr(c.build(factory)), c.profile, c.context()) for c in CASES if c.kind == "csr"]
    assert len(cases) > 20
    station = {"O": "Example CSO", "CN": "SN-0001"}
    rsa_key = rsa.generate_private_key(65537, 2048)
    for h in (hashes.SHA256(), hashes.SHA384(), hashes.SHA512()):
        for key in (rsa_key, ec.generate_private_key(ec.SECP384R1())):
            csr = x509.CertificateSigningRequestBuilder().subject_name(make_name(station)).sign(key, h)
            cases.append((csr, "charging-station", PolicyContext()))
    pss = padding.PSS(padding.MGF1(hashes.SHA256()), 32)
    cases.append((x509.CertificateSigningRequestBuilder().subject_name(make_name(station))
                  .sign(rsa_key, hashes.SHA256(), rsa_padding=pss), "charging-station", PolicyContext()))
    cases.append((make_csr(ed448.Ed448PrivateKey.generate(), station), "secc-20", PolicyContext()))
    fast_signatures = 0
    for csr, profile, ctx in cases:
        fast = _check_csr(csr, PROFILES[profile], ctx)
        slow = _check_csr_with_pyca(csr, PROFILES[profile], ctx)
        assert fast.report == slow.report, (profile, fast.report, slow.report)
        assert fast.subject_text == csr.subject.rfc4514_string()
        parts = _csr_parts(csr)
        assert parts is not None
        assert parts[0] == csr.tbs_certrequest_bytes and parts[4] == csr.signature
        if fast.public_key is not None:
            assert fast.public_key == csr.public_key()
        fast_signatures += parts[3].hex() in ("300a06082a8648ce3d040302", "300d06092a864886f70d01010b0500")
    assert fast_signatures > 10


def _compressed_point_csr(key: ec.EllipticCurvePrivateKey, subject: x509.Name) -> x509.CertificateSigningRequest:
    """A request whose SPKI carries the compressed point (pyca's builder always writes it uncompressed)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from ocppsec.pki._der import split_sequence

    algorithm = split_sequence(key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))[0]
    point = key.public_key().public_bytes(Encoding.X962, PublicFormat.CompressedPoint)
    spki = _der(0x30, algorithm + _der(0x03, b"\x00" + point))
    info = _der(0x30, b"\x02\x01\x00" + subject.public_bytes() + spki + b"\xa0\x00")
    signature = key.sign(info, ec.ECDSA(hashes.SHA256()))
    return x509.load_der_x509_csr(_der(0x30, info + bytes.fromhex("300a06082a8648ce3d040302") + _der(0x03, b"\x00" + signature)))


def test_issue_many_builds_what_pycas_builder_builds(tmp_path: Path) -> None:
    """Batch issuance from DER pieces (request subject and SPKI reused as they are) equals pyca's builder,
    for plain subjects, subjects only pyca reads, compressed points, RSA and P-384 keys, and odd times."""
    from ocppsec.pki.csr import make_csr
    from ocppsec.pki.directory import PkiDirectory
    from ocppsec.pki.hierarchy import HierarchyConfig

    pki = PkiDirectory.init(tmp_path / "pki", HierarchyConfig.default(), passphrase=None, at=AT)
    profile = PROFILES["charging-station"]
    authority = pki.ca("csms-root")
    station = {"O": "Example CSO", "CN": "SN-0001"}
    multi = x509.Name([x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example CSO"),
                                                       x509.NameAttribute(NameOID.COMMON_NAME, "SN-7")])])
    bmp = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example CSO"),
                     x509.NameAttribute(NameOID.COMMON_NAME, "SN-8", _type=x509.name._ASN1Type.BMPString)])
    p256 = ec.generate_private_key(ec.SECP256R1())
    csrs = [
        make_csr(ec.generate_private_key(ec.SECP256R1()), station, profile),
        make_csr(ec.generate_private_key(ec.SECP256R1()), {"O": "Example CSO", "CN": "Zähler, \"Nr\" +1"}, profile),
        make_csr(ec.generate_private_key(ec.SECP384R1()), station, profile),
        make_csr(rsa.generate_private_key(65537, 2048), station, profile),
        x509.CertificateSigningRequestBuilder().subject_name(multi).sign(p256, B.hashes.SHA256()),
        x509.CertificateSigningRequestBuilder().subject_name(bmp).sign(p256, B.hashes.SHA256()),
        _compressed_point_csr(p256, make_name(station)),
    ]
    assert csrs[-1].public_key() == p256.public_key()
    for at in (AT, AT.replace(microsecond=5), AT.astimezone(timezone(timedelta(hours=-5))), datetime(2049, 6, 1)):
        for batch in (csrs, csrs[:1], csrs[::-1]):
            for res in pki.issue_many(batch, ca="csms-root", at=at, validity_days=None if at is AT else 9000):
                cert = res.issued.certificate
                csr = next(c for c in batch if c.public_key() == cert.public_key() and c.subject == cert.subject)
                request = CertificateRequest(profile, csr.subject, csr.public_key(), at, None if at is AT else 9000,
                                             cert.serial_number, (), "http://ocsp.example.com/csms-root", None)
                expected = _slow(request, authority.certificate, authority.key)  # type: ignore[arg-type]
                assert cert.tbs_certificate_bytes == expected.tbs_certificate_bytes
                cert.verify_directly_issued_by(authority.certificate)
                assert res.record.subject == csr.subject.rfc4514_string()
                assert (res.record.not_before, res.record.not_after) == (cert.not_valid_before_utc, cert.not_valid_after_utc)
    pki.close()
