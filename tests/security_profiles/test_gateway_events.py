"""The gateway never blocks on its event store and never loses an event.

100 stations heartbeat through a real gateway (profile 2: TLS and Basic auth, real websockets) to a real
upstream, while the gateway's event store (``QueuedSink`` over a real SQLite or PostgreSQL store) is
(a) locked by another connection holding ``BEGIN EXCLUSIVE`` for 30 s, (b) read-only until it is made
writable again, (c) a PostgreSQL server that is stopped and started again. Meanwhile registered stations
fail their handshakes (wrong password) and stations send SecurityEventNotifications, so events are
produced all along. Asserted: the heartbeat round trip's p99 stays under 50 ms, and afterwards every
event produced is in the store, once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import sqlite3
import statistics
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from _postgres import PostgresCluster
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosed

from ocppsec.eventlog.queued import QueuedSink
from ocppsec.eventlog.store import EventQuery, EventStore
from ocppsec.eventlog.store_sql import open_store
from ocppsec.pki.events.sink import FanOutSink, MemorySink
from ocppsec.security_profiles.basic_auth import hash_password
from ocppsec.security_profiles.gateway import Gateway
from ocppsec.security_profiles.handshake import ServerPolicy
from ocppsec.security_profiles.registry import MemoryRegistry, StationRecord
from ocppsec.security_profiles.tls import client_context

from .conftest import CSO, FAST, PASSWORD_201, Pki, free_port
from .helpers import run, tls_context_for

STATIONS = 100
BEAT = 1.0  # seconds between one station's heartbeats
P99_LIMIT = 0.050


def _registry() -> MemoryRegistry:
    digest = hash_password(PASSWORD_201, cost=FAST)
    return MemoryRegistry([StationRecord(f"CS-{i:03d}", 2, password_hash=digest) for i in range(STATIONS)])


def _auth(identity: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{identity}:{password}".encode()).decode()}


@contextlib.asynccontextmanager
async def csms(port: int) -> AsyncIterator[None]:
    """Answers Heartbeat CALLs with a CALLRESULT, every other CALL with an empty one."""
    async def handler(ws: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for m in ws:
                text = str(m)
                unique = text.split('"', 2)[1]
                now = datetime.now(UTC).isoformat()
                await ws.send(f'[3,"{unique}",{{"currentTime":"{now}"}}]' if "Heartbeat" in text else f'[3,"{unique}",{{}}]')

    async with ws_serve(handler, "127.0.0.1", port, subprotocols=["ocpp2.0.1"]):  # type: ignore[list-item]
        yield


@dataclass
class Fleet:
    port: int
    pki: Pki
    rtts: list[float] = field(default_factory=list)
    measuring: bool = False
    failures_made: int = 0
    notifications_sent: int = 0
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    async def open(self, identity: str, password: str = PASSWORD_201) -> ClientConnection:
        return await ws_connect(f"wss://localhost:{self.port}/{identity}", ssl=client_context([self.pki.csms_root]),
                                subprotocols=["ocpp2.0.1"], additional_headers=_auth(identity, password),  # type: ignore[list-item]
                                open_timeout=30)

    async def station(self, n: int, ws: ClientConnection) -> None:
        await asyncio.sleep(BEAT * n / STATIONS)  # spread over the interval
        while not self.stop.is_set():
            unique = f"hb-{next(self._ids)}"
            start = time.perf_counter()
            await ws.send(f'[2,"{unique}","Heartbeat",{{}}]')
            answer = str(await ws.recv())
            rtt = time.perf_counter() - start
            assert unique in answer
            if self.measuring:
                self.rtts.append(rtt)
            if self.measuring and n % 10 == 0:  # ten stations report a security event each beat
                self.notifications_sent += 1
                now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
                await ws.send(f'[2,"ev-{next(self._ids)}","SecurityEventNotification",{{"type":"TamperDetectionActivated",'
                              f'"timestamp":"{now}","techInfo":"beat {unique}"}}]')
                await ws.recv()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), BEAT)

    async def failing_handshakes(self) -> None:
        """Registered stations with a wrong password, four a second: each is one event."""
        for i in itertools.count():
            if self.stop.is_set():
                return
            if self.measuring:
                with contextlib.suppress(Exception):
                    ws = await self.open(f"CS-{i % STATIONS:03d}", PASSWORD_201[::-1])
                    await ws.close()
                self.failures_made += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), 0.25)


async def _fleet_through_gateway(pki: Pki, sink: QueuedSink, fault: Callable[[], Awaitable[None]]) -> tuple[Fleet, MemorySink, Any]:
    port, up = free_port(), free_port()
    produced = MemorySink()  # every event the gateway records, to compare with the store afterwards
    gw = Gateway(policy=ServerPolicy(frozenset({2}), cso_name=CSO), registry=_registry(),
                 upstream=f"ws://127.0.0.1:{up}/csms", ssl_context=tls_context_for({2}, pki),
                 sink=FanOutSink([produced, sink]))
    fleet = Fleet(port, pki)
    async with csms(up), gw.serve("127.0.0.1", port):
        conns: list[ClientConnection] = []
        for start in range(0, STATIONS, 10):
            conns += await asyncio.gather(*(fleet.open(f"CS-{i:03d}") for i in range(start, start + 10)))
        tasks = [asyncio.create_task(fleet.station(n, ws)) for n, ws in enumerate(conns)]
        tasks.append(asyncio.create_task(fleet.failing_handshakes()))
        await asyncio.sleep(BEAT)  # every station has beaten once: the measurement starts from a steady state
        fleet.measuring = True
        try:
            await fault()
        finally:
            fleet.measuring = False
            fleet.stop.set()
            await asyncio.gather(*tasks)
            await asyncio.gather(*(ws.close() for ws in conns))
        return fleet, produced, gw.event_counters()


def _check(fleet: Fleet, produced: MemorySink, sink: QueuedSink, store: EventStore, record: Callable[[str, object], None]) -> None:
    assert fleet.failures_made >= 8 and fleet.notifications_sent >= 10, (fleet.failures_made, fleet.notifications_sent)
    assert len(fleet.rtts) >= 200
    p99 = statistics.quantiles(fleet.rtts, n=100)[98]
    record("heartbeat_p99_ms", round(p99 * 1000, 2))
    record("heartbeats", len(fleet.rtts))
    record("events", len(produced))
    record("counters", sink.counters().as_dict())
    assert p99 < P99_LIMIT, f"heartbeat p99 {p99 * 1000:.1f} ms (max {max(fleet.rtts) * 1000:.1f} ms)"
    assert sink.drain(60), f"not everything written: {sink.counters()}"
    want = {e.dedup_key for e in produced.events}
    stored = [s.event.dedup_key for s in store.query(EventQuery(order="id"))]
    assert len(stored) == len(set(stored)) == len(want) and set(stored) == want
    kinds = {e.type for e in produced.events}
    assert {"FailedToAuthenticateAtCsms", "TamperDetectionActivated"} <= kinds
    c = sink.counters()
    assert c.dropped == 0 and c.in_queue == 0 and c.in_spool == 0
    assert c.written + c.replayed >= len(want)


def _sink(store: EventStore | Callable[[], EventStore], tmp_path: Path) -> QueuedSink:
    return QueuedSink(store, spool=tmp_path / "events.spool", capacity=50, batch=20, retry_initial=0.1, retry_max=0.5)


@pytest.mark.slow
def test_sqlite_store_locked_for_30_seconds(pki: Pki, tmp_path: Path, record_property: Any) -> None:
    path = tmp_path / "events.db"
    store = open_store(path)
    sink = _sink(store, tmp_path)
    locked = threading.Event()

    async def fault() -> None:
        holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        await asyncio.to_thread(holder.execute, "BEGIN EXCLUSIVE")
        locked.set()
        await asyncio.sleep(30)  # the fault's duration, not a synchronisation
        await asyncio.to_thread(holder.execute, "ROLLBACK")
        holder.close()

    try:
        fleet, produced, counters = run(_fleet_through_gateway(pki, sink, fault), timeout=120)
        assert locked.is_set()
        assert sink.counters().spooled > 0 and counters == {}  # the writer was stuck for 30 s: the queue overflowed into the spool
        _check(fleet, produced, sink, store, record_property)
    finally:
        sink.close()
        store.close()


def test_sqlite_store_read_only_then_writable(pki: Pki, tmp_path: Path, record_property: Any) -> None:
    path = tmp_path / "events.db"
    open_store(path).close()
    writable = threading.Event()

    def opener() -> EventStore:
        return open_store(str(path) if writable.is_set() else f"sqlite://{path}?mode=ro")

    sink = _sink(opener, tmp_path)
    refused = threading.Event()

    async def fault() -> None:
        deadline = asyncio.get_running_loop().time() + 30
        while sink.counters().spooled < 20:  # events were refused by the read-only store and spooled
            assert asyncio.get_running_loop().time() < deadline, sink.counters()
            await asyncio.sleep(0.1)
        assert "read-only" in str(sink.last_error)
        refused.set()
        await asyncio.sleep(2)
        writable.set()  # the operator fixed the permissions; the writer opens the store again
        await asyncio.sleep(2)

    try:
        fleet, produced, _ = run(_fleet_through_gateway(pki, sink, fault), timeout=120)
        assert refused.is_set()
        check = open_store(path)
        try:
            _check(fleet, produced, sink, check, record_property)
        finally:
            check.close()
    finally:
        sink.close()


def test_postgres_stopped_and_started(pki: Pki, tmp_path: Path, postgres_cluster: PostgresCluster, pg_url: str,
                                      record_property: Any) -> None:
    store = open_store(pg_url)
    sink = _sink(store, tmp_path)

    async def fault() -> None:
        await asyncio.sleep(1)
        await asyncio.to_thread(postgres_cluster.stop)
        try:
            deadline = asyncio.get_running_loop().time() + 30
            while sink.counters().spooled < 20:
                assert asyncio.get_running_loop().time() < deadline, sink.counters()
                await asyncio.sleep(0.1)
        finally:
            await asyncio.to_thread(postgres_cluster.start)
        await asyncio.sleep(2)

    try:
        fleet, produced, counters = run(_fleet_through_gateway(pki, sink, fault), timeout=120)
        assert sink.counters().spooled >= 20 and counters == {}  # (a FanOutSink keeps no counters)
        _check(fleet, produced, sink, store, record_property)
    finally:
        sink.close()
        store.close()
