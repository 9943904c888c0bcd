"""The CSR policy pipeline (check_csr / verify_csr / make_csr) and subject-name handling."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocppsec.pki import (
    PROFILES,
    InputError,
    KeySpec,
    LocalKey,
    OcppsecError,
    PolicyContext,
    PolicyError,
    UsageError,
    check_csr,
    generate_key,
    get_profile,
    load_certificates,
    load_csr,
    make_csr,
    make_name,
    name_attributes,
    name_value,
    verify_csr,
)

from .corpus import CSO, make_key

STATION = get_profile("charging-station")
SECC = get_profile("secc")
SECC20 = get_profile("secc-20")
CTX = PolicyContext(cso_name=CSO)


@pytest.fixture(scope="module")
def p256() -> object:
    return generate_key(KeySpec.P256)


def ids(report: object) -> list[str]:
    return [v.requirement for v in report.violations]  # type: ignore[attr-defined]


def test_good_station_csr_passes_and_carries_everest_style_extensions(p256: object) -> None:
    csr = make_csr(p256, {"O": CSO, "CN": "SN-0001"}, STATION)  # type: ignore[arg-type]
    report = verify_csr(csr, STATION, CTX)
    assert report.ok and report.key == "EC secp256r1" and report.subject == {"O": [CSO], "CN": ["SN-0001"]}
    ku = csr.extensions.get_extension_for_class(x509.KeyUsage)
    bc = csr.extensions.get_extension_for_class(x509.BasicConstraints)
    assert ku.critical and ku.value.digital_signature and ku.value.key_agreement and not ku.value.key_cert_sign
    assert bc.critical and bc.value.ca is False
    assert csr.signature_hash_algorithm is not None and csr.signature_hash_algorithm.name == "sha256"
    assert load_csr(csr.public_bytes(Encoding.PEM)).subject == csr.subject
    assert load_csr(csr.public_bytes(Encoding.DER)).subject == csr.subject


def test_every_violation_is_reported_at_once() -> None:
    key = make_key("rsa1024")
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Other CSO"),
        x509.NameAttribute(NameOID.COMMON_NAME, "https://cs.example.com"),
    ])).sign(key, hashes.SHA224())
    report = check_csr(csr, STATION, PolicyContext(cso_name=CSO, expected_cn="SN-1", serial_registry={"SN-1"}))
    assert ids(report) == ["A00.FR.502", "A00.FR.506", "A00.FR.509/A02.FR.13", "A00.FR.511", "A00.FR.511", "A00.FR.511"]
    with pytest.raises(PolicyError) as exc:
        verify_csr(csr, STATION, CTX)
    text = str(exc.value)
    assert "[A00.FR.502]" in text and "[A00.FR.509/A02.FR.13]" in text and "[A00.FR.511]" in text
    assert exc.value.requirement == "A00.FR.502" and exc.value.exit_code == 1


@pytest.mark.parametrize("o", [CSO, "Other CSO", "example cso", CSO + " "])
def test_station_o_must_equal_the_cso_name_exactly(p256: object, o: str) -> None:
    csr = make_csr(p256, {"O": o, "CN": "SN-0001"})  # type: ignore[arg-type]
    assert check_csr(csr, STATION, CTX).ok == (o == CSO)
    assert check_csr(csr, STATION, PolicyContext()).ok  # no CSO name known: nothing to compare


def test_o_rule_is_for_station_and_csms_certificates_only(p256: object) -> None:
    csr = make_csr(p256, {"O": "Someone", "CN": "csms.example.com"})  # type: ignore[arg-type]
    assert ids(check_csr(csr, get_profile("csms-server-ecdsa"), CTX)) == ["A00.FR.509"]
    secc = make_csr(p256, {"C": "DE", "O": "Another CPO", "DC": "CPO", "CN": "DE*ABC*E1"})  # type: ignore[arg-type]
    assert check_csr(secc, SECC, CTX).ok


@pytest.mark.parametrize("cn", ["http://cs.example.com", "wss://csms/ocpp/SN1", "HTTPS:x", "ws:cs", "cs.example.com/ocpp",
                                "192.0.2.1", "10.0.0.255", "::1", "[2001:db8::7]", "fe80::1"])
def test_station_cn_that_looks_like_a_url_or_ip_is_refused(p256: object, cn: str) -> None:
    csr = make_csr(p256, {"O": CSO, "CN": cn})  # type: ignore[arg-type]
    assert ids(check_csr(csr, STATION, CTX)) == ["A00.FR.511"]
    secc = make_csr(p256, {"C": "DE", "O": CSO, "DC": "CPO", "CN": cn})  # type: ignore[arg-type]
    assert ids(check_csr(secc, SECC, CTX)) == ["A02 alt. scenario (CN = SeccId)"]


@pytest.mark.parametrize("cn", ["SN-0001", "CP_12345", "0123456789", "EVB-P1234567", "DE*ABC*E1234*5"])
def test_station_serial_numbers_are_accepted(p256: object, cn: str) -> None:
    assert check_csr(make_csr(p256, {"O": CSO, "CN": cn}), STATION, CTX).ok  # type: ignore[arg-type]


def test_serial_registry_and_expected_cn(p256: object) -> None:
    csr = make_csr(p256, {"O": CSO, "CN": "SN-0042"})  # type: ignore[arg-type]
    assert check_csr(csr, STATION, PolicyContext(cso_name=CSO, serial_registry={"SN-0042", "SN-0043"})).ok
    assert ids(check_csr(csr, STATION, PolicyContext(cso_name=CSO, serial_registry={"SN-0043"}))) == ["A00.FR.511"]
    assert ids(check_csr(csr, STATION, PolicyContext(serial_registry=frozenset()))) == ["A00.FR.511"]
    assert check_csr(csr, STATION, PolicyContext(expected_cn="SN-0042")).ok
    assert ids(check_csr(csr, STATION, PolicyContext(expected_cn="sn-0042"))) == ["A00.FR.511"]
    # the registry holds station serials: it does not apply to an SECC ID
    secc = make_csr(p256, {"C": "DE", "O": CSO, "DC": "CPO", "CN": "DE*ABC*E1"})  # type: ignore[arg-type]
    assert check_csr(secc, SECC, PolicyContext(serial_registry={"SN-0042"})).ok
    assert not check_csr(secc, SECC, PolicyContext(expected_cn="DE*ABC*E2")).ok


@pytest.mark.parametrize(("spec", "ok"), [("rsa2048", True), ("rsa3072", True), ("p256", True), ("p384", True),
                                          ("p521", True), ("rsa1024", False), ("p192", False), ("dsa2048", False),
                                          ("ed25519", False), ("ed448", False)])
def test_station_key_types_and_sizes(spec: str, ok: bool) -> None:
    key = make_key(spec)
    h = None if spec.startswith("ed") else hashes.SHA256()
    csr = x509.CertificateSigningRequestBuilder().subject_name(make_name({"O": CSO, "CN": "SN-1"})).sign(key, h)
    report = check_csr(csr, STATION, CTX)
    assert report.ok == ok, ids(report)
    if not ok:
        assert len(report.violations) == 1
        assert ids(report)[0] in {"A00.FR.502", "A00.FR.503", "A00.FR.504", "A00.FR.501-503"}


@pytest.mark.parametrize(("spec", "want"), [("p256", []), ("p384", ["V2G2-007"]), ("p521", ["V2G2-007"]),
                                            ("rsa2048", ["V2G2-007"]), ("ed448", ["V2G2-007"])])
def test_secc_needs_p256(spec: str, want: list[str]) -> None:
    key = make_key(spec)
    csr = make_csr(key, {"C": "DE", "O": CSO, "DC": "CPO", "CN": "DE*ABC*E1"}, SECC)
    assert ids(check_csr(csr, SECC, CTX)) == want


@pytest.mark.parametrize(("spec", "ok"), [("p521", True), ("ed448", True), ("p256", False), ("p384", False), ("rsa2048", False)])
def test_iso15118_20_secc_accepts_p521_and_ed448(spec: str, ok: bool) -> None:
    key = make_key(spec)
    csr = make_csr(key, {"C": "DE", "O": CSO, "DC": "CPO", "CN": "DE*ABC*E1"}, SECC20)
    report = check_csr(csr, SECC20, CTX)
    assert report.ok == ok, ids(report)
    if spec == "p521":
        assert csr.signature_hash_algorithm is not None and csr.signature_hash_algorithm.name == "sha512"
    if spec == "ed448":
        assert csr.signature_hash_algorithm is None and report.key == "Ed448"


def test_make_csr_with_rsa_uses_key_encipherment() -> None:
    csr = make_csr(make_key("rsa2048"), {"O": CSO, "CN": "SN-1"}, STATION)
    ku = csr.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_encipherment and not ku.key_agreement
    assert check_csr(csr, STATION, CTX).ok


def test_make_csr_accepts_a_signing_key_and_refuses_bad_subjects(p256: object) -> None:
    csr = make_csr(LocalKey(p256), {"O": CSO, "CN": "SN-1"})  # type: ignore[arg-type]
    assert csr.is_signature_valid
    with pytest.raises(UsageError):
        make_csr(p256, {"O": CSO, "CN": "SN-1", "EMAIL": "x@example.com"})  # type: ignore[arg-type]
    for country in ("DEU", "0&", "D1", "D"):  # "0&" used to escape as pyca's ValueError (PrintableString)
        with pytest.raises(InputError) as exc:
            make_csr(p256, {"C": country, "CN": "SN-1"})  # type: ignore[arg-type]
        assert exc.value.requirement == "ISO3166-1"
    with pytest.raises(InputError):
        make_csr(p256, {"CN": "S" * 65})  # type: ignore[arg-type]
    with pytest.raises(InputError):  # 33 characters, 66 octets: used to escape as pyca's ValueError
        make_csr(p256, {"CN": "é" * 33})  # type: ignore[arg-type]
    assert make_csr(p256, {"CN": "é" * 32}).subject == make_name({"CN": "é" * 32})  # type: ignore[arg-type]


# -- names round trip and fuzzing ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fuzz_key() -> object:
    return generate_key(KeySpec.P256)


VALUE = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=64)
SUBJECTS = st.fixed_dictionaries({}, optional={
    "C": st.text(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), min_size=2, max_size=2),
    "ST": VALUE, "L": VALUE, "O": VALUE, "OU": VALUE, "DC": VALUE, "CN": VALUE,
})


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(attrs=SUBJECTS)
def test_names_round_trip_through_der(fuzz_key: object, attrs: dict[str, str]) -> None:
    if len(attrs.get("CN", "").encode()) > 64:  # RFC 5280 / pyca bound: 64 octets of UTF-8
        with pytest.raises(InputError):
            make_name(attrs)
        return
    name = make_name(attrs)
    assert name_attributes(name) == {k: [v] for k, v in attrs.items()}
    csr = load_csr(make_csr(fuzz_key, attrs).public_bytes(Encoding.DER))  # type: ignore[arg-type]
    assert csr.subject == name
    assert name_attributes(csr.subject) == {k: [v] for k, v in attrs.items()}
    for key in ("C", "O", "DC", "CN"):
        assert name_value(csr.subject, key) == attrs.get(key)
    order = ["C", "ST", "L", "O", "OU", "DC", "CN"]
    assert list(name_attributes(name)) == [k for k in order if k in attrs]  # conventional order, whatever was given


ANY_TEXT = st.text(max_size=80)
RAW_ATTRS = st.lists(st.tuples(st.sampled_from([NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME, NameOID.DOMAIN_COMPONENT,
                                                NameOID.COUNTRY_NAME, NameOID.SERIAL_NUMBER]),
                               st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=80)),
                     max_size=6)


@pytest.mark.filterwarnings("ignore:Attribute's length:UserWarning")
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(attrs=RAW_ATTRS, profile=st.sampled_from(sorted(n for n, p in PROFILES.items() if not p.is_ca)),
       cso=st.one_of(st.none(), ANY_TEXT), expected=st.one_of(st.none(), ANY_TEXT))
def test_csr_subject_fuzz_yields_a_report(fuzz_key: object, attrs: list[tuple[x509.ObjectIdentifier, str]], profile: str,
                                          cso: str | None, expected: str | None) -> None:
    try:
        name = x509.Name([x509.NameAttribute(oid, value, _validate=False) for oid, value in attrs])
        csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(fuzz_key, hashes.SHA256())  # type: ignore[arg-type]
    except ValueError:
        return  # pyca itself refuses to encode it: nothing reaches the policy
    report = check_csr(csr, get_profile(profile), PolicyContext(cso_name=cso, expected_cn=expected))
    assert report.ok == (not report.violations)
    assert all(v.requirement and v.message for v in report.violations)
    report.to_json()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(attrs=st.dictionaries(st.sampled_from(["C", "ST", "L", "O", "OU", "DC", "CN", "SN", "x"]), ANY_TEXT, max_size=7))
def test_make_csr_fuzz_raises_only_ocppsec_errors(fuzz_key: object, attrs: dict[str, str]) -> None:
    try:
        csr = make_csr(fuzz_key, attrs, STATION)  # type: ignore[arg-type]
    except OcppsecError:
        return
    check_csr(csr, STATION, CTX)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.builds(lambda b: b"-----BEGIN CERTIFICATE REQUEST-----\n" + b, st.binary(max_size=200)),
                 st.builds(lambda b: b"\x30" + b, st.binary(max_size=200))))
def test_garbage_input_raises_only_input_errors(data: bytes) -> None:
    with pytest.raises(InputError):
        load_csr(data)
    try:
        load_certificates(data)
    except InputError:
        pass
    else:
        pytest.fail("garbage parsed as a certificate")
