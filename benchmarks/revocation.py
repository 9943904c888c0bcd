"""Benchmark: OCSP responses per second (pre-produced and on demand) vs ``openssl ocsp -port`` serving the
same index, and CRL generation for many revoked serials vs ``openssl ca -gencrl``.

Usage: ``python benchmarks/revocation.py [--certs 200] [--seconds 3] [--clients 4] [--rounds 5] [--crl-serials 100000]``

The responders run as their own processes on 127.0.0.1 with the same delegated responder certificate
and key: ``ocppsec ocsp serve`` (aiohttp, on uvloop: ``--loop auto``; with the directory's SQLite ledger
it signs nonce answers on the event loop), the same responder signing them in a worker thread (what it
does with a PostgreSQL ledger; started by this script) and ``openssl ocsp -port``. The same client (threads, one HTTP/1.0-style connection per request,
pre-built DER requests) drives them in turn, in every round in an alternating order; each figure is the
median over the rounds and each ratio the median of the per-round ratios. ``pre-produced``: requests
without a nonce, answered from our cache; ``on demand``: requests with a nonce, signed per request
(openssl signs every answer either way). Server CPU per request is read from /proc (user + system time of
the server process). The machine may be shared: before each measurement the script waits (up to
``--quiet-wait`` seconds, 20 by default) for other processes to go quiet, and reports how many cores they used while it measured. The openssl index (``index.txt``) is written from our ledger. Ratios are
ocppsec / openssl (>1 = faster than openssl). The last line is one JSON object with the figures, the
ratios and the load average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ocppsec.pki.csr import make_csr
from ocppsec.pki.directory import PkiDirectory
from ocppsec.pki.hierarchy import HierarchyConfig
from ocppsec.pki.keys import KeySpec, generate_key
from ocppsec.pki.ledger import CertificateRecord, CertificateStatus
from ocppsec.pki.revocation.authorities import load_authorities
from ocppsec.pki.revocation.client import build_request, check_response
from ocppsec.pki.revocation.crl import build_crl, crl_entries
from ocppsec.pki.revocation.ocsp import OCSP_RESPONDER_ROLE, CertId


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(port: int, request: bytes, timeout: float = 30) -> None:
    """Poll with a real request: a bare connect-and-close stalls ``openssl ocsp -port`` (one connection at a time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("POST", "/", request, {"Content-Type": "application/ocsp-request", "Connection": "close"})
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answers on port {port}")


def drive(port: int, requests: list[bytes], seconds: float, clients: int) -> tuple[float, int]:
    """Requests per second over ``seconds`` with ``clients`` threads; returns (rate, errors)."""
    stop = time.monotonic() + seconds
    counts = [0] * clients
    errors = [0] * clients

    def worker(n: int) -> None:
        rnd = random.Random(n)
        while time.monotonic() < stop:
            body = rnd.choice(requests)
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("POST", "/", body, {"Content-Type": "application/ocsp-request", "Connection": "close"})
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                if resp.status != 200 or not data.startswith(b"\x30"):
                    errors[n] += 1
                else:
                    counts[n] += 1
            except OSError:
                errors[n] += 1

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.monotonic() - t0), sum(errors)


def openssl_time(s: datetime) -> str:
    return s.strftime("%y%m%d%H%M%SZ")


def write_index(records: list[CertificateRecord], path: Path) -> None:
    lines = []
    for r in records:
        subject = "/" + "/".join(reversed(r.subject.split(","))) if r.subject else "/CN=x"
        serial = r.serial.upper()
        serial = ("0" + serial) if len(serial) % 2 else serial
        if r.status == "revoked" and r.revoked_at is not None:
            lines.append(f"R\t{openssl_time(r.not_after)}\t{openssl_time(r.revoked_at)},{r.revocation_reason}\t{serial}\tunknown\t{subject}")
        else:
            lines.append(f"V\t{openssl_time(r.not_after)}\t\t{serial}\tunknown\t{subject}")
    path.write_text("\n".join(lines) + "\n")


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its threads (from /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def machine_busy() -> float:
    """CPU seconds the whole machine has spent busy (user, nice, system, irq, softirq, steal; all CPUs)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / TICK


QUIET_WAIT = [20.0]  # seconds to wait for a quiet machine before each measurement (--quiet-wait)


def wait_quiet(limit: float = 0.15, timeout: float | None = None) -> float:
    """Wait (at most ``timeout`` s) until other processes use less than ``limit`` cores; returns the seconds waited."""
    t0 = time.monotonic()
    timeout = QUIET_WAIT[0] if timeout is None else timeout
    while time.monotonic() - t0 < timeout:
        b0 = machine_busy()
        time.sleep(0.5)
        if (machine_busy() - b0) / 0.5 < limit:
            break
    return time.monotonic() - t0


def measure(port: int, pid: int, requests: list[bytes], seconds: float, clients: int) -> dict[str, float]:
    waited = wait_quiet()
    cpu0, busy0, own0, t0 = cpu_seconds(pid), machine_busy(), os.times(), time.monotonic()
    rate, errors = drive(port, requests, seconds, clients)
    cpu, busy, own, elapsed = cpu_seconds(pid) - cpu0, machine_busy() - busy0, os.times(), time.monotonic() - t0
    client = (own.user - own0.user) + (own.system - own0.system)
    return {"rps": rate, "errors": float(errors), "server_cpu_us": cpu / max(rate * elapsed, 1) * 1e6,
            "foreign_cores": max(0.0, busy - cpu - client) / elapsed, "waited_s": waited}


def serve_threaded(pki_path: str, port: int) -> None:
    """The responder of ``ocppsec ocsp serve``, but signing nonce answers in a worker thread (for the comparison)."""
    from datetime import timedelta as _td

    from ocppsec.cli._serve import serve_until_signal
    from ocppsec.pki.revocation.ocsp import OcspResponder
    from ocppsec.pki.revocation.server import OcspHttpServer

    now = datetime.now(UTC)
    pki = PkiDirectory.open(Path(pki_path))
    responder = OcspResponder(load_authorities(pki, ["csms-root"], at=now), pki.ledger, validity=_td(hours=24),
                              refresh_before=_td(hours=6))
    count = responder.preproduce(at=now)
    server = OcspHttpServer(("127.0.0.1", port), responder, offload_on_demand=True)
    serve_until_signal("auto", server.listen, server.close,
                       lambda: print(f"threaded responder ready ({count} pre-produced)", file=sys.stderr, flush=True))
    _ = asyncio  # (the helper runs its own loop)


def bench_ocsp(args: argparse.Namespace, work: Path) -> dict[str, float]:
    now = datetime.now(UTC)
    pki = PkiDirectory.init(work / "pki", HierarchyConfig.default(), passphrase=None, at=now - timedelta(hours=1))
    key = generate_key(KeySpec.P256)
    issued: list[x509.Certificate] = []
    for start in range(0, args.certs, 50):
        csrs = [make_csr(key, {"O": "Example CSO", "CN": f"SN-{n:06d}"}) for n in range(start, min(args.certs, start + 50))]
        issued += [r.issued.certificate for r in pki.issue_many(csrs, ca="csms-root", at=now - timedelta(hours=1))]
    for cert in issued[::10]:
        pki.ledger.revoke(format(cert.serial_number, "x"), "csms-root", now - timedelta(minutes=30), "keyCompromise")
    root = pki.ca_certificate("csms-root")
    load_authorities(pki, ["csms-root"], at=now)  # issue the delegated responder once, shared by both servers
    responder = next(r for r in pki.ledger.all() if r.role == OCSP_RESPONDER_ROLE)
    assert responder.key_ref is not None
    (work / "root.pem").write_bytes(root.public_bytes(Encoding.PEM))
    (work / "rsigner.pem").write_text(responder.pem)
    shutil.copy(pki.path / responder.key_ref[5:], work / "rkey.pem")
    write_index([r for r in pki.ledger.all() if r.issuer_ca == "csms-root" and r.name is None
                 and r.role != OCSP_RESPONDER_ROLE], work / "index.txt")
    (work / "index.txt.attr").write_text("unique_subject = no\n")
    pki.close()

    ids = [CertId.for_certificate(c, root, "sha1") for c in issued]
    plain = [build_request(i, with_nonce=False)[0] for i in ids]
    nonced = [build_request(i, with_nonce=True)[0] for i in ids for _ in range(3)]

    ports = {"ours": free_port(), "thread": free_port(), "openssl": free_port()}
    env = {**os.environ, "OCPPSEC_PASSPHRASE": ""}
    procs = {
        "ours": subprocess.Popen([sys.executable, "-m", "ocppsec.cli.main", "ocsp", "serve", str(work / "pki"), "--listen",
                                  f"127.0.0.1:{ports['ours']}", "--ca", "csms-root", "--loop", "auto"], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True),
        "thread": subprocess.Popen([sys.executable, __file__, "--serve-threaded", str(work / "pki"), str(ports["thread"])],
                                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True),
        "openssl": subprocess.Popen(["openssl", "ocsp", "-port", str(ports["openssl"]), "-index", str(work / "index.txt"),
                                     "-CA", str(work / "root.pem"), "-rsigner", str(work / "rsigner.pem"), "-rkey",
                                     str(work / "rkey.pem"), "-nmin", "60"], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL),
    }
    rows: list[dict[str, float | str]] = []
    try:
        for name in ("ours", "thread"):
            stderr = procs[name].stderr
            assert stderr is not None
            stderr.readline()  # "... ready" once pre-production is done
        for name, port in ports.items():
            wait_ready(port, plain[0])
            # every responder answers correctly before we time it
            for body, i in ((plain[1], 1), (nonced[3 * 2], 2)):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("POST", "/", body, {"Content-Type": "application/ocsp-request", "Connection": "close"})
                result = check_response(conn.getresponse().read(), ids[i], at=datetime.now(UTC), issuer=root)
                assert result.status.value == "good", (name, result)
            drive(port, plain, 0.5, args.clients)  # warm up
        for r in range(args.rounds):
            for kind, requests, who in (("plain", plain, ["ours", "openssl"]), ("nonce", nonced, ["ours", "thread", "openssl"])):
                order = who if r % 2 == 0 else who[::-1]
                for name in order:
                    m = measure(ports[name], procs[name].pid, requests, args.seconds, args.clients)
                    rows.append({"round": r, "who": name, "kind": kind, **m})
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()

    def median(who: str, kind: str, key: str = "rps") -> float:
        return statistics.median(float(x[key]) for x in rows if x["who"] == who and x["kind"] == kind)

    def ratio(who: str, kind: str) -> float:
        ours = {x["round"]: float(x["rps"]) for x in rows if x["who"] == who and x["kind"] == kind}
        base = {x["round"]: float(x["rps"]) for x in rows if x["who"] == "openssl" and x["kind"] == kind}
        return statistics.median(ours[k] / max(base[k], 1e-9) for k in ours)

    return {
        "ocsp_preproduced_rps": median("ours", "plain"), "ocsp_on_demand_rps": median("ours", "nonce"),
        "ocsp_on_demand_thread_rps": median("thread", "nonce"),
        "openssl_ocsp_rps": median("openssl", "plain"), "openssl_ocsp_nonce_rps": median("openssl", "nonce"),
        "ratio_preproduced_vs_openssl": ratio("ours", "plain"),
        "ratio_on_demand_vs_openssl_nonce": ratio("ours", "nonce"),
        "ratio_on_demand_thread_vs_openssl_nonce": ratio("thread", "nonce"),
        "server_cpu_us_preproduced": median("ours", "plain", "server_cpu_us"),
        "server_cpu_us_on_demand": median("ours", "nonce", "server_cpu_us"),
        "server_cpu_us_on_demand_thread": median("thread", "nonce", "server_cpu_us"),
        "server_cpu_us_openssl": median("openssl", "plain", "server_cpu_us"),
        "server_cpu_us_openssl_nonce": median("openssl", "nonce", "server_cpu_us"),
        "ocsp_errors": sum(float(x["errors"]) for x in rows),
        "foreign_cores_median": statistics.median(float(x["foreign_cores"]) for x in rows),
        "foreign_cores_max": max(float(x["foreign_cores"]) for x in rows),
    }


def bench_crl(args: argparse.Namespace, work: Path) -> dict[str, float]:
    now = datetime.now(UTC)
    pki = PkiDirectory.open(work / "pki")
    ca = pki.ca("csms-root")
    rnd = random.Random(7)
    template = pki.ledger.all()[0]
    records = [
        CertificateRecord(serial=format(rnd.getrandbits(127) | (1 << 64), "x"), issuer_ca="csms-root",
                          role="charging-station", subject="CN=x", not_before=now, not_after=now + timedelta(days=700),
                          issued_at=now, fingerprint=str(n), pem=template.pem, status=CertificateStatus.REVOKED, revoked_at=now,
                          revocation_reason="keyCompromise" if n % 3 else "superseded")
        for n in range(args.crl_serials)
    ]
    t0 = time.perf_counter()
    crl = build_crl(ca.certificate, ca.key, crl_entries(records), at=now, number=1)
    ours = time.perf_counter() - t0
    size = len(crl.public_bytes(Encoding.DER))
    # openssl ca -gencrl over an index with the same serials
    write_index(records, work / "crl-index.txt")
    (work / "crl-index.txt.attr").write_text("unique_subject = no\n")
    (work / "crlnumber").write_text("01\n")
    key_path = pki.path / "keys" / "csms-root.key.pem"
    (work / "ca.cnf").write_text(
        "[ca]\ndefault_ca = c\n[c]\n"
        f"database = {work / 'crl-index.txt'}\ncrlnumber = {work / 'crlnumber'}\ndefault_md = sha256\n"
        f"default_crl_days = 1\ncertificate = {work / 'root.pem'}\nprivate_key = {key_path}\n"
    )
    pki.close()
    t0 = time.perf_counter()
    subprocess.run(["openssl", "ca", "-gencrl", "-config", str(work / "ca.cnf"), "-out", str(work / "openssl.crl"),
                    "-batch"], check=True, capture_output=True)
    base = time.perf_counter() - t0
    return {"crl_serials": float(args.crl_serials), "crl_build_s": ours, "crl_der_bytes": float(size),
            "openssl_gencrl_s": base}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--certs", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--crl-serials", type=int, default=100_000)
    parser.add_argument("--quiet-wait", type=float, default=20.0, help="seconds to wait for a quiet machine per measurement")
    parser.add_argument("--serve-threaded", nargs=2, metavar=("PKI", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    QUIET_WAIT[0] = args.quiet_wait
    if args.serve_threaded:
        serve_threaded(args.serve_threaded[0], int(args.serve_threaded[1]))
        return
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="ocppsec-bench-rev-"))
    try:
        o = bench_ocsp(args, work)
        c = bench_crl(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    rows = [
        ("OCSP pre-produced (ocppsec, aiohttp)", f"{o['ocsp_preproduced_rps']:.0f} resp/s, {o['server_cpu_us_preproduced']:.0f} us CPU/resp"),
        ("OCSP openssl ocsp -port", f"{o['openssl_ocsp_rps']:.0f} resp/s, {o['server_cpu_us_openssl']:.0f} us CPU/resp"),
        ("  ratio pre-produced / openssl", f"{o['ratio_preproduced_vs_openssl']:.2f}x"),
        ("OCSP on demand, nonce (ocsp serve: signing on the loop)", f"{o['ocsp_on_demand_rps']:.0f} resp/s, {o['server_cpu_us_on_demand']:.0f} us CPU/resp"),
        ("OCSP on demand, nonce (signing in a worker thread)", f"{o['ocsp_on_demand_thread_rps']:.0f} resp/s, {o['server_cpu_us_on_demand_thread']:.0f} us CPU/resp"),
        ("OCSP openssl ocsp -port, nonce", f"{o['openssl_ocsp_nonce_rps']:.0f} resp/s, {o['server_cpu_us_openssl_nonce']:.0f} us CPU/resp"),
        ("  ratio on demand / openssl (loop, thread)", f"{o['ratio_on_demand_vs_openssl_nonce']:.2f}x, {o['ratio_on_demand_thread_vs_openssl_nonce']:.2f}x"),
        (f"CRL {args.crl_serials} serials (ocppsec)", f"{c['crl_build_s']:.2f} s, {c['crl_der_bytes'] / 1e6:.1f} MB"),
        (f"CRL {args.crl_serials} serials (openssl ca -gencrl)", f"{c['openssl_gencrl_s']:.2f} s"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"certificates {args.certs}, clients {args.clients}, {args.rounds} rounds of {args.seconds:g} s, "
          f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after, other processes "
          f"{o['foreign_cores_median']:.2f} cores (median; max {o['foreign_cores_max']:.2f}) while measuring")
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")
    summary = {
        **{k: round(v, 3) for k, v in {**o, **c}.items()},
        "ratio_crl_openssl_over_ocppsec_time": round(c["openssl_gencrl_s"] / max(c["crl_build_s"], 1e-9), 3),
        "certs": args.certs, "clients": args.clients, "seconds": args.seconds, "rounds": args.rounds,
        "loadavg_before": [round(x, 2) for x in load_before], "loadavg_after": [round(x, 2) for x in load_after],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
