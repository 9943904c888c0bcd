"""Bad input: each answered with the spec's status, reasonCode and event; the store never changes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from ocppsec.pki import CertificateRequest, build_certificate, make_csr, make_name
from ocppsec.pki.certmgmt import (
    EVENT_INVALID_STATION_CERTIFICATE,
    CertificateUse,
    RootType,
    SignRequest,
    Status,
)
from ocppsec.pki.certmgmt.codecs import CODECS
from ocppsec.pki.hashdata import CertificateHashData, compute_hash_data
from ocppsec.pki.keys import KeySpec, LocalKey, generate_key
from ocppsec.pki.profiles import get_profile
from ocppsec.pki.versions import OcppVersion

from .conftest import CSO, NOW, SERIAL, assert_schema, make_store, pem

V201 = CODECS[OcppVersion.V201]


# -- CSMS side: SignCertificate ---------------------------------------------------------------
def _csr(subject: dict[str, str], spec: KeySpec = KeySpec.P256) -> str:
    key = LocalKey(generate_key(spec))
    return make_csr(key, subject, get_profile("charging-station")).public_bytes(Encoding.PEM).decode()


@pytest.mark.parametrize(
    ("name", "csr", "station", "needle"),
    [
        ("oversized", _csr({"O": CSO, "CN": SERIAL}) + " " * 5500, "CS001", "5500"),
        ("other-station", _csr({"O": CSO, "CN": "SN-9999"}), "CS001", "SN-9999"),
        ("wrong-cso", _csr({"O": "Evil CSO", "CN": SERIAL}), "CS001", "A00.FR.509"),
        ("trailing-garbage", _csr({"O": CSO, "CN": SERIAL}) + "garbage\n", "CS001", "outside"),
        ("der-not-pem", "MIIB", "CS001", "PEM"),
        ("certificate-not-csr", "", "CS001", "CERTIFICATE REQUEST"),
        ("unknown-station", _csr({"O": CSO, "CN": SERIAL}), "CS999", "not known"),
        ("url-as-cn", _csr({"O": CSO, "CN": "wss://csms.example.com/SN-0001"}), "CS001", "URL"),
        ("weak-key", _csr({"O": CSO, "CN": SERIAL}, KeySpec.ED448), "CS001", "not allowed"),
    ],
)
def test_sign_certificate_rejected_with_invalid_csr(name, csr, station, needle, service, hierarchy) -> None:
    if name == "certificate-not-csr":
        csr = pem(hierarchy.ca("csms-root").certificate)
    before = service.inventory.count()
    outcome, order = service.handle(station, SignRequest(csr), at=NOW)
    assert outcome.status is Status.REJECTED and order is None
    assert outcome.reason_code == "InvalidCSR"
    assert needle in (outcome.additional_info or "") + (outcome.requirement or "")
    for codec in CODECS.values():
        response = codec.sign_certificate_response(outcome)
        assert_schema(codec, "SignCertificate", response, response=True)
    assert V201.sign_certificate_response(outcome)["statusInfo"]["reasonCode"] == "InvalidCSR"
    assert service.inventory.count() == before


def test_v2g_csr_with_foreign_secc_id_is_rejected(service, store) -> None:
    from dataclasses import replace

    store.config = replace(store.config, secc_id="DEXYZS0000000000")
    csr = store.create_csr(CertificateUse.V2G, at=NOW)
    outcome, _order = service.handle("CS001", SignRequest(csr, CertificateUse.V2G), at=NOW)
    assert outcome.status is Status.REJECTED and "SECC ID" in (outcome.additional_info or "")


def test_chain_longer_than_the_station_accepts_is_not_sent(service, store) -> None:
    store_csr = make_csr(LocalKey(generate_key(KeySpec.P256)), {"O": CSO, "CN": "SN-0002"}, get_profile("charging-station"))
    outcome, order = service.handle("CS002", SignRequest(store_csr.public_bytes(Encoding.PEM).decode()), at=NOW)
    assert outcome.status is Status.REJECTED and outcome.reason_code == "TooLargeElement" and order is None
    assert outcome.requirement == "A02.FR.16"
    assert service.inventory.for_station("CS002") == []


# -- station side: CertificateSigned --------------------------------------------------------------
def _signed_for(service, store, at=NOW) -> str:
    csr = store.create_csr(CertificateUse.CHARGING_STATION, at=at)
    _, order = service.handle("CS001", SignRequest(csr), at=at)
    assert order is not None
    return order.chain_pem


def _issue(hierarchy, store_key_csr, *, subject=None, not_before=NOW, ca="csms-root", profile="charging-station"):
    """Sign the station's own CSR key directly, bending one rule (subject, validity, issuer)."""
    authority = hierarchy.ca(ca)
    req = CertificateRequest(get_profile(profile), make_name(subject or {"O": CSO, "CN": SERIAL}), store_key_csr.public_key(),
                             not_before, 30)
    cert = build_certificate(req, issuer_certificate=authority.certificate, issuer_key=authority.key)
    return pem(cert) + "".join(pem(c) for c in authority.sub_cas)


def _pending_csr(store, use=CertificateUse.CHARGING_STATION, request_id=None):
    from ocppsec.pki.pem import load_csr

    return load_csr(store.create_csr(use, at=NOW, request_id=request_id))


@pytest.mark.parametrize(
    ("case", "reason", "needle"),
    [
        ("over-10000", "TooLargeElement", "10000"),
        ("over-configured-max", "TooLargeElement", "A02.FR.16"),
        ("trailing-garbage", "InvalidCertificate", "outside the PEM"),
        ("root-inside", "InvalidCertificate", "self-signed root"),
        ("other-station", "InvalidCertificate", "matches no outstanding CSR"),
        ("wrong-cn", "InvalidCertificate", "does not match"),
        ("wrong-o", "InvalidCertificate", "A02.FR.13"),
        ("future-dated", "InvalidCertificate", "not valid yet"),
        ("expired", "InvalidCertificate", "expired"),
        ("wrong-root-type", "InvalidCertificate", "does not chain"),
        ("unknown-request-id", "UnknownRequestId", "A02.FR.26"),
        ("missing-request-id", "InvalidCertificate", "A02.FR.25"),
        ("not-pem", "InvalidCertificate", "no certificate"),
        ("wrong-order", "InvalidCertificate", "out of order"),
    ],
)
def test_certificate_signed_rejected(case, reason, needle, service, hierarchy) -> None:
    store = make_store(hierarchy, max_chain_size=1000 if case == "over-configured-max" else None)
    request_id = 5 if case in ("unknown-request-id", "missing-request-id") else None
    csr = _pending_csr(store, request_id=request_id)
    good = _issue(hierarchy, csr)
    chain, use, at, rid, need_rid = good, CertificateUse.CHARGING_STATION, NOW, request_id, False
    if case == "over-10000":
        chain = good + "\n" * (10001 - len(good))
    elif case == "over-configured-max":
        chain = good + pem(hierarchy.ca("v2g-root").certificate)
    elif case == "trailing-garbage":
        chain = good + "trailing garbage"
    elif case == "root-inside":
        chain = good + pem(hierarchy.ca("csms-root").certificate)
    elif case == "other-station":
        chain = _signed_for(service, make_store(hierarchy))
    elif case == "wrong-cn":
        chain = _issue(hierarchy, csr, subject={"O": CSO, "CN": "SN-0002"})
    elif case == "wrong-o":
        chain = _issue(hierarchy, csr, subject={"O": "Other CSO", "CN": SERIAL})
    elif case == "future-dated":
        chain = _issue(hierarchy, csr, not_before=NOW + timedelta(days=1))
    elif case == "expired":
        at = NOW + timedelta(days=40)
    elif case == "wrong-root-type":
        chain = _issue(hierarchy, csr, ca="manufacturer-root", profile="firmware-signing")
    elif case == "unknown-request-id":
        rid = 6
    elif case == "missing-request-id":
        rid, need_rid = None, True
    elif case == "not-pem":
        chain = "MIIBhello"
    elif case == "wrong-order":
        v2g_csr = _pending_csr(store, CertificateUse.V2G)
        authority = hierarchy.ca("cpo-sub-ca-2")
        req = CertificateRequest(get_profile("secc"), v2g_csr.subject, v2g_csr.public_key(), NOW, 30)
        leaf = build_certificate(req, issuer_certificate=authority.certificate, issuer_key=authority.key)
        chain, use = pem(leaf) + pem(authority.sub_cas[1]) + pem(authority.sub_cas[0]), CertificateUse.V2G
    before = store.snapshot()
    outcome = store.certificate_signed(chain, use, at=at, request_id=rid, require_request_id=need_rid)
    assert outcome.status is Status.REJECTED, outcome
    assert outcome.reason_code == reason
    assert outcome.event == EVENT_INVALID_STATION_CERTIFICATE
    assert needle in f"{outcome.additional_info} {outcome.requirement}", outcome
    assert store.snapshot() == before  # store unchanged
    assert use in store.retry_blocked  # no automatic resend until triggered (A02.FR.20)
    for codec in CODECS.values():
        assert_schema(codec, "CertificateSigned", codec.certificate_signed_response(outcome), response=True)
        note = codec.security_event_notification(outcome.event, at=NOW, tech_info=outcome.tech_info())
        assert note is not None and note["type"] in ("InvalidChargingStationCertificate", "InvalidChargePointCertificate")
        assert_schema(codec, "SecurityEventNotification", note, response=False)
    assert CODECS[OcppVersion.V16].security_event_notification(outcome.event, at=NOW)["type"] == "InvalidChargePointCertificate"
    from ocppsec.pki.certmgmt import Trigger

    store.trigger(Trigger.SIGN_CHARGING_STATION)
    assert CertificateUse.CHARGING_STATION not in store.retry_blocked


# -- InstallCertificate -----------------------------------------------------------------------------
def test_install_every_root_type_and_reinstall_replaces(hierarchy) -> None:
    store = make_store(hierarchy)
    codec = CODECS[OcppVersion.V21]
    for root_type, name in ((RootType.OEM, "oem-root"),):
        payload = codec.install_certificate_request(root_type, pem(hierarchy.ca(name).certificate))
        assert_schema(codec, "InstallCertificate", payload, response=False)
        assert store.install_root(root_type, payload["certificate"], at=NOW, max_chars=codec.install_max_chars).accepted
    count = len(store.installed())
    again = store.install_root(RootType.CSMS, pem(hierarchy.ca("csms-root").certificate), at=NOW, max_chars=5500)
    assert again.accepted and len(store.installed()) == count  # replaced, not added (M05.FR.17)
    for codec in CODECS.values():
        for root_type, wire in codec.roots.items():
            payload = codec.install_certificate_request(root_type, pem(hierarchy.ca("csms-root").certificate))
            assert payload["certificateType"] == wire
            assert_schema(codec, "InstallCertificate", payload, response=False)
    assert CODECS[OcppVersion.V16].roots[RootType.CSMS] == "CentralSystemRootCertificate"


@pytest.mark.parametrize(
    ("case", "status", "reason"),
    [("leaf", Status.REJECTED, "InvalidCertificate"), ("garbage", Status.REJECTED, "InvalidCertificate"),
     ("two", Status.REJECTED, "InvalidCertificate"), ("too-large", Status.REJECTED, "TooLargeElement"),
     ("full", Status.REJECTED, None)],
)
def test_install_refused(case, status, reason, hierarchy) -> None:
    store = make_store(hierarchy, certificate_entries=4)
    root = pem(hierarchy.ca("oem-root").certificate)
    text = {"leaf": hierarchy.certificates["csms-server-ecdsa"].chain_pem(), "garbage": root + "x",
            "two": root + pem(hierarchy.ca("mo-root").certificate), "too-large": root + " " * 6000, "full": root}[case]
    before = store.snapshot()
    outcome = store.install_root(RootType.OEM, text, at=NOW, max_chars=5500)
    assert outcome.status is status and outcome.reason_code == reason
    assert store.snapshot() == before
    for codec in CODECS.values():
        assert_schema(codec, "InstallCertificate", codec.install_certificate_response(outcome), response=True)


def test_additional_root_certificate_check(hierarchy) -> None:
    store = make_store(hierarchy, additional_root_certificate_check=True)
    old = hierarchy.ca("csms-root")
    unrelated = hierarchy.ca("mo-root").certificate
    refused = store.install_root(RootType.CSMS, pem(unrelated), at=NOW, max_chars=5500)
    assert refused.status is Status.REJECTED and refused.requirement == "M05.FR.09"
    # a new CSMS root key, certified by the old root (what the check asks for)
    new_key = LocalKey(generate_key(KeySpec.P256))
    req = CertificateRequest(get_profile("cso-sub-ca"), make_name({"CN": "Example CSO CSMS Root CA 2", "O": CSO}),
                             new_key.public_key(), NOW - timedelta(hours=1), 365)
    new_root = build_certificate(req, issuer_certificate=old.certificate, issuer_key=old.key)
    assert store.install_root(RootType.CSMS, pem(new_root), at=NOW, max_chars=5500).accepted
    assert store.csms_trust_roots() == [new_root, old.certificate]  # old kept as fallback
    ids = store.installed([])
    assert any(e.hash_data.matches(compute_hash_data(new_root, old.certificate)) for e in ids)
    store.csms_root_failed()
    assert store.csms_trust_roots() == [old.certificate]
    assert store.install_root(RootType.CSMS, pem(new_root), at=NOW, max_chars=5500).accepted
    store.csms_root_connected(new_root)
    assert store.csms_trust_roots() == [new_root]


# -- DeleteCertificate --------------------------------------------------------------------------------
def _variants(hd: CertificateHashData) -> list[CertificateHashData]:
    return [
        hd,
        CertificateHashData(hd.hash_algorithm, hd.issuer_name_hash.upper(), hd.issuer_key_hash.upper(), hd.serial_number.upper()),
        CertificateHashData(hd.hash_algorithm, hd.issuer_name_hash.upper(), hd.issuer_key_hash, "000" + hd.serial_number),
    ]


@pytest.mark.parametrize("variant", [0, 1, 2], ids=["lower", "upper", "leading-zeros"])
def test_delete_root_matches_mixed_case_and_leading_zeros(variant, hierarchy) -> None:
    store = make_store(hierarchy)
    mo = hierarchy.ca("mo-root").certificate
    hd = _variants(compute_hash_data(mo, mo))[variant]
    for codec in CODECS.values():
        payload = codec.delete_certificate_request(hd)
        assert_schema(codec, "DeleteCertificate", payload, response=False)
        assert codec.parse_delete_certificate_request(payload).matches(hd)
    assert store.delete(hd).accepted
    assert store.roots(RootType.MO) == []
    assert store.delete(hd).status is Status.NOT_FOUND


def test_delete_refuses_own_certificate_and_last_csms_root(service, hierarchy) -> None:
    store = make_store(hierarchy)
    chain = _signed_for(service, store)
    assert store.certificate_signed(chain, None, at=NOW).accepted
    own = store.certificate(CertificateUse.CHARGING_STATION)
    csms_root = hierarchy.ca("csms-root").certificate
    before = store.snapshot()
    for hd, needle in ((compute_hash_data(own.leaf, csms_root), "own certificate"),
                       (compute_hash_data(csms_root, csms_root), "last CSMS root")):
        for variant in _variants(hd):
            outcome = store.delete(variant)
            assert outcome.status is Status.FAILED and needle in (outcome.additional_info or "")
            assert outcome.requirement == "M04.FR.06"
            for codec in CODECS.values():
                assert_schema(codec, "DeleteCertificate", codec.delete_certificate_response(outcome), response=True)
    assert store.snapshot() == before
    unknown = CertificateHashData("SHA256", "ab" * 32, "cd" * 32, "1234")
    assert store.delete(unknown).status is Status.NOT_FOUND


def test_hash_data_with_bad_fields_is_an_input_error_not_a_crash() -> None:
    from ocppsec.pki.errors import InputError

    for codec in CODECS.values():
        with pytest.raises(InputError):
            codec.parse_delete_certificate_request({"certificateHashData": {"hashAlgorithm": "SHA256", "issuerNameHash": "zz",
                                                                            "issuerKeyHash": "00", "serialNumber": "1"}})
