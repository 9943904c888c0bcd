"""Full round trips over real loopback TLS (profile 3) with the ``ocpp`` package on both ends, per version.

The CSMS runs :func:`ocppsec.security_profiles.server.serve` (mutual TLS, identity binding) with the
certificate-management ChargePoint; the station connects with
:func:`ocppsec.security_profiles.client.connect` using its factory certificate, is triggered, renews its
own client certificate, reconnects with the new one (the CSMS sees the new certificate), and then goes
through install / list / delete and the bad-input cases over the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from ocpp.messages import MessageType, get_validator

from ocppsec.pki import Hierarchy, HierarchyConfig
from ocppsec.pki.certmgmt import (
    AuthoritySigner,
    CertificateService,
    CertificateUse,
    CredentialRole,
    DirectoryStationStorage,
    InstalledType,
    RootType,
    SignRequest,
    StationCertificateStore,
    StationConfig,
    StationInfo,
    Status,
    Trigger,
    TriggerStatus,
    open_inventory,
)
from ocppsec.pki.certmgmt.codecs import CODECS
from ocppsec.pki.chargepoint.classes import csms_charge_point_class, station_charge_point_class
from ocppsec.pki.hashdata import CertificateHashData, compute_hash_data
from ocppsec.pki.pem import certificates_to_pem
from ocppsec.pki.versions import OcppVersion
from ocppsec.security_profiles.client import connect
from ocppsec.security_profiles.handshake import ServerPolicy
from ocppsec.security_profiles.registry import MemoryRegistry, StationRecord
from ocppsec.security_profiles.server import StationConnection, serve
from ocppsec.security_profiles.tls import CertChain, peer_certificate, server_context

from .conftest import CSO, SECC, SERIAL, pem

PASS = b"station-passphrase"


def _schema(version: OcppVersion, action: str, payload: dict[str, Any], response: bool) -> None:
    kind = MessageType.CallResult if response else MessageType.Call
    get_validator(kind, action, version.value).validate(payload)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> tuple[Hierarchy, list[CertChain], Path]:
    d = tmp_path_factory.mktemp("net")
    h = Hierarchy.build(HierarchyConfig.default(cso_name=CSO, csms_fqdn="localhost"), at=datetime.now(UTC) - timedelta(hours=1))
    chains = []
    for name in ("csms-server-rsa", "csms-server-ecdsa"):
        issued = h.certificates[name]
        (d / f"{name}.pem").write_text(certificates_to_pem(issued.chain))
        key = issued.key.private_key  # type: ignore[union-attr]
        (d / f"{name}.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
        chains.append(CertChain(d / f"{name}.pem", d / f"{name}.key"))
    return h, chains, d


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _until(predicate: Any, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


@pytest.mark.parametrize("version", [OcppVersion.V16, OcppVersion.V201, OcppVersion.V21], ids=lambda v: v.value)
def test_profile3_station_renews_and_reconnects_then_manages_certificates(version: OcppVersion, net, tmp_path: Path) -> None:
    h, chains, _ = net
    codec = CODECS[version]
    signer = AuthoritySigner({CertificateUse.CHARGING_STATION: h.ca("csms-root"), CertificateUse.COMBINED: h.ca("csms-root"),
                              CertificateUse.V2G: h.ca("cpo-sub-ca-2")}, ocsp_url="http://ocsp.example.com/{issuer}")
    inventory = open_inventory(tmp_path / "inventory.db")
    service = CertificateService(signer, cso_name=CSO, stations={"CS001": StationInfo("CS001", serial=SERIAL, secc_ids=(SECC,))},
                                 inventory=inventory)
    storage = DirectoryStationStorage(tmp_path / "station", PASS)
    store = StationCertificateStore(storage, StationConfig(serial=SERIAL, organization=CSO, secc_id=SECC))
    now = datetime.now(UTC)
    assert store.install_root(RootType.CSMS, pem(h.ca("csms-root").certificate), at=now, max_chars=5500).accepted
    factory = h.issue_leaf("charging-station", ca="csms-root", subject={"O": CSO, "CN": SERIAL}, at=now - timedelta(days=1))
    store.install_client_certificate(CertificateUse.CHARGING_STATION, factory.chain_pem(), factory.key.private_key)  # type: ignore[union-attr]

    CsmsCP = csms_charge_point_class(version, service)
    StationCP = station_charge_point_class(version, store)
    connections: list[tuple[Any, Any]] = []

    async def handler(station: StationConnection) -> None:
        cp = CsmsCP(station.identity, station)
        connections.append((cp, peer_certificate(station.websocket.transport.get_extra_info("ssl_object"))))
        with contextlib.suppress(Exception):
            await cp.start()

    port = _free_port()
    registry = MemoryRegistry([StationRecord("CS001", 3, serial=SERIAL)])
    ctx = server_context(chains, client_roots=[h.ca("csms-root").certificate], client_cert="required")

    async def station_connect(credential: Any) -> tuple[Any, Any, asyncio.Task[Any]]:
        certfile, keyfile = storage.tls_files(credential)
        ws = await connect(f"wss://127.0.0.1:{port}", "CS001", profile=3, versions=(version,), fqdn="localhost",
                           csms_roots=store.csms_trust_roots(), client_chain=CertChain(certfile, keyfile, PASS))
        cp = StationCP("CS001", ws)
        return ws, cp, asyncio.create_task(cp.start())

    async def main() -> None:
        async with serve(handler, "127.0.0.1", port, policy=ServerPolicy(frozenset({3}), versions=(version,), cso_name=CSO),
                         registry=registry, ssl_context=ctx):
            # 1. factory certificate, trigger, renewal
            ws, station_cp, task = await station_connect(store.client_credentials()[0])
            await _until(lambda: connections)
            csms_cp, seen = connections[0]
            assert seen.serial_number == factory.certificate.serial_number
            assert await csms_cp.trigger(Trigger.SIGN_CHARGING_STATION) is TriggerStatus.ACCEPTED
            await asyncio.wait_for(station_cp.renewed.wait(), 20)
            await _until(lambda: csms_cp.results)
            order, answer = csms_cp.results[0]
            assert answer.status is Status.ACCEPTED
            assert order.request_id == (1 if codec.has_request_id else None)
            await ws.close()
            task.cancel()

            # 2. reconnect with the renewed certificate; the CSMS sees it; the old one is discarded
            renewed = store.client_credentials()[0]
            assert renewed.role is CredentialRole.RENEWED and renewed.leaf.serial_number == order.chain.leaf.serial_number
            ws, station_cp, task = await station_connect(renewed)
            assert store.connected(renewed) is None
            await _until(lambda: len(connections) == 2)
            csms_cp, seen = connections[1]
            assert seen.serial_number == order.chain.leaf.serial_number
            assert [c.role for c in store.client_credentials()] == [CredentialRole.ACTIVE]
            assert inventory.find("CS001", order.leaf_hash_data).state == "installed"

            # 3. install, list, delete (mixed-case hash data with leading zeros)
            extra_root = RootType.MANUFACTURER
            root = h.ca("manufacturer-root").certificate
            assert (await csms_cp.install_root(extra_root, root)).accepted
            status, report = await csms_cp.get_installed([InstalledType.MANUFACTURER_ROOT])
            assert status is Status.ACCEPTED and len(report.confirmed) == 1 and report.clean, report.to_json()
            hd = compute_hash_data(root, root)
            shouty = CertificateHashData("SHA256", hd.issuer_name_hash.upper(), hd.issuer_key_hash.upper(), "00" + hd.serial_number)
            assert (await csms_cp.delete_certificate(shouty)).accepted
            assert (await csms_cp.delete_certificate(shouty)).status is Status.NOT_FOUND
            csms_root = h.ca("csms-root").certificate
            last = await csms_cp.delete_certificate(compute_hash_data(csms_root, csms_root))
            assert last.status is Status.FAILED
            own = await csms_cp.delete_certificate(compute_hash_data(order.chain.leaf, csms_root))
            assert own.status is Status.FAILED
            status, _ = await csms_cp.get_installed([InstalledType.MANUFACTURER_ROOT])
            assert status is Status.NOT_FOUND

            # 4. bad input over the wire: answered with status (+ reasonCode) and event, store unchanged
            before = store.snapshot()
            big_csr = store.create_csr(CertificateUse.CHARGING_STATION, at=datetime.now(UTC)) + " " * 5600
            after_csr = store.snapshot()
            raw = codec.sign_certificate_request(SignRequest(big_csr, CertificateUse.CHARGING_STATION,
                                                             99 if codec.has_request_id else None))
            answer = await station_cp.send_sign_certificate(raw, validate=False)
            assert answer.status is Status.REJECTED
            if codec.has_status_info:
                assert answer.reason_code == "InvalidCSR"
            chain_ok = order.chain_pem
            cases = [
                (chain_ok + " " * (10001 - len(chain_ok)), "TooLargeElement", None),
                (chain_ok + "garbage", "InvalidCertificate", None),
                (chain_ok + pem(csms_root), "InvalidCertificate", None),
            ]
            if codec.has_request_id:
                cases.append((chain_ok, "UnknownRequestId", 12345))
            for n, (chain, reason, rid) in enumerate(cases, 1):
                payload = codec.certificate_signed_request(chain, CertificateUse.CHARGING_STATION, rid)
                response = await csms_cp.send_raw("CertificateSigned", payload)
                _schema(version, "CertificateSigned", response, response=True)
                assert response["status"] == "Rejected"
                if codec.has_status_info:
                    assert response["statusInfo"]["reasonCode"] == reason
                await _until(lambda n=n: len(csms_cp.event_sink) >= n)  # the CSMS's own MemorySink by default
                received = csms_cp.event_sink.events[n - 1]
                assert (received.station_id, received.ocpp_version) == ("CS001", version)
                assert received.type == codec.event_name("InvalidChargingStationCertificate")
                assert received.canonical_type == "InvalidChargingStationCertificate"
                assert received.tech_info == station_cp.sent_events[n - 1]["techInfo"]
                _schema(version, "SecurityEventNotification", station_cp.sent_events[n - 1], response=False)
            assert store.snapshot() == after_csr and after_csr != before  # only the CSR's pending key was added
            bogus_install = await csms_cp.send_raw("InstallCertificate", codec.install_certificate_request(
                RootType.CSMS, pem(root) + "trailing"))
            _schema(version, "InstallCertificate", bogus_install, response=True)
            assert bogus_install["status"] == "Rejected"
            await ws.close()
            task.cancel()

    asyncio.run(asyncio.wait_for(main(), 60))
    inventory.close()
