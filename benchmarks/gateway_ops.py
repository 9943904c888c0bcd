"""Benchmarks for operating the gateway: what the metrics cost, and the handshake storm with ``--workers``.

1. Metrics: a prometheus_client ``Counter.inc()`` per call (in one process, and in multiprocess mode as the
   ``--workers`` gateway runs it) against a plain ``int += 1`` (what the relay does today), and
   :meth:`GatewayMetrics.sync` per connected station (what the gateway does instead, once a second and
   per scrape).
2. Handshake storm: ``ocppsec gateway --workers 1`` and ``--workers 2`` (real processes, profile 3, a
   plain upstream in its own process), driven by ``--clients`` threads doing full profile-3 handshakes
   (TLS with a client certificate, the WebSocket upgrade, the gateway's upstream connection, close) for
   ``--seconds``; handshakes per second and the gateway's CPU seconds per handshake (supervisor and
   workers), rounds alternating. The load generator shares the machine: read the ratio with the load
   average and the core count printed beside it.

Prints a table, then as its LAST line one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import gateway_pki, print_table

HERE = Path(__file__).resolve()
CSO = "Example CSO"
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its children (the workers)."""
    total = cpu_seconds(pid)
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return total + sum(cpu_seconds(int(c)) for c in children)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def per_call(fn: Any, n: int, rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best


# -- part 1: metrics --------------------------------------------------------------------------------------------
def role_counter(_args: argparse.Namespace) -> None:
    """Counter.inc() and int += 1 per call in this process (multiprocess mode when the env var says so)."""
    from prometheus_client import CollectorRegistry, Counter

    counter = Counter("bench_frames", "frames", ["direction"], registry=CollectorRegistry())
    child = counter.labels("up")
    box = [0]

    def plain() -> None:
        box[0] += 1

    print(json.dumps({"inc": per_call(child.inc, 200_000), "plain": per_call(plain, 200_000)}))


def bench_counter(multiprocess: bool) -> dict[str, float]:
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as d:
        if multiprocess:
            env["PROMETHEUS_MULTIPROC_DIR"] = d
        out = subprocess.run([sys.executable, str(HERE), "--role", "counter"], env=env, capture_output=True, text=True,
                             check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def bench_sync(stations: int) -> float:
    """Seconds per connected station of one GatewayMetrics.sync (profile-2 stations: no certificate)."""
    from ocppsec.pki.versions import OcppVersion
    from ocppsec.security_profiles.gateway.core import GatewayStats
    from ocppsec.security_profiles.gateway.metrics import GatewayMetrics

    sessions = [SimpleNamespace(station=SimpleNamespace(profile=2, version=OcppVersion.V201, context={}, identity=f"CS-{i}"),
                                splice=SimpleNamespace(up=SimpleNamespace(count=i), down=SimpleNamespace(count=i)))
                for i in range(stations)]
    gw = SimpleNamespace(stats=GatewayStats(), sessions=sessions, server=None, sink=None)
    gw.relayed = lambda: (sum(s.splice.up.count for s in sessions), sum(s.splice.down.count for s in sessions))
    metrics = GatewayMetrics()
    at = datetime.now(UTC)
    return per_call(lambda: metrics.sync(gw, at=at), 20) / stations  # type: ignore[arg-type]


# -- part 2: the storm ------------------------------------------------------------------------------------------
def make_pki(d: Path) -> dict[str, Any]:
    from ocppsec.security_profiles.registry import StationRecord
    from ocppsec.security_profiles.registry_sql import open_registry

    files, _h, _now = gateway_pki(d, CSO)
    reg = open_registry(str(d / "st.db"))
    reg.add(StationRecord("CS-0", 3, serial="SN-BENCH"))
    reg.close()
    return {**files, "stations": str(d / "st.db")}

async def role_upstream(args: argparse.Namespace) -> None:
    from websockets.asyncio.server import serve

    async def handler(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    async with serve(handler, "127.0.0.1", args.port, subprotocols=["ocpp2.0.1"], compression=None):
        await asyncio.Event().wait()


def _gateway(pki: dict[str, Any], port: int, up: int, admin: int, workers: int) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "ocppsec.cli.main", "gateway", "--listen", f"127.0.0.1:{port}", "--profile", "3",
           "--upstream", f"ws://127.0.0.1:{up}/csms", "--server-cert", pki["rsa"][0], "--server-key", pki["rsa"][1],
           "--server-cert", pki["ecdsa"][0], "--server-key", pki["ecdsa"][1], "--trust", pki["root"], "--cso-name", CSO,
           "--stations", pki["stations"], "--admin", f"127.0.0.1:{admin}", "--workers", str(workers)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    import urllib.request

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin}/readyz", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"gateway did not get ready: {proc.stderr.read() if proc.stderr else ''}")


def _storm(pki: dict[str, Any], port: int, clients: int, seconds: float) -> int:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(pki["root"])
    ctx.load_cert_chain(*pki["station"])
    request = (f"GET /CS-0 HTTP/1.1\r\nHost: localhost:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Protocol: ocpp2.0.1\r\n\r\n").encode()
    counts = [0] * clients
    stop = time.monotonic() + seconds

    def client(i: int) -> None:
        while time.monotonic() < stop:
            with socket.create_connection(("127.0.0.1", port)) as raw, ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(request)
                head = s.recv(4096)
                if not head.startswith(b"HTTP/1.1 101"):
                    raise RuntimeError(head[:200])
                s.sendall(b"\x88\x82\x00\x00\x00\x00\x03\xe8")
            counts[i] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts)


def role_storm(args: argparse.Namespace) -> None:
    """One load-generating process: ``--clients`` threads for ``--seconds``; prints the handshakes done."""
    print(_storm(json.loads(args.pki), args.port, args.clients, args.seconds))


def _storm_procs(pki: dict[str, Any], port: int, procs: int, clients: int, seconds: float, load: str = "openssl") -> int:
    """``procs`` load-generating processes (no shared GIL), ``clients`` threads each; handshakes done.

    ``load="openssl"``: ``openssl s_time -new`` processes instead (TLS handshakes with the station's certificate,
    no WebSocket upgrade: a load generator in C, so that more of the two cores is left to the gateway)."""
    if load == "openssl":
        import re

        cmd = ["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new", "-time", str(int(seconds)),
               "-cert", pki["station"][0], "-key", pki["station"][1], "-CAfile", pki["root"]]
        ssl_procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for _ in range(procs)]
        total = 0
        for p in ssl_procs:
            found = re.search(r"(\d+) connections in [\d.]+s", p.communicate()[0])
            total += int(found.group(1)) if found else 0
        return total
    running = [subprocess.Popen([sys.executable, str(HERE), "--role", "storm", "--pki", json.dumps(pki), "--port", str(port),
                                 "--clients", str(clients), "--seconds", str(seconds)], stdout=subprocess.PIPE, text=True)
               for _ in range(procs)]
    return sum(int(p.communicate()[0].strip() or 0) for p in running)


def bench_storm(pki: dict[str, Any], clients: int, seconds: float, rounds: int, procs: int = 3,
                load: str = "openssl") -> dict[str, Any]:
    up = free_port()
    upstream = subprocess.Popen([sys.executable, str(HERE), "--role", "upstream", "--port", str(up)])
    results: dict[int, list[tuple[float, float, float]]] = {1: [], 2: []}
    loads: list[float] = []
    try:
        time.sleep(1.0)
        for r in range(rounds):
            for workers in ((1, 2) if r % 2 == 0 else (2, 1)):
                port, admin = free_port(), free_port()
                gw = _gateway(pki, port, up, admin, workers)
                try:
                    _storm(pki, port, 2, 1.0)  # warm-up
                    before, t0 = tree_cpu(gw.pid), time.monotonic()
                    n = _storm_procs(pki, port, procs, clients, seconds, load)
                    cpu = tree_cpu(gw.pid) - before
                    wall = time.monotonic() - t0
                    results[workers].append((n / seconds, cpu / max(n, 1), cpu / wall))
                    loads.append(os.getloadavg()[0])
                finally:
                    gw.terminate()
                    gw.wait(timeout=30)
    finally:
        upstream.terminate()
        upstream.wait()

    def median(values: list[float]) -> float:
        values = sorted(values)
        return values[len(values) // 2]

    one = median([x[0] for x in results[1]])
    two = median([x[0] for x in results[2]])
    return {"workers_1_per_s": one, "workers_2_per_s": two, "ratio_2_to_1": two / one,
            "workers_1_cpu_ms": median([x[1] for x in results[1]]) * 1000,
            "workers_2_cpu_ms": median([x[1] for x in results[2]]) * 1000,
            "workers_1_cores_used": median([x[2] for x in results[1]]),
            "workers_2_cores_used": median([x[2] for x in results[2]]),
            "load_processes": procs, "threads_per_process": clients, "load": load,
            "rounds": {str(k): v for k, v in results.items()}, "load_avg": loads, "cores": os.cpu_count()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--role")
    parser.add_argument("--port", type=int)
    parser.add_argument("--clients", type=int, default=4, help="threads per load-generating process")
    parser.add_argument("--procs", type=int, default=3, help="load-generating processes")
    parser.add_argument("--pki")
    parser.add_argument("--load", choices=["openssl", "python"], default="openssl",
                        help="load generator: openssl s_time (TLS handshakes) or Python threads (full handshakes)")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stations", type=int, default=10_000)
    args = parser.parse_args()
    if args.role == "counter":
        role_counter(args)
        return
    if args.role == "storm":
        role_storm(args)
        return
    if args.role == "upstream":
        asyncio.run(role_upstream(args))
        return
    single = bench_counter(False)
    multi = bench_counter(True)
    sync = bench_sync(args.stations)
    with tempfile.TemporaryDirectory() as d:
        pki = make_pki(Path(d))
        storm = bench_storm(pki, args.clients, args.seconds, args.rounds, args.procs, args.load)
    rows = [
        ["int += 1 per frame (today)", single["plain"] * 1e9, "ns"],
        ["Counter.inc() per frame, one process", single["inc"] * 1e9, "ns"],
        ["Counter.inc() per frame, multiprocess mode", multi["inc"] * 1e9, "ns"],
        [f"GatewayMetrics.sync per station ({args.stations:,} stations)", sync * 1e9, "ns"],
        [f"storm --workers 1 ({args.load} load)", storm["workers_1_per_s"], "handshakes/s"],
        [f"storm --workers 2 ({args.load} load)", storm["workers_2_per_s"], "handshakes/s"],
        ["gateway CPU per handshake, 1 worker", storm["workers_1_cpu_ms"], "ms"],
        ["gateway CPU per handshake, 2 workers", storm["workers_2_cpu_ms"], "ms"],
        ["gateway cores busy, 1 worker", storm["workers_1_cores_used"], "cores"],
        ["gateway cores busy, 2 workers", storm["workers_2_cores_used"], "cores"],
    ]
    print_table(["what", "value", "unit"], rows)
    print(f"load average during the storm: {', '.join(f'{x:.2f}' for x in storm['load_avg'])}; {os.cpu_count()} cores")
    print(json.dumps({"counter_inc_ns": single["inc"] * 1e9, "counter_inc_multiprocess_ns": multi["inc"] * 1e9,
                      "plain_increment_ns": single["plain"] * 1e9, "sync_per_station_ns": sync * 1e9,
                      "inc_to_plain": single["inc"] / single["plain"], **storm}))


if __name__ == "__main__":
    main()
