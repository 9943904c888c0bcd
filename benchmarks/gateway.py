"""The gateway against what users run instead: nginx and Node's ws, in the same run.

Three proxies terminate profile 3 (TLS with a required client certificate) in front of one upstream CSMS
and relay WebSocket messages to it, each as its own process with generated configuration:

- ``ocppsec gateway`` (the CLI, on uvloop, the splice relay; ``--workers 2`` where the flag exists);
- nginx (the Debian package): ``ssl_verify_client on``, the CSO root as ``ssl_client_certificate``,
  ``ssl_session_tickets off``, ``ssl_protocols TLSv1.2 TLSv1.3``, ``proxy_pass`` with the Upgrade and
  Connection headers; ``worker_processes 1``, and 2 for the storm's variant;
- Node's ``https`` + ``ws`` (the stack CitrineOS runs on): ``requestCert``/``rejectUnauthorized`` with
  the CSO root as ``ca``, ``SSL_OP_NO_TICKET``, one ws connection to the upstream per station, relaying
  both ways and checking nothing OCPP-specific (``npm install ws@8`` into a cache folder when missing).

All three load the same ECDSA server certificate and trust the same CSO root; the stations present the
same station certificate (TLS 1.3, never resuming). The upstream is a minimal CSMS (an asyncio protocol on
uvloop answering every CALL with a Heartbeat CALLRESULT) shared by the three; the stations are load
clients of the same kind, in several processes. Server CPU is utime + stime from /proc of the proxy's
process tree; the upstream's and the clients' CPU and memory are reported apart.

Workloads (each a function with parameters; ``--quick`` for small sizes):

1. storm: N stations, C at a time: TLS + client certificate, upgrade (ocpp2.0.1, the identity in the
   path), one Heartbeat CALL/CALLRESULT through the proxy to the upstream, close. Server CPU per connection.
2. idle: N connections held open through to the upstream (one Heartbeat each first): server RSS growth
   per connection after a settle (fresh processes per round).
3. heartbeats: S stations connected, each in a closed Heartbeat loop: round trips per second and server
   CPU per round trip.
4. the storm at 10,000 stations with ``ocppsec gateway --workers 2`` (nginx with 2 workers and Node as
   the anchors), and the reconnect: 10,000 stations connected, the proxy restarted, the stations back
   after a randomized back-off (each attempt after 1-10 s); wall time until all are back.

Rounds alternate the servers (order rotated each round); figures are medians, ratios are also paired
per round; the 1-minute load average is recorded per round. ``--profile DIR`` afterwards records py-spy
(and, where it works, perf) profiles of the gateway in a storm and a heartbeat round and prints where
the time went. The LAST line printed is one JSON object with every figure, ratio and goal.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import hashlib
import json
import os
import random
import resource
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import collapsed_summary
from profiles import CSO, free_port, make_pki, make_registry, wait_port

HERE = Path(__file__).resolve()
TICK = os.sysconf("SC_CLK_TCK")
NOFILE = 65536
HEARTBEAT_REPLY = b'{"currentTime":"2026-01-01T00:00:00.000Z"}'


# -- /proc -----------------------------------------------------------------------------------------
def nofile_hard() -> int:
    """The hard limit on open files a child of this process can raise itself to."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return NOFILE if hard == resource.RLIM_INFINITY else min(max(hard, _raisable()), NOFILE)


def _raisable() -> int:
    """NOFILE where this process may raise the hard limit (root with CAP_SYS_RESOURCE), else 0."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, max(hard, NOFILE)))
    except (ValueError, OSError):
        return 0
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))  # only a probe; the children raise their own
    return NOFILE


def raise_nofile(want: int = NOFILE) -> None:
    """As many file descriptors as allowed (root may raise the hard limit)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for limit in ((want, max(want, hard)), (hard, hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, limit)
            return
        except (ValueError, OSError):
            continue


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children[ppid].append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def tree_cpu(pid: int) -> float:
    """utime + stime (seconds) of ``pid`` and its descendants, all threads."""
    total = 0.0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def tree_rss_kib(pid: int) -> int:
    total = 0
    for p in process_tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def self_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def load1() -> float:
    return round(os.getloadavg()[0], 2)


# -- WebSocket framing (RFC 6455), small and fast, for the load clients and the upstream ----------------
try:
    from websockets.speedups import apply_mask as _c_apply_mask
except ImportError:  # websockets built without its C extension
    _c_apply_mask = None


def _apply_mask(data: bytes, mask: bytes) -> bytes:
    if _c_apply_mask is not None:
        return bytes(_c_apply_mask(data, mask))
    m = int.from_bytes((mask * (len(data) // 4 + 1))[:len(data)], "big")
    return (int.from_bytes(data, "big") ^ m).to_bytes(len(data), "big")


def frame(opcode: int, payload: bytes, mask: bytes | None) -> bytes:
    """One final frame; masked (a client's) when ``mask`` is given."""
    n = len(payload)
    head = bytes([0x80 | opcode])
    bit = 0x80 if mask is not None else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([bit | 127]) + n.to_bytes(8, "big")
    if mask is None:
        return head + payload
    return head + mask + _apply_mask(payload, mask)


def parse_frames(buf: bytearray) -> Iterator[tuple[int, bytes]]:
    """Complete frames at the start of ``buf`` (consumed), as (opcode, payload)."""
    while len(buf) >= 2:
        b1 = buf[1]
        n, i = b1 & 0x7F, 2
        if n == 126:
            if len(buf) < 4:
                return
            n, i = int.from_bytes(buf[2:4], "big"), 4
        elif n == 127:
            if len(buf) < 10:
                return
            n, i = int.from_bytes(buf[2:10], "big"), 10
        mask = None
        if b1 & 0x80:
            if len(buf) < i + 4:
                return
            mask, i = bytes(buf[i:i + 4]), i + 4
        if len(buf) < i + n:
            return
        payload = bytes(buf[i:i + n])
        opcode = buf[0] & 0x0F
        del buf[:i + n]
        yield opcode, (_apply_mask(payload, mask) if mask else payload)


# -- role: the upstream CSMS -----------------------------------------------------------------------
class _Csms(asyncio.Protocol):
    """Answers the upgrade (echoing the first offered subprotocol) and every CALL with a CALLRESULT."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t: Any = transport
        self.buf = bytearray()
        self.upgraded = False

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.upgraded:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
            del self.buf[:end + 4]
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:])}
            accept = base64.b64encode(hashlib.sha1((headers["sec-websocket-key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
                                                   .encode()).digest()).decode()
            proto = headers.get("sec-websocket-protocol", "").split(",")[0].strip()
            self.t.write((f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          f"Sec-WebSocket-Accept: {accept}\r\n" + (f"Sec-WebSocket-Protocol: {proto}\r\n" if proto else "")
                          + "\r\n").encode())
            self.upgraded = True
        for opcode, payload in parse_frames(self.buf):
            if opcode == 1:
                uid = payload.split(b'"', 2)[1]
                self.t.write(frame(1, b'[3,"' + uid + b'",' + HEARTBEAT_REPLY + b"]", None))
            elif opcode == 9:
                self.t.write(frame(0xA, payload, None))
            elif opcode == 8:
                self.t.write(frame(8, payload[:2], None))
                self.t.close()
                return


async def role_upstream(args: argparse.Namespace) -> None:
    server = await asyncio.get_running_loop().create_server(_Csms, "127.0.0.1", args.port, backlog=4096)
    async with server:
        await asyncio.Future()


# -- role: the floor (Python on uvloop, bytes only) -------------------------------------------------
class _FloorUp(asyncio.Protocol):
    """The floor's hop to the upstream: whatever arrives goes to the station's TLS transport as it is."""

    def __init__(self, down: _FloorDown) -> None:
        self.down = down

    def data_received(self, data: bytes) -> None:
        self.down.t.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.down.t.close()


class _FloorDown(asyncio.Protocol):
    """A station on the floor relay: the TLS server context of ``ocppsec gateway`` (the same certificate, a
    required client certificate, no tickets), the request head sent on to the upstream as it came, then the
    bytes both ways without looking at them: no identity check, no WebSocket parse, no event. What any proxy
    written in Python on this stack (uvloop's TLS transport, the ssl module) spends at the least."""

    upstream_port = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t: Any = transport
        self.buf = bytearray()
        self.up: Any = None
        self.opening = False

    def data_received(self, data: bytes) -> None:
        if self.up is not None:
            self.up.write(data)
            return
        self.buf += data
        if not self.opening and b"\r\n\r\n" in self.buf:
            self.opening = True
            asyncio.get_running_loop().create_task(self._open())

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            up, _ = await loop.create_connection(lambda: _FloorUp(self), "127.0.0.1", self.upstream_port)
        except OSError:
            self.t.close()
            return
        up.write(bytes(self.buf))
        self.buf.clear()
        self.up = up

    def connection_lost(self, exc: Exception | None) -> None:
        if self.up is not None:
            self.up.close()


async def role_floor(args: argparse.Namespace) -> None:
    from ocppsec.security_profiles.tls import CertChain, server_context

    pki = json.loads(args.pki)
    ctx = server_context([CertChain(*pki["ecdsa"])], client_roots=[pki["root"]], client_cert="required")
    _FloorDown.upstream_port = args.upstream_port
    server = await asyncio.get_running_loop().create_server(_FloorDown, "127.0.0.1", args.port, ssl=ctx, backlog=4096)
    async with server:
        await asyncio.Future()


# -- role: stations (the load clients) ---------------------------------------------------------------
class _Station(asyncio.Protocol):
    """A profile-3 station's WebSocket over the loop's TLS transport: the upgrade, CALLs, pings, close."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.buf = bytearray()
        self.upgraded = False
        self.mask = os.urandom(4)
        self.pending: collections.deque[bytes | None] = collections.deque()
        self.waiter: asyncio.Future[bytes | None] | None = None
        self.lost: asyncio.Future[None] = loop.create_future()
        self.close_sent = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t: Any = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.upgraded:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end])
            del self.buf[:end + 4]
            self.upgraded = True
            self._deliver(head)
        for opcode, payload in parse_frames(self.buf):
            if opcode in (1, 2):
                self._deliver(payload)
            elif opcode == 9:
                self.t.write(frame(0xA, payload, self.mask))
            elif opcode == 8:
                if not self.close_sent:
                    self.close_sent = True
                    self.t.write(frame(8, payload[:2], self.mask))
                self._deliver(None)

    def _deliver(self, item: bytes | None) -> None:
        w = self.waiter
        if w is not None and not w.done():
            self.waiter = None
            w.set_result(item)
        else:
            self.pending.append(item)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        w = self.waiter
        if w is not None and not w.done():
            w.set_exception(ConnectionError("connection lost"))

    async def next(self, timeout: float | None) -> bytes | None:
        if self.pending:
            return self.pending.popleft()
        if self.lost.done():
            raise ConnectionError("connection lost")
        self.waiter = self.loop.create_future()
        if timeout is None:  # the heartbeat loop: no timer per round trip (the loop's own end bounds it)
            return await self.waiter
        return await asyncio.wait_for(self.waiter, timeout)

    async def call(self, uid: str, timeout: float | None = 60) -> None:
        self.t.write(frame(1, f'[2,"{uid}","Heartbeat",{{}}]'.encode(), self.mask))
        reply = await self.next(timeout)
        if reply is None or not reply.startswith(b"[3,"):
            raise ConnectionError(f"unexpected reply {reply!r}")

    async def close(self, timeout: float = 30) -> None:
        if not self.close_sent and not self.t.is_closing():
            self.close_sent = True
            self.t.write(frame(8, (1000).to_bytes(2, "big"), self.mask))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.lost), timeout)  # the server closes the TCP connection
        self.t.close()


@dataclass
class _Client:
    port: int
    ctx: ssl.SSLContext
    tls: str = ""
    failures: collections.Counter[str] = field(default_factory=collections.Counter)

    async def open(self, identity: str, timeout: float = 60) -> _Station:
        loop = asyncio.get_running_loop()
        t, p = await asyncio.wait_for(loop.create_connection(lambda: _Station(loop), "127.0.0.1", self.port, ssl=self.ctx,
                                                             server_hostname="localhost", ssl_handshake_timeout=timeout),
                                      timeout)
        try:
            t.write((f"GET /{identity} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                     "Sec-WebSocket-Protocol: ocpp2.0.1\r\n\r\n").encode())
            head = await p.next(timeout)
            if head is None or not head.startswith(b"HTTP/1.1 101"):
                raise ConnectionError(f"no 101: {(head or b'')[:60]!r}")
            if not self.tls:  # what was negotiated, and whether the server sent a session ticket (it has by the 101)
                obj = t.get_extra_info("ssl_object")
                session = obj.session
                self.tls = f"{obj.version()} {obj.cipher()[0]}, ticket sent: {bool(session and session.has_ticket)}"
            return p
        except BaseException:
            t.close()
            raise

    async def station(self, identity: str) -> _Station:
        """Open, upgrade and answer one Heartbeat: the station is through to the upstream."""
        p = await self.open(identity)
        try:
            await p.call(f"{identity}-0")
        except BaseException:
            p.t.close()
            raise
        return p

    def failed(self, exc: BaseException) -> None:
        self.failures[type(exc).__name__] += 1
        if sum(self.failures.values()) <= 3:
            print(f"station failure: {exc!r}", file=sys.stderr, flush=True)


def _client_context(pki: dict[str, Any]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_verify_locations(pki["root"])
    ctx.load_cert_chain(*pki["station"])
    return ctx


def _emit(kind: str, **fields: Any) -> None:
    print(kind, json.dumps(fields), flush=True)


def _usage() -> dict[str, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu": r.ru_utime + r.ru_stime, "rss_kib": self_rss_kib()}


async def _open_many(client: _Client, identities: Sequence[str], concurrency: int) -> list[_Station]:
    out: list[_Station] = []
    it = iter(identities)

    async def worker() -> None:
        for identity in it:
            for _attempt in range(5):
                try:
                    out.append(await client.station(identity))
                    break
                except (OSError, TimeoutError, ssl.SSLError) as exc:
                    client.failed(exc)
                    await asyncio.sleep(0.5)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return out


async def role_stations(args: argparse.Namespace) -> None:
    """A load client: ``storm``, ``hold`` (then ``loop SECONDS`` / ``exit`` on stdin) or ``reconnect``."""
    pki = json.loads(args.pki)
    client = _Client(args.port, _client_context(pki))
    identities = [f"CS-{i}" for i in range(args.first, args.first + args.count)]
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    _emit("started", **_usage())
    if args.mode == "storm":
        await stdin.readline()
        before = _usage()
        t0 = time.monotonic()
        ok = 0
        it = iter(identities)

        async def worker() -> None:
            nonlocal ok
            for identity in it:
                try:
                    p = await client.station(identity)
                    await p.close()
                    ok += 1
                except (OSError, TimeoutError, ssl.SSLError) as exc:
                    client.failed(exc)

        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        after = _usage()
        _emit("done", ok=ok, failures=dict(client.failures), elapsed=time.monotonic() - t0, cpu=after["cpu"] - before["cpu"],
              tls=client.tls)
        return
    if args.mode == "hold":
        before = _usage()
        stations = await _open_many(client, identities, args.concurrency)
        held = _usage()
        _emit("ready", held=len(stations), failures=dict(client.failures), rss_kib=held["rss_kib"] - before["rss_kib"],
              tls=client.tls)
        while line := (await stdin.readline()).decode().split():
            if line[0] == "loop":
                await _heartbeat_loop(stations, float(line[1]))
            elif line[0] == "exit":
                break
        await asyncio.gather(*(p.close(5) for p in stations))
        return
    await _reconnect(client, identities, args, stdin)


async def _heartbeat_loop(stations: list[_Station], seconds: float) -> None:
    before = _usage()
    done = 0
    errors = 0
    t0 = time.monotonic()
    stop_at = t0 + seconds

    async def one(p: _Station, n: int) -> None:
        nonlocal done, errors
        k = 0
        try:
            while time.monotonic() < stop_at:
                k += 1
                await p.call(f"{n}-{k}", None)
                done += 1
        except (OSError, TimeoutError):
            errors += 1

    await asyncio.gather(*(one(p, n) for n, p in enumerate(stations)))
    _emit("looped", done=done, errors=errors, elapsed=time.monotonic() - t0, cpu=_usage()["cpu"] - before["cpu"])


async def _reconnect(client: _Client, identities: list[str], args: argparse.Namespace, stdin: asyncio.StreamReader) -> None:
    """Hold every station; after ``watch``, a station that loses its connection reconnects after a random
    ``--backoff`` delay (again after each failed attempt) until it is through to the upstream again."""
    lo, hi = (float(x) for x in args.backoff.split("-"))
    rng = random.Random(args.first)
    state = {"watching": False, "lost": 0, "back": 0, "attempts": 0, "last_back": 0.0}
    all_back = asyncio.Event()
    initial = asyncio.Semaphore(args.concurrency)
    ready = 0
    all_ready = asyncio.Event()

    async def keep(identity: str) -> None:
        nonlocal ready
        async with initial:
            p = None
            while p is None:
                try:
                    p = await client.station(identity)
                except (OSError, TimeoutError, ssl.SSLError) as exc:
                    client.failed(exc)
                    await asyncio.sleep(0.5)
        ready += 1
        if ready == len(identities):
            all_ready.set()
        while True:
            await p.lost
            if not state["watching"]:
                return
            state["lost"] += 1
            p = None
            while p is None:
                await asyncio.sleep(rng.uniform(lo, hi))
                state["attempts"] += 1
                try:
                    p = await client.station(identity)
                except (OSError, TimeoutError, ssl.SSLError) as exc:
                    client.failed(exc)
            state["back"] += 1
            state["last_back"] = time.monotonic()
            if state["back"] == len(identities):
                all_back.set()

    tasks = [asyncio.create_task(keep(i)) for i in identities]
    await all_ready.wait()
    _emit("ready", held=ready, failures=dict(client.failures), tls=client.tls)
    await stdin.readline()  # watch
    state["watching"] = True
    client.failures.clear()
    _emit("watching")
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_back.wait(), args.seconds)
    _emit("back", back=state["back"], lost=state["lost"], attempts=state["attempts"], last_back=state["last_back"],
          failures=dict(client.failures))
    for t in tasks:
        t.cancel()


# -- the servers ------------------------------------------------------------------------------------
NODE_RELAY = r"""
'use strict';
// The anchor: Node's https + ws with requestCert, one ws connection to the upstream per station.
const fs = require('fs');
const https = require('https');
const crypto = require('crypto');
const { WebSocketServer, WebSocket } = require('ws');
const [port, upstream, cert, key, ca] = process.argv.slice(2);
const server = https.createServer({
  cert: fs.readFileSync(cert), key: fs.readFileSync(key), ca: fs.readFileSync(ca),
  requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2',
  secureOptions: crypto.constants.SSL_OP_NO_TICKET,
});
const wss = new WebSocketServer({
  server, perMessageDeflate: false, maxPayload: 65536,
  handleProtocols: (protocols) => protocols.values().next().value || false,
});
wss.on('connection', (ws, req) => {
  const up = new WebSocket(upstream + req.url, ws.protocol ? [ws.protocol] : [], { perMessageDeflate: false });
  const early = [];
  up.on('open', () => { for (const [data, binary] of early) up.send(data, { binary }); early.length = 0; });
  ws.on('message', (data, binary) => {
    if (up.readyState === WebSocket.OPEN) up.send(data, { binary }); else early.push([data, binary]);
  });
  up.on('message', (data, binary) => { if (ws.readyState === WebSocket.OPEN) ws.send(data, { binary }); });
  ws.on('close', (code) => { if (up.readyState <= WebSocket.OPEN) up.close(code === 1000 ? 1000 : 1001); });
  up.on('close', () => { if (ws.readyState <= WebSocket.OPEN) ws.close(); });
  ws.on('error', () => up.terminate());
  up.on('error', () => ws.terminate());
});
server.listen(Number(port), '127.0.0.1', 4096);
"""


def nginx_conf(d: Path, port: int, upstream: int, pki: dict[str, Any], workers: int) -> str:
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    cert, key = pki["ecdsa"]
    nofile = nofile_hard()
    return f"""
daemon off;
master_process on;
worker_processes {workers};
worker_rlimit_nofile {nofile};
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections {nofile - 100}; }}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl backlog=4096;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_client_certificate {pki["root"]};
        ssl_verify_client on;
        ssl_verify_depth 3;
        ssl_session_tickets off;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
        }}
    }}
}}
"""


def _preexec() -> None:
    raise_nofile()


@dataclass
class Proxy:
    """One server under test: its command, port and process (tree)."""

    name: str
    kind: str  # gateway | nginx | node
    command: list[str]
    port: int
    log: Path
    env: dict[str, str] | None = None
    proc: subprocess.Popen[bytes] | None = None
    multi: bool = False

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=self.env,
                                         preexec_fn=_preexec, start_new_session=True)
        try:
            wait_port(self.port, 60)
        except RuntimeError:
            raise RuntimeError(f"{self.name} did not start; its log {self.log}:\n{self.log.read_text()[-2000:]}") from None
        if self.multi:
            time.sleep(1.5)  # the other processes bind their listeners too

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def cpu(self) -> float:
        return tree_cpu(self.pid)

    def rss_kib(self) -> int:
        return tree_rss_kib(self.pid)


def ocppsec_command() -> list[str]:
    exe = Path(sys.executable).parent / "ocppsec"
    return [str(exe)] if exe.exists() else [sys.executable, "-c", "from ocppsec.cli.main import main; main()"]


_HELP: dict[str, str] = {}


def gateway_help(env: dict[str, str] | None = None) -> str:
    """``ocppsec gateway --help`` of this checkout (or of the one ``env``'s PYTHONPATH names)."""
    key = (env or {}).get("PYTHONPATH", "")
    if key not in _HELP:
        _HELP[key] = subprocess.run([*ocppsec_command(), "gateway", "--help"], capture_output=True, text=True, timeout=60,
                                    env=env).stdout
    return _HELP[key]


def gateway_has_workers() -> bool:
    return "--workers" in gateway_help()


@dataclass
class Setup:
    """What every server is made from: the work dir, certificates, registry, upstream port, node's ws."""

    d: Path
    pki: dict[str, Any]
    registry: str
    upstream_port: int
    node_path: str | None
    nginx: str | None
    node: str | None

    variants: dict[str, str] = field(default_factory=dict)  # label -> another checkout (its .typecheck/ocppsec)

    def make(self, key: str, workers: int = 1) -> Proxy:
        """The server ``key`` names: gateway, gateway@LABEL (a --gateway-variant), nginx or node."""
        kind, _, variant = key.partition("@")
        port = free_port()
        up = self.upstream_port
        name = {"gateway": "ocppsec gateway", "nginx": "nginx", "node": "Node ws", "floor": "floor (Python, bytes only)"}[kind] + (f" @{variant}" if variant else "")
        if workers > 1:
            name += f" ({workers} {'workers' if kind != 'gateway' else '--workers'})"
        elif kind == "nginx":
            name += " (1 worker)"
        log = self.d / f"{kind}-{variant}-{workers}-{port}.log"
        if kind == "gateway":
            cert, key = self.pki["ecdsa"]
            cmd = [*ocppsec_command(), "gateway", "--listen", f"127.0.0.1:{port}", "--profile", "3",
                   "--upstream", f"ws://127.0.0.1:{up}/csms", "--server-cert", cert, "--server-key", key,
                   "--trust", self.pki["root"], "--cso-name", CSO, "--stations", self.registry]
            env = None
            if variant:  # the same CLI, importing ocppsec from the other checkout first
                env = {**os.environ, "PYTHONPATH": str(Path(self.variants[variant]) / ".typecheck")}
            if workers > 1:
                cmd += ["--workers", str(workers)]
            if "--admin" in gateway_help(env):  # its admin listener as users run it, on a port of its own
                cmd += ["--admin", f"127.0.0.1:{free_port()}"]
            return Proxy(name, kind, cmd, port, log, env=env, multi=workers > 1)
        if kind == "floor":
            return Proxy(name, kind, [sys.executable, str(HERE), "--role", "floor", "--port", str(port), "--upstream-port", str(up),
                                      "--pki", json.dumps(self.pki)], port, log)
        if kind == "nginx":
            assert self.nginx is not None
            nd = self.d / f"nginx-{port}"
            nd.mkdir()
            conf = nd / "nginx.conf"
            conf.write_text(nginx_conf(nd, port, up, self.pki, workers))
            return Proxy(name, kind, [self.nginx, "-p", str(nd), "-c", str(conf), "-e", str(nd / "error.log")], port, log,
                         multi=workers > 1)
        assert self.node is not None
        assert self.node_path is not None
        script = self.d / "relay.js"
        script.write_text(NODE_RELAY)
        cert, key = self.pki["ecdsa"]
        env = {**os.environ, "NODE_PATH": self.node_path}
        return Proxy(name, kind, [self.node, str(script), str(port), f"ws://127.0.0.1:{up}", cert, key, self.pki["root"]],
                     port, log, env=env)


def find_tools(servers: set[str], cache: Path) -> tuple[str | None, str | None, str | None]:
    """nginx and node (with npm's ws@8 installed into ``cache``), or a message on how to install them and exit 2."""
    nginx = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
    node = shutil.which("node")
    missing = []
    if "nginx" in servers and nginx is None:
        missing.append("nginx: apt-get install nginx-light (or nginx), as root; or leave it out with --servers")
    if "node" in servers and (node is None or shutil.which("npm") is None):
        missing.append("node and npm: apt-get install nodejs npm (Node 18+), as root; or leave it out with --servers")
    if missing:
        print("missing:\n  " + "\n  ".join(missing), file=sys.stderr)
        sys.exit(2)
    node_path = None
    if "node" in servers:
        assert node is not None
        if not (cache / "node_modules" / "ws" / "package.json").exists():
            cache.mkdir(parents=True, exist_ok=True)
            print(f"installing npm's ws@8 into {cache}", file=sys.stderr)
            subprocess.run(["npm", "install", "--prefix", str(cache), "--no-audit", "--no-fund", "--silent", "ws@8"],
                           check=True, timeout=600)
        node_path = str(cache / "node_modules")
    return nginx, node, node_path


def spawn_role(role: str, *args: str, stdin: int | None = None, stdout: int | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(HERE), "--role", role, *args], stdin=stdin, stdout=stdout, text=True,
                            preexec_fn=_preexec)


def read_line(proc: subprocess.Popen[str], kind: str) -> dict[str, Any]:
    assert proc.stdout is not None
    while True:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"a station process ended before '{kind}' (exit {proc.wait()})")
        word, _, rest = line.partition(" ")
        if word.strip() == kind:
            return dict(json.loads(rest)) if rest.strip() else {}


def tell(procs: Sequence[subprocess.Popen[str]], text: str) -> None:
    for p in procs:
        assert p.stdin is not None
        with contextlib.suppress(BrokenPipeError, ValueError):
            p.stdin.write(text + "\n")
            p.stdin.flush()


def split(total: int, parts: int) -> list[tuple[int, int]]:
    """(first, count) of ``parts`` nearly equal consecutive ranges of ``total``."""
    out, first = [], 0
    for k in range(parts):
        n = total // parts + (1 if k < total % parts else 0)
        out.append((first, n))
        first += n
    return [x for x in out if x[1]]


def stations(setup: Setup, proxy: Proxy, mode: str, total: int, concurrency: int, clients: int, offset: int = 0,
             extra: Sequence[str] = ()) -> list[subprocess.Popen[str]]:
    procs = []
    for first, count in split(total, clients):
        procs.append(spawn_role("stations", "--mode", mode, "--port", str(proxy.port), "--pki", json.dumps(setup.pki),
                                "--first", str(offset + first), "--count", str(count),
                                "--concurrency", str(max(1, concurrency // clients)), *extra,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE))
    for p in procs:
        read_line(p, "started")
    return procs


def finish(procs: Sequence[subprocess.Popen[str]]) -> None:
    for p in procs:
        with contextlib.suppress(BrokenPipeError, ValueError):
            if p.stdin is not None:
                p.stdin.close()
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


# -- workloads -------------------------------------------------------------------------------------
def storm(setup: Setup, proxy: Proxy, upstream: subprocess.Popen[str], n: int, concurrency: int, clients: int) -> dict[str, Any]:
    """N stations, ``concurrency`` at a time: connect, upgrade, one Heartbeat, close. CPU per connection."""
    procs = stations(setup, proxy, "storm", n, concurrency, clients)
    try:
        cpu0, up0, t0 = proxy.cpu(), tree_cpu(upstream.pid), time.monotonic()
        tell(procs, "go")
        results = [read_line(p, "done") for p in procs]
        wall = time.monotonic() - t0
        time.sleep(0.3)  # the servers' last closes
        cpu, up = proxy.cpu() - cpu0, tree_cpu(upstream.pid) - up0
    finally:
        finish(procs)
    ok = sum(r["ok"] for r in results)
    failures: collections.Counter[str] = collections.Counter()
    for r in results:
        failures.update(r["failures"])
    return {"stations": n, "ok": ok, "failures": dict(failures), "wall_s": round(wall, 2),
            "connections_per_s": round(ok / wall, 1), "server_cpu_ms": cpu * 1000 / max(ok, 1),
            "upstream_cpu_ms": up * 1000 / max(ok, 1), "client_cpu_ms": sum(r["cpu"] for r in results) * 1000 / max(ok, 1),
            "tls": results[0]["tls"], "load": load1()}


def heartbeats(setup: Setup, proxy: Proxy, upstream: subprocess.Popen[str], n: int, seconds: float, clients: int,
               concurrency: int) -> dict[str, Any]:
    """N stations connected, each in a closed Heartbeat loop for ``seconds``: round trips/s, CPU per round trip."""
    procs = stations(setup, proxy, "hold", n, concurrency, clients)
    try:
        ready = [read_line(p, "ready") for p in procs]
        held = sum(r["held"] for r in ready)
        time.sleep(0.5)
        cpu0, up0 = proxy.cpu(), tree_cpu(upstream.pid)
        tell(procs, f"loop {seconds}")
        results = [read_line(p, "looped") for p in procs]
        cpu, up = proxy.cpu() - cpu0, tree_cpu(upstream.pid) - up0
        tell(procs, "exit")
    finally:
        finish(procs)
    done = sum(r["done"] for r in results)
    elapsed = max(r["elapsed"] for r in results)
    return {"stations": held, "round_trips": done, "errors": sum(r["errors"] for r in results),
            "per_second": done / elapsed, "server_cpu_us": cpu * 1e6 / max(done, 1), "upstream_cpu_us": up * 1e6 / max(done, 1),
            "client_cpu_us": sum(r["cpu"] for r in results) * 1e6 / max(done, 1),
            "server_cores": cpu / elapsed, "load": load1()}


def start_upstream(port: int) -> subprocess.Popen[str]:
    up = spawn_role("upstream", "--port", str(port), "--loop", "uvloop")
    wait_port(port)
    return up


def idle(setup: Setup, kind: str, n: int, clients: int, concurrency: int, settle: float = 2.0) -> dict[str, Any]:
    """N connections held open through to the upstream by a fresh server: RSS growth per connection."""
    upstream = start_upstream(setup.upstream_port)
    proxy = setup.make(kind)
    warm: list[subprocess.Popen[str]] = []
    procs: list[subprocess.Popen[str]] = []
    try:
        proxy.start()
        warm = stations(setup, proxy, "hold", 50, 10, 1, offset=n)
        read_line(warm[0], "ready")
        time.sleep(1.0)
        base, up_base = proxy.rss_kib(), tree_rss_kib(upstream.pid)
        t0 = time.monotonic()
        procs = stations(setup, proxy, "hold", n, concurrency, clients)
        ready = [read_line(p, "ready") for p in procs]
        opened = time.monotonic() - t0
        time.sleep(settle)
        held = sum(r["held"] for r in ready)
        grown, up_grown = proxy.rss_kib() - base, tree_rss_kib(upstream.pid) - up_base
        return {"connections": held, "server_kib": grown / max(held, 1), "server_rss_mib": proxy.rss_kib() / 1024,
                "upstream_kib": up_grown / max(held, 1), "client_kib": sum(r["rss_kib"] for r in ready) / max(held, 1),
                "open_s": round(opened, 1), "load": load1()}
    finally:
        tell(procs + warm, "exit")
        finish(procs + warm)
        proxy.stop()
        upstream.terminate()
        upstream.wait()


def reconnect(setup: Setup, proxy: Proxy, n: int, clients: int, concurrency: int, backoff: str,
              timeout: float = 600) -> dict[str, Any]:
    """N stations connected; the proxy restarted (SIGTERM, then started again); wall time until all are back."""
    procs = stations(setup, proxy, "reconnect", n, concurrency, clients, extra=("--backoff", backoff, "--seconds", str(timeout)))
    try:
        held = sum(read_line(p, "ready")["held"] for p in procs)
        tell(procs, "watch")
        for p in procs:
            read_line(p, "watching")
        t0 = time.monotonic()
        proxy.stop()
        down = time.monotonic() - t0
        proxy.start()
        up_again = time.monotonic() - t0
        cpu0 = proxy.cpu()
        results = [read_line(p, "back") for p in procs]
        cpu = proxy.cpu() - cpu0
    finally:
        finish(procs)
    back = sum(r["back"] for r in results)
    failures: collections.Counter[str] = collections.Counter()
    for r in results:
        failures.update(r["failures"])
    last = max(r["last_back"] for r in results)
    return {"stations": held, "back": back, "all_back": back == held, "wall_s": round(last - t0, 1),
            "stop_s": round(down, 2), "restart_s": round(up_again, 2), "attempts": sum(r["attempts"] for r in results),
            "failures": dict(failures), "server_cpu_s": round(cpu, 1), "load": load1()}


# -- rounds and figures ----------------------------------------------------------------------------
def rotated(items: Sequence[str], r: int) -> list[str]:
    k = r % len(items)
    return list(items[k:]) + list(items[:k])


def alternate(names: Sequence[str], rounds: int, run: Callable[[str], dict[str, Any]], label: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for r in range(rounds):
        for name in rotated(names, r):
            fig = run(name)
            out[name].append(fig)
            print(f"  {label} round {r + 1}: {name}: " + json.dumps({k: (round(v, 3) if isinstance(v, float) else v)
                                                                     for k, v in fig.items()}), file=sys.stderr, flush=True)
    return out


def summarize(per: dict[str, list[dict[str, Any]]], keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, rows in per.items():
        s: dict[str, Any] = {}
        for k in keys:
            vals = [float(r[k]) for r in rows]
            s[k] = round(statistics.median(vals), 4)
            s[f"{k}_rounds"] = [round(v, 4) for v in vals]
        s["load_rounds"] = [r["load"] for r in rows]
        for extra in ("failures", "errors", "tls", "ok", "stations", "connections"):
            if extra in rows[0]:
                s[f"{extra}_rounds"] = [r[extra] for r in rows]
        out[name] = s
    return out


def paired(per: dict[str, list[dict[str, Any]]], key: str, ours: str, theirs: str) -> dict[str, Any]:
    if ours not in per or theirs not in per:
        return {}
    rounds = [a[key] / b[key] if b[key] else float("nan") for a, b in zip(per[ours], per[theirs], strict=True)]
    return {"median": round(statistics.median(rounds), 3), "rounds": [round(x, 3) for x in rounds],
            "of_medians": round(statistics.median(x[key] for x in per[ours]) / statistics.median(x[key] for x in per[theirs]), 3)}


# -- profiling -------------------------------------------------------------------------------------
def perf_works() -> bool:
    if shutil.which("perf") is None:
        return False
    r = subprocess.run(["perf", "record", "-e", "cpu-clock", "-o", "/dev/null", "true"], capture_output=True, text=True)
    return r.returncode == 0


def profile_gateway(setup: Setup, upstream: subprocess.Popen[str], out: Path, storm_n: int, concurrency: int, hb_n: int,
                    seconds: float, clients: int, native: bool = False) -> dict[str, Any]:
    """py-spy (and perf where it works) on a fresh gateway during one storm and one heartbeat round."""
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {}
    use_perf = perf_works()
    for part in ("storm", "heartbeats"):
        gw = setup.make("gateway")
        gw.start()
        try:
            if part == "heartbeats":  # connect first, profile the loop only
                procs = stations(setup, gw, "hold", hb_n, concurrency, clients)
                for p in procs:
                    read_line(p, "ready")
            spy = subprocess.Popen(["py-spy", "record", *([] if native else ["--nonblocking"]), "-r", "250", "-f", "raw", "-p", str(gw.pid),
                                    *(["--native"] if native else []), "-o", str(out / f"{part}.pyspy.txt")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            perf = None
            if use_perf:
                perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "999", "-g", "-p", str(gw.pid), "-o",
                                         str(out / f"{part}.perf.data")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)
            if part == "storm":
                fig = storm(setup, gw, upstream, storm_n, concurrency, clients)
            else:
                cpu0 = gw.cpu()
                tell(procs, f"loop {seconds}")
                done = sum(read_line(p, "looped")["done"] for p in procs)
                fig = {"round_trips": done, "server_cpu_us": (gw.cpu() - cpu0) * 1e6 / max(done, 1)}
                tell(procs, "exit")
                finish(procs)
            for p in (spy, perf):
                if p is not None:
                    p.send_signal(signal.SIGINT)
                    p.wait(120)
            result[part] = {"figures": fig, "pyspy": [(f, round(i, 1), round(s, 1)) for f, i, s in
                                                      collapsed_summary(out / f"{part}.pyspy.txt")]}
            if perf is not None:
                for sort, top in (("dso", 10), ("sym", 25)):
                    report = subprocess.run(["perf", "report", "-i", str(out / f"{part}.perf.data"), "--no-children", "--sort", sort,
                                             "-g", "none", "--stdio"], capture_output=True, text=True).stdout
                    (out / f"{part}.perf-{sort}.txt").write_text(report)
                    result[part][f"perf_{sort}"] = [" ".join(line.split()) for line in report.splitlines()
                                                    if "%" in line and not line.startswith("#")][:top]
        finally:
            gw.stop()
    return result


# -- main ------------------------------------------------------------------------------------------
SIZES = {  # full run, --quick
    "storm": (3000, 300), "concurrency": (50, 20), "idle": (5000, 500), "heartbeat_stations": (1000, 200),
    "heartbeat_seconds": (8.0, 3.0), "big": (10000, 1000), "rounds": (3, 2), "big_rounds": (1, 1),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--role")
    ap.add_argument("--mode")
    ap.add_argument("--port", type=int)
    ap.add_argument("--upstream-port", type=int)
    ap.add_argument("--pki")
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--backoff", default="1-10", help="reconnect: the delay before each attempt, uniform LO-HI seconds")
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--loop", default="uvloop")
    ap.add_argument("--quick", action="store_true", help="small sizes, for development")
    for key, (full, _quick) in SIZES.items():
        ap.add_argument(f"--{key.replace('_', '-')}", type=type(full), default=None, help=f"default {full} (--quick: {_quick})")
    ap.add_argument("--clients", type=int, default=2, help="station processes per workload")
    ap.add_argument("--only", action="append", choices=["storm", "idle", "heartbeats", "big", "reconnect"],
                    help="run only these workloads (repeatable)")
    ap.add_argument("--servers", default="gateway,nginx,node", help="which of gateway,nginx,node,floor to run (floor: a "
                    "relay of bytes in Python on uvloop with the gateway's TLS context, what any Python proxy spends at the least)")
    ap.add_argument("--gateway-variant", action="append", default=[], metavar="LABEL=DIR",
                    help="also run the gateway of another checkout DIR (e.g. a git worktree of the commit before a change) "
                         "as gateway@LABEL in the storm, idle and heartbeat rounds, for before/after figures")
    ap.add_argument("--profile", metavar="DIR", help="afterwards, profile the gateway (py-spy, perf) into DIR")
    ap.add_argument("--profile-native", action="store_true", help="py-spy --native (C frames too: OpenSSL, uvloop)")
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "ocppsec-bench" / "node"), help="where npm's ws is kept")
    args = ap.parse_args()
    raise_nofile()
    if args.role:
        import uvloop

        uvloop.run({"upstream": role_upstream, "stations": role_stations, "floor": role_floor}[args.role](args))
        return
    size = {k: getattr(args, k) if getattr(args, k) is not None else v[1 if args.quick else 0] for k, v in SIZES.items()}
    kinds = [k for k in ("gateway", "nginx", "node", "floor") if k in args.servers.split(",")]
    nginx, node, node_path = find_tools(set(kinds), Path(args.cache))
    variants = dict(v.split("=", 1) for v in args.gateway_variant)
    keys = kinds[:1] + [f"gateway@{label}" for label in variants] + kinds[1:]
    parts = set(args.only or ("storm", "idle", "heartbeats", "big", "reconnect"))
    workers = gateway_has_workers()
    res: dict[str, Any] = {"sizes": size, "cores": os.cpu_count(), "load_start": load1(), "gateway_workers_flag": workers}
    with tempfile.TemporaryDirectory(prefix="gw-bench-") as tmp:
        d = Path(tmp)
        pki = make_pki(d, 0)
        registry = str(d / "stations.db")
        make_registry(Path(registry), max(size["storm"], size["idle"] + 100, size["heartbeat_stations"], size["big"]))
        setup = Setup(d, pki, registry, free_port(), node_path, nginx, node, variants)
        c, cl, rounds = size["concurrency"], args.clients, size["rounds"]
        proxies: dict[str, Proxy] = {}
        upstream = start_upstream(setup.upstream_port)
        try:
            if parts & {"storm", "heartbeats"} or args.profile:
                for key in keys:
                    proxies[key] = setup.make(key)
                if "nginx" in kinds:
                    proxies["nginx2"] = setup.make("nginx", 2)
                for p in proxies.values():
                    p.start()
                    storm(setup, p, upstream, min(size["storm"], 200), c, cl)  # warm-up (Node's JIT, caches), not measured
            if "storm" in parts:
                per = alternate(list(proxies), rounds, lambda k: storm(setup, proxies[k], upstream, size["storm"], c, cl), "storm")
                res["storm"] = {"servers": summarize(per, ("server_cpu_ms", "upstream_cpu_ms", "client_cpu_ms", "connections_per_s")),
                                "gateway_to_nginx": paired(per, "server_cpu_ms", "gateway", "nginx"),
                                "gateway_to_nginx2": paired(per, "server_cpu_ms", "gateway", "nginx2"),
                                "gateway_to_node": paired(per, "server_cpu_ms", "gateway", "node"),
                                "floor_to_nginx": paired(per, "server_cpu_ms", "floor", "nginx"),
                                "gateway_to_floor": paired(per, "server_cpu_ms", "gateway", "floor")}
                for label in variants:
                    res["storm"][f"gateway_to_gateway@{label}"] = paired(per, "server_cpu_ms", "gateway", f"gateway@{label}")
            if "heartbeats" in parts:
                names = [k for k in proxies if k != "nginx2"]
                per = alternate(names, rounds, lambda k: heartbeats(setup, proxies[k], upstream, size["heartbeat_stations"],
                                                                     size["heartbeat_seconds"], cl, c), "heartbeats")
                res["heartbeats"] = {"servers": summarize(per, ("per_second", "server_cpu_us", "upstream_cpu_us", "client_cpu_us")),
                                     "gateway_to_nginx_rate": paired(per, "per_second", "gateway", "nginx"),
                                     "gateway_to_node_rate": paired(per, "per_second", "gateway", "node"),
                                     "gateway_to_nginx_cpu": paired(per, "server_cpu_us", "gateway", "nginx"),
                                     "gateway_to_node_cpu": paired(per, "server_cpu_us", "gateway", "node"),
                                     "floor_to_nginx_rate": paired(per, "per_second", "floor", "nginx"),
                                     "floor_to_nginx_cpu": paired(per, "server_cpu_us", "floor", "nginx"),
                                     "gateway_to_floor_cpu": paired(per, "server_cpu_us", "gateway", "floor")}
                for label in variants:
                    res["heartbeats"][f"gateway_to_gateway@{label}_cpu"] = paired(per, "server_cpu_us", "gateway", f"gateway@{label}")
                    res["heartbeats"][f"gateway_to_gateway@{label}_rate"] = paired(per, "per_second", "gateway", f"gateway@{label}")
            if args.profile:
                res["profile"] = profile_gateway(setup, upstream, Path(args.profile), size["storm"], c,
                                                 size["heartbeat_stations"], size["heartbeat_seconds"], cl, args.profile_native)
            for p in proxies.values():
                p.stop()
            if "idle" in parts:
                upstream.terminate()
                upstream.wait()
                per = alternate(keys, rounds, lambda k: idle(setup, k, size["idle"], cl, c), "idle")
                res["idle"] = {"servers": summarize(per, ("server_kib", "upstream_kib", "client_kib", "server_rss_mib")),
                               "gateway_to_nginx": paired(per, "server_kib", "gateway", "nginx"),
                               "gateway_to_node": paired(per, "server_kib", "gateway", "node")}
                for label in variants:
                    res["idle"][f"gateway_to_gateway@{label}"] = paired(per, "server_kib", "gateway", f"gateway@{label}")
                upstream = start_upstream(setup.upstream_port)
            big_kinds = [("gateway", 2), ("nginx", 2), ("node", 1)]
            big_names = {"gateway": "gateway_workers2", "nginx": "nginx2", "node": "node"}
            if "big" in parts:
                runnable = [(k, w) for k, w in big_kinds if k in kinds and (k != "gateway" or workers)]
                per = alternate([big_names[k] for k, _ in runnable], size["big_rounds"],
                                lambda name: _fresh(setup, next((k, w) for k, w in runnable if big_names[k] == name),
                                                    lambda px: storm(setup, px, upstream, size["big"], c, cl)), "storm 10k")
                res["big_storm"] = {"servers": summarize(per, ("server_cpu_ms", "upstream_cpu_ms", "client_cpu_ms",
                                                               "connections_per_s", "wall_s")),
                                    "gateway_to_nginx2": paired(per, "server_cpu_ms", "gateway_workers2", "nginx2"),
                                    "gateway_to_node": paired(per, "server_cpu_ms", "gateway_workers2", "node")}
                if "gateway" in kinds and not workers:
                    res["big_storm"]["gateway_workers2"] = "not available yet (ocppsec gateway has no --workers)"
            if "reconnect" in parts:
                plan = [("gateway", 2 if workers else 1), ("nginx", 1), ("node", 1)]
                # a single proxy process holds two descriptors per station (the station's, the upstream's)
                held = min(size["big"], (nofile_hard() - 200) // 2)
                note = ""
                if held < size["big"]:
                    note = (f"{held} stations, not {size['big']}: the open-files limit ({nofile_hard()}) allows a proxy "
                            "process two descriptors per station no further (raise the hard limit to run all)")
                    print(f"reconnect: {note}", file=sys.stderr)
                runnable = [(k, w) for k, w in plan if k in kinds]
                names = {k: (f"{k}_workers2" if k == "gateway" and w == 2 else k) for k, w in runnable}
                per = alternate(list(names.values()), size["big_rounds"],
                                lambda name: _fresh(setup, next((k, w) for k, w in runnable if names[k] == name),
                                                    lambda px: reconnect(setup, px, held, cl, c, args.backoff)),
                                "reconnect")
                res["reconnect"] = {"servers": summarize(per, ("wall_s", "attempts", "server_cpu_s")), "backoff_s": args.backoff,
                                    "stations": held, **({"note": note} if note else {}),
                                    "gateway_to_nginx": paired(per, "wall_s", names.get("gateway", "gateway"), "nginx"),
                                    "gateway_to_node": paired(per, "wall_s", names.get("gateway", "gateway"), "node")}
        finally:
            for p in proxies.values():
                p.stop()
            upstream.terminate()
            upstream.wait()
    res["goals"] = goals(res)
    res["load_end"] = load1()
    print_report(res)
    print(json.dumps(res, separators=(",", ":")))


def _fresh(setup: Setup, kind_workers: tuple[str, int], run: Callable[[Proxy], dict[str, Any]]) -> dict[str, Any]:
    proxy = setup.make(*kind_workers)
    proxy.start()
    try:
        return run(proxy)
    finally:
        proxy.stop()


def goals(res: dict[str, Any]) -> dict[str, Any]:
    g: dict[str, Any] = {}
    s = res.get("storm", {})
    if s.get("gateway_to_node") and s.get("gateway_to_nginx"):
        g["storm_cpu_below_node"] = s["gateway_to_node"]["median"] < 1.0
        g["storm_cpu_le_1_8x_nginx"] = s["gateway_to_nginx"]["median"] <= 1.8
    i = res.get("idle", {})
    if i.get("gateway_to_nginx"):
        g["idle_rss_le_1_2x_nginx"] = i["gateway_to_nginx"]["median"] <= 1.2
    h = res.get("heartbeats", {})
    if h.get("gateway_to_nginx_rate") and h.get("gateway_to_node_rate"):
        g["heartbeats_ge_0_8x_nginx"] = h["gateway_to_nginx_rate"]["median"] >= 0.8
        g["heartbeats_above_node"] = h["gateway_to_node_rate"]["median"] > 1.0
    return g


def print_report(res: dict[str, Any]) -> None:
    from _util import print_table

    def cell(part: str, name: str, key: str, fmt: str) -> str:
        fig = res.get(part, {}).get("servers", {}).get(name)
        return fmt.format(fig[key]) if fig else "-"

    def ratio(part: str, key: str) -> str:
        r = res.get(part, {}).get(key)
        return f"{r['median']:.2f}x {r['rounds']}" if r else "-"

    rows: list[tuple[str, ...]] = []
    if "storm" in res:
        for name in res["storm"]["servers"]:
            rows.append((f"storm {res['sizes']['storm']}, {res['sizes']['concurrency']} at a time", name,
                         cell("storm", name, "server_cpu_ms", "{:.2f} ms"), cell("storm", name, "upstream_cpu_ms", "{:.2f} ms"),
                         cell("storm", name, "client_cpu_ms", "{:.2f} ms"), cell("storm", name, "connections_per_s", "{:.0f}/s"),
                         str(res["storm"]["servers"][name]["load_rounds"])))
    if "idle" in res:
        for name in res["idle"]["servers"]:
            rows.append((f"idle {res['sizes']['idle']}: RSS per connection", name, cell("idle", name, "server_kib", "{:.1f} KiB"),
                         cell("idle", name, "upstream_kib", "{:.1f} KiB"), cell("idle", name, "client_kib", "{:.1f} KiB"), "",
                         str(res["idle"]["servers"][name]["load_rounds"])))
    if "heartbeats" in res:
        for name in res["heartbeats"]["servers"]:
            rows.append((f"heartbeats, {res['sizes']['heartbeat_stations']} stations: CPU per round trip", name,
                         cell("heartbeats", name, "server_cpu_us", "{:.0f} us"),
                         cell("heartbeats", name, "upstream_cpu_us", "{:.0f} us"),
                         cell("heartbeats", name, "client_cpu_us", "{:.0f} us"), cell("heartbeats", name, "per_second", "{:.0f}/s"),
                         str(res["heartbeats"]["servers"][name]["load_rounds"])))
    if "big_storm" in res:
        for name in res["big_storm"]["servers"]:
            rows.append((f"storm {res['sizes']['big']}", name, cell("big_storm", name, "server_cpu_ms", "{:.2f} ms"),
                         cell("big_storm", name, "upstream_cpu_ms", "{:.2f} ms"), cell("big_storm", name, "client_cpu_ms", "{:.2f} ms"),
                         cell("big_storm", name, "connections_per_s", "{:.0f}/s"), str(res["big_storm"]["servers"][name]["load_rounds"])))
        if isinstance(res["big_storm"].get("gateway_workers2"), str):
            rows.append((f"storm {res['sizes']['big']}", "ocppsec gateway --workers 2", "not available yet", "", "", "", ""))
    if "reconnect" in res:
        for name, fig in res["reconnect"]["servers"].items():
            rows.append((f"reconnect {res['reconnect']['stations']} after a restart (back-off {res['reconnect']['backoff_s']} s)", name,
                         f"{fig['wall_s']:.1f} s wall", f"{fig['attempts']:.0f} attempts", f"{fig['server_cpu_s']:.1f} s CPU", "",
                         str(fig["load_rounds"])))
    print_table(("workload", "server", "server", "upstream", "client", "rate", "load per round"), rows)
    if res.get("reconnect", {}).get("note"):
        print(f"reconnect: {res['reconnect']['note']}")
    print()
    ratios = [("storm CPU gateway / nginx (1 worker)", ratio("storm", "gateway_to_nginx")),
              ("storm CPU gateway / nginx (2 workers)", ratio("storm", "gateway_to_nginx2")),
              ("storm CPU gateway / node", ratio("storm", "gateway_to_node")),
              ("idle RSS gateway / nginx", ratio("idle", "gateway_to_nginx")),
              ("idle RSS gateway / node", ratio("idle", "gateway_to_node")),
              ("heartbeat rate gateway / nginx", ratio("heartbeats", "gateway_to_nginx_rate")),
              ("heartbeat rate gateway / node", ratio("heartbeats", "gateway_to_node_rate")),
              ("heartbeat CPU gateway / nginx", ratio("heartbeats", "gateway_to_nginx_cpu")),
              ("heartbeat CPU gateway / node", ratio("heartbeats", "gateway_to_node_cpu")),
              ("storm CPU floor / nginx", ratio("storm", "floor_to_nginx")),
              ("storm CPU gateway / floor", ratio("storm", "gateway_to_floor")),
              ("heartbeat rate floor / nginx", ratio("heartbeats", "floor_to_nginx_rate")),
              ("heartbeat CPU floor / nginx", ratio("heartbeats", "floor_to_nginx_cpu")),
              ("heartbeat CPU gateway / floor", ratio("heartbeats", "gateway_to_floor_cpu")),
              (f"storm {res['sizes']['big']} CPU gateway --workers 2 / nginx 2 workers", ratio("big_storm", "gateway_to_nginx2")),
              ("reconnect wall gateway / nginx", ratio("reconnect", "gateway_to_nginx"))]
    for part in ("storm", "idle", "heartbeats"):
        for key in res.get(part, {}):
            if key.startswith("gateway_to_gateway@"):
                ratios.append((f"{part}: {key.removeprefix('gateway_to_').replace('_', ' ')}: gateway / that", ratio(part, key)))
    print_table(("ratio (median of paired rounds)", "value, rounds"), [r for r in ratios if r[1] != "-"])
    print()
    print_table(("goal", "met"), [(k, "pass" if v else "FAIL") for k, v in res["goals"].items()])
    if "profile" in res:
        for part, fig in res["profile"].items():
            print(f"\nwhere the gateway's time went, {part} ({fig['figures']}), py-spy inclusive / self %:")
            for f, inc, own in fig["pyspy"][:30]:
                print(f"  {inc:5.1f} {own:5.1f}  {f}")
            for line in fig.get("perf_dso", []) + fig.get("perf_sym", []):
                print(f"  perf: {line}")


if __name__ == "__main__":
    main()
