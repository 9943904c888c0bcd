"""The ChargePoint composer: one class per version and side, and every combination that would shadow a
handler refused when the class is created (sans-I/O: no connection is opened here)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

import pytest

from ocppsec.eventlog import v16 as log_v16
from ocppsec.eventlog import v21 as log_v21
from ocppsec.eventlog import v201 as log_v201
from ocppsec.pki.chargepoint import Part, Side, after, compose, csms_charge_point_class, on, station_charge_point_class
from ocppsec.pki.errors import UsageError
from ocppsec.pki.events import ocpp_handlers as event_handlers
from ocppsec.pki.events.sink import MemorySink
from ocppsec.pki.revocation.status import CsmsRevocationService, StationOcspCache
from ocppsec.pki.versions import OcppVersion

V201 = OcppVersion.V201
SERVICE: Any = object()  # the certificate service is only kept by the part until a message arrives


def _part(name: str, *, version: OcppVersion = V201, side: Side = Side.CSMS, **members: Any) -> Part:
    return Part(name, version, side, type(name.title().replace(" ", ""), (), members))


@on("SecurityEventNotification")
def _events_handler(self: Any, **kwargs: Any) -> Any:
    return None


def test_one_csms_class_holds_certificates_events_and_status_per_version() -> None:
    expected = {
        OcppVersion.V16: {"SignCertificate", "SecurityEventNotification", "DataTransfer", "LogStatusNotification"},
        OcppVersion.V201: {"SignCertificate", "SecurityEventNotification", "GetCertificateStatus", "LogStatusNotification"},
        OcppVersion.V21: {"SignCertificate", "SecurityEventNotification", "GetCertificateStatus",
                          "GetCertificateChainStatus", "LogStatusNotification"},
    }
    for version, log in ((OcppVersion.V16, log_v16), (OcppVersion.V201, log_v201), (OcppVersion.V21, log_v21)):
        cls = csms_charge_point_class(version, SERVICE, events=MemorySink(), status=CsmsRevocationService(),
                                      parts=[log.CSMS_LOG_PART])
        assert {a for p in cls.parts for a in p.actions} == expected[version]
        assert [p.name for p in cls.parts][:3] == ["certificate management", "security events", "certificate status"]
        assert cls.__mro__[-3].__module__ == f"ocpp.{version.name.lower()}"  # ocpp.vXX.ChargePoint, then its base
        cp = cls("CS-1", None)
        assert cp.route_map.keys() >= expected[version]
        assert isinstance(cp.event_sink, MemorySink) and cp.results == [] and cp.log_statuses == []


def test_station_class_per_version() -> None:
    cls = station_charge_point_class("2.1", ocsp_cache=StationOcspCache(), parts=[log_v21.STATION_LOG_PART])
    assert {a for p in cls.parts for a in p.actions} == {"GetLog"}
    assert hasattr(cls, "refresh_certificate_status") and hasattr(cls, "deliver_pending")
    with pytest.raises(UsageError, match="station_log"):
        cls("CS-1", None)  # the security-log part needs its log


def test_two_parts_handling_one_action_are_refused_naming_both() -> None:
    # the combination that used to answer {} and lose the event: a second SecurityEventNotification handler
    mine = _part("my events", ocppsec_mine=_events_handler)
    with pytest.raises(UsageError) as info:
        csms_charge_point_class("2.0.1", SERVICE, parts=[mine])
    assert str(info.value).startswith("parts 'security events' and 'my events' both handle SecurityEventNotification")
    assert info.value.hint == "compose only one part per action"
    with pytest.raises(UsageError, match="'security events' and 'security events' both handle SecurityEventNotification"):
        compose(V201, Side.CSMS, [event_handlers.csms_part(V201), event_handlers.csms_part(V201, MemorySink())])


def test_combining_composed_classes_by_inheritance_is_refused() -> None:
    certificates = csms_charge_point_class("2.0.1", SERVICE)
    with pytest.raises(UsageError, match=r"part 'security events' of CsmsChargePoint and part 'security events' "
                                         r"of CsmsChargePoint_V201 both handle SecurityEventNotification"):
        type("Combined", (log_v201.CsmsChargePoint, certificates), {})
    plain = compose(V201, Side.CSMS, [_part("boot", on_boot=on("BootNotification")(lambda self, **kw: None))])
    with pytest.raises(UsageError, match="only the parts of"):
        type("Both", (plain, certificates), {})


def test_a_subclass_may_add_actions_but_not_shadow_a_part() -> None:
    base = csms_charge_point_class("2.0.1", SERVICE)

    class WithBoot(base):  # type: ignore[misc,valid-type]
        @on("BootNotification")
        def on_boot(self, **kwargs: Any) -> Any:
            return None

    assert "BootNotification" in WithBoot("CS-1", None).route_map
    with pytest.raises(UsageError, match=r"Shadow.mine handles SignCertificate, which part 'certificate management'"):
        type("Shadow", (base,), {"mine": on("SignCertificate")(lambda self, **kw: None)})
    with pytest.raises(UsageError, match="after-hook for SignCertificate"):
        type("Late", (base,), {"late": after("SignCertificate")(lambda self, **kw: None)})


def test_attribute_clashes_and_misfits_are_refused() -> None:
    a = _part("a", shared=lambda self: 1)
    b = _part("b", shared=lambda self: 2)
    with pytest.raises(UsageError, match="parts 'a' and 'b' both define shared"):
        compose(V201, Side.CSMS, [a, b])
    state = _part("c", __annotations__={"shared": "int"})  # annotated instance state counts too
    with pytest.raises(UsageError, match="parts 'a' and 'c' both define shared"):
        compose(V201, Side.CSMS, [a, state])
    with pytest.raises(UsageError, match="redefines call, start of the ocpp ChargePoint"):
        compose(V201, Side.CSMS, [_part("d", call=lambda self: None, start=lambda self: None)])
    with pytest.raises(UsageError, match="redefines route_map"):  # an instance attribute of the ChargePoint
        compose(V201, Side.CSMS, [_part("e", route_map={})])
    reads_id = _part("f", __annotations__={"id": "str"})  # declaring what it reads of the ChargePoint is fine
    assert compose(V201, Side.CSMS, [reads_id]).parts == (reads_id,)
    with pytest.raises(UsageError, match=r"is for the station side of OCPP 2\.0\.1, not the csms side"):
        compose(V201, Side.CSMS, [_part("g", side=Side.STATION)])
    with pytest.raises(UsageError, match=r"OCPP 1\.6, not the csms side of OCPP 2\.0\.1"):
        compose(V201, Side.CSMS, [_part("h", version=OcppVersion.V16)])
    with pytest.raises(UsageError, match="defines __init__"):
        compose(V201, Side.CSMS, [_part("i", __init__=lambda self: None)])
    with pytest.raises(UsageError, match="after-hook for GetLog but does not handle GetLog"):
        compose(V201, Side.CSMS, [_part("j", later=after("GetLog")(lambda self, **kw: None))])


def test_constructor_keywords_reach_the_parts_that_declared_them() -> None:
    seen: list[Mapping[str, Any]] = []
    part = Part("k", V201, Side.CSMS, type("K", (), {}), lambda cp, options: seen.append(dict(options)),
                frozenset({"colour"}))
    cls = compose(V201, Side.CSMS, [part], name="Painted", module=__name__)
    cp = cls("CS-1", None, colour="blue", response_timeout=5)
    assert seen == [{"colour": "blue"}] and cp._response_timeout == 5  # the rest goes to the ocpp ChargePoint
    assert (cls.__name__, cls.__module__) == ("Painted", __name__)
    sink = MemorySink()  # empty, so falsy: still the one used
    events = log_v201.CsmsChargePoint("CS-1", None, sink=sink)
    assert events.event_sink is sink


def _hooked_class(hook: Any) -> type:
    @on("Heartbeat")
    def answer(self: Any, **kwargs: Any) -> Any:
        from ocpp.v201 import call_result
        return call_result.Heartbeat(current_time="2026-12-02T00:00:00Z")

    part = Part("hooked", V201, Side.CSMS, type("Hooked", (), {"answer": answer, "hook": after("Heartbeat")(hook)}))
    return compose(V201, Side.CSMS, [part], name="Hooked", module=__name__)


async def _one_heartbeat(cls: type, until: asyncio.Event) -> Any:
    """Serve ``cls`` on a real websocket on 127.0.0.1, send one Heartbeat from a client, wait for ``until``,
    close the client; returns the ChargePoint once its ``start`` has ended."""
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve

    served: list[Any] = []
    ended = asyncio.Event()

    async def handler(ws: Any) -> None:
        cp = cls("CS-1", ws)
        served.append(cp)
        try:
            await cp.start()
        except Exception:  # the client's close ends the receive loop with ConnectionClosed
            pass
        finally:
            ended.set()

    async with serve(handler, "127.0.0.1", 0, subprotocols=["ocpp2.0.1"]) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", subprotocols=["ocpp2.0.1"]) as ws:  # type: ignore[list-item]
            await ws.send(json.dumps([2, "m-1", "Heartbeat", {}]))
            assert json.loads(await ws.recv())[0] == 3
            await until.wait()
        await ended.wait()
    return served[0]


def test_an_after_hook_still_running_when_the_connection_ends_is_cancelled_not_left_pending() -> None:
    started, outcome = asyncio.Event(), []

    async def hook(self: Any, **kwargs: Any) -> None:
        started.set()
        try:
            await asyncio.Event().wait()  # a CertificateSigned that never gets its answer
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    async def run() -> Any:
        cp = await _one_heartbeat(_hooked_class(hook), started)
        tasks = list(cp.__dict__["_ocppsec_after_tasks"])
        await asyncio.gather(*tasks, return_exceptions=True)
        return cp

    cp = asyncio.run(run())
    assert outcome == ["cancelled"] and not cp.__dict__["_ocppsec_after_tasks"]


def test_an_after_hook_that_fails_is_logged_with_the_station_and_action(caplog: pytest.LogCaptureFixture) -> None:
    finished = asyncio.Event()

    async def hook(self: Any, call_unique_id: str, **kwargs: Any) -> None:
        finished.set()
        raise RuntimeError(f"no answer to {call_unique_id}")

    with caplog.at_level(logging.ERROR, logger="ocppsec.chargepoint"):
        asyncio.run(_one_heartbeat(_hooked_class(hook), finished))
    assert [r.getMessage() for r in caplog.records] == ["CS-1: the step after Heartbeat failed: no answer to m-1"]
