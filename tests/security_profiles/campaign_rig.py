"""A gateway with campaigns on real loopback TLS, ``ocpp``-package stations holding a certmgmt station store,
and an ``ocpp``-package CSMS upstream that records every frame it sees (and knows nothing of certificates)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ocpp.routing import on
from ocpp.v16 import call as call16
from ocpp.v21 import ChargePoint as Cp21
from ocpp.v21 import call as call21
from ocpp.v21 import call_result as result21
from ocpp.v201 import call as call201
from websockets.asyncio.client import ClientConnection
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
from ocppsec.pki.certmgmt.station import ClientCredential
from ocppsec.pki.chargepoint.classes import station_charge_point_class
from ocppsec.pki.csr import make_csr
from ocppsec.pki.directory import PkiDirectory
from ocppsec.pki.events.sink import MemorySink
from ocppsec.pki.keys import generate_key
from ocppsec.pki.lifecycle.campaign_sql import SqlCampaignStore, open_campaigns
from ocppsec.pki.pem import certificates_to_pem
from ocppsec.pki.profiles import get_profile
from ocppsec.pki.versions import OcppVersion
from ocppsec.security_profiles.client import connect
from ocppsec.security_profiles.gateway import Gateway
from ocppsec.security_profiles.gateway.calls import StationCalls
from ocppsec.security_profiles.gateway.campaigns import CampaignEngine, PresentedCertificates
from ocppsec.security_profiles.gateway.campaigns.onboarding import StationOnboarding, allow_expired_client_certificates
from ocppsec.security_profiles.gateway.csr_signing import CsrSigning, RegistryStations
from ocppsec.security_profiles.handshake import ServerPolicy
from ocppsec.security_profiles.registry import MemoryRegistry, StationRecord, StationRegistry
from ocppsec.security_profiles.tls import CertChain, server_context

from . import ocpp_peers
from .conftest import CSO, Pki, free_port

PKI_PASS = b"campaign-pki-passphrase"
VERSIONS = {"ocpp1.6": OcppVersion.V16, "ocpp2.0.1": OcppVersion.V201, "ocpp2.1": OcppVersion.V21}


class Csms21(Cp21):
    """A 2.1 CSMS answering BootNotification and Heartbeat."""

    @on("BootNotification")
    async def on_boot(self, charging_station: dict[str, Any], reason: str, **_: Any) -> Any:
        return result21.BootNotification(current_time=ocpp_peers._now(), interval=30, status="Accepted")

    @on("Heartbeat")
    async def on_heartbeat(self) -> Any:
        return result21.Heartbeat(current_time=ocpp_peers._now())


class Recorder:
    """Wraps a websocket; keeps every text frame in ``frames`` as (direction, identity, parsed JSON)."""

    def __init__(self, ws: Any, identity: str, frames: list[tuple[str, str, Any]]) -> None:
        self.ws, self.identity, self.frames = ws, identity, frames

    async def recv(self) -> Any:
        message = await self.ws.recv()
        self.frames.append(("in", self.identity, json.loads(message)))
        return message

    async def send(self, message: Any) -> None:
        self.frames.append(("out", self.identity, json.loads(message)))
        await self.ws.send(message)

    async def close(self, *args: Any) -> None:
        await self.ws.close(*args)


@dataclass
class Upstream:
    frames: list[tuple[str, str, Any]] = field(default_factory=list)
    csms: dict[str, Any] = field(default_factory=dict)  # identity -> the CSMS ChargePoint of its latest connection

    def actions_in(self) -> list[str]:
        return [f[2] for d, _i, f in self.frames if d == "in" and f[0] == 2]


@contextlib.asynccontextmanager
async def recording_csms(port: int) -> AsyncIterator[Upstream]:
    up = Upstream()

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        identity = ws.request.path.rsplit("/", 1)[-1]
        cls: Any = {"ocpp1.6": ocpp_peers.Csms16, "ocpp2.0.1": ocpp_peers.Csms201}.get(str(ws.subprotocol), Csms21)
        cp = cls(identity, Recorder(ws, identity, up.frames))
        up.csms[identity] = cp
        with contextlib.suppress(ConnectionClosed):
            await cp.start()

    async with ws_serve(handler, "127.0.0.1", port,
                        subprotocols=["ocpp2.1", "ocpp2.0.1", "ocpp1.6"]):  # type: ignore[list-item]
        yield up


def init_ca(path: Path, *, days_ago: float = 1 / 24, iso15118_20: bool = False) -> None:
    """The test CA (the built-in hierarchy); ``iso15118_20`` also builds the "-20" twins of the ISO 15118 CAs."""
    from ocppsec.pki.hierarchy import HierarchyConfig, default_config_text

    text = default_config_text()
    if iso15118_20:
        text = text.replace("[iso15118_20]\nenabled = false", "[iso15118_20]\nenabled = true")
    config = HierarchyConfig.from_toml(text, cso_name=CSO, csms_fqdn="localhost")
    PkiDirectory.init(path, config, passphrase=PKI_PASS, at=datetime.now(UTC) - timedelta(days=days_ago)).close()


class SimStation:
    """An ``ocpp``-package station whose client certificate (in its certmgmt store) was issued by the CA with
    ``validity_days`` left: it connects, boots, answers the gateway's trigger and CertificateSigned, and
    reconnects with the renewed certificate when asked to. ``secc20`` (with ``secc_id``) also gives it an
    ISO 15118-20 SECC certificate issued by the CA's cpo-sub-ca-2-20 and the v2g-root-20; ``record`` keeps every
    frame of its connections in ``frames`` (direction, identity, parsed JSON)."""

    def __init__(self, identity: str, version: OcppVersion, ca: PkiDirectory, pki: Pki, tmp: Path, *,
                 validity_days: int = 20, csms_roots: Sequence[x509.Certificate] | None = None,
                 additional_root_check: bool = False, cls: type | None = None, issued_days_ago: float = 0,
                 factory: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
                 factory_o: str = "Maker GmbH", secc_id: str | None = None, trust_installed_roots: bool = False,
                 secc20: bool = False, record: bool = False) -> None:
        self.identity, self.version, self.pki, self.tmp = identity, version, pki, tmp
        self.trust_installed_roots = trust_installed_roots  # the CSMS roots in its store verify the gateway
        config = StationConfig(serial=identity, organization=CSO, additional_root_certificate_check=additional_root_check,
                               secc_id=secc_id)
        self.store = StationCertificateStore(MemoryStationStorage(), config)
        self.cls = cls
        now = datetime.now(UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, CSO),
                                        x509.NameAttribute(NameOID.COMMON_NAME, identity)]))
               .sign(key, hashes.SHA256()))
        if factory is None:
            issued = ca.issue_from_csr(csr, ca="csms-root", at=now - timedelta(minutes=30, days=issued_days_ago),
                                       validity_days=validity_days, station=identity)
            chain_pem = issued.chain_pem()
        else:  # a factory certificate: issued by a manufacturer root, with the manufacturer's O
            root, root_key = factory
            leaf = (x509.CertificateBuilder()
                    .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, factory_o),
                                             x509.NameAttribute(NameOID.COMMON_NAME, identity)]))
                    .issuer_name(root.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
                    .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=3650))
                    .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                    .sign(root_key, hashes.SHA256()))
            chain_pem = certificates_to_pem([leaf])
        self.store.install_client_certificate(CertificateUse.CHARGING_STATION, chain_pem, key)
        for root in csms_roots if csms_roots is not None else [ca.ca_certificate("csms-root")]:
            assert self.store.install_root(RootType.CSMS, certificates_to_pem([root]), at=now, max_chars=5500).accepted
        if secc_id is not None:  # a V2G station: the V2G root verifies its SECC certificate chains
            v2g_root = certificates_to_pem([ca.ca_certificate("v2g-root")])
            assert self.store.install_root(RootType.V2G, v2g_root, at=now, max_chars=5500).accepted
        if secc20:  # ISO 15118-20: a P-521 SECC certificate under the -20 CPO sub-CA, verified by the -20 V2G root
            key20 = generate_key(config.key_spec_v2g20)
            csr20 = make_csr(key20, config.subject_for(CertificateUse.V2G20), get_profile("secc-20"))
            secc = ca.issue_from_csr(csr20, ca="cpo-sub-ca-2-20", profile=get_profile("secc-20"), station=identity,
                                     at=now - timedelta(minutes=30), validity_days=validity_days)
            self.store.install_client_certificate(CertificateUse.V2G20, secc.chain_pem(), key20)
            v2g_root20 = certificates_to_pem([ca.ca_certificate("v2g-root-20")])
            assert self.store.install_root(RootType.V2G, v2g_root20, at=now, max_chars=5500).accepted
        self.frames: list[tuple[str, str, Any]] = []
        self.record = record
        self.conn: ClientConnection | None = None
        self.cp: Any = None
        self.runner: asyncio.Task[None] | None = None
        self.presented: ClientCredential | None = None

    def _files(self, credential: ClientCredential) -> CertChain:
        cert = self.tmp / f"{self.identity}-{credential.fingerprint[:12]}.pem"
        key = cert.with_suffix(".key")
        cert.write_text(credential.chain_pem)
        private = self.store.storage.open_key(credential.key_ref).private_key
        key.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
        key.chmod(0o600)
        return CertChain(cert, key)

    async def connect(self, port: int, *, boot: bool = True) -> None:
        """Connect with the renewed certificate if there is one (A02.FR.08), else the active one, and boot."""
        credential = self.store.client_credentials()[0]
        roots = self.store.roots(RootType.CSMS) if self.trust_installed_roots else [self.pki.csms_root]
        self.conn = await connect(f"wss://localhost:{port}/", self.identity, profile=3, versions=[self.version],
                                  csms_roots=roots, client_chain=self._files(credential))
        self.presented = credential
        self.store.connected(credential)  # A02.FR.10: the one that connected is kept
        cls = self.cls or station_charge_point_class(self.version, self.store)
        self.cp = cls(self.identity, Recorder(self.conn, self.identity, self.frames) if self.record else self.conn)
        self.runner = asyncio.create_task(self.cp.start())
        if boot:
            await self.boot()

    async def boot(self) -> Any:
        if self.version is OcppVersion.V16:
            answer = await self.cp.call(call16.BootNotification(charge_point_model="M", charge_point_vendor="V"))
        elif self.version is OcppVersion.V201:
            answer = await self.cp.call(call201.BootNotification(charging_station={"model": "M", "vendor_name": "V"},
                                                                 reason="PowerUp"))
        else:
            answer = await self.cp.call(call21.BootNotification(charging_station={"model": "M", "vendor_name": "V"},
                                                                reason="PowerUp"))
        return answer

    async def heartbeat(self) -> Any:
        module: Any = {OcppVersion.V16: call16, OcppVersion.V201: call201, OcppVersion.V21: call21}[self.version]
        return await self.cp.call(module.Heartbeat())

    async def disconnect(self) -> None:
        if self.runner is not None:
            self.runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await self.runner
        if self.conn is not None:
            await self.conn.close()

    @property
    def renewed(self) -> ClientCredential | None:
        creds = self.store.client_credentials()
        return creds[0] if creds and creds[0].role.value == "renewed" else None


@dataclass
class Rig:
    gw: Gateway
    engine: CampaignEngine
    signing: CsrSigning
    presented: PresentedCertificates
    campaigns: SqlCampaignStore
    inventory: SqlInventory
    ca: PkiDirectory
    sink: MemorySink
    port: int
    up: int

    def close(self) -> None:
        self.presented.close()
        self.campaigns.close()
        self.inventory.close()
        self.ca.close()


def make_rig(pki: Pki, ca_dir: Path, registry: StationRegistry, tmp: Path, *, campaigns: str | None = None,
             tick: float = 0.2, onboarding: bool = False,
             manufacturer_roots: Sequence[x509.Certificate] = (), server_chains: Sequence[CertChain] | None = None,
             v2g20: bool = False) -> Rig:
    """A gateway (profile 3, CSR signing by ``ca_dir``'s csms-root, calls, the presented-certificate step and a
    campaign engine over ``campaigns``, default a SQLite file in ``tmp``). The engine is started by the test.
    ``v2g20``: ISO 15118-20 SECC CSRs are signed by cpo-sub-ca-2-20 (a CA built with ``init_ca(iso15118_20=True)``)."""
    ca = PkiDirectory.open(ca_dir, PKI_PASS)
    cas = {CertificateUse.CHARGING_STATION: "csms-root", CertificateUse.COMBINED: "csms-root",
           CertificateUse.V2G: "cpo-sub-ca-2"}
    if v2g20:
        cas[CertificateUse.V2G20] = "cpo-sub-ca-2-20"
    signer = LocalCaSigner(ca, cas=cas)
    inventory = open_inventory(tmp / "inventory.db")
    service = CertificateService(signer, cso_name=CSO, stations=RegistryStations(registry, cso_name=CSO),
                                 inventory=inventory, ledger=ca.ledger)
    signing = CsrSigning(service)
    root_file = tmp / "station-ca.pem"
    root_file.write_text(certificates_to_pem([ca.ca_certificate("csms-root"), *manufacturer_roots]))
    ssl_ctx = server_context(list(server_chains or pki.server_chains), client_roots=[root_file], client_cert="required")
    if onboarding:
        allow_expired_client_certificates(ssl_ctx)
    sink = MemorySink()
    port, up = free_port(), free_port()
    gw = Gateway(policy=ServerPolicy(frozenset({3}), cso_name=CSO, onboarding=onboarding), registry=registry,
                 upstream=f"ws://127.0.0.1:{up}/upstream", ssl_context=ssl_ctx, sink=sink, csr_signing=signing,
                 calls=StationCalls(default_timeout=10))
    presented = PresentedCertificates(issuers=[ca.ca_certificate("csms-root")], inventory=inventory)
    gw.admission_steps.append(presented)
    store = open_campaigns(campaigns or str(tmp / "campaigns.db"))
    engine = CampaignEngine(gw, store, presented=presented, inventory=inventory, tick=tick)
    if onboarding:
        StationOnboarding(engine, registry, our_cas=[ca.ca_certificate("csms-root")],
                          manufacturer_roots=manufacturer_roots).install()
    return Rig(gw, engine, signing, presented, store, inventory, ca, sink, port, up)


def registry_of(*identities: str) -> MemoryRegistry:
    return MemoryRegistry([StationRecord(i, 3, serial=i) for i in identities])


def gateway_frames_upstream(up: Upstream) -> list[Any]:
    """Frames the upstream saw that the gateway made or that answer the gateway's calls (must be none)."""
    bad = {"TriggerMessage", "ExtendedTriggerMessage", "SignCertificate", "CertificateSigned", "InstallCertificate",
           "GetInstalledCertificateIds", "DeleteCertificate", "GetVariables", "GetConfiguration"}
    return [f for d, _i, f in up.frames
            if (f[0] == 2 and f[2] in bad and d == "in") or str(f[1]).startswith("ocppsec-gw")]


def make_root(name: str, *, signer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
              key: ec.EllipticCurvePrivateKey | None = None) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A CA certificate ``CN=name``: self-signed, or (``signer``) the same subject and ``key`` signed by another root
    (the new-by-old certificate AdditionalRootCertificateCheck wants)."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, CSO), x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    issuer_cert, issuer_key = signer if signer is not None else (None, key)
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer_cert.subject if issuer_cert is not None else subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=3650))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                            crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    return builder.sign(issuer_key, hashes.SHA256()), key


def server_chain(root: tuple[x509.Certificate, ec.EllipticCurvePrivateKey], tmp: Path, label: str) -> CertChain:
    """A CSMS server certificate for ``localhost`` (CN and subjectAltName) issued by ``root``, as files."""
    root_cert, root_key = root
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, CSO),
                                     x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(root_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256()))
    cert_file, key_file = tmp / f"server-{label}.pem", tmp / f"server-{label}.key"
    cert_file.write_text(certificates_to_pem([cert]))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    return CertChain(cert_file, key_file)


def pem_of(cert: x509.Certificate) -> str:
    return certificates_to_pem([cert])
