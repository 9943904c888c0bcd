"""The certificate-status parts of the composed ChargePoint classes, per version, with the ``ocpp`` package
as the peer over real websockets on 127.0.0.1 and real OCSP answers from the responder over HTTP.

The station's OCSP cache asks the CSMS for every certificate of its V2G chain (GetCertificateStatus;
1.6: DataTransfer with the Plug & Charge vendorId), the CSMS asks the responder, and the station keeps
only answers whose signature and certificate check out. Every payload on the wire is validated against
the official schemas shipped in the ``ocpp`` package.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from ocpp.exceptions import OCPPError

from ocppsec.pki.chargepoint import csms_charge_point_class, glue, station_charge_point_class
from ocppsec.pki.directory import PkiDirectory
from ocppsec.pki.hashdata import compute_hash_data
from ocppsec.pki.hierarchy import IssuedCertificate
from ocppsec.pki.revocation import v16 as status_v16
from ocppsec.pki.revocation import v201 as status_v201
from ocppsec.pki.revocation.client import fetch
from ocppsec.pki.revocation.crl import build_crl, crl_entries
from ocppsec.pki.revocation.server import OcspHttpServer
from ocppsec.pki.revocation.status import CsmsRevocationService, StationOcspCache
from ocppsec.pki.versions import OcppVersion
from revocation.conftest import NOW, ocsp_url_for, validate

V2G = tuple[OcspHttpServer, IssuedCertificate, IssuedCertificate]
CRL_URL = "http://crl.example/cpo2.crl"


def _service(server: OcspHttpServer, pki_dir: PkiDirectory) -> CsmsRevocationService:
    """Our CSMS: no local responder, so it asks the responder the station names over HTTP (the AIA host is
    rewritten to the test responder); CRLs from memory."""
    sub2 = pki_dir.ca("cpo-sub-ca-2")
    crl = build_crl(sub2.certificate, sub2.key, crl_entries(pki_dir.ledger.revoked("cpo-sub-ca-2")), at=NOW,
                    number=pki_dir.ledger.next_crl_number("cpo-sub-ca-2"))
    crls = {CRL_URL: crl.public_bytes(Encoding.DER)}

    def fetcher(url: str, request: bytes) -> bytes:
        if url.startswith("http://ocsp.example.com/"):
            url = server.url + "/" + url.rsplit("/", 1)[1]
        return fetch(url, request)

    return CsmsRevocationService(fetcher=fetcher, crl_fetcher=lambda url: crls[url], issuers=[sub2.certificate])


@contextlib.asynccontextmanager
async def connected(version: OcppVersion, service: CsmsRevocationService, cache: StationOcspCache) -> AsyncIterator[Any]:
    csms_class = csms_charge_point_class(version, status=service)
    station_class = station_charge_point_class(version, ocsp_cache=cache)

    async def on_connect(ws: Any) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await csms_class(ws.request.path.strip("/"), ws).start()

    async with websockets.serve(on_connect, "127.0.0.1", 0, subprotocols=[version.subprotocol]) as server:
        port = server.sockets[0].getsockname()[1]
        async with websockets.connect(f"ws://127.0.0.1:{port}/CS-1", subprotocols=[version.subprotocol]) as ws:
            station = station_class("CS-1", ws)
            task = asyncio.create_task(station.start())
            try:
                yield station
            finally:
                task.cancel()


async def ask(station: Any, version: OcppVersion, request: dict[str, Any]) -> dict[str, Any]:
    """One GetCertificateStatus as the station sends it (1.6 inside DataTransfer), schema-checked both ways."""
    inner = "2.0.1" if version is OcppVersion.V16 else version.value
    validate(inner, "GetCertificateStatus", request)
    if version is OcppVersion.V16:
        wrapped = status_v16.wrap_request("GetCertificateStatus", request)
        validate("1.6", "DataTransfer", wrapped)
        conf = await glue.call(station, version, "DataTransfer", wrapped)
        validate("1.6", "DataTransfer", conf, response=True)
        assert conf["status"] == "Accepted"
        response: dict[str, Any] = json.loads(conf["data"])
    else:
        response = await glue.call(station, version, "GetCertificateStatus", request)
    validate(inner, "GetCertificateStatus", response, response=True)
    return response


@pytest.mark.parametrize("version", list(OcppVersion), ids=lambda v: v.value)
def test_station_cache_filled_by_the_composed_csms(version: OcppVersion, v2g: V2G, pki_dir: PkiDirectory) -> None:
    server, good, bad = v2g
    cache = StationOcspCache()
    cache.set_chain(good.certificate, good.sub_cas, pki_dir.ca_certificate("v2g-root"))
    before = server.responder.stats.on_demand + server.responder.stats.preproduced_hits

    async def main() -> None:
        async with connected(version, _service(server, pki_dir), cache) as station:
            assert await station.refresh_certificate_status() == 3  # SECC leaf and both sub-CAs (M06.FR.06)
            assert cache.due_requests(at=NOW) == [] and len(cache.staple(at=NOW)) == 3
            assert [row["status"] for row in cache.status(at=NOW)] == ["good", "good", "good"]
            assert await station.refresh_certificate_status() == 0  # nothing due: nothing asked

            # revoked is still Accepted: the station staples what the responder said (M06)
            hd_bad = compute_hash_data(bad.certificate, bad.sub_cas[0])
            response = await ask(station, version, status_v201.get_certificate_status_request(hd_bad, ocsp_url_for(server, bad)))
            assert response["status"] == "Accepted"
            answer = ocsp.load_der_ocsp_response(base64.b64decode(response["ocspResult"]))
            assert answer.certificate_status is ocsp.OCSPCertStatus.REVOKED
            assert answer.serial_number == bad.certificate.serial_number

            # an unreachable responder: Failed with a reason, never a CallError
            dead = status_v201.get_certificate_status_request(hd_bad, "http://127.0.0.1:9/ocsp")
            response = await ask(station, version, dead)
            assert response["status"] == "Failed" and response["statusInfo"]["reasonCode"] == "OCSPFailed"

    asyncio.run(asyncio.wait_for(main(), 60))
    assert server.responder.stats.on_demand + server.responder.stats.preproduced_hits == before + 4


@pytest.mark.parametrize("version", [OcppVersion.V201, OcppVersion.V21], ids=lambda v: v.value)
def test_unreadable_status_requests_are_format_violations(version: OcppVersion, v2g: V2G, pki_dir: PkiDirectory) -> None:
    server, _good, _bad = v2g
    request = {"ocspRequestData": {"hashAlgorithm": "SHA256", "issuerNameHash": "zz", "issuerKeyHash": "zz",
                                   "serialNumber": "zz", "responderURL": "http://ocsp.example.com/x"}}
    validate(version.value, "GetCertificateStatus", request)  # valid by the schema, not as hash data

    async def main() -> None:
        async with connected(version, _service(server, pki_dir), StationOcspCache()) as station:
            with pytest.raises(OCPPError) as info:
                await glue.call(station, version, "GetCertificateStatus", request)
            assert info.value.code == "FormatViolation" and "hex" in str(info.value.description)

    asyncio.run(asyncio.wait_for(main(), 30))


def test_pnc_data_transfer_refusals_v16(v2g: V2G, pki_dir: PkiDirectory) -> None:
    server, _good, bad = v2g
    hd = compute_hash_data(bad.certificate, bad.sub_cas[0])
    cases = [
        ({"vendorId": "com.example.other", "messageId": "GetCertificateStatus", "data": "{}"}, "UnknownVendorId"),
        (status_v16.wrap_request("Authorize", {"idToken": {"idToken": "X", "type": "eMAID"}}), "UnknownMessageId"),
        (status_v16.wrap_request("Get15118EVCertificate", {}), "UnknownMessageId"),
        ({**status_v16.wrap_request("GetCertificateStatus", {}), "data": "{not json"}, "Rejected"),
        (status_v16.wrap_request("GetCertificateStatus", {"ocspRequestData": {**hd.to_ocpp(), "serialNumber": "zz",
                                                                              "responderURL": "http://x/"}}), "Rejected"),
        (status_v16.wrap_request("GetCertificateStatus", {"ocspRequestData": hd.to_ocpp()}), "Rejected"),  # no URL
    ]

    async def main() -> None:
        async with connected(OcppVersion.V16, _service(server, pki_dir), StationOcspCache()) as station:
            for payload, status in cases:
                validate("1.6", "DataTransfer", payload)
                conf = await glue.call(station, OcppVersion.V16, "DataTransfer", payload)
                validate("1.6", "DataTransfer", conf, response=True)
                assert conf == {"status": status}, payload

    asyncio.run(asyncio.wait_for(main(), 30))


def test_chain_status_v21_over_the_wire(v2g: V2G, pki_dir: PkiDirectory) -> None:
    server, good, bad = v2g
    hd_good = compute_hash_data(good.certificate, good.sub_cas[0])
    hd_bad = compute_hash_data(bad.certificate, bad.sub_cas[0])
    request = {"certificateStatusRequests": [
        {"certificateHashData": hd_good.to_ocpp(), "source": "OCSP", "urls": ["http://127.0.0.1:9/", ocsp_url_for(server, good)]},
        {"certificateHashData": hd_bad.to_ocpp(), "source": "OCSP", "urls": [ocsp_url_for(server, bad)]},
        {"certificateHashData": hd_bad.to_ocpp(), "source": "CRL", "urls": [CRL_URL]},
        {"certificateHashData": hd_good.to_ocpp(), "source": "CRL", "urls": ["http://crl.example/missing.crl"]},
    ]}
    validate("2.1", "GetCertificateChainStatus", request)

    async def main() -> dict[str, Any]:
        async with connected(OcppVersion.V21, _service(server, pki_dir), StationOcspCache()) as station:
            return await glue.call(station, OcppVersion.V21, "GetCertificateChainStatus", request)

    response = asyncio.run(asyncio.wait_for(main(), 30))
    validate("2.1", "GetCertificateChainStatus", response, response=True)
    assert [i["status"] for i in response["certificateStatus"]] == ["Good", "Revoked", "Revoked", "Failed"]
    assert [i["source"] for i in response["certificateStatus"]] == ["OCSP", "OCSP", "CRL", "CRL"]
    assert all(i["nextUpdate"].endswith("Z") and len(i["nextUpdate"]) == 24 for i in response["certificateStatus"])
