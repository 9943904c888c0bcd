"""serve() never waits for the registry on its event loop (profile 3 included), unless the registry says
its lookups never wait (``nonblocking = True``)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from ocppsec.pki.events.sink import MemorySink
from ocppsec.security_profiles.client import connect
from ocppsec.security_profiles.registry import MemoryRegistry, StationRecord

from .conftest import Pki
from .helpers import run, running


class SlowRegistry(MemoryRegistry):
    """A registry whose lookups take ``delay`` seconds (a busy database), noting the thread of each."""

    def __init__(self, records: list[StationRecord], delay: float) -> None:
        super().__init__(records)
        self.delay = delay
        self.threads: list[threading.Thread] = []

    def get(self, identity: str) -> StationRecord | None:
        self.threads.append(threading.current_thread())
        time.sleep(self.delay)
        return super().get(identity)


def test_a_slow_registry_does_not_stall_other_stations(pki: Pki, port: int) -> None:
    registry = SlowRegistry([StationRecord("CS-3", 3, serial="SN-0001"), StationRecord("CS-4", 3, serial="SN-0004")],
                            delay=0.3)

    async def main() -> tuple[list[float], Any]:
        async with running({3}, registry, MemorySink(), pki, port):
            loop_thread = threading.current_thread()
            beating = await connect(f"wss://localhost:{port}/", "CS-4", profile=3, csms_roots=[pki.csms_root],
                                    client_chain=pki.station("SN-0004"))
            chain = pki.station("SN-0001")

            async def handshake() -> None:
                conn = await connect(f"wss://localhost:{port}/", "CS-3", profile=3, csms_roots=[pki.csms_root],
                                     client_chain=chain)
                await conn.close()

            rtts: list[float] = []

            async def beat() -> None:
                for i in range(40):
                    start = time.perf_counter()
                    await beating.send(f"hb-{i}")
                    await beating.recv()
                    rtts.append(time.perf_counter() - start)
                    await asyncio.sleep(0.02)

            await asyncio.gather(beat(), *(handshake() for _ in range(4)))
            await beating.close()
            return rtts, loop_thread

    rtts, loop_thread = run(main())
    assert len(registry.threads) == 5 and loop_thread not in registry.threads
    assert max(rtts) < 0.2, f"a round trip took {max(rtts) * 1000:.0f} ms while lookups took 300 ms each"


@pytest.mark.parametrize("nonblocking", [True, False])
def test_a_nonblocking_registry_is_asked_on_the_loop(nonblocking: bool, pki: Pki, port: int) -> None:
    registry = SlowRegistry([StationRecord("CS-3", 3, serial="SN-0001")], delay=0.0)
    if nonblocking:
        registry.nonblocking = True  # type: ignore[attr-defined]

    async def main() -> threading.Thread:
        async with running({3}, registry, MemorySink(), pki, port):
            conn = await connect(f"wss://localhost:{port}/", "CS-3", profile=3, csms_roots=[pki.csms_root],
                                 client_chain=pki.station("SN-0001"))
            await conn.close()
            return threading.current_thread()

    loop_thread = run(main())
    assert (registry.threads == [loop_thread]) is nonblocking
