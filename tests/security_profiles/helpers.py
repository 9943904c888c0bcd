"""Shared async helpers for the loopback tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from ocppsec.pki.events.sink import MemorySink
from ocppsec.security_profiles.handshake import ServerPolicy
from ocppsec.security_profiles.registry import StationRegistry
from ocppsec.security_profiles.server import StationConnection, serve
from ocppsec.security_profiles.tls import server_context

from .conftest import CSO, Pki

T = TypeVar("T")
LOOP = {"name": "asyncio"}  # the event loop run() uses; the conftest's loop_kind fixture sets it per test


def run(coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
    async def main() -> T:
        return await asyncio.wait_for(coro, timeout)

    if LOOP["name"] == "uvloop":
        import uvloop

        return uvloop.run(main())
    return asyncio.run(main())


async def echo(station: StationConnection) -> None:
    async for message in station:
        await station.send(f"{station.identity}|{station.profile}|{station.version.value}|{message!s}")


def tls_context_for(profiles: set[int], pki: Pki) -> Any:
    if 1 in profiles:
        return None
    mode = "required" if profiles == {3} else ("optional" if 3 in profiles else "none")
    return server_context(pki.server_chains, client_roots=[pki.cso_root] if mode != "none" else (), client_cert=mode)


@asynccontextmanager
async def running(profiles: set[int], registry: StationRegistry, sink: MemorySink, pki: Pki, port: int,
                  handler: Callable[[StationConnection], Awaitable[None]] = echo, **kw: Any) -> AsyncIterator[Any]:
    policy = ServerPolicy(frozenset(profiles), cso_name=CSO)
    async with serve(handler, "127.0.0.1", port, policy=policy, registry=registry,
                     ssl_context=tls_context_for(profiles, pki), sink=sink, **kw) as server:
        yield server


async def wait_event(sink: MemorySink, type_: str, timeout: float = 5.0) -> Any:
    for _ in range(int(timeout / 0.02)):
        for event in sink.events:
            if event.type == type_:
                return event
        await asyncio.sleep(0.02)
    raise AssertionError(f"no {type_} event; got {[e.type for e in sink.events]}")
