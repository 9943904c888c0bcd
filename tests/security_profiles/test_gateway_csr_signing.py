"""``gateway --sign-csrs``: the gateway answers SignCertificate and sends CertificateSigned itself.

Real loopback TLS, an ``ocpp``-package station (with the certmgmt station store) behind the gateway
and an ``ocpp``-package CSMS upstream that records every frame it sees. Every certificate-message
payload that crosses the station's connection is validated against the official schema shipped in
the ``ocpp`` package.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ocpp.messages import MessageType, get_validator
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosed

from ocppsec.pki.certmgmt import (
    CertificateService,
    CertificateUse,
    LocalCaSigner,
    MemoryStationStorage,
    RootType,
    SqlInventory,
    StationCertificateStore,
    StationConfig,
    open_inventory,
)
from ocppsec.pki.chain import verify_chain
from ocppsec.pki.chargepoint.classes import station_charge_point_class
from ocppsec.pki.directory import PkiDirectory
from ocppsec.pki.events.sink import MemorySink
from ocppsec.pki.hierarchy import HierarchyConfig
from ocppsec.pki.pem import certificates_to_pem
from ocppsec.pki.versions import OcppVersion
from ocppsec.security_profiles.client import connect
from ocppsec.security_profiles.gateway import Gateway
from ocppsec.security_profiles.gateway.csr_signing import ID_PREFIX, CsrSigning, RegistryStations, parse_sign_certificate
from ocppsec.security_profiles.handshake import ServerPolicy
from ocppsec.security_profiles.registry import MemoryRegistry, StationRecord

from . import ocpp_peers
from .conftest import CSO, KEY_16, PASSWORD_201, Pki, RelayCase, free_port
from .helpers import run, tls_context_for

PKI_PASS = b"gateway-pki-passphrase"


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gw-pki") / "pki"
    PkiDirectory.init(path, HierarchyConfig.default(cso_name=CSO, csms_fqdn="localhost"), passphrase=PKI_PASS,
                      at=datetime.now(UTC) - timedelta(hours=1)).close()
    return path


class Recorder:
    """Wraps a websocket; keeps every text frame in ``frames`` as (direction, parsed JSON)."""

    def __init__(self, ws: Any, frames: list[tuple[str, Any]]) -> None:
        self.ws, self.frames = ws, frames

    async def recv(self) -> Any:
        message = await self.ws.recv()
        self.frames.append(("in", json.loads(message)))
        return message

    async def send(self, message: Any) -> None:
        self.frames.append(("out", json.loads(message)))
        await self.ws.send(message)

    async def close(self, *args: Any) -> None:
        await self.ws.close(*args)


@contextlib.asynccontextmanager
async def recording_csms(port: int) -> AsyncIterator[list[tuple[str, Any]]]:
    """An ``ocpp``-package CSMS that records every frame it receives or sends."""
    frames: list[tuple[str, Any]] = []

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        identity = ws.request.path.rsplit("/", 1)[-1]
        cls: Any = ocpp_peers.Csms16 if ws.subprotocol == "ocpp1.6" else ocpp_peers.Csms201
        with contextlib.suppress(ConnectionClosed):
            await cls(identity, Recorder(ws, frames)).start()

    async with ws_serve(handler, "127.0.0.1", port, subprotocols=["ocpp2.0.1", "ocpp1.6"]):  # type: ignore[list-item]
        yield frames


def station_store(pki: PkiDirectory, serial: str) -> StationCertificateStore:
    store = StationCertificateStore(MemoryStationStorage(b"station-pass"), StationConfig(serial=serial, organization=CSO))
    root = certificates_to_pem([pki.ca_certificate("csms-root")])
    assert store.install_root(RootType.CSMS, root, at=datetime.now(UTC), max_chars=5500).accepted
    return store


def signing_service(pki_dir: Path, registry: MemoryRegistry, tmp_path: Path) -> tuple[CsrSigning, SqlInventory, PkiDirectory]:
    pki = PkiDirectory.open(pki_dir, PKI_PASS)
    signer = LocalCaSigner(pki, cas={CertificateUse.CHARGING_STATION: "csms-root", CertificateUse.COMBINED: "csms-root"})
    inventory = open_inventory(tmp_path / "inventory.db")
    service = CertificateService(signer, cso_name=CSO, stations=RegistryStations(registry, cso_name=CSO),
                                 inventory=inventory, ledger=pki.ledger)
    return CsrSigning(service), inventory, pki


def validate(version: OcppVersion, frames: list[tuple[str, Any]]) -> list[str]:
    """Validate every certificate-message frame against the official schema; return the actions seen."""
    calls: dict[str, str] = {}
    seen = []
    for _direction, frame in frames:
        if frame[0] == 2:
            calls[frame[1]] = frame[2]
            seen.append(frame[2])
            if frame[2] in ("SignCertificate", "CertificateSigned"):
                get_validator(MessageType.Call, frame[2], version.value).validate(frame[3])
        elif frame[0] == 3 and calls.get(frame[1]) in ("SignCertificate", "CertificateSigned"):
            get_validator(MessageType.CallResult, calls[frame[1]], version.value).validate(frame[2])
            seen.append(calls[frame[1]] + "Response")
    return seen


CASES = [(OcppVersion.V201, "CS-3", "SN-0001", {3}), (OcppVersion.V16, "CS16", "CS16", {2})]


@pytest.mark.parametrize(("version", "identity", "serial", "profiles"), CASES, ids=["2.0.1-profile3", "1.6-profile2"])
def test_gateway_signs_csrs_and_sends_certificate_signed(version: OcppVersion, identity: str, serial: str,
                                                         profiles: set[int], registry: MemoryRegistry, sink: MemorySink,
                                                         pki: Pki, pki_dir: Path, port: int, tmp_path: Path,
                                                         relay: RelayCase) -> None:
    up = free_port()
    signing, inventory, ca_dir = signing_service(pki_dir, registry, tmp_path)
    store = station_store(ca_dir, serial)
    station_frames: list[tuple[str, Any]] = []
    gw = Gateway(policy=ServerPolicy(frozenset(profiles), cso_name=CSO), registry=registry,
                 upstream=f"ws://127.0.0.1:{up}/upstream", ssl_context=tls_context_for(profiles, pki), sink=sink,
                 csr_signing=signing, relay=relay.option)

    async def main() -> None:
        async with recording_csms(up) as upstream_frames, gw.serve("127.0.0.1", port):
            if 3 in profiles:
                conn = await connect(f"wss://localhost:{port}/", identity, profile=3, versions=[version],
                                     csms_roots=[pki.csms_root], client_chain=pki.station(serial))
            else:
                conn = await connect(f"wss://localhost:{port}/", identity, profile=2, versions=[version],
                                     password=KEY_16, csms_roots=[pki.csms_root])
            cp = station_charge_point_class(version, store)(identity, Recorder(conn, station_frames))
            runner = asyncio.create_task(cp.start())
            if version is OcppVersion.V16:
                boot = await cp.call(call16.BootNotification(charge_point_model="Model-16", charge_point_vendor="Vendor"))
                beat = await cp.call(call16.Heartbeat())
            else:
                boot = await cp.call(call201.BootNotification(charging_station={"model": "Model-201", "vendor_name": "V"},
                                                              reason="PowerUp"))
                beat = await cp.call(call201.Heartbeat())
            assert boot.status == "Accepted" and beat.current_time

            outcome = await cp.sign_certificate(CertificateUse.CHARGING_STATION)
            assert outcome.accepted, outcome
            for _ in range(500):  # the station's CertificateSignedResponse reaches the gateway
                if signing.results:
                    break
                await asyncio.sleep(0.02)
            assert [o.status.value for _, o in signing.results] == ["Accepted"]

            # a garbage CSR and a CSR for another station: Rejected (reasonCode InvalidCSR where the version has it)
            bad = await cp.send_sign_certificate({"csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"
                                                         "-----END CERTIFICATE REQUEST-----\n"})
            other_csr = station_store(ca_dir, "SN-SOMEONE-ELSE").create_csr(CertificateUse.CHARGING_STATION,
                                                                              at=datetime.now(UTC))
            other = await cp.send_sign_certificate({"csr": other_csr})
            for answer in (bad, other):
                assert answer.status.value == "Rejected"
                assert answer.reason_code == ("InvalidCSR" if version is OcppVersion.V201 else None)

            beat = await cp.call(call201.Heartbeat() if version is OcppVersion.V201 else call16.Heartbeat())
            assert beat.current_time
            runner.cancel()
            await conn.close()
            await asyncio.sleep(0.1)

        # the station saw: SignCertificate -> Accepted, CertificateSigned -> Accepted, two Rejected; all schema-valid
        actions = validate(version, station_frames)
        assert actions.count("SignCertificate") == 3 and actions.count("CertificateSigned") == 1
        assert actions.count("CertificateSignedResponse") == 1
        signed = next(f for _, f in station_frames if f[0] == 2 and f[2] == "CertificateSigned")
        assert signed[1].startswith(ID_PREFIX)

        # the upstream never saw the certificate frames, but saw everything else from the station
        upstream_actions = [f[2] for d, f in upstream_frames if d == "in" and f[0] == 2]
        assert upstream_actions == ["BootNotification", "Heartbeat", "Heartbeat"]
        assert not any(f[0] != 2 and str(f[1]).startswith(ID_PREFIX) for _, f in upstream_frames)
        assert gw.stats.answered_locally == 4  # three SignCertificate + one CertificateSignedResponse
        assert gw.stats.relays == {relay.expected: 1}

        # the chain the station received verifies to the CA's root, CN = serial, O = CSO
        credential = store.client_credentials()[0]
        chain = credential.chain
        verified = verify_chain(chain[0], chain[1:], [ca_dir.ca_certificate("csms-root")], at=datetime.now(UTC),
                                expected_cn=serial)
        assert verified is not None

        # the inventory shows the certificate, installed
        entries = inventory.for_station(identity)
        assert [(e.kind, e.state) for e in entries] == [("charging-station", "installed")]
        assert int(entries[0].serial, 16) == chain[0].serial_number

    try:
        run(main(), timeout=60)
    finally:
        inventory.close()
        ca_dir.close()


def test_unsigned_frames_relay_unchanged_and_format_violation(registry: MemoryRegistry, sink: MemorySink, pki: Pki,
                                                              pki_dir: Path, port: int, tmp_path: Path,
                                                              relay: RelayCase) -> None:
    """Frames that merely mention SignCertificate are relayed; a schema-invalid SignCertificate is a CALLERROR."""
    up = free_port()
    signing, inventory, ca_dir = signing_service(pki_dir, registry, tmp_path)
    from .test_gateway import raw_upstream

    gw = Gateway(policy=ServerPolicy(frozenset({1}), cso_name=CSO), registry=registry,
                 upstream=f"ws://127.0.0.1:{up}/upstream", sink=sink, csr_signing=signing, relay=relay.option)

    async def main() -> None:
        async with raw_upstream(up) as got, gw.serve("127.0.0.1", port):
            c = await connect(f"ws://127.0.0.1:{port}/", "CS-1", profile=1, password=PASSWORD_201)
            mention = '[2,"7","DataTransfer",{"vendorId":"x","data":"SignCertificate"}]'
            await c.send(mention)
            assert await c.recv() == mention
            answer = '[3,"8",{"status":"Accepted"}]'  # an answer to the upstream, unknown id: relayed
            await c.send(answer)
            assert await c.recv() == answer
            await c.send('[2,"9","SignCertificate",{"csr":42}]')
            error = json.loads(await c.recv())
            assert error[:3] == [4, "9", "FormatViolation"]
            await c.close()
            assert got == [mention, answer]
        assert gw.stats.relays == {relay.expected: 1}

    try:
        run(main())
    finally:
        inventory.close()
        ca_dir.close()


def test_parse_sign_certificate_is_strict() -> None:
    assert parse_sign_certificate('[2,"1","SignCertificate",{"csr":"x"}]') is not None
    assert parse_sign_certificate('[3,"1",{"SignCertificate":1}]') is None
    assert parse_sign_certificate('[2,"1","SignCertificate"') is None
    assert parse_sign_certificate(b'[2,"1","SignCertificate",{}]') is None
    assert parse_sign_certificate('[2,"1","Heartbeat",{}]') is None


def test_registry_stations_maps_serials() -> None:
    reg = MemoryRegistry([StationRecord("CS-9", 3, serial="SN-9"), StationRecord("CS-8", 1)])
    stations = RegistryStations(reg, cso_name=CSO)
    assert stations["CS-9"].expected_serial == "SN-9" and stations["CS-8"].expected_serial == "CS-8"
    assert stations.get("nobody") is None and len(stations) == 2 and set(stations) == {"CS-9", "CS-8"}


def test_gateway_cli_sign_csrs(pki: Pki, pki_dir: Path, tmp_path: Path) -> None:
    """``ocppsec gateway --sign-csrs --pki DIR --ca NAME`` end to end (passphrase from OCPPSEC_PASSPHRASE)."""
    from ocppsec.security_profiles.registry_sql import open_registry

    db = tmp_path / "st.db"
    reg = open_registry(db)
    reg.add(StationRecord("CS-3", 3, serial="SN-0001"))
    reg.close()
    inventory_path = tmp_path / "inv.db"
    port, up = free_port(), free_port()
    base = [sys.executable, "-m", "ocppsec.cli.main", "gateway", "--listen", f"127.0.0.1:{port}", "--profile", "3",
            "--upstream", f"ws://127.0.0.1:{up}/csms", "--server-cert", str(pki.rsa.certfile), "--server-key",
            str(pki.rsa.keyfile), "--server-cert", str(pki.ecdsa.certfile), "--server-key", str(pki.ecdsa.keyfile),
            "--trust", str(pki.cso_root), "--cso-name", CSO, "--stations", str(db)]
    env = {k: v for k, v in os.environ.items() if k != "OCPPSEC_PASSPHRASE"}
    bad = subprocess.run([*base, "--sign-csrs"], capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert bad.returncode == 2 and "--pki" in bad.stderr and "Traceback" not in bad.stderr
    wrong = subprocess.run([*base, "--sign-csrs", "--pki", str(pki_dir), "--ca", "csms-root"], capture_output=True,
                           text=True, timeout=60, env={**env, "OCPPSEC_PASSPHRASE": "wrong"}, stdin=subprocess.DEVNULL)
    assert wrong.returncode == 1 and "Traceback" not in wrong.stderr, wrong.stderr
    proc = subprocess.Popen([*base, "--sign-csrs", "--pki", str(pki_dir), "--ca", "csms-root", "--inventory",
                             str(inventory_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**env, "OCPPSEC_PASSPHRASE": PKI_PASS.decode()}, stdin=subprocess.DEVNULL)
    ca_dir = PkiDirectory.open(pki_dir, PKI_PASS)
    store = station_store(ca_dir, "SN-0001")
    try:
        from .test_cli import _wait_port

        _wait_port(port, proc)

        async def main() -> None:
            async with recording_csms(up) as upstream_frames:
                conn = await connect(f"wss://localhost:{port}/", "CS-3", profile=3, csms_roots=[pki.csms_root],
                                     client_chain=pki.station("SN-0001"))
                cp = station_charge_point_class(OcppVersion.V201, store)("CS-3", conn)
                runner = asyncio.create_task(cp.start())
                assert (await cp.call(call201.Heartbeat())).current_time
                assert (await cp.sign_certificate()).accepted
                for _ in range(500):
                    if store.client_credentials():
                        break
                    await asyncio.sleep(0.02)
                await asyncio.sleep(0.3)
                runner.cancel()
                await conn.close()
                assert [f[2] for d, f in upstream_frames if d == "in" and f[0] == 2] == ["Heartbeat"]

        run(main())
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
        ca_dir.close()
    assert proc.returncode == 0, err
    inv = open_inventory(inventory_path)
    try:
        assert [(e.kind, e.state) for e in inv.for_station("CS-3")] == [("charging-station", "installed")]
    finally:
        inv.close()
