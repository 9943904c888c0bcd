"""Half-open TLS connections against ``serve()``: where the memory goes, and whether it comes back.

2,000 TCP connections (half send nothing, half the first 60 bytes of a real ClientHello) are held
until ``tls_handshake_timeout`` closes them. The server (this script with ``--role serve``, profile 2,
its own process) reports on request: RSS, Python's traced allocations (tracemalloc), live connection
objects, ``pending_tls``; and it can run ``gc.collect()`` and glibc's ``malloc_trim(0)``. Measured:
RSS before, while the connections are held, after they timed out, after a garbage collection, after
``malloc_trim``; on asyncio's loop and on uvloop. ``--arena-max N`` runs the server with
``MALLOC_ARENA_MAX=N``. Prints a table, then as its last line one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import json
import os
import resource
import select
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import print_table
from profiles import make_pki, raise_nofile, rss_kib

HERE = Path(__file__).resolve()


# -- the server (a child process) --------------------------------------------------------------------
async def role_serve(args: argparse.Namespace) -> None:
    import tracemalloc

    from ocppsec.security_profiles import server as server_module
    from ocppsec.security_profiles.handshake import ServerPolicy
    from ocppsec.security_profiles.registry import MemoryRegistry
    from ocppsec.security_profiles.tls import CertChain, server_context

    if args.trace:
        tracemalloc.start(10)
    pki = json.loads(args.pki)
    ctx = server_context([CertChain(*pki["rsa"]), CertChain(*pki["ecdsa"])])
    libc = ctypes.CDLL("libc.so.6")

    async def idle(station: Any) -> None:
        await station.wait_closed()

    server = server_module.serve(idle, "127.0.0.1", args.port, policy=ServerPolicy(frozenset({2})), registry=MemoryRegistry(),
                                 ssl_context=ctx, tls_handshake_timeout=args.timeout, ping_interval=None, ping_timeout=None,
                                 trim_memory_after=500 if args.auto_trim else None)
    async with server:
        state = server.profile_state  # type: ignore[attr-defined]
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        print(json.dumps({"ready": True}), flush=True)
        while line := (await reader.readline()).decode().strip():
            out: dict[str, Any] = {}
            if line == "gc":
                out["collected"] = gc.collect()
            elif line == "trim":
                start = time.perf_counter()
                out["trimmed"] = libc.malloc_trim(0)
                out["trim_ms"] = round((time.perf_counter() - start) * 1000, 2)
            elif line == "snapshot" and tracemalloc.is_tracing():
                top = tracemalloc.take_snapshot().statistics("lineno")[:8]
                out["top"] = [f"{s.size / 1024:.0f} KiB {s.count} {s.traceback[0]}" for s in top]
            out["rss_kib"] = rss_kib(os.getpid())
            out["pending_tls"] = len(state.pending_tls)
            out["failures"] = state.failures
            out["connections"] = sum(1 for o in gc.get_objects() if issubclass(type(o), server_module._ProfileConnection))
            if tracemalloc.is_tracing():
                out["traced_kib"] = tracemalloc.get_traced_memory()[0] // 1024
            print(json.dumps(out), flush=True)


# -- the driver -------------------------------------------------------------------------------------
def client_hello_prefix(n: int) -> bytes:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with contextlib.suppress(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()[:n]


class Server:
    def __init__(self, pki: dict[str, Any], loop: str, timeout: float, arena_max: int | None, trace: bool,
                 auto_trim: bool) -> None:
        self.port = _free_port()
        env = dict(os.environ)
        if arena_max:
            env["MALLOC_ARENA_MAX"] = str(arena_max)
        cmd = [sys.executable, str(HERE), "--role", "serve", "--loop", loop, "--port", str(self.port),
               "--pki", json.dumps(pki), "--timeout", str(timeout)] + (["--trace"] if trace else []) + \
            (["--auto-trim"] if auto_trim else [])
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        assert json.loads(self.ask(None))["ready"]

    def ask(self, command: str | None) -> str:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        if command is not None:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        return self.proc.stdout.readline()

    def report(self, command: str = "rss") -> dict[str, Any]:
        return dict(json.loads(self.ask(command)))

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def hold(port: int, count: int, prefix: bytes) -> list[socket.socket]:
    socks = []
    for i in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        if i % 2:
            s.sendall(prefix)
        socks.append(s)
    return socks


def wait_closed(socks: list[socket.socket], timeout: float) -> int:
    """Until the server closed every socket (EOF or reset); how many it closed."""
    open_ = {s.fileno(): s for s in socks}
    poller = select.poll()
    for fd in open_:
        poller.register(fd, select.POLLIN)
    deadline = time.monotonic() + timeout
    while open_ and time.monotonic() < deadline:
        for fd, _event in poller.poll(500):
            poller.unregister(fd)
            try:
                data = open_[fd].recv(4096)
            except OSError:
                data = b""
            if not data:
                del open_[fd]
    return len(socks) - len(open_)


def measure(pki: dict[str, Any], loop: str, count: int, timeout: float, arena_max: int | None, trace: bool,
            auto_trim: bool) -> dict[str, Any]:
    server = Server(pki, loop, timeout, arena_max, trace, auto_trim)
    try:
        # warm: one full cycle first, so the figures below are the steady state, not first-time imports
        warm = hold(server.port, 50, client_hello_prefix(60))
        wait_closed(warm, timeout + 10)
        for s in warm:
            s.close()
        server.report("gc")
        before = server.report("trim")
        socks = hold(server.port, count, client_hello_prefix(60))
        time.sleep(0.5)
        during = server.report("snapshot" if trace else "rss")
        closed = wait_closed(socks, timeout + 30)
        for s in socks:
            s.close()
        time.sleep(3)  # serve() trims 2 s after a burst ends (with --auto-trim)
        after = server.report("snapshot" if trace else "rss")
        collected = server.report("gc")
        trimmed = server.report("trim")
        again = hold(server.port, count, client_hello_prefix(60))  # a second wave reuses the freed memory?
        wait_closed(again, timeout + 30)
        for s in again:
            s.close()
        time.sleep(3)
        second = server.report("gc")
        return {"loop": loop, "auto_trim": auto_trim, "arena_max": arena_max, "closed_by_server": closed,
                "before_kib": before["rss_kib"], "during_kib": during["rss_kib"], "after_timeout_kib": after["rss_kib"],
                "after_gc_kib": collected["rss_kib"], "after_trim_kib": trimmed["rss_kib"], "trim_ms": trimmed.get("trim_ms"),
                "after_second_wave_kib": second["rss_kib"], "pending_tls_after": after["pending_tls"],
                "connections_alive_after": after["connections"], "connections_alive_after_gc": collected["connections"],
                "traced_during_kib": during.get("traced_kib"), "traced_after_kib": after.get("traced_kib"),
                "top_during": during.get("top"), "top_after": after.get("top")}
    finally:
        server.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--role")
    ap.add_argument("--loop", default="asyncio")
    ap.add_argument("--port", type=int)
    ap.add_argument("--pki")
    ap.add_argument("--timeout", type=float, default=5.0, help="tls_handshake_timeout of the server, seconds")
    ap.add_argument("--trace", action="store_true", help="tracemalloc in the server (slower; shows the top allocations)")
    ap.add_argument("--connections", type=int, default=2000)
    ap.add_argument("--arena-max", type=int, default=None)
    ap.add_argument("--auto-trim", action="store_true", help="(server) serve()'s own malloc_trim after 500 ended connections")
    args = ap.parse_args()
    if args.role == "serve":
        runner = asyncio.run
        if args.loop == "uvloop":
            import uvloop

            runner = uvloop.run
        runner(role_serve(args))
        return
    raise_nofile()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 3 * args.connections:
        sys.exit(f"need {3 * args.connections} file descriptors, have {hard}")
    with tempfile.TemporaryDirectory() as d:
        pki = make_pki(Path(d), 1)
        results = [measure(pki, loop, args.connections, args.timeout, args.arena_max, args.trace, auto)
                   for auto in (False, True) for loop in ("asyncio", "uvloop")]
    rows = [(r["loop"] + (" +auto-trim" if r["auto_trim"] else ""), r["before_kib"] // 1024, r["during_kib"] // 1024, r["after_timeout_kib"] // 1024,
             r["after_gc_kib"] // 1024, r["after_trim_kib"] // 1024, r["after_second_wave_kib"] // 1024,
             r["connections_alive_after"], r["pending_tls_after"]) for r in results]
    print_table(["loop", "before MiB", "held MiB", "timed out MiB", "gc MiB", "trim MiB", "2nd wave MiB",
                 "conn objects left", "pending_tls"], rows)
    for r in results:
        for key in ("top_during", "top_after"):
            for entry in r.get(key) or ():
                print(f"{r['loop']} {key}: {entry}")
    print(json.dumps({"connections": args.connections, "load_avg_1m": os.getloadavg()[0], "results": results}))


if __name__ == "__main__":
    main()
