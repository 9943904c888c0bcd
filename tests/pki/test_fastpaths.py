"""Fast paths give exactly what the straightforward pyca calls give: certificate templates, ledger rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa
from cryptography.x509.oid import NameOID

from ocppsec.pki import Hierarchy
from ocppsec.pki import builder as B
from ocppsec.pki.builder import CertificateRequest, build_certificate
from ocppsec.pki.keys import LocalKey
from ocppsec.pki.names import make_name
from ocppsec.pki.profiles import PROFILES

from .corpus import AT, iso20_config


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
        cert = h.issue_leaf("charging-station", ca="csms-root", subject={"O": "Example CSO", "CN": "S" * n}, at=AT).certificate
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
