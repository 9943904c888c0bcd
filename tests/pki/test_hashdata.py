"""CertificateHashData against pyca's OCSP CertID, canonical matching, and CertificateHashDataChain."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jsonschema
import ocpp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp
from hypothesis import given, settings
from hypothesis import strategies as st

from ocppsec.pki import (
    CertificateHashData,
    CertificateHashDataChain,
    Hierarchy,
    HierarchyConfig,
    InputError,
    UsageError,
    compute_hash_data,
    find_matching,
)

from .corpus import AT, CSO, Factory
from .helpers import issue

OCPP_SCHEMAS = Path(ocpp.__file__).parent
HASHES = {"SHA256": hashes.SHA256(), "SHA384": hashes.SHA384(), "SHA512": hashes.SHA512()}

RSA_CONFIG = f"""
[network]
cso_name = "{CSO}"
[[ca]]
name = "csms-root"
profile = "csms-root"
key = "rsa3072"
subject = {{ CN = "RSA Root", O = "{CSO}" }}
[[certificate]]
name = "csms-server-rsa"
profile = "csms-server-rsa"
issuer = "csms-root"
subject = {{ CN = "csms.example.com", O = "{CSO}" }}
"""


@pytest.fixture(scope="module")
def rsa_hierarchy() -> Hierarchy:
    return Hierarchy.build(HierarchyConfig.from_toml(RSA_CONFIG), at=AT)


def ocsp_cert_id(cert: x509.Certificate, issuer: x509.Certificate, alg: str) -> tuple[str, str, str]:
    req = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, HASHES[alg]).build()
    return req.issuer_name_hash.hex(), req.issuer_key_hash.hex(), format(req.serial_number, "x")


def _pairs(h521: Hierarchy, h448: Hierarchy, rsa_h: Hierarchy) -> dict[str, tuple[x509.Certificate, x509.Certificate]]:
    station = issue(h521, "charging-station")
    secc = issue(h521, "secc")
    secc20 = issue(h521, "secc-20")
    secc448 = issue(h448, "secc-20")
    rsa_leaf = rsa_h.certificates["csms-server-rsa"]
    return {
        "ec-p256-issuer": (station.certificate, h521.ca("csms-root").certificate),
        "ec-p256-sub-ca": (secc.certificate, h521.ca("cpo-sub-ca-2").certificate),
        "ec-p521-issuer": (secc20.certificate, h521.ca("cpo-sub-ca-2-20").certificate),
        "ed448-issuer": (secc448.certificate, h448.ca("cpo-sub-ca-2-20").certificate),
        "rsa-issuer": (rsa_leaf.certificate, rsa_h.ca("csms-root").certificate),
        "rsa-root-itself": (rsa_h.ca("csms-root").certificate, rsa_h.ca("csms-root").certificate),
        "ec-root-itself": (h521.ca("v2g-root").certificate, h521.ca("v2g-root").certificate),
    }


@pytest.mark.parametrize("alg", sorted(HASHES))
@pytest.mark.parametrize("pair", ["ec-p256-issuer", "ec-p256-sub-ca", "ec-p521-issuer", "ed448-issuer", "rsa-issuer",
                                  "rsa-root-itself", "ec-root-itself"])
def test_hash_data_equals_the_ocsp_cert_id(h521: Hierarchy, h448: Hierarchy, rsa_hierarchy: Hierarchy,
                                           pair: str, alg: str) -> None:
    cert, issuer = _pairs(h521, h448, rsa_hierarchy)[pair]
    hd = compute_hash_data(cert, issuer, alg)
    assert hd.hash_algorithm == alg
    assert (hd.issuer_name_hash, hd.issuer_key_hash, hd.serial_number) == ocsp_cert_id(cert, issuer, alg)
    assert hd.issuer_name_hash == hd.issuer_name_hash.lower()  # one canonical case
    assert len(hd.issuer_name_hash) == 2 * HASHES[alg].digest_size
    if cert == issuer:
        assert compute_hash_data(cert, None, alg) == hd  # a root is its own issuer


def test_hash_algorithm_names_are_accepted_loosely_and_emitted_canonically(h521: Hierarchy) -> None:
    cert, issuer = issue(h521, "charging-station").certificate, h521.ca("csms-root").certificate
    for name in ("sha256", "SHA-256", "Sha256"):
        assert compute_hash_data(cert, issuer, name).hash_algorithm == "SHA256"
    with pytest.raises(UsageError):
        compute_hash_data(cert, issuer, "MD5")
    with pytest.raises(InputError, match="not the issuer"):
        compute_hash_data(cert, h521.ca("v2g-root").certificate)


def test_serial_has_no_leading_zeros(factory: Factory, h521: Hierarchy) -> None:
    root = h521.ca("csms-root")
    for serial, text in ((4095, "fff"), (0x0100000000000000AB, "100000000000000ab"), (0x8000000000000000, "8000000000000000")):
        pem = factory.cert("charging-station", serial=serial)
        cert = x509.load_pem_x509_certificate(pem)
        hd = compute_hash_data(cert, root.certificate)
        assert hd.serial_number == text
        assert hd.serial_number == ocsp_cert_id(cert, root.certificate, "SHA256")[2]
        assert not hd.serial_number.startswith("0")  # DER has a 00 octet before 0x80...; the hex has none
    wire = CertificateHashData("SHA256", "AB" * 32, "CD" * 32, "0FFF")
    assert wire.matches(CertificateHashData("SHA256", "ab" * 32, "cd" * 32, "fff"))
    assert not wire.matches(CertificateHashData("SHA256", "ab" * 32, "cd" * 32, "fff0"))
    assert not wire.matches(CertificateHashData("SHA384", "ab" * 32, "cd" * 32, "fff"))


def test_from_ocpp_checks_field_limits() -> None:
    good = {"hashAlgorithm": "SHA256", "issuerNameHash": "AB" * 32, "issuerKeyHash": "cd" * 32, "serialNumber": "0FFF"}
    hd = CertificateHashData.from_ocpp(good)
    assert hd.to_ocpp() == good  # stored as sent; compared canonically
    for bad in ({**good, "hashAlgorithm": "MD5"}, {**good, "serialNumber": "1" * 41}, {**good, "issuerNameHash": ""},
                {**good, "issuerKeyHash": "zz"}, {**good, "issuerNameHash": "a" * 129},
                {k: v for k, v in good.items() if k != "serialNumber"}):
        with pytest.raises(InputError):
            CertificateHashData.from_ocpp(bad)


HEX = st.text(alphabet="0123456789abcdef", min_size=1, max_size=40)


def _flip_case(text: str, mask: list[bool]) -> str:
    return "".join(c.upper() if m else c for c, m in zip(text, mask + [False] * len(text), strict=False))


@settings(max_examples=150, deadline=None)
@given(
    alg=st.sampled_from(["SHA256", "SHA384", "SHA512"]),
    name_hash=st.binary(min_size=32, max_size=64).map(bytes.hex),
    key_hash=st.binary(min_size=32, max_size=64).map(bytes.hex),
    serial=st.integers(min_value=1, max_value=2**159),
    zeros=st.integers(min_value=0, max_value=3),
    mask=st.lists(st.booleans(), max_size=200),
    alg_case=st.sampled_from([str.upper, str.lower]),
)
def test_matching_is_case_insensitive_and_ignores_serial_leading_zeros(
    alg: str, name_hash: str, key_hash: str, serial: int, zeros: int, mask: list[bool], alg_case: object,
) -> None:
    canonical = CertificateHashData(alg, name_hash, key_hash, format(serial, "x"))
    serial_hex = "0" * zeros + format(serial, "x")
    if len(serial_hex) > 40:
        serial_hex = format(serial, "x")
    wire = CertificateHashData.from_ocpp({
        "hashAlgorithm": alg_case(alg),  # type: ignore[operator]
        "issuerNameHash": _flip_case(name_hash, mask),
        "issuerKeyHash": _flip_case(key_hash, mask[::-1]),
        "serialNumber": _flip_case(serial_hex, mask),
    })
    assert wire.matches(canonical) and canonical.matches(wire)
    next_serial = CertificateHashData(alg, name_hash, key_hash, format(serial + 1, "x"))
    swapped = CertificateHashData(alg, key_hash, name_hash, format(serial, "x"))
    assert not wire.matches(next_serial)
    assert wire.matches(swapped) == (key_hash == name_hash)
    assert find_matching(wire, [next_serial, canonical]) == 1
    assert find_matching(wire, [next_serial]) is None


@given(hexes=st.lists(HEX, min_size=1, max_size=5), pick=st.integers(min_value=0, max_value=4))
def test_find_matching_returns_the_first_equal_entry(hexes: list[str], pick: int) -> None:
    cands = [CertificateHashData("SHA256", "aa", "bb", h) for h in hexes]
    wanted = cands[pick % len(cands)]
    n = find_matching(CertificateHashData("sha256", "AA", "BB", "00" + wanted.serial_number.upper()), cands)
    assert n is not None and cands[n].matches(wanted)
    assert n == min(i for i, c in enumerate(cands) if c.matches(wanted))


def test_hash_data_chain_for_a_secc_chain(h521: Hierarchy) -> None:
    secc = issue(h521, "secc")
    sub2, sub1, root = h521.ca("cpo-sub-ca-2").certificate, h521.ca("cpo-sub-ca-1").certificate, h521.ca("v2g-root").certificate
    assert secc.chain == (secc.certificate, sub2, sub1)
    for alg in ("SHA256", "SHA512"):
        chain = CertificateHashDataChain.for_chain("V2GCertificateChain", secc.chain, root, alg)
        assert chain.certificate_hash_data == compute_hash_data(secc.certificate, sub2, alg)
        assert chain.child_certificate_hash_data == (compute_hash_data(sub2, sub1, alg), compute_hash_data(sub1, root, alg))
        for child, (c, i) in zip(chain.child_certificate_hash_data, ((sub2, sub1), (sub1, root)), strict=True):
            assert (child.issuer_name_hash, child.issuer_key_hash, child.serial_number) == ocsp_cert_id(c, i, alg)
        # the 2.0.1 and 2.1 GetInstalledCertificateIdsResponse schemas accept it
        for version in ("v201", "v21"):
            schema = json.loads((OCPP_SCHEMAS / version / "schemas" / "GetInstalledCertificateIdsResponse.json").read_text())
            jsonschema.validate({"status": "Accepted", "certificateHashDataChain": [chain.to_ocpp()]}, schema)
    # a leaf-only chain (CSMS root issued it) has no children
    station = issue(h521, "charging-station")
    lone = CertificateHashDataChain.for_chain("ChargingStationCertificate", station.chain, station.root)
    assert "childCertificateHashData" not in lone.to_ocpp()
    with pytest.raises(InputError):
        CertificateHashDataChain.for_chain("V2GCertificateChain", [])
    with pytest.raises(InputError):  # the top sub-CA's issuer (the root) is needed
        CertificateHashDataChain.for_chain("V2GCertificateChain", secc.chain)


def test_v16_schema_accepts_hash_data(h521: Hierarchy) -> None:
    hd = compute_hash_data(h521.ca("csms-root").certificate)
    schema = json.loads((OCPP_SCHEMAS / "v16" / "schemas" / "DeleteCertificate.json").read_text())
    jsonschema.validate({"certificateHashData": hd.to_ocpp()}, schema)


def test_issuer_with_a_compressed_ec_point(tmp_path: Path) -> None:
    """An openssl-made CA whose SPKI holds a compressed point: issuerKeyHash covers the bytes in the certificate."""
    def run(*args: str | Path) -> None:
        proc = subprocess.run(["openssl", *map(str, args)], capture_output=True, check=False, timeout=30)
        assert proc.returncode == 0, proc.stderr

    run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", tmp_path / "k.pem")
    run("ec", "-in", tmp_path / "k.pem", "-conv_form", "compressed", "-out", tmp_path / "ck.pem")
    run("req", "-new", "-x509", "-key", tmp_path / "ck.pem", "-subj", "/O=Example CSO/CN=Compressed Root", "-days", "30",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-out", tmp_path / "root.pem")
    run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", tmp_path / "l.key",
        "-subj", "/O=Example CSO/CN=SN-1", "-out", tmp_path / "l.csr")
    run("x509", "-req", "-in", tmp_path / "l.csr", "-CA", tmp_path / "root.pem", "-CAkey", tmp_path / "ck.pem",
        "-set_serial", "0x00ABCDEF0123456789", "-days", "10", "-out", tmp_path / "leaf.pem")
    root = x509.load_pem_x509_certificate((tmp_path / "root.pem").read_bytes())
    leaf = x509.load_pem_x509_certificate((tmp_path / "leaf.pem").read_bytes())
    assert b"\x03\x22\x00\x02" in root.tbs_certificate_bytes or b"\x03\x22\x00\x03" in root.tbs_certificate_bytes
    for alg in HASHES:
        for cert in (root, leaf):
            hd = compute_hash_data(cert, root, alg)
            assert (hd.issuer_name_hash, hd.issuer_key_hash, hd.serial_number) == ocsp_cert_id(cert, root, alg)
    assert compute_hash_data(leaf, root).serial_number == "abcdef0123456789"
