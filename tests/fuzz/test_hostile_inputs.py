"""One test per class of hostile input that used to escape the error tree (see ``_hostile.py`` for the inputs)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from ocppsec.pki.certmgmt import CertificateUse, InstalledType, RootType
from ocppsec.pki.certmgmt.model import SignRequest, Status
from ocppsec.pki.csr import check_csr, verify_csr
from ocppsec.pki.errors import InputError, UsageError
from ocppsec.pki.events.ingest import ingest_payloads
from ocppsec.pki.events.model import FLAG_REPAIRED, EventInputError, normalize_event
from ocppsec.pki.hashdata import compute_hash_data
from ocppsec.pki.hierarchy import HierarchyConfig
from ocppsec.pki.pem import load_certificates, load_csr
from ocppsec.pki.profiles import get_profile
from ocppsec.pki.revocation.client import check_response
from ocppsec.pki.revocation.ocsp import CertId, OcspRequestError, parse_request
from ocppsec.security_profiles.identity import identity_from_path

from . import _hostile as h
from . import _material as m


# -- pyca exceptions that are not ValueError ---------------------------------------------------------
@pytest.mark.parametrize("make", [h.csr_invalid_version, h.csr_duplicate_extension])
def test_csr_with_pyca_specific_exception_is_input_error(make) -> None:
    with pytest.raises(InputError) as info:
        load_csr(make())
    assert info.value.requirement == "A02.FR.03"
    decision = m.service().review(m.STATION, SignRequest(make().decode()))
    assert decision.outcome.status is Status.REJECTED and decision.csr is None


def test_csr_with_unknown_signature_algorithm_is_a_violation_not_an_exception() -> None:
    csr = load_csr(h.csr_unknown_signature_algorithm())
    report = check_csr(csr, get_profile("charging-station"))
    assert {v.requirement for v in report.violations} >= {"A00.FR.504", "RFC2986"}
    with pytest.raises(Exception) as info:
        verify_csr(csr, get_profile("charging-station"))
    assert type(info.value).__name__ == "PolicyError"
    decision = m.service().review(m.STATION, SignRequest(h.csr_unknown_signature_algorithm().decode()))
    assert not decision.accepted


# -- lazily parsed certificate fields ----------------------------------------------------------------
def test_certificate_with_unparseable_issuer_is_refused_at_load_time() -> None:
    pem = h.root_with_unparseable_issuer()
    assert x509.load_pem_x509_certificate(pem)  # pyca loads it; reading .issuer would raise later
    with pytest.raises(InputError, match="cannot be parsed"):
        load_certificates(pem)


def test_compute_hash_data_of_unparseable_certificate_is_input_error() -> None:
    cert = x509.load_pem_x509_certificate(h.root_with_unparseable_issuer())
    with pytest.raises(InputError):
        compute_hash_data(cert, cert)


def test_check_firmware_with_unparseable_certificate_object_reports_invalid_certificate() -> None:
    from ocppsec.firmware_signing import FirmwareOutcome, check_firmware

    cert = x509.load_pem_x509_certificate(h.root_with_unparseable_issuer())
    result = check_firmware([b"image"], "AAAA", cert, [m.hierarchy().ca("manufacturer-root").certificate], at=m.NOW)
    assert result.outcome is FirmwareOutcome.INVALID_CERTIFICATE and "cannot be parsed" in result.reason


def test_install_root_with_unparseable_issuer_is_rejected_and_store_stays_usable() -> None:
    store = m.station_base().fresh()
    before = store.snapshot()
    outcome = store.install_root(RootType.CSMS, h.root_with_unparseable_issuer().decode(), at=m.NOW, max_chars=5500)
    assert outcome.status is Status.REJECTED and outcome.requirement == "M05.FR.03"
    assert store.snapshot() == before
    assert len(store.installed()) == 4  # GetInstalledCertificateIds still answers
    assert store.installed([InstalledType.V2G_CHAIN]) == []


def test_certificate_signed_with_unparseable_extension_is_rejected() -> None:
    store = m.station_base().fresh()
    outcome = store.certificate_signed(h.leaf_with_unparseable_extension().decode(), CertificateUse.CHARGING_STATION, at=m.NOW)
    assert outcome.status is Status.REJECTED and outcome.requirement == "A02.FR.06"
    assert store.client_credentials() == []


def test_certificate_text_with_lone_surrogate_is_refused_not_an_encoding_error() -> None:
    store = m.station_base().fresh()
    chain = h.chain_with_lone_surrogate()
    with pytest.raises(InputError, match="surrogate"):
        load_certificates(chain)
    with pytest.raises(InputError, match="surrogate"):
        load_csr(chain)
    outcome = store.certificate_signed(chain, CertificateUse.CHARGING_STATION, at=m.NOW)
    assert outcome.status is Status.REJECTED and outcome.requirement == "A02.FR.06"
    assert store.install_root(RootType.MO, chain, at=m.NOW, max_chars=5500).status is Status.REJECTED


# -- timestamps at the edge of the range -------------------------------------------------------------
@pytest.mark.parametrize("make", [h.timestamp_year1_positive_offset, h.timestamp_year9999_negative_offset])
def test_timestamp_out_of_utc_range_is_event_input_error(make) -> None:
    payload = make()
    with pytest.raises(EventInputError, match="out of range"):
        normalize_event(station_id=m.STATION, type=payload["type"], timestamp=payload["timestamp"], at=m.NOW)
    report = ingest_payloads([payload, {"type": "StartupOfTheDevice", "timestamp": "2026-11-23T11:00:00Z"}],
                             station_id=m.STATION, version=None, at=m.NOW)
    assert len(report.events) == 1 and [r.index for r in report.rejections] == [0]  # only the bad item is lost


# -- lone surrogates ---------------------------------------------------------------------------------
def test_lone_surrogates_in_type_and_tech_info_are_repaired_flagged_and_storable(tmp_path: Path) -> None:
    from ocppsec.eventlog import open_store

    payload = json.loads(h.lone_surrogate_event())
    report = ingest_payloads([payload], station_id=m.STATION, version=None, at=m.NOW)
    (event,) = report.events
    assert event.type == "Tamper\ufffd" and event.tech_info == "x\ufffdy" and FLAG_REPAIRED in event.flags
    store = open_store(tmp_path / "events.db")
    try:
        store.add_many([event])
        assert store.last_id() >= 1
    finally:
        store.close()


def test_lone_surrogate_in_station_id_is_refused() -> None:
    with pytest.raises(EventInputError, match="surrogate"):
        normalize_event(station_id="CS\udc80", type="StartupOfTheDevice", timestamp="2026-11-23T11:00:00Z", at=m.NOW)


# -- malformed request targets -----------------------------------------------------------------------
@pytest.mark.parametrize("path", [h.MALFORMED_PATH, "//[::1?x", "//[#"])
def test_malformed_url_path_is_input_error(path: str) -> None:
    with pytest.raises(InputError, match="not a valid request target"):
        identity_from_path(path)


# -- OCSP --------------------------------------------------------------------------------------------
def test_ocsp_request_with_negative_serial_is_malformed_request() -> None:
    der = h.ocsp_request_negative_serial()
    with pytest.raises(OcspRequestError, match="negative"):
        parse_request(der)
    answer = ocsp.load_der_ocsp_response(m.ocsp_setup().responder.respond(der, at=m.NOW))
    assert answer.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


@pytest.mark.parametrize("make", [h.ocsp_response_year0, h.ocsp_response_unknown_reason])
def test_ocsp_response_with_unreadable_time_or_reason_is_input_error(make) -> None:
    setup = m.ocsp_setup()
    with pytest.raises(InputError, match="not a readable OCSP response"):
        check_response(make(), CertId.for_certificate(setup.revoked, setup.root), at=m.NOW + timedelta(minutes=1))


# -- hierarchy configuration -------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "names"), [
    (h.HIERARCHY_SUBJECT_NUMBER, "subject must be a table"),
    (h.HIERARCHY_STRAY_BRACE, "subject.CN"),
    (h.HIERARCHY_ATTRIBUTE_LOOKUP, "not a plain name"),
    (b'network = 3\n', "network must be a table"),
    (b'[[ca]]\nname = "csms-root"\nsubject = { CN = "x" }\nvalidity_days = "ten"\n', "validity_days"),
    (b'ca = 5\n', "array of tables"),
])
def test_hierarchy_toml_type_and_template_errors_are_usage_errors_naming_the_key(text: bytes, names: str) -> None:
    with pytest.raises(UsageError, match=names):
        HierarchyConfig.from_bytes(text).plan()


def test_hierarchy_config_that_is_not_utf8_is_usage_error() -> None:
    with pytest.raises(UsageError, match="not UTF-8"):
        HierarchyConfig.from_bytes(h.HIERARCHY_NOT_UTF8, what="hierarchy.toml")


def test_cli_init_with_config_that_is_not_utf8_exits_with_usage_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    config = tmp_path / "hierarchy.toml"
    config.write_bytes(h.HIERARCHY_NOT_UTF8)
    proc = subprocess.run([sys.executable, "-m", "ocppsec.cli.main", "pki", "init", str(tmp_path / "pki"), "--config", str(config),
                           "--no-encrypt"], capture_output=True, text=True, check=False, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "not UTF-8" in proc.stderr and "Traceback" not in proc.stderr


class _PeerStub:
    """What ``peer_certificate`` reads of an SSL object: the peer's DER."""

    def __init__(self, der: bytes) -> None:
        self.der = der

    def getpeercert(self, binary_form: bool = False) -> bytes:
        return self.der


def test_peer_certificate_pyca_cannot_read_is_treated_as_none() -> None:
    from ocppsec.security_profiles.tls import peer_certificate

    bad = x509.load_pem_x509_certificate(h.root_with_unparseable_issuer()).public_bytes(Encoding.DER)
    assert peer_certificate(_PeerStub(bad)) is None  # type: ignore[arg-type]
    assert peer_certificate(_PeerStub(b"\x30\x03\x02\x01\x00")) is None  # type: ignore[arg-type]
    good = m.hierarchy().ca("csms-root").certificate
    assert peer_certificate(_PeerStub(good.public_bytes(Encoding.DER))) == good  # type: ignore[arg-type]
