"""``ocppsec demo``: the main job on embedded defaults, end to end, with a summary table.

Each step calls the library exactly as an operator or station software would. Steps for capabilities
that live in other subpackages are added to ``STEPS`` as those subpackages provide them. The gateway
steps run the gateway, a small upstream CSMS and the stations in this process on 127.0.0.1, on ports the
system picks; the gateway's revocation step revokes the demo station's certificate, so it comes after
every step that uses it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ocppsec.cli._common import PASSPHRASE_ENV, echo_json, echo_table, now
from ocppsec.pki.chain import verify_chain, verify_issued_chain
from ocppsec.pki.csr import make_csr
from ocppsec.pki.directory import PkiDirectory
from ocppsec.pki.errors import OcppsecError, VerificationError
from ocppsec.pki.hashdata import compute_hash_data
from ocppsec.pki.hierarchy import HierarchyConfig, IssuedCertificate, default_config_text
from ocppsec.pki.keys import KeySpec, generate_key
from ocppsec.pki.keys.files import atomic_write, key_to_pem
from ocppsec.pki.lint import lint_certificate
from ocppsec.pki.pem import certificates_to_pem
from ocppsec.pki.profiles import PROFILES

if TYPE_CHECKING:
    from ocppsec.eventlog.queued import QueuedSink
    from ocppsec.pki.events.model import SecurityEvent
    from ocppsec.security_profiles import CertChain, StationRecord
    from ocppsec.security_profiles.registry_snapshot import RegistrySnapshot

__all__ = ["STEPS", "DemoContext", "demo"]

DEMO_PASSPHRASE = "ocppsec-demo"


@dataclass
class DemoContext:
    """What the steps share: the PKI directory, the clock reading, and what earlier steps produced."""

    root: Path
    at: datetime
    passphrase: bytes
    cso_name: str = "Example CSO"
    station_serial: str = "CS-DEMO-0001"
    pki: PkiDirectory | None = None
    csr: x509.CertificateSigningRequest | None = None
    issued: IssuedCertificate | None = None
    issued_serial: str | None = None  # the station certificate's serial as the ledger records it
    facts: dict[str, object] = field(default_factory=dict)

    @property
    def directory(self) -> PkiDirectory:
        assert self.pki is not None, "the PKI step runs first"
        return self.pki

    @property
    def station_certificate(self) -> IssuedCertificate:
        assert self.issued is not None, "the issuing step runs first"
        return self.issued


Step = Callable[[DemoContext], str]


def step_build_hierarchies(ctx: DemoContext) -> str:
    text = default_config_text().replace("[iso15118_20]\nenabled = false", "[iso15118_20]\nenabled = true")
    config = HierarchyConfig.from_toml(text, cso_name=ctx.cso_name, csms_fqdn="localhost")
    ctx.pki = PkiDirectory.init(ctx.root / "pki", config, passphrase=ctx.passphrase, at=ctx.at)
    records = ctx.pki.ledger.all()
    cas = sum(1 for r in records if r.is_ca)
    return f"{cas} CAs + {len(records) - cas} certificates in {ctx.root / 'pki'} (ISO 15118-2 and -20)"


def step_station_csr(ctx: DemoContext) -> str:
    profile = PROFILES["charging-station"]
    key = generate_key(KeySpec.P256)
    station = ctx.root / "station"
    station.mkdir(exist_ok=True)
    atomic_write(station / "station.key.pem", key_to_pem(key, ctx.passphrase), 0o600)
    csr = make_csr(key, {"O": ctx.cso_name, "CN": ctx.station_serial}, profile)
    atomic_write(station / "station.csr.pem", csr.public_bytes(Encoding.PEM), 0o644)
    ctx.csr = csr
    return f"station {ctx.station_serial}: P-256 key (0600, encrypted) + CSR O={ctx.cso_name}, CN={ctx.station_serial}"


def step_issue(ctx: DemoContext) -> str:
    pki = ctx.directory
    assert ctx.csr is not None
    result = pki.issue_from_csr(ctx.csr, ca="csms-root", at=ctx.at,
                                ctx=pki.policy_context(expected_cn=ctx.station_serial), station=ctx.station_serial)
    chain = result.chain_pem()
    atomic_write(ctx.root / "station" / "station.chain.pem", chain.encode(), 0o644)
    ctx.issued = result.issued
    ctx.issued_serial = result.record.serial
    return f"CSR policy passed; certificate serial {result.record.serial} recorded in the ledger"


def step_verify(ctx: DemoContext) -> str:
    pki = ctx.directory
    issued = ctx.station_certificate
    root = pki.ca_certificate("csms-root")
    verify_issued_chain(issued.chain, [root], at=ctx.at, expected_cn=ctx.station_serial)
    lint = lint_certificate(issued.certificate, PROFILES["charging-station"], pki.policy_context())
    if not lint.ok:
        raise OcppsecError("issued certificate deviates from its profile: " + "; ".join(map(str, lint.violations)))
    # Every ISO 15118 chain too: 4 levels, root excluded from what is sent.
    secc_key = generate_key(KeySpec.P256)
    secc_csr = make_csr(secc_key, {"CN": "DE*EXA*E0001", "O": ctx.cso_name, "C": "DE", "DC": "CPO"}, PROFILES["secc"])
    secc = pki.issue_from_csr(secc_csr, ca="cpo-sub-ca-2", at=ctx.at).issued
    verify_chain(secc.certificate, secc.sub_cas, [pki.ca_certificate("v2g-root")], at=ctx.at, max_depth=3)
    openssl = _openssl_verify(root, issued.chain)
    return f"chain valid at {ctx.at:%Y-%m-%d}, profile clean; SECC chain valid (4 levels); openssl verify: {openssl}"


def _openssl_verify(root: x509.Certificate, chain: Sequence[x509.Certificate]) -> str:
    exe = shutil.which("openssl")
    if exe is None:
        return "not installed"
    with tempfile.TemporaryDirectory() as tmp:
        r, c = Path(tmp) / "root.pem", Path(tmp) / "chain.pem"
        r.write_text(certificates_to_pem([root]))
        c.write_text(certificates_to_pem(chain))
        proc = subprocess.run([exe, "verify", "-CAfile", str(r), str(c)], capture_output=True, text=True, check=False)
    return "OK" if proc.returncode == 0 else f"FAILED ({proc.stdout.strip() or proc.stderr.strip()})"


def step_hash_data(ctx: DemoContext) -> str:
    issued = ctx.station_certificate
    data = compute_hash_data(issued.certificate, ctx.directory.ca_certificate("csms-root"))
    ctx.facts["hash_data"] = data.to_ocpp()
    return f"serialNumber {data.serial_number}, issuerKeyHash {data.issuer_key_hash[:16]}…"


def step_firmware(ctx: DemoContext) -> str:
    from ocppsec.firmware_signing import firmware_object, sign_file, verify_file
    from ocppsec.pki.keys.files import load_key_file
    from ocppsec.pki.versions import OcppVersion

    pki = ctx.directory
    image = ctx.root / "firmware" / "station-fw-1.2.3.bin"
    image.parent.mkdir(exist_ok=True)
    image.write_bytes(os.urandom(4 * 1024 * 1024))
    key = load_key_file(ctx.root / "pki" / "keys" / "firmware-signing.key.pem", ctx.passphrase)
    cert = pki.ca_certificate("firmware-signing")
    signature = sign_file(image, key, cert)
    wire = firmware_object(signature, location="https://firmware.example.com/station-fw-1.2.3.bin",
                           retrieve_at=ctx.at, version=OcppVersion.V201)
    (image.parent / "UpdateFirmware.firmware.json").write_text(json.dumps(wire, indent=2))
    result = verify_file(image, signature.b64, cert, [pki.ca_certificate("manufacturer-root")], at=ctx.at)
    return f"4 MiB image signed ({signature.scheme.value}); station check: {result.outcome.value}"


def step_profile3(ctx: DemoContext) -> str:
    """A CSMS port at security profile 3 on loopback; the station connects with its new certificate.

    A second station presents the same certificate under another identity and is refused; the refusal
    lands in the event store ``events.db`` as the security event the spec names.
    """
    import asyncio

    from ocppsec.eventlog.store import EventQuery
    from ocppsec.eventlog.store_sql import open_store
    from ocppsec.pki.versions import OcppVersion
    from ocppsec.security_profiles import (
        CertChain,
        CsmsConnectionError,
        MemoryRegistry,
        ServerPolicy,
        StationConnection,
        StationRecord,
        connect,
        serve,
        server_context,
    )

    pki = ctx.directory
    certs, keys = ctx.root / "pki" / "certs", ctx.root / "pki" / "keys"
    chains = [CertChain(certs / f"{n}.pem", keys / f"{n}.key.pem", ctx.passphrase)
              for n in ("csms-server-rsa", "csms-server-ecdsa")]
    station_dir = ctx.root / "station"
    station_chain = CertChain(station_dir / "station.chain.pem", station_dir / "station.key.pem", ctx.passphrase)
    root = pki.ca_certificate("csms-root")
    registry = MemoryRegistry([StationRecord(ctx.station_serial, 3, serial=ctx.station_serial),
                               StationRecord("CS-DEMO-OTHER", 3, serial="CS-DEMO-OTHER")])
    store = open_store(str(ctx.root / "events.db"))
    policy = ServerPolicy(frozenset({3}), (OcppVersion.V201,), ctx.cso_name)
    seen: list[str] = []

    async def handler(conn: StationConnection) -> None:
        frame = json.loads(await conn.recv())
        seen.append(f"{conn.identity} profile {conn.profile} {conn.subprotocol}: {frame[2]}")
        await conn.send(json.dumps([3, frame[1], {"currentTime": ctx.at.strftime("%Y-%m-%dT%H:%M:%SZ")}]))

    async def run() -> str:
        tls = server_context(chains, client_roots=[root], client_cert="required")
        async with serve(handler, "127.0.0.1", 0, policy=policy, registry=registry, ssl_context=tls,
                         sink=store) as server:
            port = _bound_port(server)
            ws = await connect(f"wss://localhost:{port}/", ctx.station_serial, profile=3, csms_roots=[root],
                               client_chain=station_chain, fqdn="localhost")
            await ws.send(json.dumps([2, "1", "Heartbeat", {}]))
            reply = json.loads(await ws.recv())
            await ws.close()
            try:
                other = await connect(f"wss://localhost:{port}/", "CS-DEMO-OTHER", profile=3, csms_roots=[root],
                                      client_chain=station_chain, fqdn="localhost")
                await other.close()
                refused = "NOT refused"
            except CsmsConnectionError as exc:  # the CSMS refuses the identity binding
                refused = f"refused ({exc.message.split(':')[0]})"
        return f"{seen[0]} -> CallResult {reply[2]['currentTime']}; same certificate as CS-DEMO-OTHER: {refused}"

    try:
        detail = asyncio.run(run())
        events = store.count(EventQuery())
    finally:
        store.close()
    return f"{detail}; {events} security event(s) in {ctx.root / 'events.db'}"


def step_revocation(ctx: DemoContext) -> str:
    """Revoke a second station certificate, sign the CRL, and ask our OCSP responder about both."""
    from ocppsec.pki.revocation.authorities import load_authorities
    from ocppsec.pki.revocation.client import query
    from ocppsec.pki.revocation.crl import build_crl, crl_entries
    from ocppsec.pki.revocation.ocsp import CertId, OcspResponder
    from ocppsec.pki.revocation.server import OcspHttpServer

    pki = ctx.directory
    csr = make_csr(generate_key(KeySpec.P256), {"O": ctx.cso_name, "CN": "CS-DEMO-LOST"}, PROFILES["charging-station"])
    lost = pki.issue_from_csr(csr, ca="csms-root", at=ctx.at, station="CS-DEMO-LOST")
    pki.ledger.revoke(lost.record.serial, "csms-root", ctx.at, "keyCompromise")
    ca = pki.ca("csms-root")
    crl = build_crl(ca.certificate, ca.key, crl_entries(pki.ledger.revoked("csms-root")), at=ctx.at,
                    number=pki.ledger.next_crl_number("csms-root"))
    atomic_write(ctx.root / "pki" / "csms-root.crl.pem", crl.public_bytes(Encoding.PEM), 0o644)
    responder = OcspResponder(load_authorities(pki, ["csms-root"], at=ctx.at), pki.ledger)
    server = OcspHttpServer(("127.0.0.1", 0), responder, refresh_interval=None)
    server.start()
    try:
        root = ca.certificate
        answers = []
        for cert in (ctx.station_certificate.certificate, lost.issued.certificate):
            result = query(server.url + "/csms-root", CertId.for_certificate(cert, root), at=ctx.at, issuer=root)
            answers.append(result.status.value)
    finally:
        server.stop()
    return (f"CRL #{crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number} lists "
            f"{len(list(crl))} serial(s); OCSP over HTTP: {ctx.station_serial} {answers[0]}, CS-DEMO-LOST {answers[1]}")


class _DemoCsms:
    """The demo's upstream CSMS: a plain websockets server on 127.0.0.1 (a free port) speaking OCPP 2.0.1.

    It answers every Heartbeat with the time, hands each station connection to ``arrivals`` (by identity, in
    arrival order) and lets the demo send a CALL and await its CallResult (:meth:`call`)."""

    def __init__(self) -> None:
        import asyncio

        self.arrivals: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._waiting: dict[str, asyncio.Future[Any]] = {}
        self._ids = 0
        self.url = ""
        self.frames = 0  # frames received from the stations (through the gateway)

    async def _handler(self, ws: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        identity = ws.request.path.rsplit("/", 1)[-1]
        self.arrivals.put_nowait((identity, ws))
        try:
            async for message in ws:
                self.frames += 1
                frame = json.loads(message)
                if frame[0] == 2:
                    await ws.send(json.dumps([3, frame[1], {"currentTime": now().strftime("%Y-%m-%dT%H:%M:%SZ")}]))
                elif frame[0] in (3, 4) and frame[1] in self._waiting:
                    self._waiting.pop(frame[1]).set_result(frame)
        except ConnectionClosed:
            pass

    async def call(self, ws: Any, action: str, payload: dict[str, Any]) -> Any:
        """Send a CALL to the station on ``ws`` and return its answer frame (bounded: 10 s)."""
        import asyncio

        self._ids += 1
        unique = f"csms-{self._ids}"
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[unique] = future
        await ws.send(json.dumps([2, unique, action, payload]))
        return await asyncio.wait_for(future, 10)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[_DemoCsms]:
        from websockets.asyncio.server import serve as ws_serve
        from websockets.typing import Subprotocol

        async with ws_serve(self._handler, "127.0.0.1", 0, subprotocols=[Subprotocol("ocpp2.0.1")]) as server:
            self.url = f"ws://127.0.0.1:{_bound_port(server)}/csms"
            yield self


def _bound_port(server: Any) -> int:
    return int(next(iter(server.sockets)).getsockname()[1])


def _server_chains(ctx: DemoContext) -> list[CertChain]:
    from ocppsec.security_profiles import CertChain

    certs, keys = ctx.root / "pki" / "certs", ctx.root / "pki" / "keys"
    return [CertChain(certs / f"{n}.pem", keys / f"{n}.key.pem", ctx.passphrase)
            for n in ("csms-server-rsa", "csms-server-ecdsa")]


@contextlib.contextmanager
def _stations(ctx: DemoContext, record: StationRecord) -> Iterator[RegistrySnapshot]:
    """The demo's station registry ``stations.db`` holding ``record``, seen through the gateway's snapshot."""
    from ocppsec.security_profiles import open_registry
    from ocppsec.security_profiles.registry_snapshot import RegistrySnapshot

    registry = open_registry(ctx.root / "stations.db")
    try:
        if registry.get(record.identity) is None:
            registry.add(record)
        else:
            registry.update(record)
        with RegistrySnapshot(registry) as snapshot:
            yield snapshot
    finally:
        registry.close()


@contextlib.contextmanager
def _event_queue(ctx: DemoContext) -> Iterator[QueuedSink]:
    """The gateway's event sink: a queue written to ``events.db`` by a thread (closed, and so flushed, on exit)."""
    from ocppsec.eventlog.queued import QueuedSink
    from ocppsec.eventlog.store_sql import open_store

    sink = QueuedSink(lambda: open_store(str(ctx.root / "events.db")), spool=ctx.root / "events.spool")
    try:
        yield sink
    finally:
        sink.close()


def _stored_events(ctx: DemoContext, station: str) -> list[SecurityEvent]:
    """The security events ``events.db`` holds for ``station``, oldest first."""
    from ocppsec.eventlog.store import EventQuery
    from ocppsec.eventlog.store_sql import open_store

    store = open_store(str(ctx.root / "events.db"))
    try:
        return [s.event for s in store.query(EventQuery(station_id=station))]
    finally:
        store.close()


def _events_text(events: Sequence[SecurityEvent]) -> str:
    counts: dict[str, int] = {}
    for event in events:
        counts[event.type] = counts.get(event.type, 0) + 1
    return ", ".join(f"{n} {t}" for t, n in counts.items()) or "none"


def _run_gateway_demo(main: Coroutine[Any, Any, str], what: str) -> str:
    """Run one gateway step's loop; a peer that went silent or away becomes the step's failure.

    The gateway's own log lines (the close of a revoked station, ...) stay off the terminal: the row and
    ``events.db`` say what happened."""
    import asyncio
    import logging

    from websockets.exceptions import ConnectionClosed, InvalidMessage

    quiet = logging.NullHandler()
    logger = logging.getLogger("ocppsec.security_profiles")
    logger.addHandler(quiet)
    try:
        return asyncio.run(main)
    except TimeoutError:
        raise VerificationError(f"{what}: timed out after 10 s") from None
    except (ConnectionClosed, InvalidMessage, OSError) as exc:
        raise VerificationError(f"{what}: {type(exc).__name__}: {exc}") from None
    finally:
        logger.removeHandler(quiet)


async def _refused(attempt: Awaitable[Any], what: str) -> str:
    """The reason a connection ``attempt`` that must be refused was refused; VerificationError if it was admitted."""
    from ocppsec.security_profiles import CsmsConnectionError

    try:
        ws = await attempt
    except CsmsConnectionError as exc:
        return exc.message
    await ws.close()
    raise VerificationError(f"{what} was admitted")


def step_gateway_revocation(ctx: DemoContext) -> str:
    """The gateway at profile 3 in front of a CSMS, enforcing the PKI directory's ledger (``--pki DIR``).

    The demo station connects through it and heartbeats; its certificate is then revoked in the ledger
    (keyCompromise). The gateway's re-check closes the connected station with 1008 and records the event;
    the station's reconnect is refused at the handshake."""
    import asyncio

    from ocppsec.pki.versions import OcppVersion
    from ocppsec.security_profiles import CertChain, ServerPolicy, StationRecord, connect, server_context
    from ocppsec.security_profiles.gateway import Gateway, LedgerSource, RevocationChecker, StationGuard
    from ocppsec.security_profiles.gateway.guard import POLICY_VIOLATION

    pki = ctx.directory
    serial = ctx.issued_serial
    assert serial is not None, "the issuing step runs first"
    root = pki.ca_certificate("csms-root")
    station_dir = ctx.root / "station"
    station_chain = CertChain(station_dir / "station.chain.pem", station_dir / "station.key.pem", ctx.passphrase)
    identity = ctx.station_serial
    policy = ServerPolicy(frozenset({3}), (OcppVersion.V201,), ctx.cso_name)
    # as `ocppsec gateway --pki DIR --trust ROOT`: the CAs under the trusted root, their revocations polled
    ledger = LedgerSource.from_directory(ctx.root / "pki", trusted=[root], interval=0.2)
    checker = RevocationChecker(issuers=[root], ledger=ledger)

    async def run(snapshot: RegistrySnapshot, sink: QueuedSink) -> str:
        async with _DemoCsms().running() as csms:
            gw = Gateway(policy=policy, registry=snapshot, upstream=csms.url, sink=sink,
                         ssl_context=server_context(_server_chains(ctx), client_roots=[root], client_cert="required"))
            guard = StationGuard(gw, revocation=checker, registry=snapshot, interval=0.5)
            async with guard, gw.serve("127.0.0.1", 0) as server:
                url = f"wss://localhost:{_bound_port(server)}/"
                ws = await connect(url, identity, profile=3, csms_roots=[root], client_chain=station_chain)
                await ws.send(json.dumps([2, "1", "Heartbeat", {}]))
                beat = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if beat[0] != 3:
                    raise VerificationError(f"the CSMS did not answer the Heartbeat through the gateway: {beat}")
                started = time.perf_counter()
                await asyncio.to_thread(pki.ledger.revoke, serial, "csms-root", now(), "keyCompromise")
                await asyncio.wait_for(ws.wait_closed(), 10)
                took = time.perf_counter() - started
                if ws.close_code != POLICY_VIOLATION:
                    raise VerificationError(f"the revoked station was closed with {ws.close_code}, not {POLICY_VIOLATION}")
                refused = await _refused(connect(url, identity, profile=3, csms_roots=[root], client_chain=station_chain),
                                         "the reconnect with the revoked certificate")
        return (f"{identity} through the gateway to the CSMS: Heartbeat answered; revoked in the ledger (keyCompromise): "
                f"closed {ws.close_code} ({ws.close_reason}) {took:.1f} s later; reconnect refused ({refused})")

    with _stations(ctx, StationRecord(identity, 3, serial=identity)) as snapshot, _event_queue(ctx) as sink:
        detail = _run_gateway_demo(run(snapshot, sink), "the gateway's revocation check")
    events = [e for e in _stored_events(ctx, identity) if e.type == "InvalidChargingStationCertificate"]
    if not events:
        raise VerificationError("the gateway recorded no InvalidChargingStationCertificate event")
    return f"{detail}; events.db: {_events_text(events)} ({events[0].tech_info})"


def step_gateway_rotation(ctx: DemoContext) -> str:
    """A01 through the gateway: the CSMS rotates a profile-2 station's Basic-auth password over OCPP 2.0.1.

    The CSMS sends SetVariables(SecurityCtrlr.BasicAuthPassword); the gateway hashes the new password and,
    when the station answers Accepted, writes it into the registry (``stations.db``). The station reconnects
    with it and is admitted; the old password is refused from then on."""
    import asyncio

    from ocppsec.pki.versions import OcppVersion
    from ocppsec.security_profiles import (
        ServerPolicy,
        StationRecord,
        connect,
        generate_password,
        hash_password,
        server_context,
    )
    from ocppsec.security_profiles.gateway import Gateway

    identity = "CS-DEMO-0002"
    old, new = generate_password(OcppVersion.V201), generate_password(OcppVersion.V201)
    root = ctx.directory.ca_certificate("csms-root")
    policy = ServerPolicy(frozenset({2}), (OcppVersion.V201,), ctx.cso_name)
    variable = {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"}}

    async def run(snapshot: RegistrySnapshot, sink: QueuedSink) -> str:
        async with _DemoCsms().running() as csms:
            gw = Gateway(policy=policy, registry=snapshot, upstream=csms.url, sink=sink,
                         ssl_context=server_context(_server_chains(ctx)))
            async with gw.serve("127.0.0.1", 0) as server:
                url = f"wss://localhost:{_bound_port(server)}/"
                ws = await connect(url, identity, profile=2, password=old, csms_roots=[root])
                _, upstream = await asyncio.wait_for(csms.arrivals.get(), 10)
                answer = asyncio.create_task(csms.call(upstream, "SetVariables",
                                                       {"setVariableData": [{**variable, "attributeValue": new}]}))
                # the station stores the password, answers Accepted and reconnects with it (A01.FR.03)
                request = json.loads(await asyncio.wait_for(ws.recv(), 10))
                stored = request[3]["setVariableData"][0]["attributeValue"]
                await ws.send(json.dumps([3, request[1], {"setVariableResult": [{**variable, "attributeStatus": "Accepted"}]}]))
                status = (await answer)[2]["setVariableResult"][0]["attributeStatus"]
                await ws.close()
                ws = await connect(url, identity, profile=2, password=stored, csms_roots=[root])
                await ws.send(json.dumps([2, "1", "Heartbeat", {}]))
                beat = json.loads(await asyncio.wait_for(ws.recv(), 10))
                await ws.close()
                if beat[0] != 3:
                    raise VerificationError(f"the CSMS did not answer the Heartbeat through the gateway: {beat}")
                refused = await _refused(connect(url, identity, profile=2, password=old, csms_roots=[root]),
                                         "the reconnect with the old password")
        return (f"CSMS SetVariables(SecurityCtrlr.BasicAuthPassword) to {identity} (profile 2): {status}; "
                f"reconnect with the new password admitted, Heartbeat answered; old password refused ({refused})")

    record = StationRecord(identity, 2, password_hash=hash_password(old))
    with _stations(ctx, record) as snapshot, _event_queue(ctx) as sink:
        detail = _run_gateway_demo(run(snapshot, sink), "the gateway's password rotation")
    return f"{detail}; events.db: {_events_text(_stored_events(ctx, identity))}"

def step_renewal(ctx: DemoContext) -> str:
    """A renewal campaign run by the gateway (``ocppsec gateway --sign-csrs --campaigns DB``): the demo station,
    an ``ocpp``-package 2.0.1 station with a certmgmt store, is triggered; the gateway signs its CSR with the
    directory's csms-root and sends CertificateSigned; the campaign counts it renewed when the station
    reconnects with the new certificate. The CSMS behind the gateway sees none of it."""
    import asyncio

    from ocppsec.pki.certmgmt import (
        CertificateService,
        CertificateUse,
        LocalCaSigner,
        MemoryStationStorage,
        RootType,
        StationCertificateStore,
        StationConfig,
        open_inventory,
    )
    from ocppsec.pki.chargepoint.classes import station_charge_point_class
    from ocppsec.pki.keys.files import load_key_file
    from ocppsec.pki.lifecycle.campaign import CampaignKind, CampaignOptions, RowState
    from ocppsec.pki.lifecycle.campaign_sql import open_campaigns
    from ocppsec.security_profiles import CertChain, MemoryRegistry, ServerPolicy, StationRecord, connect, server_context
    from ocppsec.security_profiles.gateway import Gateway
    from ocppsec.security_profiles.gateway.calls import StationCalls
    from ocppsec.security_profiles.gateway.campaigns import CampaignEngine, PresentedCertificates
    from ocppsec.security_profiles.gateway.csr_signing import CsrSigning, RegistryStations

    pki = ctx.directory
    station_dir = ctx.root / "station"
    serial = ctx.station_serial
    root = pki.ca_certificate("csms-root")
    store = StationCertificateStore(MemoryStationStorage(ctx.passphrase), StationConfig(serial=serial,
                                                                                         organization=ctx.cso_name))
    store.install_client_certificate(CertificateUse.CHARGING_STATION, (station_dir / "station.chain.pem").read_text(),
                                     load_key_file(station_dir / "station.key.pem", ctx.passphrase).private_key)
    store.install_root(RootType.CSMS, certificates_to_pem([root]), at=ctx.at, max_chars=5500)
    registry = MemoryRegistry([StationRecord(serial, 3, serial=serial)])
    inventory = open_inventory(ctx.root / "inventory.db")
    record = open_campaigns(ctx.root / "campaigns.db")
    service = CertificateService(LocalCaSigner(pki, cas={CertificateUse.CHARGING_STATION: "csms-root"}),
                                 cso_name=ctx.cso_name, stations=RegistryStations(registry, cso_name=ctx.cso_name),
                                 inventory=inventory, ledger=pki.ledger)
    presented = PresentedCertificates(issuers=[root], inventory=inventory)

    async def station(url: str) -> tuple[Any, asyncio.Task[None]]:
        credential = store.client_credentials()[0]  # the renewed one first (A02.FR.08)
        cert_file, key_file = station_dir / f"renewal-{credential.fingerprint[:12]}.pem", station_dir / "renewal.key"
        cert_file.write_text(credential.chain_pem)
        atomic_write(key_file, key_to_pem(store.storage.open_key(credential.key_ref).private_key, ctx.passphrase), 0o600)
        conn = await connect(url, serial, profile=3, csms_roots=[root],
                             client_chain=CertChain(cert_file, key_file, ctx.passphrase))
        store.connected(credential)
        cp = station_charge_point_class("2.0.1", store)(serial, conn)
        return conn, asyncio.create_task(cp.start())

    async def run() -> str:
        async with _DemoCsms().running() as csms:
            gw = Gateway(policy=ServerPolicy(frozenset({3}), cso_name=ctx.cso_name), registry=registry,
                         upstream=csms.url, csr_signing=CsrSigning(service), calls=StationCalls(),
                         ssl_context=server_context(_server_chains(ctx), client_roots=[root], client_cert="required"))
            gw.admission_steps.append(presented)
            engine = CampaignEngine(gw, record, presented=presented, inventory=inventory)
            async with gw.serve("127.0.0.1", 0) as server:
                url = f"wss://localhost:{_bound_port(server)}/"
                await engine.start()
                try:
                    conn, task = await station(url)
                    options = CampaignOptions(stations=(serial,), force=True)
                    cid = (await engine.start_campaign(CampaignKind.RENEW, options))["id"]
                    row = await engine.wait_row(cid, serial, frozenset({RowState.AWAITING_RECONNECT, RowState.FAILED}),
                                                timeout=10)
                    if row.state is RowState.FAILED:
                        raise VerificationError(f"the renewal failed: {row.reason}")
                    await conn.close()
                    task.cancel()
                    conn, task = await station(url)
                    summary = await engine.wait_finished(cid, timeout=10)
                    await conn.close()
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
                finally:
                    await engine.close()
                seen, frames = csms.arrivals.qsize(), csms.frames
        leaf = store.client_credentials()[0].leaf
        return (f"campaign {cid}: TriggerMessage, SignCertificate signed in the gateway, CertificateSigned, reconnect "
                f"with the new certificate (notAfter {leaf.not_valid_after_utc:%Y-%m-%d}): "
                f"{summary['progress']['done']} of {summary['progress']['total']} renewed; the CSMS got {seen} "
                f"connection(s) and {frames} frame(s)")

    try:
        return _run_gateway_demo(run(), "the gateway's renewal campaign")
    finally:
        presented.close()
        record.close()
        inventory.close()


STEPS: list[tuple[str, Step]] = [
    ("build every hierarchy", step_build_hierarchies),
    ("station: key + CSR", step_station_csr),
    ("CSMS: issue from CSR", step_issue),
    ("verify chain", step_verify),
    ("CertificateHashData", step_hash_data),
    ("firmware: sign + verify", step_firmware),
    ("profile 3 (mTLS) connection", step_profile3),
    ("revocation: CRL + OCSP", step_revocation),
    ("gateway: renewal campaign", step_renewal),
    ("gateway: revocation", step_gateway_revocation),
    ("gateway: password rotation", step_gateway_rotation),
]


@click.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=Path("ocppsec-demo"),
              show_default=True, help="Where the demo writes its PKI, keys and artefacts.")
@click.option("--fresh/--reuse", default=True, show_default=True, help="Start from an empty directory.")
@click.option("--json", "as_json", is_flag=True)
def demo(directory: Path, fresh: bool, as_json: bool) -> None:
    """Run the main job on embedded defaults: every hierarchy, a station certificate from a CSR, verified, used
    at profile 3 and through the gateway (revocation enforced, a password rotation followed)."""
    if fresh and directory.exists():
        if not (directory / "pki" / "ledger.db").exists() and any(directory.iterdir()):
            raise click.UsageError(f"{directory} exists and is not an ocppsec demo directory; choose another --dir")
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    passphrase = os.environ.get(PASSPHRASE_ENV) or DEMO_PASSPHRASE
    ctx = DemoContext(directory, now(), passphrase.encode())
    rows: list[list[str]] = []
    failed = False
    try:
        for title, step in STEPS:
            started = time.perf_counter()
            try:
                detail = step(ctx)
                status = "ok"
            except OcppsecError as exc:
                detail, status, failed = str(exc), "FAILED", True
            rows.append([title, status, f"{(time.perf_counter() - started) * 1000:.0f} ms", detail])
            if failed:
                break
    finally:
        if ctx.pki is not None:
            ctx.pki.close()
    if as_json:
        echo_json({"directory": str(directory), "steps": [dict(zip(["step", "status", "time", "detail"], r, strict=True))
                                                          for r in rows]})
    else:
        click.echo(f"ocppsec demo in ./{directory} (keys encrypted with "
                   f"{'$' + PASSPHRASE_ENV if os.environ.get(PASSPHRASE_ENV) else repr(DEMO_PASSPHRASE)})\n")
        echo_table(["step", "status", "time", "detail"], rows)
    if failed:
        raise SystemExit(1)
