"""Benchmark: a renewal campaign through one gateway, against the raw issuance rate, in the same run.

``--stations`` simulated profile-3 stations (``ocpp``-package 2.0.1 stations with a certmgmt store, real
loopback TLS with client certificates) connect through one gateway (CSR signing by a local PKI directory's
CA, a SQLite campaign record and inventory) to a CSMS that only listens. A renewal campaign
(``--max-in-flight`` at a time) triggers each, the gateway signs the CSR and sends CertificateSigned, the
station answers, closes and reconnects with its new certificate (A02.FR.08, full TLS handshake) and the
campaign counts it done.

Three processes (this script re-invoked with ``--role``): the gateway with its campaign engine (this one),
the stations (``--role stations``: every store, every station's TLS and key work) and the CSMS (``--role
csms``). All three run on uvloop when it is installed, as ``ocppsec gateway`` does. The stations connect in
batches before the campaign starts; the gateway holds two sockets per station (station and upstream), so
when the fleet does not fit in the open-files limit at once, the stations beyond it connect during the
campaign, each as a renewed station leaves (the gateway's inventory knows every station's certificate, as
after an earlier run, so the campaign lists them all from the start).

Measured: renewals per second from the campaign's start until every row is done, the CPU seconds per
renewal of each process (the gateway's from getrusage, the others' from /proc; their inverse for the gateway
is the rate one free core would allow it), and, as the baseline, the
same CA's raw issuance rate (:meth:`CertificateService.handle` on as many CSRs, one at a time, the ledger
and inventory written as the gateway writes them) in the gateway process before the campaign. The
machine is shared: read the figures with the load average printed beside them.

``--station-processes N`` splits the simulated fleet over N processes (station i in process i mod N);
``--profile DIR`` records py-spy (the thread holding the GIL) and perf (by shared object) on the gateway and
the (first) stations process during the campaign, their top entries in the JSON. The stations process
reports its connection retries with their reasons.

Prints a table, then as its LAST line one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import collapsed_summary, print_table

HERE = Path(__file__).resolve()
CSO = "Example CSO"
PASS = b"bench-pki-passphrase"
TICK = os.sysconf("SC_CLK_TCK")
GOAL_STATIONS = 10_000
GOAL_SECONDS = 120
FD_RESERVE = 400  # the gateway's own files (databases, listeners, pipes) and sockets still closing
T = TypeVar("T")


# -- helpers ---------------------------------------------------------------------------------------------------
def run_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on uvloop when it is installed (as ``ocppsec gateway`` does), else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def loop_name() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def raise_nofile() -> int:
    """Raise the soft open-files limit to the hard one; returns it."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, CSO), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key_pem(key: Any) -> bytes:
    return bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))


def _write_chain(path: Path, chain_pem: str, key: Any) -> tuple[Path, Path]:
    cert, key_file = path.with_suffix(".pem"), path.with_suffix(".key")
    cert.write_text(chain_pem)
    key_file.write_bytes(_key_pem(key))
    key_file.chmod(0o600)
    return cert, key_file


def _csr(cn: str) -> tuple[x509.CertificateSigningRequest, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    return x509.CertificateSigningRequestBuilder().subject_name(_name(cn)).sign(key, hashes.SHA256()), key


def _collections() -> int:
    """Full (oldest-generation) collections this process ran so far."""
    return int(gc.get_stats()[-1]["collections"])


# -- role: the CSMS (only listens) -------------------------------------------------------------------------------
async def role_csms(args: argparse.Namespace) -> None:
    from websockets.asyncio.server import serve as ws_serve

    raise_nofile()

    async def csms(ws: Any) -> None:  # the stations send nothing of their own here
        with contextlib.suppress(Exception):
            async for _message in ws:
                pass

    async with ws_serve(csms, "127.0.0.1", args.port, subprotocols=["ocpp2.0.1"], ping_interval=None):  # type: ignore[list-item]
        await asyncio.Future()


# -- role: the stations ------------------------------------------------------------------------------------------
class _Link:
    """A station's WebSocket as its ChargePoint sees it: ``answered`` is set by the first message sent after
    the store accepted a renewed certificate (the CertificateSigned answer), so the station closes only
    once the gateway has its answer."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.cp: Any = None
        self.answered = asyncio.Event()

    async def recv(self) -> Any:
        return await self.conn.recv()

    async def send(self, message: Any) -> None:
        await self.conn.send(message)
        if self.cp is not None and self.cp.renewed.is_set():
            self.answered.set()


async def role_stations(args: argparse.Namespace) -> None:
    from ocppsec.pki.certmgmt import (
        CertificateUse,
        MemoryStationStorage,
        RootType,
        StationCertificateStore,
        StationConfig,
    )
    from ocppsec.pki.chargepoint.classes import station_charge_point_class
    from ocppsec.pki.versions import OcppVersion
    from ocppsec.security_profiles.client import connect
    from ocppsec.security_profiles.tls import CertChain

    raise_nofile()
    work = Path(args.work)
    shard, shards = (int(x) for x in args.shard.split("/"))
    keys = work / f"station-keys-{shard}"
    keys.mkdir(mode=0o700)
    csms_root = work / "csms-root.pem"
    root_pem = (work / "root.pem").read_text()
    now = datetime.now(UTC)
    stores: dict[str, StationCertificateStore] = {}
    classes: dict[str, Any] = {}
    for i, line in enumerate((work / "stations.jsonl").read_text().splitlines()):
        if i % shards != shard:
            continue
        item = json.loads(line)
        s = item["id"]
        store = StationCertificateStore(MemoryStationStorage(), StationConfig(serial=s, organization=CSO))
        key = serialization.load_pem_private_key(item["key"].encode(), None)
        store.install_client_certificate(CertificateUse.CHARGING_STATION, item["chain"], key)  # type: ignore[arg-type]
        assert store.install_root(RootType.CSMS, root_pem, at=now, max_chars=5500).accepted
        stores[s] = store
        classes[s] = station_charge_point_class(OcppVersion.V201, store)
    names = list(stores)
    initial = names[:args.slots]
    late = names[args.slots:]
    to_admit = [len(late)]  # late stations no renewed station has left for yet
    slots = asyncio.Semaphore(0)  # a slot frees when a renewed station leaves to make room
    counts = {"renewed": 0, "left": 0, "connect_retries": 0}
    retry_reasons: dict[str, int] = {}  # why a connection attempt failed (a 503, a timeout), by text
    kept: list[Any] = []
    runners: list[asyncio.Task[Any]] = []

    async def station_connect(s: str) -> _Link:
        store = stores[s]
        credential = store.client_credentials()[0]  # the renewed one first (A02.FR.08)
        cert, key = _write_chain(keys / f"{s}-{credential.fingerprint[:8]}", credential.chain_pem,
                                 store.storage.open_key(credential.key_ref).private_key)
        for attempt in range(20):  # as a station does: refused (a 503 when the upstream was slow) -> back off, retry
            try:
                conn = await connect(f"wss://localhost:{args.port}/", s, profile=3, csms_roots=[csms_root],
                                     client_chain=CertChain(cert, key), open_timeout=60)
                break
            except Exception as exc:
                if attempt == 19:
                    raise
                counts["connect_retries"] += 1
                retry_reasons.setdefault(repr(exc)[:200], 0)
                retry_reasons[repr(exc)[:200]] += 1
                await asyncio.sleep(min(0.5 * 2 ** attempt, 10))
        store.connected(credential)
        link = _Link(conn)
        link.cp = classes[s](s, link)
        runners.append(asyncio.create_task(link.cp.start()))
        return link

    async def life(s: str, link: _Link | None) -> None:
        if link is None:
            await slots.acquire()
            link = await station_connect(s)
        await link.answered.wait()
        await link.conn.close()
        renewed = await station_connect(s)
        counts["renewed"] += 1
        if to_admit[0] > 0:  # make room for a station that is not connected yet
            to_admit[0] -= 1
            await renewed.conn.close()
            counts["left"] += 1
            slots.release()
        else:
            kept.append(renewed)

    started = time.perf_counter()
    lives: list[asyncio.Task[None]] = []
    for i in range(0, len(initial), args.batch):
        batch = initial[i:i + args.batch]
        for s, link in zip(batch, await asyncio.gather(*(station_connect(s) for s in batch)), strict=True):
            lives.append(asyncio.create_task(life(s, link)))
    lives.extend(asyncio.create_task(life(s, None)) for s in late)
    # The simulated fleet's heap (every store, credential and connection of up to 10,000 stations in one
    # process, millions of objects) is moved out of the cyclic collector's reach once connected: a real
    # station runs one of each, while here every full collection walked all of them (at 10,000 stations 26
    # full collections of up to 5.6 s each during the campaign, about 8 ms of the process's CPU per renewal).
    # The gateway process is left as `ocppsec gateway` runs it.
    gc.collect()
    gc.freeze()
    print(json.dumps({"ready": len(initial), "connect_seconds": round(time.perf_counter() - started, 3)}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # "stop" from the gateway process
    failed = [t for t in lives if t.done() and t.exception() is not None]
    for t in lives:
        t.cancel()
    await asyncio.gather(*lives, return_exceptions=True)
    await asyncio.gather(*(link.conn.close() for link in kept), return_exceptions=True)
    for task in runners:
        task.cancel()
    await asyncio.gather(*runners, return_exceptions=True)
    print(json.dumps({**counts, "retry_reasons": retry_reasons, "failed": len(failed),
                      "first_failure": repr(failed[0].exception())[:300] if failed else None}), flush=True)


# -- profiling ---------------------------------------------------------------------------------------------------
def start_profilers(out: Path | None, pids: dict[str, int]) -> dict[str, list[tuple[subprocess.Popen[bytes], Path]]]:
    """py-spy (only the thread holding the GIL: the Python CPU) and, where it works, perf (all CPU, by shared
    object) on each process for the campaign (``--profile DIR``); none when ``out`` is None."""
    if out is None:
        return {}
    out.mkdir(parents=True, exist_ok=True)
    with_perf = shutil.which("perf") is not None and subprocess.run(
        ["perf", "record", "-e", "cpu-clock", "-o", "/dev/null", "true"], capture_output=True).returncode == 0
    spies: dict[str, list[tuple[subprocess.Popen[bytes], Path]]] = {}
    for name, pid in pids.items():
        path = out / f"{name}.pyspy.txt"
        spies[name] = [(subprocess.Popen(["py-spy", "record", "--nonblocking", "--gil", "-r", "100", "-f", "raw", "-p",
                                          str(pid), "-o", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
                        path)]
        if with_perf:
            data = out / f"{name}.perf.data"
            spies[name].append((subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "499", "-p", str(pid), "-o",
                                                  str(data)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), data))
    return spies


def stop_profilers(spies: dict[str, list[tuple[subprocess.Popen[bytes], Path]]]) -> dict[str, Any]:
    """Stop the profilers; each process's top Python functions as (function, inclusive %, self %) and its CPU
    by shared object (perf)."""
    for procs in spies.values():
        for proc, _path in procs:
            proc.send_signal(signal.SIGINT)
    result: dict[str, Any] = {}
    for name, procs in spies.items():
        for proc, path in procs:
            proc.wait(120)
            if not path.exists():
                continue
            if path.suffix == ".txt":
                result[name] = [(f, round(i, 1), round(o, 1)) for f, i, o in collapsed_summary(path)]
            else:
                report = subprocess.run(["perf", "report", "-i", str(path), "--no-children", "--sort", "dso", "--stdio"],
                                        capture_output=True, text=True).stdout
                result[f"{name}_perf_dso"] = [" ".join(line.split()) for line in report.splitlines()
                                              if "%" in line and not line.startswith("#")][:8]
    return result


# -- the gateway (this process) ----------------------------------------------------------------------------------
def _out(proc: asyncio.subprocess.Process) -> asyncio.StreamReader:
    assert proc.stdout is not None
    return proc.stdout


async def run(n: int, in_flight: int, batch: int, work: Path, gc_policy: str = "frozen",
              profile: Path | None = None, processes: int = 1) -> dict[str, Any]:
    from ocppsec.pki.certmgmt import (
        CertificateService,
        CertificateUse,
        LocalCaSigner,
        SignRequest,
        open_inventory,
    )
    from ocppsec.pki.certmgmt.inventory import EntrySource, InventoryState, entry_for
    from ocppsec.pki.directory import PkiDirectory
    from ocppsec.pki.hierarchy import Hierarchy, HierarchyConfig
    from ocppsec.pki.lifecycle.campaign import CampaignKind, CampaignOptions
    from ocppsec.pki.lifecycle.campaign_sql import open_campaigns
    from ocppsec.pki.pem import certificates_to_pem
    from ocppsec.security_profiles.gateway import Gateway
    from ocppsec.security_profiles.gateway._gc import FrozenSurvivors
    from ocppsec.security_profiles.gateway.calls import StationCalls
    from ocppsec.security_profiles.gateway.campaigns import CampaignEngine, PresentedCertificates
    from ocppsec.security_profiles.gateway.csr_signing import CsrSigning, RegistryStations
    from ocppsec.security_profiles.handshake import ServerPolicy
    from ocppsec.security_profiles.registry import MemoryRegistry, StationRecord
    from ocppsec.security_profiles.tls import CertChain, server_context

    hard = raise_nofile()
    slots = min(n, (hard - FD_RESERVE) // 2)  # stations connected at once: two gateway sockets each
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

    # the gateway's TLS certificates and the stations' first certificates (20 days left), in the inventory
    server: list[CertChain] = []
    h = Hierarchy.build(HierarchyConfig.default(cso_name=CSO, csms_fqdn="localhost"), at=now - timedelta(hours=1))
    for kind in ("csms-server-rsa", "csms-server-ecdsa"):
        issued_cert = h.certificates[kind]
        assert issued_cert.key is not None
        server.append(CertChain(*_write_chain(work / kind, certificates_to_pem(issued_cert.chain),
                                              issued_cert.key.private_key)))  # type: ignore[attr-defined]
    (work / "csms-root.pem").write_text(certificates_to_pem([h.ca("csms-root").certificate]))
    inventory = open_inventory(work / "inventory.db")
    entries = []
    with (work / "stations.jsonl").open("w") as out:
        os.chmod(out.name, 0o600)
        for s in names:
            csr, key = _csr(s)
            issued = ca.issue_from_csr(csr, ca="csms-root", at=now - timedelta(minutes=30), validity_days=20, station=s)
            out.write(json.dumps({"id": s, "chain": issued.chain_pem(), "key": _key_pem(key).decode()}) + "\n")
            entries.append(entry_for(s, "charging-station", issued.issued.certificate, root,
                                     state=InventoryState.INSTALLED, at=now, source=EntrySource.REPORTED))
    inventory.upsert(entries)

    service = CertificateService(LocalCaSigner(ca, cas={CertificateUse.CHARGING_STATION: "csms-root"}), cso_name=CSO,
                                 stations=RegistryStations(registry, cso_name=CSO), inventory=inventory, ledger=ca.ledger)
    ssl_ctx = server_context(server, client_roots=[work / "root.pem"], client_cert="required")
    up_port, port = free_port(), free_port()
    gw = Gateway(policy=ServerPolicy(frozenset({3}), cso_name=CSO), registry=registry,
                 upstream=f"ws://127.0.0.1:{up_port}/csms", ssl_context=ssl_ctx, csr_signing=CsrSigning(service),
                 calls=StationCalls())
    presented = PresentedCertificates(issuers=[root], inventory=inventory)
    gw.admission_steps.append(presented)
    record = open_campaigns(work / "campaigns.db")
    engine = CampaignEngine(gw, record, presented=presented, inventory=inventory, tick=0.2)
    steps = [0, 0.0]  # the engine's steps (each walks every row) and their CPU seconds, for the gateway's share
    step = engine._step

    def timed_step() -> None:
        t0 = time.thread_time()
        try:
            step()
        finally:
            steps[0] += 1
            steps[1] += time.thread_time() - t0

    setattr(engine, "_step", timed_step)  # noqa: B010 (an instance attribute over the method, for the timing)

    def role(name: str, *extra: str) -> Coroutine[Any, Any, asyncio.subprocess.Process]:
        return asyncio.create_subprocess_exec(sys.executable, str(HERE), "--role", name, *extra,
                                              stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)

    csms = await role("csms", "--port", str(up_port))
    stations: list[asyncio.subprocess.Process] = []
    try:
        await wait_port(up_port)
        async with gw.serve("127.0.0.1", port):
            collector = FrozenSurvivors() if gc_policy == "frozen" else None  # as GatewayService installs it
            if collector is not None:
                collector.install()
            collections_before = _collections()
            await engine.start()
            # the fleet in `processes` shards (station i in shard i mod processes), each with its share of the slots
            stations = [await role("stations", "--port", str(port), "--work", str(work), "--batch", str(batch),
                                   "--slots", str(slots // processes + (k < slots % processes)), "--shard", f"{k}/{processes}")
                        for k in range(processes)]
            readies = [json.loads(await _out(proc).readline()) for proc in stations]
            ready = {"ready": sum(r["ready"] for r in readies), "connect_seconds": max(r["connect_seconds"] for r in readies)}
            load_before = os.getloadavg()
            cpu_before = own_cpu_seconds(), sum(cpu_seconds(proc.pid) for proc in stations), cpu_seconds(csms.pid)
            steps_before = list(steps)
            spies = start_profilers(profile, {"gateway": os.getpid(), "stations": stations[0].pid})
            started = time.perf_counter()
            cid = (await engine.start_campaign(CampaignKind.RENEW, CampaignOptions(within_days=30,
                                                                                   max_in_flight=in_flight)))["id"]
            summary = await engine.wait_finished(cid, timeout=1800)
            seconds = time.perf_counter() - started
            profiles = stop_profilers(spies)
            cpu_after = own_cpu_seconds(), sum(cpu_seconds(proc.pid) for proc in stations), cpu_seconds(csms.pid)
            step_count, step_cpu = steps[0] - steps_before[0], steps[1] - steps_before[1]
            full_passes = _collections() - collections_before
            if collector is not None:
                collector.uninstall()
            load_after = os.getloadavg()
            for proc in stations:
                assert proc.stdin is not None
                proc.stdin.write(b"stop\n")
                await proc.stdin.drain()
            reports = [json.loads(await _out(proc).readline()) for proc in stations]
            for proc in stations:
                await proc.wait()
            station_report = {k: sum(r[k] for r in reports) for k in ("renewed", "left", "connect_retries", "failed")}
            reasons: dict[str, int] = {}
            for r in reports:
                for text, count in r["retry_reasons"].items():
                    reasons[text] = reasons.get(text, 0) + count
            station_report["retry_reasons"] = reasons
            station_report["first_failure"] = next((r["first_failure"] for r in reports if r["first_failure"]), None)
            await engine.close()
    finally:
        for proc in (*stations, csms):
            if proc.returncode is None:
                proc.terminate()
                await proc.wait()
    presented.close()
    record.close()
    inventory.close()
    ca.close()
    assert summary["progress"]["done"] == n, summary
    gw_cpu, st_cpu, csms_cpu = (after - before for after, before in zip(cpu_after, cpu_before, strict=True))
    rate = n / seconds
    projected = seconds if n == GOAL_STATIONS else GOAL_STATIONS / rate
    return {"stations": n, "max_in_flight": in_flight, "loop": loop_name(),
            "connected_before_campaign": ready["ready"], "connect_seconds": ready["connect_seconds"],
            "campaign_seconds": round(seconds, 3), "renewals_per_second": round(rate, 1),
            "raw_issuance_per_second": round(n / raw_seconds, 1),
            "ratio_to_raw_issuance": round(raw_seconds / seconds, 3),
            "gateway_cpu_ms_per_renewal": round(gw_cpu / n * 1000, 3),
            "stations_cpu_ms_per_renewal": round(st_cpu / n * 1000, 3),
            "csms_cpu_ms_per_renewal": round(csms_cpu / n * 1000, 3),
            "station_processes": processes, "gateway_cores_busy": round(gw_cpu / seconds, 2), "stations_cores_busy": round(st_cpu / seconds, 2),
            "gateway_one_core_ceiling_per_second": round(n / gw_cpu, 1),
            "engine_steps": step_count, "engine_step_cpu_ms_mean": round(step_cpu / max(step_count, 1) * 1000, 3),
            "engine_step_cpu_ms_per_renewal": round(step_cpu / n * 1000, 3),
            "goal_seconds_for_10000": GOAL_SECONDS, "projected_seconds_for_10000": round(projected, 1),
            # decided only by a whole fleet's run: below 10,000 stations the projection is not the goal's figure
            "goal_met": seconds <= GOAL_SECONDS if n >= GOAL_STATIONS else None,
            "peak_in_flight": engine.peak_in_flight[cid], "calls": engine.counters["calls"],
            "gateway_gc": gc_policy, "gateway_full_collections_since_serving": full_passes,
            "stations_process": station_report,
            "load_average": {"campaign_start": [round(x, 2) for x in load_before],
                             "campaign_end": [round(x, 2) for x in load_after]},
            "cores": os.cpu_count(), **({"profile": profiles} if profile is not None else {})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=["stations", "csms"])
    parser.add_argument("--stations", type=int, default=200)
    parser.add_argument("--max-in-flight", type=int, default=100)
    parser.add_argument("--batch", type=int, default=50, help="stations connecting at once before the campaign")
    parser.add_argument("--port", type=int)
    parser.add_argument("--work")
    parser.add_argument("--slots", type=int, help="(--role stations) stations connected at once")
    parser.add_argument("--shard", default="0/1", help="(--role stations) K/N: the stations i with i mod N = K")
    parser.add_argument("--station-processes", type=int, default=1,
                        help="processes the simulated fleet is split over (default 1; 2 was slower on 2 cores, ADR 23)")
    parser.add_argument("--gateway-gc", choices=["frozen", "default"], default="frozen",
                        help="the gateway process's collector: survivors of full passes frozen, as `ocppsec gateway` "
                             "runs it (default), or CPython's defaults")
    parser.add_argument("--profile", metavar="DIR", type=Path,
                        help="py-spy the gateway and the stations during the campaign into DIR (its top functions in the JSON)")
    args = parser.parse_args()
    if args.role == "stations":
        run_loop(role_stations(args))
        return
    if args.role == "csms":
        run_loop(role_csms(args))
        return
    with tempfile.TemporaryDirectory() as tmp:
        figures = run_loop(run(args.stations, args.max_in_flight, args.batch, Path(tmp), args.gateway_gc, args.profile,
                                   args.station_processes))
    print_table(["what", "value"], [
        ["raw issuance (CertificateService.handle), per second", figures["raw_issuance_per_second"]],
        ["renewal campaign through the gateway, per second", figures["renewals_per_second"]],
        ["  ratio to raw issuance", figures["ratio_to_raw_issuance"]],
        ["gateway process CPU per renewal, ms", figures["gateway_cpu_ms_per_renewal"]],
        ["  of it the campaign engine's steps, ms", figures["engine_step_cpu_ms_per_renewal"]],
        ["stations processes CPU per renewal, ms (all together)", figures["stations_cpu_ms_per_renewal"]],
        ["CSMS process CPU per renewal, ms", figures["csms_cpu_ms_per_renewal"]],
        ["renewals per second the gateway's CPU allows on one free core", figures["gateway_one_core_ceiling_per_second"]],
        [f"seconds for {GOAL_STATIONS:,} stations (projected; goal {GOAL_SECONDS})", figures["projected_seconds_for_10000"]],
    ])
    verdict = (f"not decided below {GOAL_STATIONS:,} stations" if figures["goal_met"] is None else figures["goal_met"])
    print(f"{figures['stations']} stations ({figures['connected_before_campaign']} connected before the campaign), "
          f"{figures['max_in_flight']} in flight (peak {figures['peak_in_flight']}), {figures['campaign_seconds']} s on "
          f"{figures['loop']}, gateway collector {figures['gateway_gc']} ({figures['gateway_full_collections_since_serving']} full passes since serving); goal met: {verdict}; load average {figures['load_average']['campaign_end']} "
          f"on {figures['cores']} cores")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
