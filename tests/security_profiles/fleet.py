"""A fleet for the gateway's revocation tests: a PKI directory whose csms-root issues the stations' certificates,
its CRLs and OCSP responder, and a guarded gateway on 127.0.0.1 with helpers to connect and wait (bounded)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import Encoding
from websockets.asyncio.client import ClientConnection

from ocppsec.pki.builder import CertificateRequest
from ocppsec.pki.csr import make_csr
from ocppsec.pki.directory import PkiDirectory
from ocppsec.pki.events.sink import MemorySink
from ocppsec.pki.hierarchy import HierarchyConfig
from ocppsec.pki.keys import KeySpec, LocalKey, generate_key
from ocppsec.pki.names import make_name
from ocppsec.pki.pem import certificates_to_pem
from ocppsec.pki.profiles import PROFILES
from ocppsec.pki.revocation.authorities import load_authorities
from ocppsec.pki.revocation.crl import build_crl, crl_entries
from ocppsec.pki.revocation.ocsp import OcspResponder
from ocppsec.pki.revocation.server import OcspHttpServer
from ocppsec.security_profiles.client import CsmsConnectionError, connect
from ocppsec.security_profiles.gateway import Gateway
from ocppsec.security_profiles.gateway.guard import StationGuard
from ocppsec.security_profiles.gateway.revocation_io import RevocationChecker
from ocppsec.security_profiles.handshake import ServerPolicy
from ocppsec.security_profiles.registry import MemoryRegistry, StationRecord, StationRegistry
from ocppsec.security_profiles.registry_snapshot import RegistrySnapshot
from ocppsec.security_profiles.tls import CertChain, server_context

from .conftest import CSO, Pki
from .test_gateway import raw_upstream

NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass
class Station:
    identity: str
    serial: str
    chain: CertChain
    certificate: x509.Certificate

    @property
    def serial_hex(self) -> str:
        return format(self.certificate.serial_number, "x")


@dataclass
class Fleet:
    pki: PkiDirectory
    dir: Path
    root_pem: Path
    out: Path

    def station(self, name: str, *, recorded: bool = True) -> Station:
        """A station certificate from csms-root (``recorded=False``: signed by the CA, never entered in the ledger)."""
        key = generate_key(KeySpec.P256)
        subject = {"O": CSO, "CN": f"SN-{name}"}
        if recorded:
            cert = self.pki.issue_from_csr(make_csr(key, subject), ca="csms-root", at=NOW - timedelta(minutes=5)).issued.certificate
        else:
            ca = self.pki.ca("csms-root")
            request = CertificateRequest(PROFILES["charging-station"], make_name(subject), LocalKey(key, name).public_key(),
                                         NOW - timedelta(minutes=5))
            cert = ca.issue(request).certificate
        certfile, keyfile = self.out / f"{name}.pem", self.out / f"{name}.key"
        certfile.write_text(certificates_to_pem([cert]))
        keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,  # type: ignore[union-attr]
                                              serialization.NoEncryption()))
        return Station(f"CS-{name}", f"SN-{name}", CertChain(certfile, keyfile), cert)

    def revoke(self, station: Station, reason: str = "keyCompromise") -> None:
        self.pki.ledger.revoke(station.serial_hex, "csms-root", datetime.now(UTC) - timedelta(seconds=1), reason)

    def write_crl(self, path: Path, *, at: datetime | None = None, validity: timedelta = timedelta(days=1)) -> Path:
        """The CRL of csms-root listing the ledger's revocations, written atomically (as a CA's publisher would)."""
        ca = self.pki.ca("csms-root")
        crl = build_crl(ca.certificate, ca.key, crl_entries(self.pki.ledger.revoked("csms-root")),
                        at=at or datetime.now(UTC) - timedelta(seconds=30), number=self.pki.ledger.next_crl_number("csms-root"),
                        validity=validity)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(crl.public_bytes(Encoding.PEM))
        os.replace(tmp, path)
        return path


def build_template(base: Path, ocsp_port: int) -> Path:
    """A PKI directory whose end-entity certificates carry ``http://127.0.0.1:OCSP_PORT/{issuer}`` as AIA OCSP URL."""
    config = HierarchyConfig.default(cso_name=CSO, csms_fqdn="localhost", ocsp_url=f"http://127.0.0.1:{ocsp_port}/{{issuer}}")
    PkiDirectory.init(base, config, passphrase=None, at=NOW - timedelta(hours=1)).close()
    return base


def open_fleet(path: Path, out: Path) -> Fleet:
    pki = PkiDirectory.open(path)
    root_pem = out / "fleet-root.pem"
    root_pem.write_text(certificates_to_pem([pki.ca_certificate("csms-root")]))
    return Fleet(pki, path, root_pem, out)


@contextlib.contextmanager
def ocsp_responder(fleet: Fleet, port: int = 0) -> Iterator[tuple[OcspHttpServer, OcspResponder]]:
    responder = OcspResponder(load_authorities(fleet.pki, ["csms-root"], at=NOW), fleet.pki.ledger)
    server = OcspHttpServer(("127.0.0.1", port), responder, refresh_interval=None)
    server.start()
    try:
        yield server, responder
    finally:
        server.stop()


# -- the gateway ---------------------------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def guarded(pki: Pki, fleet: Fleet, registry: StationRegistry, sink: MemorySink, port: int, up: int, *,
                  checker: RevocationChecker | None = None, snapshot: RegistrySnapshot | None = None,
                  profiles: frozenset[int] = frozenset({3})) -> AsyncIterator[tuple[Gateway, StationGuard]]:
    mode = "required" if profiles == {3} else "optional"
    ctx = server_context(pki.server_chains, client_roots=[fleet.root_pem], client_cert=mode)
    gw = Gateway(policy=ServerPolicy(profiles, cso_name=CSO), registry=snapshot or registry,
                 upstream=f"ws://127.0.0.1:{up}/csms", ssl_context=ctx, sink=sink)
    guard = StationGuard(gw, revocation=checker, registry=snapshot)
    async with raw_upstream(up), guard, gw.serve("127.0.0.1", port):
        yield gw, guard


def registry_for(*stations: Station) -> MemoryRegistry:
    return MemoryRegistry([StationRecord(s.identity, 3, serial=s.serial) for s in stations])


async def station_connects(pki: Pki, port: int, station: Station) -> ClientConnection:
    conn = await connect(f"wss://localhost:{port}/", station.identity, profile=3, csms_roots=[pki.csms_root],
                         client_chain=station.chain)
    await conn.send('[2,"1","Heartbeat",{}]')
    assert await conn.recv() == '[2,"1","Heartbeat",{}]'
    return conn


async def refused(pki: Pki, port: int, station: Station) -> str:
    with pytest.raises(CsmsConnectionError) as info:
        await station_connects(pki, port, station)
    return str(info.value)


async def closed_within(conn: ClientConnection, seconds: float = 5.0) -> float:
    """Seconds until the gateway closed ``conn``, which must be at most ``seconds``; the code must be 1008."""
    start = time.monotonic()
    await asyncio.wait_for(conn.wait_closed(), seconds)
    assert conn.close_code == 1008, (conn.close_code, conn.close_reason)
    return time.monotonic() - start


async def until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def event_for(sink: MemorySink, type_: str, station: str) -> Any:
    return next(e for e in sink.events if e.type == type_ and e.station_id == station)


