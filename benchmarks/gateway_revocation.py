"""Benchmarks for the gateway's revocation checks and registry snapshot (ADR 17).

1. The check itself, in process: one profile-3 admission step (parse the DER, look the certificate up in a
   CRL index of N entries and a ledger set of M revoked fingerprints, OCSP answered from the cache), in µs per
   call, against the handshake decision ``decide()`` of the same station measured in the same run.
2. Server CPU per full profile-3 handshake through ``serve()`` (TLS 1.3 with a client certificate, WebSocket
   upgrade, close) with and without the revocation admission step (CRL of N entries), in alternating rounds
   of the same run; the server runs in its own process (this script re-invoked with ``--role``), CPU from /proc.
3. An OCSP cache miss (one query to the project's responder on 127.0.0.1) against a cache hit.
4. What the background polls cost: the ledger read (SQLite, PostgreSQL when its binaries are installed) and the
   registry's change marker; a registry lookup from the snapshot against ``SqlRegistry.get``.

Prints a table, then as its LAST line one JSON object with the figures and ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import gateway_pki, print_table

HERE = Path(__file__).resolve()
CSO = "Example CSO"
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")


def per_call(fn: Callable[[], object], n: int, rounds: int = 5) -> float:
    """Best of ``rounds`` of the mean seconds per call over ``n`` calls."""
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best


# -- the PKI -------------------------------------------------------------------------------------------------
def make_pki(d: Path, crl_entries: int) -> dict[str, Any]:
    from ocppsec.pki.revocation.crl import CrlEntry, build_crl

    files, h, now = gateway_pki(d, CSO)
    ca = h.ca("csms-root")
    crl = build_crl(ca.certificate, ca.key, [CrlEntry(10_000_000 + i, now) for i in range(crl_entries)], at=now, number=1)
    crl_path = d / "root.crl"
    crl_path.write_bytes(crl.public_bytes(Encoding.DER))
    return {**files, "crl": str(crl_path), "crl_entries": crl_entries}

# -- the server (child process) ----------------------------------------------------------------------------------
async def role_serve(args: argparse.Namespace) -> None:
    from ocppsec.pki.pem import load_certificates
    from ocppsec.security_profiles.gateway import Gateway
    from ocppsec.security_profiles.gateway.guard import StationGuard
    from ocppsec.security_profiles.gateway.revocation_io import CrlFile, RevocationChecker
    from ocppsec.security_profiles.handshake import ServerPolicy
    from ocppsec.security_profiles.registry import MemoryRegistry, StationRecord
    from ocppsec.security_profiles.server import serve
    from ocppsec.security_profiles.tls import CertChain, server_context

    pki = json.loads(args.pki)
    ctx = server_context([CertChain(*pki["rsa"]), CertChain(*pki["ecdsa"])], client_roots=[pki["root"]],
                         client_cert="required")
    registry = MemoryRegistry([StationRecord("CS-0", 3, serial="SN-BENCH")])
    policy = ServerPolicy(frozenset({3}), cso_name=CSO)
    admit = None
    guard = None
    if args.revocation:
        roots = load_certificates(Path(pki["root"]).read_bytes())
        checker = RevocationChecker(issuers=roots, crls=[CrlFile(pki["crl"], poll=3600)])
        gw = Gateway(policy=policy, registry=registry, upstream="ws://127.0.0.1:9/")
        guard = StationGuard(gw, revocation=checker)
        await guard.start()
        admit = guard.admit

    async def done(station: Any) -> None:
        await station.wait_closed()

    async with serve(done, "127.0.0.1", args.port, policy=policy, registry=registry, ssl_context=ctx, ping_interval=None,
                     ping_timeout=None, admit=admit):
        await asyncio.Future()


def _handshakes(pki: dict[str, Any], port: int, server: subprocess.Popen[str], seconds: float) -> tuple[float, int]:
    """Full profile-3 handshakes for ``seconds``: server CPU seconds per handshake and how many."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(pki["root"])
    ctx.load_cert_chain(*pki["station"])
    request = (f"GET /CS-0 HTTP/1.1\r\nHost: localhost:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Protocol: ocpp2.0.1\r\n\r\n").encode()

    def one() -> None:
        with socket.create_connection(("127.0.0.1", port)) as raw, ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.sendall(request)
            head = s.recv(4096)
            if not head.startswith(b"HTTP/1.1 101"):
                raise RuntimeError(head[:200])
            s.sendall(b"\x88\x82\x00\x00\x00\x00\x03\xe8")

    for _ in range(20):
        one()
    before, t0, n = cpu_seconds(server.pid), time.monotonic(), 0
    while time.monotonic() - t0 < seconds:
        one()
        n += 1
    time.sleep(0.3)
    return (cpu_seconds(server.pid) - before) / n, n


def bench_handshakes(pki: dict[str, Any], seconds: float, rounds: int) -> dict[str, Any]:
    servers = {}
    for label, flag in (("plain", []), ("revocation", ["--revocation"])):
        port = free_port()
        proc = subprocess.Popen([sys.executable, str(HERE), "--role", "serve", "--port", str(port), "--pki", json.dumps(pki),
                                 *flag], text=True)
        servers[label] = (port, proc)
    try:
        for port, _ in servers.values():
            wait_port(port)
        per: dict[str, list[float]] = {"plain": [], "revocation": []}
        ratios = []
        for r in range(rounds):
            order = ["plain", "revocation"] if r % 2 == 0 else ["revocation", "plain"]
            got = {}
            for label in order:
                port, proc = servers[label]
                got[label], _n = _handshakes(pki, port, proc, seconds)
                per[label].append(got[label])
            ratios.append(got["revocation"] / got["plain"])
    finally:
        for _, proc in servers.values():
            proc.terminate()
            proc.wait(10)
    return {"plain_ms": [round(v * 1000, 3) for v in per["plain"]],
            "revocation_ms": [round(v * 1000, 3) for v in per["revocation"]],
            "ratio_median": round(statistics.median(ratios), 3), "ratios": [round(r, 3) for r in ratios]}


# -- in-process figures -----------------------------------------------------------------------------------------
def bench_check(pki: dict[str, Any], ledger_revoked: int) -> dict[str, Any]:
    from ocppsec.pki.pem import load_certificates
    from ocppsec.security_profiles.gateway.revocation import (
        FailMode,
        LedgerRevocation,
        LedgerState,
        OcspAnswer,
        StationCertificate,
        Status,
        admission_refusal,
        evaluate,
        issuer_keys,
    )
    from ocppsec.security_profiles.gateway.revocation_io import CrlFile, Issuers, RevocationChecker
    from ocppsec.security_profiles.handshake import HandshakeFacts, ServerPolicy, TlsFacts, decide
    from ocppsec.security_profiles.registry import MemoryRegistry, StationRecord

    roots = load_certificates(Path(pki["root"]).read_bytes())
    cert = load_certificates(Path(pki["station"][0]).read_bytes())[0]
    der = cert.public_bytes(Encoding.DER)
    source = CrlFile(pki["crl"], poll=3600)
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    source.initial(Issuers(roots), at=now)
    crl_load_s = time.perf_counter() - t0
    keys = issuer_keys(roots[0])
    ledger = LedgerState({f"{i:064x}": LedgerRevocation(format(i, "x"), "csms-root", "keyCompromise", now)
                          for i in range(ledger_revoked)}, {}, keys, now)
    checker = RevocationChecker(issuers=roots, crls=[source])
    checker.ledger = None
    state = checker.state
    from dataclasses import replace

    state = replace(state, ledger=ledger)
    answer = OcspAnswer(Status.GOOD, "ocsp http://127.0.0.1/", expires=now + timedelta(hours=1))

    parsed = {der: StationCertificate.from_der(der)}

    def check() -> None:  # what StationGuard.admit does for a station it has seen before (certificates kept parsed)
        station = parsed.get(der) or StationCertificate.from_der(der)
        verdict = evaluate(station, state, at=now, ocsp=answer)
        assert admission_refusal(station, verdict, FailMode.CLOSED, identity="CS-0") is None

    registry = MemoryRegistry([StationRecord("CS-0", 3, serial="SN-BENCH")])
    facts = HandshakeFacts("/CS-0", None, ("ocpp2.0.1",), TlsFacts("TLSv1.3", "TLS_AES_128_GCM_SHA256", cert))
    policy = ServerPolicy(frozenset({3}), cso_name=CSO)
    return {"check_us": per_call(check, 2000) * 1e6, "parse_us": per_call(lambda: StationCertificate.from_der(der), 2000) * 1e6,
            "decide_us": per_call(lambda: decide(facts, policy, registry.get, at=now), 2000) * 1e6,
            "crl_load_ms": crl_load_s * 1000}


def bench_ocsp(tmp: Path) -> dict[str, Any]:
    from ocppsec.pki.csr import make_csr
    from ocppsec.pki.directory import PkiDirectory
    from ocppsec.pki.hierarchy import HierarchyConfig
    from ocppsec.pki.keys import KeySpec, generate_key
    from ocppsec.pki.revocation.authorities import load_authorities
    from ocppsec.pki.revocation.ocsp import OcspResponder
    from ocppsec.pki.revocation.server import OcspHttpServer
    from ocppsec.security_profiles.gateway.revocation import StationCertificate
    from ocppsec.security_profiles.gateway.revocation_io import OcspChecker

    now = datetime.now(UTC)
    pki = PkiDirectory.init(tmp / "ocsp-pki", HierarchyConfig.default(cso_name=CSO), passphrase=None, at=now - timedelta(hours=1))
    issuer = pki.ca_certificate("csms-root")
    certs = [StationCertificate.from_der(pki.issue_from_csr(make_csr(generate_key(KeySpec.P256), {"O": CSO, "CN": f"SN-{i}"}),
                                                               ca="csms-root", at=now - timedelta(minutes=5))
                                         .issued.certificate.public_bytes(Encoding.DER)) for i in range(50)]
    server = OcspHttpServer(("127.0.0.1", 0), OcspResponder(load_authorities(pki, ["csms-root"], at=now), pki.ledger),
                            refresh_interval=None)
    server.start()
    try:
        async def main() -> tuple[float, float]:
            ocsp = OcspChecker(server.url)
            t0 = time.perf_counter()
            for c in certs:
                await ocsp.answer(c, issuer, at=now)
            miss = (time.perf_counter() - t0) / len(certs)
            t0 = time.perf_counter()
            for _ in range(20):
                for c in certs:
                    await ocsp.answer(c, issuer, at=now)
            hit = (time.perf_counter() - t0) / (20 * len(certs))
            ocsp.close()
            return miss, hit

        miss, hit = asyncio.run(main())
    finally:
        server.stop()
        pki.close()
    return {"ocsp_miss_ms": miss * 1000, "ocsp_hit_us": hit * 1e6}


def _ledger_with(spec: str, total: int, revoked: int) -> Any:
    from ocppsec.pki.hierarchy import Hierarchy, HierarchyConfig
    from ocppsec.pki.ledger import record_for
    from ocppsec.pki.ledger_sql import open_ledger

    now = datetime.now(UTC)
    h = Hierarchy.build(HierarchyConfig.default(cso_name=CSO), at=now - timedelta(hours=1))
    root = h.ca("csms-root").certificate
    ledger = open_ledger(spec)
    ledger.add([record_for(root, issuer_ca="csms-root", role="csms-root", issued_at=now, name="csms-root")])
    leaf = h.issue_leaf("charging-station", ca="csms-root", subject={"O": CSO, "CN": "SN-T"}, at=now).certificate
    base = record_for(leaf, issuer_ca="csms-root", role="charging-station", issued_at=now)
    from dataclasses import replace

    batch = [replace(base, serial=format(0x1000000 + i, "x"), fingerprint=f"{i:064x}") for i in range(total)]
    for i in range(0, total, 5000):
        ledger.add(batch[i:i + 5000])
    for i in range(revoked):
        ledger.revoke(format(0x1000000 + i * (total // max(revoked, 1)), "x"), "csms-root", now, "keyCompromise")
    return ledger


def bench_polls(tmp: Path, total: int, revoked: int, pg_url: str | None) -> dict[str, Any]:
    from ocppsec.security_profiles.gateway.revocation_io import LedgerSource
    from ocppsec.security_profiles.registry import StationRecord
    from ocppsec.security_profiles.registry_snapshot import RegistrySnapshot
    from ocppsec.security_profiles.registry_sql import open_registry

    out: dict[str, Any] = {}
    targets = [("sqlite", str(tmp / "ledger.db"), str(tmp / "st.db"))]
    if pg_url:
        targets.append(("postgres", pg_url, pg_url))
    for dialect, ledger_spec, registry_spec in targets:
        ledger = _ledger_with(ledger_spec, total, revoked)
        source = LedgerSource(ledger, ["csms-root"], full_every=timedelta(days=1))
        now = datetime.now(UTC)
        source.read(now)

        def full_read(src: LedgerSource = source, at: datetime = now) -> None:
            src._marker = object()  # as after a change: read everything
            src.read(at)

        out[f"{dialect}_ledger_read_ms"] = per_call(full_read, 5, 3) * 1000
        source.initial(at=now)

        def idle_poll(src: LedgerSource = source, at: datetime = now) -> None:  # as the poll loop: nothing changed
            assert src.read(at) is None

        out[f"{dialect}_ledger_idle_poll_ms"] = per_call(idle_poll, 50, 3) * 1000
        ledger.close()
        registry = open_registry(registry_spec)
        with registry.database.transaction() as tx:
            tx.executemany("INSERT INTO registry_stations (identity, profile, serial, updated_at) VALUES (?, 3, ?, ?)",
                           [(f"CS-{i:06d}", f"SN-{i}", registry._now()) for i in range(total)])
        registry.add(StationRecord("CS-X", 3, serial="SN-X"))
        out[f"{dialect}_registry_marker_ms"] = per_call(registry.change_marker, 50, 3) * 1000
        out[f"{dialect}_registry_get_us"] = per_call(lambda r=registry: r.get("CS-X"), 2000, 3) * 1e6
        snap = RegistrySnapshot(registry, interval=3600)
        t0 = time.perf_counter()
        snap.start()
        out[f"{dialect}_snapshot_load_ms"] = (time.perf_counter() - t0) * 1000

        async def on_loop(s: RegistrySnapshot = snap) -> float:
            return per_call(lambda: s.get("CS-X"), 20000, 3)

        out[f"{dialect}_snapshot_get_us"] = asyncio.run(on_loop()) * 1e6
        snap.close()
        registry.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--role", choices=["serve"])
    parser.add_argument("--port", type=int)
    parser.add_argument("--pki")
    parser.add_argument("--revocation", action="store_true")
    parser.add_argument("--crl-entries", type=int, default=100_000)
    parser.add_argument("--ledger-revoked", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--fleet", type=int, default=10_000, help="ledger certificates and registry stations for part 4")
    parser.add_argument("--poll-revoked", type=int, default=1_000, help="revoked certificates in the ledger of part 4")
    args = parser.parse_args()
    if args.role == "serve":
        asyncio.run(role_serve(args))
        return
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        pki = make_pki(tmp, args.crl_entries)
        check = bench_check(pki, args.ledger_revoked)
        hs = bench_handshakes(pki, args.seconds, args.rounds)
        ocsp = bench_ocsp(tmp)
        pg_url = None
        cluster_cm = None
        if shutil.which("initdb") or Path("/usr/lib/postgresql").is_dir():
            sys.path.insert(0, str(HERE.parent.parent / "tests"))
            from _postgres import throwaway_cluster

            cluster_cm = throwaway_cluster()
            cluster = cluster_cm.__enter__()
            pg_url = cluster.create_database("bench")
        try:
            polls = bench_polls(tmp, args.fleet, args.poll_revoked, pg_url)
        finally:
            if cluster_cm is not None:
                cluster_cm.__exit__(None, None, None)
    rows: list[list[object]] = [
        ["admission check (CRL + ledger + OCSP cache lookups), us", round(check["check_us"], 1)],
        ["parsing a certificate not seen before, us", round(check["parse_us"], 1)],
        ["handshake decision decide(), us", round(check["decide_us"], 1)],
        [f"CRL of {args.crl_entries:,} entries: load and index, ms", round(check["crl_load_ms"], 1)],
        ["serve() CPU per handshake, plain, ms (median)", statistics.median(hs["plain_ms"])],
        ["serve() CPU per handshake, with revocation, ms (median)", statistics.median(hs["revocation_ms"])],
        ["  ratio revocation / plain (median of rounds)", hs["ratio_median"]],
        ["OCSP cache miss (query to 127.0.0.1), ms", round(ocsp["ocsp_miss_ms"], 2)],
        ["OCSP cache hit, us", round(ocsp["ocsp_hit_us"], 2)],
    ]
    for key, value in polls.items():
        rows.append([key.replace("_", " "), round(value, 3)])
    print_table(["figure", "value"], rows)
    figures = {**{k: round(v, 3) for k, v in check.items()}, "handshake": hs, **{k: round(v, 3) for k, v in ocsp.items()},
               **{k: round(v, 4) for k, v in polls.items()}, "crl_entries": args.crl_entries,
               "ledger_revoked": args.ledger_revoked, "fleet": args.fleet, "poll_revoked": args.poll_revoked,
               "check_to_decide": round(check["check_us"] / check["decide_us"], 3),
               "loadavg": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
