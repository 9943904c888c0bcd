"""serve(admit=...): what an admission step opened is released when the handler never gets the station."""

from __future__ import annotations

import pytest

from ocppsec.pki.events.sink import MemorySink
from ocppsec.security_profiles.client import CsmsConnectionError, connect
from ocppsec.security_profiles.handshake import Reject
from ocppsec.security_profiles.registry import MemoryRegistry
from ocppsec.security_profiles.server import Admission, StationConnection

from .conftest import PASSWORD_201, Pki
from .helpers import run, running


def test_releases_run_on_a_later_refusal_or_a_failing_step_and_not_for_an_admitted_station(
        registry: MemoryRegistry, sink: MemorySink, pki: Pki, port: int) -> None:
    released: list[str] = []
    handled: list[object] = []
    plan = {"then": "admit"}

    async def step(admission: Admission) -> Reject | None:
        admission.context["resource"] = "opened"
        admission.on_abandon(lambda: released.append(plan["then"]))
        if plan["then"] == "refuse":
            return Reject("refused by a later check", 403, None, None, admission.decision.identity)
        if plan["then"] == "fail":
            raise RuntimeError("a step that fails")
        return None

    async def handler(station: StationConnection) -> None:
        handled.append(station.context.get("resource"))
        await station.close()

    async def main() -> None:
        async with running({1}, registry, sink, pki, port, handler, admit=step):
            conn = await connect(f"ws://127.0.0.1:{port}/", "CS-1", profile=1, password=PASSWORD_201)
            await conn.wait_closed()
            assert handled == ["opened"] and released == []  # the handler got it: nothing to release
            for then, status in (("refuse", 403), ("fail", 500)):
                plan["then"] = then
                with pytest.raises(CsmsConnectionError, match=f"HTTP {status}"):
                    await connect(f"ws://127.0.0.1:{port}/", "CS-1", profile=1, password=PASSWORD_201)
            assert released == ["refuse", "fail"] and handled == ["opened"]

    run(main())


def test_a_release_registered_after_abandonment_runs_at_once() -> None:
    from websockets.datastructures import Headers

    from ocppsec.security_profiles.handshake import Accept

    admission = Admission(Accept("CS-1", 1, None, None), "127.0.0.1:1", Headers(), None, None)
    calls: list[int] = []
    admission.on_abandon(lambda: calls.append(1))
    admission.on_abandon(lambda: 1 / 0)  # a failing release is logged; the others still run
    admission.on_abandon(lambda: calls.append(2))
    admission.abandon()
    admission.abandon()  # once
    assert calls == [1, 2] and admission.abandoned
    admission.on_abandon(lambda: calls.append(3))
    assert calls == [1, 2, 3]
