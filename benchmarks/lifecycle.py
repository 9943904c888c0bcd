"""Benchmark: a renewal campaign through one gateway, against the raw issuance rate, in the same run.

``--stations`` simulated profile-3 stations (``ocpp``-package 2.0.1 stations with a certmgmt store, real
loopback TLS with client certificates) connect through one in-process gateway (CSR signing by a local
PKI directory's CA, a SQLite campaign record and inventory) to an ``ocpp``-package CSMS. A renewal campaign
(``--max-in-flight`` at a time) triggers each, the gateway signs the CSR and sends CertificateSigned, the
station reconnects with its new certificate (full TLS handshake) and the campaign counts it done.
Measured: renewals per second from the campaign's start until every row is done, and, as the baseline,
the same CA's raw issuance rate (:meth:`CertificateService.handle` on as many CSRs, one at a time, the
ledger and inventory written as the gateway writes them). Station, gateway and CSMS share one event loop
and the machine: read the ratio with the load average printed beside it.

Prints a table, then as its LAST line one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import print_table

CSO = "Example CSO"
PASS = b"bench-pki-passphrase"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, CSO), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_chain(path: Path, chain_pem: str, key: Any) -> tuple[Path, Path]:
    cert, key_file = path.with_suffix(".pem"), path.with_suffix(".key")
    cert.write_text(chain_pem)
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    return cert, key_file


def _csr(cn: str) -> tuple[x509.CertificateSigningRequest, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    return x509.CertificateSigningRequestBuilder().subject_name(_name(cn)).sign(key, hashes.SHA256()), key


async def run(n: int, in_flight: int, work: Path) -> dict[str, Any]:
    from websockets.asyncio.server import serve as ws_serve

    from ocppsec.pki.certmgmt import (
        CertificateService,
        CertificateUse,
        LocalCaSigner,
        MemoryStationStorage,
        RootType,
        SignRequest,
        StationCertificateStore,
        StationConfig,
        open_inventory,
    )
    from ocppsec.pki.chargepoint.classes import station_charge_point_class
    from ocppsec.pki.directory import PkiDirectory
    from ocppsec.pki.hierarchy import HierarchyConfig
    from ocppsec.pki.lifecycle.campaign import CampaignKind, CampaignOptions, RowState
    from ocppsec.pki.lifecycle.campaign_sql import open_campaigns
    from ocppsec.pki.pem import certificates_to_pem
    from ocppsec.pki.versions import OcppVersion
    from ocppsec.security_profiles.client import connect
    from ocppsec.security_profiles.gateway import Gateway
    from ocppsec.security_profiles.gateway.calls import StationCalls
    from ocppsec.security_profiles.gateway.campaigns import CampaignEngine, PresentedCertificates
    from ocppsec.security_profiles.gateway.csr_signing import CsrSigning, RegistryStations
    from ocppsec.security_profiles.handshake import ServerPolicy
    from ocppsec.security_profiles.registry import MemoryRegistry, StationRecord
    from ocppsec.security_profiles.tls import CertChain, server_context

    now = datetime.now(UTC)
    PkiDirectory.init(work / "pki", HierarchyConfig.default(cso_name=CSO, csms_fqdn="localhost"), passphrase=PASS,
                      at=now - timedelta(hours=1)).close()
    ca = PkiDirectory.open(work / "pki", PASS)
    root = ca.ca_certificate("csms-root")
    root_pem = certificates_to_pem([root])
    (work / "root.pem").write_text(root_pem)
    names = [f"CS-B{i:05d}" for i in range(n)]
    registry = MemoryRegistry([StationRecord(s, 3, serial=s) for s in names] +
                              [StationRecord(f"RAW-{i}", 3, serial=f"RAW-{i}") for i in range(n)])

    # the baseline: the same CA issuing as many CSRs, one call at a time, ledger and inventory written
    raw_inventory = open_inventory(work / "raw-inventory.db")
    raw_service = CertificateService(LocalCaSigner(ca, cas={CertificateUse.CHARGING_STATION: "csms-root"}), cso_name=CSO,
                                     stations=RegistryStations(registry, cso_name=CSO), inventory=raw_inventory,
                                     ledger=ca.ledger)
    raw_csrs = [_csr(f"RAW-{i}")[0].public_bytes(serialization.Encoding.PEM).decode() for i in range(n)]
    started = time.perf_counter()
    for i, pem in enumerate(raw_csrs):
        outcome, _ = raw_service.handle(f"RAW-{i}", SignRequest(pem), at=datetime.now(UTC))
        assert outcome.accepted, outcome
    raw_seconds = time.perf_counter() - started
    raw_inventory.close()

    # the server certificates (the gateway's TLS) and the stations' first certificates, 20 days left
    from ocppsec.pki.hierarchy import Hierarchy

    server: list[CertChain] = []

    h = Hierarchy.build(HierarchyConfig.default(cso_name=CSO, csms_fqdn="localhost"), at=now - timedelta(hours=1))
    for kind in ("csms-server-rsa", "csms-server-ecdsa"):
        issued_cert = h.certificates[kind]
        assert issued_cert.key is not None
        cert, key = _write_chain(work / kind, certificates_to_pem(issued_cert.chain),
                                 issued_cert.key.private_key)  # type: ignore[attr-defined]
        server.append(CertChain(cert, key))
    csms_root = work / "csms-root.pem"
    csms_root.write_text(certificates_to_pem([h.ca("csms-root").certificate]))
    stores: dict[str, Any] = {}
    for s in names:
        store = StationCertificateStore(MemoryStationStorage(), StationConfig(serial=s, organization=CSO))
        csr, key = _csr(s)
        issued = ca.issue_from_csr(csr, ca="csms-root", at=now - timedelta(minutes=30), validity_days=20, station=s)
        store.install_client_certificate(CertificateUse.CHARGING_STATION, issued.chain_pem(), key)
        assert store.install_root(RootType.CSMS, root_pem, at=now, max_chars=5500).accepted
        stores[s] = store

    inventory = open_inventory(work / "inventory.db")
    service = CertificateService(LocalCaSigner(ca, cas={CertificateUse.CHARGING_STATION: "csms-root"}), cso_name=CSO,
                                 stations=RegistryStations(registry, cso_name=CSO), inventory=inventory, ledger=ca.ledger)
    ssl_ctx = server_context(server, client_roots=[work / "root.pem"], client_cert="required")
    up_port, port = _free_port(), _free_port()
    gw = Gateway(policy=ServerPolicy(frozenset({3}), cso_name=CSO), registry=registry,
                 upstream=f"ws://127.0.0.1:{up_port}/csms", ssl_context=ssl_ctx, csr_signing=CsrSigning(service),
                 calls=StationCalls())
    presented = PresentedCertificates(issuers=[root], inventory=inventory)
    gw.admission_steps.append(presented)
    record = open_campaigns(work / "campaigns.db")
    engine = CampaignEngine(gw, record, presented=presented, inventory=inventory, tick=0.2)
    station_cls: dict[str, Any] = {s: station_charge_point_class(OcppVersion.V201, stores[s]) for s in names}
    runners: list[asyncio.Task[Any]] = []

    async def csms(ws: Any) -> None:  # the stations send nothing of their own here: a CSMS that only listens
        with contextlib.suppress(Exception):
            async for _message in ws:
                pass

    async def station_connect(s: str) -> Any:
        credential = stores[s].client_credentials()[0]
        cert, key = _write_chain(work / f"{s}-{credential.fingerprint[:8]}", credential.chain_pem,
                                 stores[s].storage.open_key(credential.key_ref).private_key)
        conn = await connect(f"wss://localhost:{port}/", s, profile=3, csms_roots=[csms_root],
                             client_chain=CertChain(cert, key))
        stores[s].connected(credential)
        cp = station_cls[s](s, conn)
        runners.append(asyncio.create_task(cp.start()))
        return conn

    async def renew(cid: str, s: str) -> None:
        await engine.wait_row(cid, s, frozenset({RowState.AWAITING_RECONNECT}), timeout=600)
        await conns[s].close()
        conns[s] = await station_connect(s)

    conns: dict[str, Any] = {}
    async with ws_serve(csms, "127.0.0.1", up_port, subprotocols=["ocpp2.0.1"]), gw.serve("127.0.0.1", port):  # type: ignore[list-item]
        await engine.start()
        for i in range(0, n, 50):
            batch = names[i:i + 50]
            for s, conn in zip(batch, await asyncio.gather(*(station_connect(s) for s in batch)), strict=True):
                conns[s] = conn
        started = time.perf_counter()
        cid = (await engine.start_campaign(CampaignKind.RENEW, CampaignOptions(within_days=30,
                                                                               max_in_flight=in_flight)))["id"]
        await asyncio.gather(*(renew(cid, s) for s in names))
        summary = await engine.wait_finished(cid, timeout=600)
        seconds = time.perf_counter() - started
        for conn in conns.values():
            await conn.close()
        for task in runners:
            task.cancel()
        await asyncio.gather(*runners, return_exceptions=True)
        await engine.close()
    presented.close()
    record.close()
    inventory.close()
    ca.close()
    assert summary["progress"]["done"] == n, summary
    return {"stations": n, "max_in_flight": in_flight, "campaign_seconds": round(seconds, 3),
            "renewals_per_second": round(n / seconds, 1), "raw_issuance_per_second": round(n / raw_seconds, 1),
            "peak_in_flight": engine.peak_in_flight[cid], "calls": engine.counters["calls"]}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=200)
    parser.add_argument("--max-in-flight", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = asyncio.run(run(args.stations, args.max_in_flight, Path(tmp)))
    figures["ratio_to_raw_issuance"] = round(figures["renewals_per_second"] / figures["raw_issuance_per_second"], 3)
    figures["load_average"] = [round(x, 2) for x in os.getloadavg()]
    figures["cores"] = os.cpu_count()
    print_table(["what", "per second"], [["raw issuance (CertificateService.handle)", figures["raw_issuance_per_second"]],
                                         ["renewal campaign through the gateway", figures["renewals_per_second"]]])
    print(f"{figures['stations']} stations, {figures['max_in_flight']} in flight (peak {figures['peak_in_flight']}), "
          f"{figures['campaign_seconds']} s; load average {figures['load_average']} on {figures['cores']} cores")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
