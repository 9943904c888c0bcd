"""Benchmarks for security profiles: handshake CPU, idle-connection memory, heartbeats through the gateway.

1. Server CPU per profile-3 handshake through ``serve()`` (TLS with client certificate + WebSocket
   upgrade + close) on asyncio's loop and on uvloop (what ``ocppsec gateway`` runs on) vs
   ``openssl s_server -no_ticket`` driven by ``openssl s_time -new`` (TLS handshake only), all measured
   from /proc in alternating rounds of the same run, with the same certificates, TLS version, cipher
   suite and session handling (see :func:`bench_handshakes`). Goal: <= 1.5x. Three reference servers
   show where the cost is: each loop's bare TLS transport with a canned 101, and a hand-written upgrade
   with serve()'s decision but no WebSocket library.
   ``OCPPSEC_BENCH_PYSPY=FILE`` records a py-spy profile of ``serve()`` (or of the gateway in part 3).
2. Idle profile-3 connections held by ``serve()``: server RSS growth per connection, on asyncio's loop
   with our 4 KiB TLS read buffer, on uvloop, and, for comparison, with asyncio's default 256 KiB
   buffer. Goal: <= 64 KiB each.
3. Heartbeat round trips through the gateway (profile 3, on uvloop and on asyncio's loop) to a plain
   upstream CSMS with many stations connected. Goal: >= 3,000/s with 1,000 stations. Each loop runs
   rounds with the splice relay and with the task relay (``Gateway(relay=...)``) alternating, their
   order swapped every round; the gateway's CPU per round trip of the two is compared round by round
   (ADR 12), with the 1-minute load average sampled every round.

Every server runs in its own process (this script re-invoked with ``--role``). Prints a table, then as
its LAST line one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import gateway_pki

HERE = Path(__file__).resolve()
CSO = "Example CSO"
TICK = os.sysconf("SC_CLK_TCK")


def raise_nofile() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")


# -- PKI -------------------------------------------------------------------------------------------
def make_pki(d: Path, stations: int) -> dict[str, Any]:
    files, _h, _now = gateway_pki(d, CSO)
    return {**files, "stations": stations}

def make_registry(path: Path, count: int) -> None:
    from ocppsec.security_profiles.registry import StationRecord
    from ocppsec.security_profiles.registry_sql import open_registry

    reg = open_registry(path)
    for i in range(count):
        reg.add(StationRecord(f"CS-{i}", 3, serial="SN-BENCH"))  # all share one certificate: CN = SN-BENCH
    reg.close()


# -- roles (child processes) -----------------------------------------------------------------------
async def role_serve(args: argparse.Namespace) -> None:
    from ocppsec.security_profiles import server as server_module
    from ocppsec.security_profiles.handshake import ServerPolicy
    from ocppsec.security_profiles.registry_sql import open_registry
    from ocppsec.security_profiles.tls import CertChain, server_context

    if args.default_buffer:
        server_module._SmallBufferSSLProtocol.max_size = 256 * 1024  # asyncio's default, for comparison
    pki = json.loads(args.pki)
    ctx = server_context([CertChain(*pki["rsa"]), CertChain(*pki["ecdsa"])], client_roots=[pki["root"]],
                         client_cert="required")

    async def idle(station: Any) -> None:
        await station.wait_closed()

    registry = open_registry(args.registry)
    if args.role == "serve-lookup-on-loop":  # what serve() did before lookups moved to a worker thread
        registry.nonblocking = True  # type: ignore[attr-defined]
    async with server_module.serve(idle, "127.0.0.1", args.port, policy=ServerPolicy(frozenset({3}), cso_name=CSO),
                                   registry=registry, ssl_context=ctx, ping_interval=None,
                                   ping_timeout=None):
        await asyncio.Future()


async def role_tls_floor(args: argparse.Namespace) -> None:
    """The least an asyncio server can do per handshake: serve()'s TLS context on asyncio's own TLS
    transport, a canned 101 once the request is in, a close frame back, close. No WebSocket library."""
    from ocppsec.security_profiles.tls import CertChain, server_context

    pki = json.loads(args.pki)
    ctx = server_context([CertChain(*pki["rsa"]), CertChain(*pki["ecdsa"])], client_roots=[pki["root"]],
                         client_cert="required")
    canned = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: ocpp2.0.1\r\n\r\n")

    class Floor(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport, self.buffer, self.upgraded = cast(asyncio.Transport, transport), b"", False

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            if not self.upgraded and b"\r\n\r\n" in self.buffer:
                self.upgraded, self.buffer = True, b""
                self.transport.write(canned)
            elif self.upgraded and len(self.buffer) >= 8:
                self.transport.write(b"\x88\x02\x03\xe8")
                self.transport.close()

    server = await asyncio.get_running_loop().create_server(Floor, "127.0.0.1", args.port, ssl=ctx)
    async with server:
        await asyncio.Future()


async def role_bare_upgrade(args: argparse.Namespace) -> None:
    """A reference, not a product: about the least a Python server can do for a profile-3 upgrade. The
    loop's TLS transport, the request head split by hand, serve()'s decision (:func:`decide` with the
    registry lookup and the certificate's O/CN check), a 101 with the accept key, the close frame
    answered. No WebSocket library: no frame parser, no connection object, no handler task."""
    import base64
    import hashlib

    from ocppsec.security_profiles.handshake import Accept, HandshakeFacts, ServerPolicy, TlsFacts, decide
    from ocppsec.security_profiles.profile3 import LeafIdentity
    from ocppsec.security_profiles.registry_sql import open_registry
    from ocppsec.security_profiles.tls import CertChain, server_context

    pki = json.loads(args.pki)
    ctx = server_context([CertChain(*pki["rsa"]), CertChain(*pki["ecdsa"])], client_roots=[pki["root"]],
                         client_cert="required")
    policy = ServerPolicy(frozenset({3}), cso_name=CSO)
    registry = open_registry(args.registry)
    magic = b"258EAFA5-E914-47DA-95CA-C5AB0DC11B65"  # RFC 6455 section 1.3

    class Bare(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport, self.buffer, self.upgraded = cast(asyncio.Transport, transport), b"", False

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            if not self.upgraded:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                self.upgrade(self.buffer[:end].decode("latin-1").split("\r\n"))
                self.buffer = self.buffer[end + 4:]
            if self.upgraded and len(self.buffer) >= 8:  # the masked close frame
                self.transport.write(b"\x88\x02\x03\xe8")
                self.transport.close()

        def upgrade(self, lines: list[str]) -> None:
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            t = self.transport
            cipher = t.get_extra_info("cipher")
            tls = TlsFacts(t.get_extra_info("ssl_object").version(), cipher[0], LeafIdentity.from_peercert(t.get_extra_info("peercert")))
            offered = tuple(p.strip() for p in headers.get("sec-websocket-protocol", "").split(","))
            facts = HandshakeFacts(lines[0].split(" ")[1], headers.get("authorization"), offered, tls, "bench")
            decision = decide(facts, policy, registry.get, at=datetime.now(UTC))
            if not isinstance(decision, Accept) or decision.subprotocol is None:
                t.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                t.close()
                return
            accept = base64.b64encode(hashlib.sha1(headers["sec-websocket-key"].encode() + magic).digest())
            t.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    b"Sec-WebSocket-Accept: " + accept + b"\r\nSec-WebSocket-Protocol: " + decision.subprotocol.encode() + b"\r\n\r\n")
            self.upgraded = True

    server = await asyncio.get_running_loop().create_server(Bare, "127.0.0.1", args.port, ssl=ctx)
    async with server:
        await asyncio.Future()


async def role_gateway(args: argparse.Namespace) -> None:
    from ocppsec.security_profiles.gateway import Gateway
    from ocppsec.security_profiles.handshake import ServerPolicy
    from ocppsec.security_profiles.registry_sql import open_registry
    from ocppsec.security_profiles.tls import CertChain, server_context

    pki = json.loads(args.pki)
    ctx = server_context([CertChain(*pki["rsa"]), CertChain(*pki["ecdsa"])], client_roots=[pki["root"]],
                         client_cert="required")
    gw = Gateway(policy=ServerPolicy(frozenset({3}), cso_name=CSO), registry=open_registry(args.registry),
                 upstream=f"ws://127.0.0.1:{args.upstream}/csms", ssl_context=ctx, ping_interval=None, relay=args.relay)
    async with gw.serve("127.0.0.1", args.port):
        await asyncio.Future()


async def role_upstream(args: argparse.Namespace) -> None:
    from websockets.asyncio.server import serve
    from websockets.typing import Subprotocol

    async def handler(ws: Any) -> None:
        async for message in ws:
            uid = json.loads(message)[1]
            await ws.send(f'[3,"{uid}",{{"currentTime":"2026-01-01T00:00:00.000Z"}}]')

    async with serve(handler, "127.0.0.1", args.port, subprotocols=[Subprotocol("ocpp2.0.1")], compression=None,
                     ping_interval=None, max_queue=None):
        await asyncio.Future()


async def role_stations(args: argparse.Namespace) -> None:
    """Open ``count`` profile-3 stations to the gateway, then run heartbeats for ``seconds``; print the count."""
    from asyncio import sslproto

    from ocppsec.security_profiles.client import connect
    from ocppsec.security_profiles.tls import CertChain, client_context

    sslproto.SSLProtocol.max_size = 17 * 1024  # keep this load generator small as well
    pki = json.loads(args.pki)
    ctx = client_context([pki["root"]], client_chain=CertChain(*pki["station"]))
    conns = []
    for i in range(args.first, args.first + args.count):
        conns.append(await connect(f"wss://localhost:{args.port}/", f"CS-{i}", profile=3, ssl_context=ctx,
                                   ping_interval=None, open_timeout=60))
    print("ready", flush=True)
    sys.stdin.readline()  # go
    done = 0
    stop_at = time.monotonic() + args.seconds

    async def loop(ws: Any, n: int) -> None:
        nonlocal done
        k = 0
        while time.monotonic() < stop_at:
            k += 1
            await ws.send(f'[2,"{n}-{k}","Heartbeat",{{}}]')
            await ws.recv()
            done += 1

    await asyncio.gather(*(loop(ws, n) for n, ws in enumerate(conns)))
    print(json.dumps({"done": done}), flush=True)
    for ws in conns:
        await ws.close()


def spawn(role: str, *extra: str, loop: str = "asyncio", **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(HERE), "--role", role, "--loop", loop, *extra], text=True, **kw)


# -- the benchmarks --------------------------------------------------------------------------------
OPENSSL_TLS12_SUITES = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:AES128-GCM-SHA256:AES256-GCM-SHA384"


def _serve_round(pki: dict[str, Any], port: int, server: subprocess.Popen[str], seconds: float) -> tuple[float, int, str]:
    """Drive ``serve()`` with full profile-3 handshakes for ``seconds``: server CPU s per handshake, count, TLS."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # OpenSSL defaults, like s_time: TLS 1.3, X25519
    ctx.check_hostname = False
    ctx.load_verify_locations(pki["root"])
    ctx.load_cert_chain(*pki["station"])
    request = (f"GET /CS-0 HTTP/1.1\r\nHost: localhost:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Protocol: ocpp2.0.1\r\n\r\n").encode()
    negotiated = ""

    def one() -> None:
        nonlocal negotiated
        # a new SSLSocket without session=: never a resumption (like s_time -new)
        with socket.create_connection(("127.0.0.1", port)) as raw, ctx.wrap_socket(raw, server_hostname="localhost") as s:
            # as asyncio (so websockets) sets for every station; without it the request waits for the delayed
            # ACK of the TLS Finished (Nagle), the server idles 40 ms per handshake and costs more CPU per handshake
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.sendall(request)
            head = s.recv(4096)
            if not head.startswith(b"HTTP/1.1 101") or s.session_reused:
                raise RuntimeError(head[:200])
            s.sendall(b"\x88\x82\x00\x00\x00\x00\x03\xe8")  # masked close 1000
            cipher = s.cipher()
            negotiated = f"{s.version()} {cipher[0] if cipher else '?'}"

    for _ in range(20):
        one()
    before, t0, n = cpu_seconds(server.pid), time.monotonic(), 0
    while time.monotonic() - t0 < seconds:
        one()
        n += 1
    time.sleep(0.3)
    return (cpu_seconds(server.pid) - before) / n, n, negotiated


def _openssl_round(pki: dict[str, Any], port: int, s_server: subprocess.Popen[bytes], seconds: float) -> tuple[float, int]:
    before = cpu_seconds(s_server.pid)
    out = subprocess.run(["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new", "-time", str(max(1, round(seconds))),
                          "-cert", pki["station"][0], "-key", pki["station"][1], "-CAfile", pki["root"]],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    time.sleep(0.3)
    used = cpu_seconds(s_server.pid) - before
    count = int(next(line for line in out.splitlines() if "connections in" in line).split()[0])
    return used / count, count


def _openssl_negotiated(pki: dict[str, Any], port: int) -> str:
    out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-cert", pki["station"][0],
                          "-key", pki["station"][1], "-CAfile", pki["root"]],
                         input="", capture_output=True, text=True, timeout=30).stdout
    line = next((x for x in out.splitlines() if x.startswith("New, ")), "")
    return line.removeprefix("New, ").replace(", Cipher is", "")


HANDSHAKE_SERVERS = (  # name, role, loop
    ("serve() on uvloop", "serve", "uvloop"),
    ("serve() on asyncio", "serve", "asyncio"),
    ("serve() on uvloop, lookup on the loop", "serve-lookup-on-loop", "uvloop"),  # registry.nonblocking = True
    ("floor: uvloop TLS + canned 101", "tls-floor", "uvloop"),
    ("floor: asyncio TLS + canned 101", "tls-floor", "asyncio"),
    ("bare upgrade, no WebSocket library, uvloop", "bare-upgrade", "uvloop"),
)


def bench_handshakes(pki: dict[str, Any], registry: str, seconds: float, rounds: int) -> dict[str, Any]:
    """Server CPU per full profile-3 handshake: ``serve()`` vs ``openssl s_server``, in alternating rounds.

    Like for like: both servers load the same RSA + ECDSA chains and the four TLS 1.2 suites, require a
    client certificate and verify it against the same CSO root, and keep TLS 1.3 sessions in a server-side
    cache (serve()'s context sets OP_NO_TICKET and num_tickets = 0, so s_server runs with -no_ticket
    -num_tickets 0); both clients use OpenSSL's defaults (TLS 1.3, TLS_AES_256_GCM_SHA384, X25519, ECDSA
    server certificate) and never resume (a fresh SSLSocket each time / s_time -new). The difference is the
    work only serve() does: the WebSocket upgrade (HTTP parse, the profile-3 decision with a registry
    lookup and the certificate's O/CN check, the 101 response), the close handshake and a close_notify.
    Noise from other processes only adds CPU, so ratios use each server's best round; every round is in
    the JSON. The reference servers (:data:`HANDSHAKE_SERVERS`) run in the same rounds.
    """
    procs: dict[str, tuple[int, subprocess.Popen[str]]] = {}
    for name, role, loop in HANDSHAKE_SERVERS:
        port = free_port()
        procs[name] = port, spawn(role, "--port", str(port), "--pki", json.dumps(pki), "--registry", registry, loop=loop)
    port2 = free_port()
    s_server = subprocess.Popen(
        ["openssl", "s_server", "-accept", str(port2), "-cert", pki["rsa"][0], "-key", pki["rsa"][1],
         "-dcert", pki["ecdsa"][0], "-dkey", pki["ecdsa"][1], "-Verify", "2", "-CAfile", pki["root"], "-naccept",
         "1000000", "-quiet", "-no_ticket", "-num_tickets", "0", "-cipher", OPENSSL_TLS12_SUITES],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    rounds_ms: dict[str, list[float]] = {name: [] for name in procs}
    theirs: list[float] = []
    counts: dict[str, int] = dict.fromkeys(procs, 0)
    n_theirs = 0
    negotiated = ""
    spy = None
    try:
        for port, _ in procs.values():
            wait_port(port)
        wait_port(port2)
        if os.environ.get("OCPPSEC_BENCH_PYSPY"):  # a py-spy profile of serve() on uvloop (collapsed stacks) for tuning
            spy = subprocess.Popen(["py-spy", "record", "--nonblocking", "-f", "raw", "-r", "200",
                                    "-p", str(procs[HANDSHAKE_SERVERS[0][0]][1].pid), "-o", os.environ["OCPPSEC_BENCH_PYSPY"]],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(rounds):
            for name, (port, proc) in procs.items():
                cpu, n, tls = _serve_round(pki, port, proc, seconds)
                rounds_ms[name].append(round(cpu * 1000, 3))
                counts[name] += n
                negotiated = negotiated or tls
            cpu, n = _openssl_round(pki, port2, s_server, seconds)
            theirs.append(cpu * 1000)
            n_theirs += n
        openssl_negotiated = _openssl_negotiated(pki, port2)
    finally:
        for _, proc in procs.values():
            proc.terminate()
            proc.wait()
        s_server.terminate()
        s_server.wait()
        if spy is not None:
            spy.wait(60)
    best_theirs = min(theirs)
    servers = {name: {"cpu_ms_per_handshake": min(ms), "ratio": min(ms) / best_theirs, "cpu_ms_rounds": ms,
                      "handshakes_measured": counts[name]} for name, ms in rounds_ms.items()}
    main, on_asyncio = servers[HANDSHAKE_SERVERS[0][0]], servers[HANDSHAKE_SERVERS[1][0]]
    on_loop = servers[HANDSHAKE_SERVERS[2][0]]
    return {"lookup_in_thread_cpu_ms": round(main["cpu_ms_per_handshake"] - on_loop["cpu_ms_per_handshake"], 3),
            "lookup_in_thread_ratio": main["cpu_ms_per_handshake"] / on_loop["cpu_ms_per_handshake"],"serve_cpu_ms_per_handshake": main["cpu_ms_per_handshake"], "openssl_cpu_ms_per_handshake": best_theirs,
            "handshake_cpu_ratio": main["ratio"], "handshake_cpu_ratio_asyncio_loop": on_asyncio["ratio"],
            "openssl_cpu_ms_rounds": [round(x, 3) for x in theirs], "openssl_handshakes_measured": n_theirs,
            "servers": servers, "serve_tls": negotiated, "openssl_tls": openssl_negotiated}


def bench_idle(pki: dict[str, Any], registry: str, count: int, default_buffer: bool, loop: str = "asyncio") -> dict[str, float]:
    port = free_port()
    extra = ["--default-buffer"] if default_buffer else []
    server = spawn("serve", "--port", str(port), "--pki", json.dumps(pki), "--registry", registry, *extra, loop=loop)
    socks: list[ssl.SSLSocket] = []
    try:
        wait_port(port)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.load_verify_locations(pki["root"])
        ctx.load_cert_chain(*pki["station"])

        def open_one(i: int) -> ssl.SSLSocket:
            raw = socket.create_connection(("127.0.0.1", port))
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s = ctx.wrap_socket(raw, server_hostname="localhost")
            s.sendall((f"GET /CS-{i} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                       "Sec-WebSocket-Protocol: ocpp2.0.1\r\n\r\n").encode())
            head = s.recv(4096)
            if not head.startswith(b"HTTP/1.1 101"):
                raise RuntimeError(head[:200])
            return s

        warm = 50
        for i in range(warm):
            socks.append(open_one(i))
        time.sleep(0.5)
        base = rss_kib(server.pid)
        t0 = time.monotonic()
        for i in range(warm, warm + count):
            socks.append(open_one(i))
        opened = time.monotonic() - t0
        time.sleep(1.0)
        grown = rss_kib(server.pid) - base
        return {"connections": count, "rss_kib_per_connection": grown / count, "server_rss_mib": rss_kib(server.pid) / 1024,
                "open_seconds": opened}
    finally:
        for s in socks:
            s.close()
        server.terminate()
        server.wait()


def bench_heartbeats(pki: dict[str, Any], registry: str, stations: int, seconds: float, loop: str,
                     relay: str = "splice") -> dict[str, float]:
    """``loop``: the gateway's event loop (the upstream CSMS and the stations run on asyncio's); ``relay``: its relay."""
    up, port = free_port(), free_port()
    upstream = spawn("upstream", "--port", str(up))
    gateway = spawn("gateway", "--port", str(port), "--upstream", str(up), "--pki", json.dumps(pki), "--registry", registry,
                    "--relay", relay, loop=loop)
    clients: list[subprocess.Popen[str]] = []
    try:
        wait_port(up)
        wait_port(port)
        half = stations // 2
        t0 = time.monotonic()
        for first, count in ((0, half), (half, stations - half)):
            clients.append(spawn("stations", "--port", str(port), "--pki", json.dumps(pki), "--first", str(first),
                                 "--count", str(count), "--seconds", str(seconds),
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE))
        for c in clients:
            assert c.stdout is not None
            assert c.stdout.readline().strip() == "ready"
        connect_s = time.monotonic() - t0
        gw_rss = rss_kib(gateway.pid) / 1024
        gw_cpu0 = cpu_seconds(gateway.pid)
        t1 = time.monotonic()
        for c in clients:
            assert c.stdin is not None
            c.stdin.write("go\n")
            c.stdin.flush()
        spy = None
        if os.environ.get("OCPPSEC_BENCH_PYSPY"):  # a py-spy profile of the gateway (collapsed stacks) for tuning
            spy = subprocess.Popen(["py-spy", "record", "--nonblocking", "-f", "raw", "-r", "200", "-d", str(int(seconds)),
                                    "-p", str(gateway.pid), "-o", os.environ["OCPPSEC_BENCH_PYSPY"]],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        total = 0
        for c in clients:
            assert c.stdout is not None
            total += json.loads(c.stdout.readline())["done"]
        elapsed = time.monotonic() - t1
        gw_cpu = cpu_seconds(gateway.pid) - gw_cpu0
        if spy is not None:
            spy.wait(60)
        for c in clients:
            c.wait(60)
        return {"stations": stations, "heartbeats_per_second": total / elapsed, "round_trips": total,
                "gateway_cpu_us_per_round_trip": gw_cpu / max(total, 1) * 1e6, "connect_seconds": connect_s,
                "gateway_rss_mib": gw_rss, "load_average": os.getloadavg()[0]}
    finally:
        for p in (*clients, gateway, upstream):
            if p.poll() is None:
                p.terminate()
                p.wait()


RELAYS = ("splice", "tasks")


def bench_relays(pki: dict[str, Any], registry: str, stations: int, seconds: float, loop: str,
                 rounds: int) -> dict[str, Any]:
    """Heartbeat rounds on ``loop`` with the splice and the task relay alternating (order swapped every round)."""
    per: dict[str, list[dict[str, float]]] = {r: [] for r in RELAYS}
    paired_cpu: list[float] = []
    paired_rate: list[float] = []
    for n in range(rounds):
        figures = {}
        for relay in (RELAYS if n % 2 == 0 else RELAYS[::-1]):
            figures[relay] = bench_heartbeats(pki, registry, stations, seconds, loop, relay)
            per[relay].append(figures[relay])
        paired_cpu.append(figures["tasks"]["gateway_cpu_us_per_round_trip"] / figures["splice"]["gateway_cpu_us_per_round_trip"])
        paired_rate.append(figures["splice"]["heartbeats_per_second"] / figures["tasks"]["heartbeats_per_second"])

    def summary(rows: list[dict[str, float]]) -> dict[str, Any]:
        cpu = [r["gateway_cpu_us_per_round_trip"] for r in rows]
        rate = [r["heartbeats_per_second"] for r in rows]
        return {"stations": rows[0]["stations"], "heartbeats_per_second": statistics.median(rate),
                "heartbeats_per_second_best": max(rate), "heartbeats_per_second_rounds": [round(x) for x in rate],
                "gateway_cpu_us_per_round_trip": statistics.median(cpu), "gateway_cpu_us_per_round_trip_best": min(cpu),
                "gateway_cpu_us_rounds": [round(x, 1) for x in cpu], "gateway_rss_mib": max(r["gateway_rss_mib"] for r in rows),
                "load_average_rounds": [round(r["load_average"], 2) for r in rows]}

    return {relay: summary(rows) for relay, rows in per.items()} | {
        "cpu_ratio_tasks_to_splice_rounds": [round(x, 3) for x in paired_cpu],
        "cpu_ratio_tasks_to_splice": statistics.median(paired_cpu),
        "rate_ratio_splice_to_tasks_rounds": [round(x, 3) for x in paired_rate],
        "rate_ratio_splice_to_tasks": statistics.median(paired_rate)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--role")
    ap.add_argument("--port", type=int)
    ap.add_argument("--upstream", type=int)
    ap.add_argument("--pki")
    ap.add_argument("--registry")
    ap.add_argument("--default-buffer", action="store_true")
    ap.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio", help="a role's event loop")
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--idle", type=int, default=10000, help="idle connections to hold (the issue's figure)")
    ap.add_argument("--stations", type=int, default=1000)
    ap.add_argument("--handshake-seconds", type=float, default=3, help="per round and side")
    ap.add_argument("--handshake-rounds", type=int, default=3, help="alternating serve()/openssl rounds")
    ap.add_argument("--heartbeat-seconds", type=float, default=8)
    ap.add_argument("--heartbeat-rounds", type=int, default=3, help="rounds per relay and loop (splice/tasks alternating)")
    ap.add_argument("--heartbeat-loops", default="uvloop,asyncio", help="the gateway's loops for the heartbeat part")
    ap.add_argument("--relay", choices=["auto", "splice", "tasks"], default="auto", help="the gateway role's relay")
    ap.add_argument("--only", choices=["handshake", "idle", "heartbeats"], action="append",
                    help="run only these parts (repeatable); default: all")
    args = ap.parse_args()
    raise_nofile()
    roles = {"serve": role_serve, "serve-lookup-on-loop": role_serve, "tls-floor": role_tls_floor, "bare-upgrade": role_bare_upgrade, "gateway": role_gateway,
             "upstream": role_upstream, "stations": role_stations}
    if args.role:
        if args.loop == "uvloop":
            import uvloop

            uvloop.run(roles[args.role](args))
        else:
            asyncio.run(roles[args.role](args))
        return
    parts = set(args.only or ("handshake", "idle", "heartbeats"))
    hs: dict[str, Any] = {}
    idle: dict[str, dict[str, float]] = {}
    hb: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        pki = make_pki(d, args.stations)
        registry = str(d / "stations.db")
        make_registry(Path(registry), max(args.idle + 100, args.stations))
        if "handshake" in parts:
            hs = bench_handshakes(pki, registry, args.handshake_seconds, args.handshake_rounds)
        if "idle" in parts:
            idle["asyncio"] = bench_idle(pki, registry, args.idle, default_buffer=False)
            idle["uvloop"] = bench_idle(pki, registry, args.idle, default_buffer=False, loop="uvloop")
            idle["asyncio_default_buffer"] = bench_idle(pki, registry, min(args.idle, 1000), default_buffer=True)
        if "heartbeats" in parts:
            for loop in (x.strip() for x in args.heartbeat_loops.split(",") if x.strip()):
                hb[loop] = bench_relays(pki, registry, args.stations, args.heartbeat_seconds, loop, args.heartbeat_rounds)
    rows = []
    goals: dict[str, bool] = {}
    if hs:
        openssl_ms = hs["openssl_cpu_ms_per_handshake"]
        rows.append(("server CPU per handshake, openssl s_server", f"{openssl_ms:.3f} ms",
                     f"s_time -new, -no_ticket -num_tickets 0, {hs['openssl_tls']}; rounds {hs['openssl_cpu_ms_rounds']}"))
        for name, fig in hs["servers"].items():
            note = "TLS + WS upgrade + close" if name.startswith("serve") else "reference"
            rows.append((f"{name}", f"{fig['cpu_ms_per_handshake']:.3f} ms",
                         f"{fig['ratio']:.2f}x openssl; {note}; rounds {fig['cpu_ms_rounds']}"))
        rows.append(("ratio serve() on uvloop / openssl (goal <= 1.5)", f"{hs['handshake_cpu_ratio']:.2f}x",
                     f"best round each; on asyncio's loop {hs['handshake_cpu_ratio_asyncio_loop']:.2f}x; {hs['serve_tls']}"))
        rows.append(("registry lookup in a worker thread, extra CPU per handshake", f"{hs['lookup_in_thread_cpu_ms']:.3f} ms",
                     f"{hs['lookup_in_thread_ratio']:.2f}x the lookup on the loop (serve() on uvloop, best rounds)"))
        goals["handshake_cpu_ratio_le_1_5"] = hs["handshake_cpu_ratio"] <= 1.5
    if idle:
        for name, fig in idle.items():
            note = {"asyncio": "4 KiB TLS read buffer", "uvloop": "uvloop's TLS protocol",
                    "asyncio_default_buffer": "asyncio's 256 KiB buffer, baseline"}[name]
            rows.append((f"idle profile-3 connections ({fig['connections']:.0f}) RSS each, {name}",
                         f"{fig['rss_kib_per_connection']:.1f} KiB", f"{note} (goal <= 64)"))
        for name in ("asyncio", "uvloop"):
            goals[f"rss_kib_per_idle_connection_le_64_{name}"] = idle[name]["rss_kib_per_connection"] <= 64
            goals[f"idle_connections_ge_10000_{name}"] = idle[name]["connections"] >= 10000
    if hb:
        for loop, both in hb.items():
            for relay in RELAYS:
                fig = both[relay]
                rows += [
                    (f"heartbeats through gateway ({loop}, {relay}), {fig['stations']:.0f} profile-3 stations",
                     f"{fig['heartbeats_per_second']:.0f} /s",
                     f"median; rounds {fig['heartbeats_per_second_rounds']}" + ("; goal >= 3000/s" if relay == "splice" else "")),
                    (f"gateway ({loop}, {relay}) CPU per round trip", f"{fig['gateway_cpu_us_per_round_trip']:.1f} us",
                     f"median; rounds {fig['gateway_cpu_us_rounds']}; load {fig['load_average_rounds']}"),
                ]
            rows.append((f"gateway ({loop}) CPU per round trip, tasks / splice", f"{both['cpu_ratio_tasks_to_splice']:.2f}x",
                         f"median of paired rounds {both['cpu_ratio_tasks_to_splice_rounds']}"))
            goals[f"heartbeats_per_second_ge_3000_{loop}"] = both["splice"]["heartbeats_per_second"] >= 3000
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>12}  note")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>12}  {note}")
    result = {"handshake": hs, "idle": idle, "heartbeats": hb, "goals": goals,
              "cores": os.cpu_count(), "load_average": os.getloadavg()[0]}
    print(json.dumps(result, separators=(",", ":")))


if __name__ == "__main__":
    main()
