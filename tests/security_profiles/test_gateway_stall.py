"""A gateway stop that gets stuck after its drain writes every thread's stack to stderr (the stall report), so a
shutdown that does not finish says where it is stuck; a stop that finishes writes nothing."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from ocppsec.security_profiles.gateway import Gateway
from ocppsec.security_profiles.gateway.guard import StationGuard
from ocppsec.security_profiles.gateway.service import GatewayService, ServiceOptions, cancel_stall_report
from ocppsec.security_profiles.handshake import ServerPolicy
from ocppsec.security_profiles.registry import MemoryRegistry

from .conftest import free_port
from .helpers import run


class _StuckGuard(StationGuard):
    """A guard whose stop holds the process the way a store that does not let go would."""

    def __init__(self, gateway: Gateway, release: threading.Event) -> None:
        super().__init__(gateway)
        self.release = release

    async def stop(self) -> None:
        await super().stop()
        _held_by_a_store_that_does_not_let_go(self.release)


def _held_by_a_store_that_does_not_let_go(release: threading.Event) -> None:
    release.wait(5.0)  # blocks the loop's thread on purpose: the report must come from outside it


def _service(guard_release: threading.Event | None, stall: float | None) -> GatewayService:
    gw = Gateway(policy=ServerPolicy(frozenset({1})), registry=MemoryRegistry(), upstream="ws://127.0.0.1:1")
    guard = _StuckGuard(gw, guard_release) if guard_release is not None else StationGuard(gw)
    options = ServiceOptions("127.0.0.1", free_port(), drain_seconds=0.0, metrics=False, upstream_probe=None,
                             freeze_gc_survivors=False, stall_report=stall)
    return GatewayService(gw, guard, options)


async def _serve_then_stop(service: GatewayService) -> int:
    listening = asyncio.Event()
    service.options.announce = lambda _line: listening.set()
    service.options.describe = lambda: "listening"
    task = asyncio.create_task(service.run())
    await listening.wait()
    service.request_stop()
    return await task


def test_a_stuck_stop_writes_the_stacks(capfd: pytest.CaptureFixture[str]) -> None:
    release = threading.Event()
    reported = threading.Timer(2.0, release.set)  # frees the stuck stop once the report (due at 0.2 s) is out
    reported.start()
    try:
        started = time.monotonic()
        assert run(_serve_then_stop(_service(release, 0.2))) == 0
    finally:
        cancel_stall_report()
        reported.cancel()
    err = capfd.readouterr().err
    assert "_held_by_a_store_that_does_not_let_go" in err, err  # where the stop was stuck
    assert "most recent call first" in err
    assert time.monotonic() - started < 5.0  # released by the timer, not by the guard's own 5 s


def test_a_stop_that_finishes_writes_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    service = _service(None, 0.3)
    try:
        assert run(_serve_then_stop(service)) == 0
    finally:
        cancel_stall_report()  # what the CLI does once its stores are closed
    # the report would be due 0.3 s after the stop; nothing may come after the cancel, however long we look
    time.sleep(0.5)
    assert "most recent call first" not in capfd.readouterr().err
