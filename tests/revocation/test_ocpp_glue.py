"""OCPP certificate status: GetCertificateStatus (1.6 DataTransfer, 2.0.1, 2.1), GetCertificateChainStatus,
Authorize hash data, and the station's OCSP cache — against a real responder over HTTP, schema-validated."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from ocppsec.pki.directory import PkiDirectory
from ocppsec.pki.errors import InputError, UsageError
from ocppsec.pki.hashdata import compute_hash_data
from ocppsec.pki.hierarchy import IssuedCertificate
from ocppsec.pki.revocation import v16 as ocsp_v16
from ocppsec.pki.revocation import v21 as ocsp_v21
from ocppsec.pki.revocation import v201 as ocsp_v201
from ocppsec.pki.revocation.crl import build_crl, crl_entries
from ocppsec.pki.revocation.server import OcspHttpServer
from ocppsec.pki.revocation.status import (
    AuthorizeStatus,
    ChainStatus,
    ChainStatusRequest,
    CsmsRevocationService,
    Source,
    StationOcspCache,
)
from revocation.conftest import NOW, ocsp_url_for, validate


def test_get_certificate_status_all_versions(v2g: tuple[OcspHttpServer, IssuedCertificate, IssuedCertificate]) -> None:
    server, good, bad = v2g
    service = CsmsRevocationService()  # no local responder: goes over HTTP to the responderURL
    hd = compute_hash_data(good.certificate, good.sub_cas[0])
    request = ocsp_v201.get_certificate_status_request(hd, ocsp_url_for(server, good))
    validate("2.0.1", "GetCertificateStatus", request)
    validate("2.1", "GetCertificateStatus", request)
    parsed_hd, url = ocsp_v201.parse_get_certificate_status(request)
    answer = service.certificate_status(parsed_hd, url, at=NOW)
    assert answer.accepted and answer.result is not None and answer.result.status.value == "good"
    for version, response in (("2.0.1", ocsp_v201.get_certificate_status_response(answer)),
                              ("2.1", ocsp_v21.get_certificate_status_response(answer))):
        validate(version, "GetCertificateStatus", response, response=True)
        assert response["status"] == "Accepted" and base64.b64decode(response["ocspResult"]) == answer.ocsp_der
    # revoked is still Accepted: the station staples what the responder said (M06)
    hd_bad = compute_hash_data(bad.certificate, bad.sub_cas[0])
    assert service.certificate_status(hd_bad, ocsp_url_for(server, bad), at=NOW).result.status.value == "revoked"  # type: ignore[union-attr]
    # 1.6: the same through DataTransfer
    dt = ocsp_v16.wrap_request("GetCertificateStatus", request)
    validate("1.6", "DataTransfer", dt)
    message_id, inner = ocsp_v16.unwrap_data_transfer(dt)
    assert message_id == "GetCertificateStatus"
    conf = ocsp_v16.wrap_response(ocsp_v201.get_certificate_status_response(service.certificate_status(
        *ocsp_v201.parse_get_certificate_status(inner), at=NOW)))
    validate("1.6", "DataTransfer", conf, response=True)
    assert json.loads(conf["data"])["status"] == "Accepted"


def test_get_certificate_status_failures(v2g: tuple[OcspHttpServer, IssuedCertificate, IssuedCertificate]) -> None:
    server, good, _ = v2g
    hd = compute_hash_data(good.certificate, good.sub_cas[0])
    service = CsmsRevocationService()
    for url in ("http://127.0.0.1:9/", "ftp://x/", server.url + "/x"):
        answer = service.certificate_status(hd, url, at=NOW)
        response = ocsp_v201.get_certificate_status_response(answer)
        validate("2.0.1", "GetCertificateStatus", response, response=True)
        if url.startswith("http://127.0.0.1:9"):
            assert response["status"] == "Failed" and answer.reason_code == "OCSPFailed"
        if url.startswith("ftp"):
            assert response["status"] == "Failed" and answer.reason_code == "InvalidURL"
    with pytest.raises(InputError):
        ocsp_v201.parse_get_certificate_status({"ocspRequestData": {**hd.to_ocpp(), "responderURL": "x" * 513}})
    with pytest.raises(InputError):
        ocsp_v201.parse_get_certificate_status({})
    with pytest.raises(InputError):
        ocsp_v16.unwrap_data_transfer({"vendorId": "other", "messageId": "GetCertificateStatus"})
    with pytest.raises(InputError):
        ocsp_v16.unwrap_data_transfer({"vendorId": ocsp_v16.PNC_VENDOR_ID, "messageId": "GetCertificateStatus",
                                       "data": "{not json"})


def test_local_responder_answers_without_http(pki_dir: PkiDirectory,
                                              v2g: tuple[OcspHttpServer, IssuedCertificate, IssuedCertificate]) -> None:
    server, good, _ = v2g
    local = server.responder
    before = local.stats.on_demand + local.stats.preproduced_hits
    service = CsmsRevocationService(local=local, fetcher=lambda url, req: pytest.fail("no HTTP expected"))
    answer = service.certificate_status(compute_hash_data(good.certificate, good.sub_cas[0]), "http://unused/", at=NOW)
    assert answer.accepted and answer.result is not None and answer.result.signature_checked
    assert local.stats.on_demand + local.stats.preproduced_hits == before + 1


def test_chain_status_v21_ocsp_and_crl(pki_dir: PkiDirectory,
                                       v2g: tuple[OcspHttpServer, IssuedCertificate, IssuedCertificate]) -> None:
    server, good, bad = v2g
    sub2 = pki_dir.ca("cpo-sub-ca-2")
    crl = build_crl(sub2.certificate, sub2.key, crl_entries(pki_dir.ledger.revoked("cpo-sub-ca-2")), at=NOW,
                    number=pki_dir.ledger.next_crl_number("cpo-sub-ca-2"))
    crls = {"http://crl.example/cpo2.crl": crl.public_bytes(Encoding.DER)}
    service = CsmsRevocationService(crl_fetcher=lambda url: crls[url], issuers=[sub2.certificate])
    hd_good = compute_hash_data(good.certificate, good.sub_cas[0])
    hd_bad = compute_hash_data(bad.certificate, bad.sub_cas[0])
    payload = {"certificateStatusRequests": [
        {"certificateHashData": hd_good.to_ocpp(), "source": "OCSP", "urls": ["http://127.0.0.1:9/", ocsp_url_for(server, good)]},
        {"certificateHashData": hd_bad.to_ocpp(), "source": "CRL", "urls": ["http://crl.example/cpo2.crl"]},
        {"certificateHashData": hd_good.to_ocpp(), "source": "CRL", "urls": ["http://crl.example/cpo2.crl"]},
        {"certificateHashData": hd_good.to_ocpp(), "source": "CRL", "urls": ["http://crl.example/missing.crl"]},
    ]}
    validate("2.1", "GetCertificateChainStatus", payload)
    items = service.chain_status(ocsp_v21.parse_get_certificate_chain_status(payload), at=NOW)
    response = ocsp_v21.get_certificate_chain_status_response(items)
    validate("2.1", "GetCertificateChainStatus", response, response=True)
    assert [i["status"] for i in response["certificateStatus"]] == ["Good", "Revoked", "Good", "Failed"]
    assert all(i["nextUpdate"].endswith(".000Z") for i in response["certificateStatus"])  # the one OCPP format
    assert items[1].next_update == NOW + timedelta(days=1)
    with pytest.raises(InputError):
        ocsp_v21.parse_get_certificate_chain_status({"certificateStatusRequests": [
            {"certificateHashData": hd_good.to_ocpp(), "source": "LDAP", "urls": ["x"]}]})
    with pytest.raises(InputError):
        ocsp_v21.parse_get_certificate_chain_status({"certificateStatusRequests": []})
    assert service.chain_status([ChainStatusRequest(hd_good, Source.CRL, ("http://crl.example/cpo2.crl",))],
                                at=NOW)[0].status is ChainStatus.GOOD


def test_authorize_with_hash_data(v2g: tuple[OcspHttpServer, IssuedCertificate, IssuedCertificate]) -> None:
    server, good, bad = v2g
    service = CsmsRevocationService()

    def items(cert: IssuedCertificate) -> list[dict[str, str]]:
        return [{**compute_hash_data(cert.certificate, cert.sub_cas[0]).to_ocpp(), "responderURL": ocsp_url_for(server, cert)}]

    for cert, expected in ((good, AuthorizeStatus.ACCEPTED), (bad, AuthorizeStatus.REVOKED)):
        payload = {"idToken": {"idToken": "DEABCC1234567", "type": "eMAID"}, "iso15118CertificateHashData": items(cert)}
        validate("2.0.1", "Authorize", payload)
        assert service.authorize_status(ocsp_v201.authorize_hash_data(payload), at=NOW) is expected
    broken = [{**items(good)[0], "responderURL": "http://127.0.0.1:9/"}]
    assert service.authorize_status(ocsp_v201.authorize_hash_data({"iso15118CertificateHashData": broken}),
                                    at=NOW) is AuthorizeStatus.CHAIN_ERROR


def test_station_cache(v2g: tuple[OcspHttpServer, IssuedCertificate, IssuedCertificate], pki_dir: PkiDirectory) -> None:
    server, good, bad = v2g
    service = CsmsRevocationService()
    root = pki_dir.ca_certificate("v2g-root")
    cache = StationOcspCache()
    cache.set_chain(good.certificate, good.sub_cas, root)
    due = cache.due_requests(at=NOW)
    assert len(due) == 3  # the SECC leaf and both CPO sub-CAs, each with its AIA OCSP URL (M06.FR.06)
    assert cache.missing_responder() == []
    assert cache.staple(at=NOW) == []

    def answer_all(at: datetime) -> None:
        for hd, url in cache.due_requests(at=at):
            # the station asks the CSMS, which asks the responder (URL rewritten to our test server)
            response = ocsp_v201.get_certificate_status_response(
                service.certificate_status(hd, server.url + "/" + url.rsplit("/", 1)[1], at=at))
            assert response["status"] == "Accepted"
            cache.accept(hd, response["ocspResult"], at=at)

    answer_all(NOW)
    assert cache.due_requests(at=NOW + timedelta(hours=23)) == []
    stapled = cache.staple(at=NOW)
    assert len(stapled) >= 1 and cache.status(at=NOW)[0]["status"] == "good"
    # nextUpdate (24 h) passes: stale, asked again; at the latest weekly (M06.FR.07)
    assert cache.staple(at=NOW + timedelta(days=2)) == []
    assert len(cache.due_requests(at=NOW + timedelta(days=2))) == len(due)
    # a certificate update drops everything (M06.FR.10)
    cache.set_chain(bad.certificate, bad.sub_cas, root)
    assert cache.staple(at=NOW) == [] and len(cache.due_requests(at=NOW)) == len(due)
    with pytest.raises(InputError):
        cache.accept(compute_hash_data(good.certificate, good.sub_cas[0]), stapled[0].hex(), at=NOW)
    with pytest.raises(UsageError):
        StationOcspCache(refresh_every=timedelta(days=8))
