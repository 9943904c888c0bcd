"""The gateway follows the credential and profile changes an ``ocpp``-package CSMS makes through it (A01, A05, B09).

Real TLS, real websockets, ``ocpp``-package peers on both sides; every test runs over both relays and both
event loops. The station answers the CSMS's calls, disconnects, and reconnects with what it stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call as call16
from ocpp.v21 import call as call21
from ocpp.v201 import call as call201
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosed

from ocppsec.pki.events.sink import MemorySink
from ocppsec.pki.versions import OcppVersion
from ocppsec.security_profiles.basic_auth import hash_password, password_matches
from ocppsec.security_profiles.client import CsmsConnectionError, connect
from ocppsec.security_profiles.gateway import Gateway, StationGuard
from ocppsec.security_profiles.handshake import ServerPolicy
from ocppsec.security_profiles.registry import MemoryRegistry, StationRecord
from ocppsec.security_profiles.registry_snapshot import RegistrySnapshot
from ocppsec.security_profiles.registry_sql import open_registry

from . import ocpp_peers
from .conftest import CSO, FAST, KEY_16, PASSWORD_201, Pki, RelayCase, free_port
from .helpers import run, tls_context_for

PEER_LOG = logging.getLogger("tests.peer")
NEW_201 = "a-brand-new-password-Ünïcode-0042"  # 2.0.1 (2025 errata) and 2.1: any UTF-8
NEW_16 = "00112233445566778899AABBCCDDEEFF01234567"  # 20 bytes as 40 hex digits
SLOT_PW = "the-slot-password-000000000001"
CALLS = {OcppVersion.V16: call16, OcppVersion.V201: call201, OcppVersion.V21: call21}
STATIONS: dict[OcppVersion, Any] = {OcppVersion.V16: ocpp_peers.ChangingStation16,
                                    OcppVersion.V201: ocpp_peers.ChangingStation201,
                                    OcppVersion.V21: ocpp_peers.ChangingStation21}


@dataclass
class Upstream:
    """An ``ocpp``-package CSMS behind the gateway: one ChargePoint per station connection, in arrival order."""

    arrivals: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    paths: list[str] = field(default_factory=list)

    async def next(self) -> Any:
        return await asyncio.wait_for(self.arrivals.get(), 10)


@contextlib.asynccontextmanager
async def ocpp_csms(port: int) -> AsyncIterator[Upstream]:
    up = Upstream()
    classes = {"ocpp1.6": ocpp_peers.Csms16, "ocpp2.0.1": ocpp_peers.Csms201, "ocpp2.1": ocpp_peers.Csms21}

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        up.paths.append(ws.request.path)
        cp = classes[str(ws.subprotocol)](ws.request.path.rsplit("/", 1)[-1], ws)
        up.arrivals.put_nowait(cp)
        with contextlib.suppress(ConnectionClosed):
            await cp.start()

    async with ws_serve(handler, "127.0.0.1", port, subprotocols=list(classes),  # type: ignore[arg-type]
                        logger=PEER_LOG):
        yield up


@contextlib.asynccontextmanager
async def gateway(profiles: set[int], registry: MemoryRegistry, sink: MemorySink, pki: Pki, port: int, up: int,
                  relay: RelayCase) -> AsyncIterator[Gateway]:
    gw = Gateway(policy=ServerPolicy(frozenset(profiles), cso_name=CSO), registry=registry,
                 upstream=f"ws://127.0.0.1:{up}/upstream", ssl_context=tls_context_for(profiles, pki), sink=sink,
                 relay=relay.option, password_cost=FAST)
    async with gw.serve("127.0.0.1", port):
        yield gw


@dataclass
class Station:
    cp: Any
    conn: Any
    task: asyncio.Task[None]

    async def close(self) -> None:
        await self.conn.close()
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
            await self.task


async def station(port: int, pki: Pki, identity: str, version: OcppVersion, *, profile: int, password: str | None = None,
                  cert: str | None = None, username: str | None = None, answer: str = "Accepted") -> Station:
    conn = await connect(f"wss://localhost:{port}/", identity, profile=profile, versions=[version], password=password,
                         csms_roots=[pki.csms_root], client_chain=pki.station(cert) if cert else None, username=username,
                         logger=PEER_LOG)
    cp = STATIONS[version](identity, conn)
    cp.answer = answer
    return Station(cp, conn, asyncio.create_task(cp.start()))


async def refused(port: int, pki: Pki, identity: str, version: OcppVersion, status: int, **kw: Any) -> None:
    with pytest.raises(CsmsConnectionError, match=f"HTTP {status}"):
        await station(port, pki, identity, version, **kw)


def set_variable(component: str, variable: str, value: str, instance: str | None = None) -> dict[str, Any]:
    comp: dict[str, Any] = {"name": component} | ({"instance": instance} if instance else {})
    return {"component": comp, "variable": {"name": variable}, "attribute_value": value}


async def set_variables(csms: Any, version: OcppVersion, *items: dict[str, Any]) -> list[str]:
    answer = await csms.call(CALLS[version].SetVariables(set_variable_data=list(items)))
    return [r["attribute_status"] for r in answer.set_variable_result]


async def set_network_profile(csms: Any, version: OcppVersion, slot: int, profile: int, port: int, **extra: Any) -> str:
    data = {"ocpp_version": "OCPP20", "ocpp_transport": "JSON", "ocpp_csms_url": f"wss://localhost:{port}/",
            "message_timeout": 30, "security_profile": profile, "ocpp_interface": "Wired0", **extra}
    answer = await csms.call(CALLS[version].SetNetworkProfile(configuration_slot=slot, connection_data=data))
    return str(answer.status)


async def reset(csms: Any, version: OcppVersion) -> str:
    answer = await csms.call(CALLS[version].Reset(type="Hard" if version is OcppVersion.V16 else "OnIdle"))
    return str(answer.status)


async def until(condition: Any, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")


async def settled(gw: Gateway) -> None:
    """Until every station's session is gone (its changes written)."""
    for _ in range(500):
        if not gw.sessions:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the gateway still relays a station")


def _gateway_log_text(caplog: pytest.LogCaptureFixture) -> str:
    ours = [r for r in caplog.records if not (r.name.startswith("tests.") or r.name == "ocpp" or r.name.startswith("ocpp."))]
    assert ours  # the gateway did log (so the check below is not empty)
    return "\n".join(f"{r.name} {r.getMessage()}" for r in ours)


# -- A01: password rotation ---------------------------------------------------------------------------
@pytest.mark.parametrize(("version", "identity", "old", "new"), [
    (OcppVersion.V16, "CS16", KEY_16, NEW_16), (OcppVersion.V201, "CS-2", PASSWORD_201, NEW_201),
    (OcppVersion.V21, "CS-2", PASSWORD_201, NEW_201)])
def test_password_rotation_accepted(version: OcppVersion, identity: str, old: str, new: str, registry: MemoryRegistry,
                                    sink: MemorySink, pki: Pki, port: int, relay: RelayCase,
                                    caplog: pytest.LogCaptureFixture) -> None:
    up = free_port()

    async def main() -> None:
        async with ocpp_csms(up) as csms, gateway({2}, registry, sink, pki, port, up, relay) as gw:
            st = await station(port, pki, identity, version, profile=2, password=old)
            cp = await csms.next()
            if version is OcppVersion.V16:
                answer = await cp.call(call16.ChangeConfiguration(key="AuthorizationKey", value=new))
                assert answer.status == "Accepted"
            else:
                assert await set_variables(cp, version, set_variable("SecurityCtrlr", "BasicAuthPassword", new)) == ["Accepted"]
            assert st.cp.stored[-1][1] == new
            await st.close()  # A01: the station disconnects and reconnects with the new password at once
            st = await station(port, pki, identity, version, profile=2, password=new)
            await csms.next()
            record = registry.get(identity)
            assert record is not None and record.pending_password_hash is None  # promoted at the first login
            assert record.password_hash is not None and password_matches(record.password_hash, new.encode(), version)
            await st.close()
            await refused(port, pki, identity, version, 401, profile=2, password=old)  # A01.FR.03
            await settled(gw)
        assert gw.stats.relays == {relay.expected: 2}
        events = [e for e in sink.events if e.type == "ReconfigurationOfSecurityParameters"]
        assert len(events) == 1 and events[0].station_id == identity and events[0].source == "local"
        assert "A01.FR.03" in (events[0].tech_info or "") and new not in (events[0].tech_info or "")

    with caplog.at_level(logging.DEBUG):
        run(main())
    text = _gateway_log_text(caplog)
    assert new not in text and old not in text and "Basic-auth password" in text


@pytest.mark.parametrize("version", [OcppVersion.V16, OcppVersion.V201])
def test_password_rotation_rejected_keeps_the_old_password(version: OcppVersion, registry: MemoryRegistry,
                                                           sink: MemorySink, pki: Pki, port: int, relay: RelayCase) -> None:
    up = free_port()
    identity, old, new = ("CS16", KEY_16, NEW_16) if version is OcppVersion.V16 else ("CS-2", PASSWORD_201, NEW_201)
    before = registry.get(identity)

    async def main() -> None:
        async with ocpp_csms(up) as csms, gateway({2}, registry, sink, pki, port, up, relay):
            st = await station(port, pki, identity, version, profile=2, password=old, answer="Rejected")
            cp = await csms.next()
            if version is OcppVersion.V16:
                assert (await cp.call(call16.ChangeConfiguration(key="AuthorizationKey", value=new))).status == "Rejected"
            else:
                assert await set_variables(cp, version, set_variable("SecurityCtrlr", "BasicAuthPassword", new)) == ["Rejected"]
            await st.close()
            assert registry.get(identity) == before  # A01.FR.04: nothing pending
            await refused(port, pki, identity, version, 401, profile=2, password=new)
            st = await station(port, pki, identity, version, profile=2, password=old)
            await st.close()
        assert not [e for e in sink.events if e.type == "ReconfigurationOfSecurityParameters"]

    run(main())


# -- A05: profile changes -----------------------------------------------------------------------------
def test_upgrade_2_to_3_with_set_network_profile_priority_and_reset(registry: MemoryRegistry, sink: MemorySink, pki: Pki,
                                                                    port: int, relay: RelayCase) -> None:
    up = free_port()
    v = OcppVersion.V201

    async def main() -> None:
        async with ocpp_csms(up) as csms, gateway({2, 3}, registry, sink, pki, port, up, relay) as gw:
            st = await station(port, pki, "CS-2", v, profile=2, password=PASSWORD_201)
            cp = await csms.next()
            assert await set_network_profile(cp, v, 2, 3, port) == "Accepted"
            assert registry.get("CS-2").pending_profile is None  # type: ignore[union-attr]  # slot 2 is not tried first yet
            assert await set_variables(cp, v, set_variable("OCPPCommCtrlr", "NetworkConfigurationPriority", "2,1")) == ["Accepted"]
            assert await reset(cp, v) == "Accepted"
            await st.close()
            st = await station(port, pki, "CS-2", v, profile=3, cert="CS-2")  # back at profile 3
            await csms.next()
            record = registry.get("CS-2")
            assert record is not None and (record.profile, record.pending_profile) == (3, None)
            assert record.network.priority == (2, 1) and record.network.slot(2).profile == 3  # type: ignore[union-attr]
            await st.close()
            await refused(port, pki, "CS-2", v, 403, profile=2, password=PASSWORD_201)  # A05.FR.07
            await settled(gw)
        assert gw.stats.relays == {relay.expected: 2}
        notes = [e.tech_info or "" for e in sink.events if e.type == "ReconfigurationOfSecurityParameters"]
        assert any("profile 3 is accepted next to 2" in n for n in notes)

    run(main())


def test_v16_upgrade_through_the_security_profile_key(registry: MemoryRegistry, sink: MemorySink, pki: Pki, port: int,
                                                      relay: RelayCase) -> None:
    up = free_port()
    v = OcppVersion.V16

    async def main() -> None:
        async with ocpp_csms(up) as csms, gateway({2, 3}, registry, sink, pki, port, up, relay):
            st = await station(port, pki, "CS16", v, profile=2, password=KEY_16)
            cp = await csms.next()
            assert (await cp.call(call16.ChangeConfiguration(key="SecurityProfile", value="3"))).status == "Accepted"
            await st.close()  # A05.FR.05-07: the station reconnects with the new profile
            st = await station(port, pki, "CS16", v, profile=3, cert="CS16")
            await csms.next()
            await st.close()
            assert registry.get("CS16").profile == 3  # type: ignore[union-attr]
            await refused(port, pki, "CS16", v, 403, profile=2, password=KEY_16)  # A05.FR.09
            # and back down: never in 1.6 (A05.FR.01), whatever the station answers
            st = await station(port, pki, "CS16", v, profile=3, cert="CS16")
            cp = await csms.next()
            assert (await cp.call(call16.ChangeConfiguration(key="SecurityProfile", value="2"))).status == "Accepted"
            await st.close()
            await refused(port, pki, "CS16", v, 403, profile=2, password=KEY_16)
            assert registry.get("CS16").pending_profile is None  # type: ignore[union-attr]

    run(main())


def test_downgrade_3_to_2_only_with_allow_security_profile_downgrade_and_never_to_1(
        registry: MemoryRegistry, sink: MemorySink, pki: Pki, port: int, relay: RelayCase) -> None:
    up = free_port()
    v = OcppVersion.V201
    registry.add(StationRecord("CS-D", 3, serial="SN-D", password_hash=hash_password(PASSWORD_201, cost=FAST)))

    async def at3() -> tuple[Station, Any]:
        st = await station(port, pki, "CS-D", v, profile=3, cert="SN-D")
        return st, await csms.next()

    async def main() -> None:
        nonlocal csms
        async with ocpp_csms(up) as csms, gateway({2, 3}, registry, sink, pki, port, up, relay):
            st, cp = await at3()
            assert await set_network_profile(cp, v, 1, 2, port) == "Accepted"
            assert await set_variables(cp, v, set_variable("OCPPCommCtrlr", "NetworkConfigurationPriority", "1,2")) == ["Accepted"]
            await st.close()
            await refused(port, pki, "CS-D", v, 403, profile=2, password=PASSWORD_201)  # A05.FR.10: not followed
            assert registry.get("CS-D").pending_profile is None  # type: ignore[union-attr]
            st, cp = await at3()  # the station falls back to profile 3, which still works
            assert await set_variables(cp, v, set_variable("SecurityCtrlr", "AllowSecurityProfileDowngrade", "true"),
                                       set_variable("OCPPCommCtrlr", "NetworkConfigurationPriority", "1,2")) == ["Accepted"] * 2
            await st.close()
            st = await station(port, pki, "CS-D", v, profile=2, password=PASSWORD_201)  # A05.FR.08
            cp = await csms.next()
            record = registry.get("CS-D")
            assert record is not None and (record.profile, record.pending_profile, record.allow_downgrade) == (2, None, True)
            # to 1: never, even with the switch on (A05.FR.09)
            assert await set_network_profile(cp, v, 3, 1, port) == "Accepted"
            assert await set_variables(cp, v, set_variable("OCPPCommCtrlr", "NetworkConfigurationPriority", "3,1")) == ["Accepted"]
            await st.close()
            await refused(port, pki, "CS-D", v, 403, profile=3, cert="SN-D")  # and 3 is gone after the downgrade
            assert registry.get("CS-D").pending_profile is None  # type: ignore[union-attr]
        notes = [e.tech_info or "" for e in sink.events if e.type == "ReconfigurationOfSecurityParameters"]
        assert any(n.startswith("not followed") and "A05.FR.10" in n for n in notes)
        assert any(n.startswith("not followed") and "A05.FR.09" in n for n in notes)

    csms: Any = None
    run(main())


# -- B09 (2.1): per-slot credentials ------------------------------------------------------------------
def test_v21_slot_credentials_with_another_username(registry: MemoryRegistry, sink: MemorySink, pki: Pki, port: int,
                                                    relay: RelayCase) -> None:
    up = free_port()
    v = OcppVersion.V21

    async def main() -> None:
        async with ocpp_csms(up) as csms, gateway({2}, registry, sink, pki, port, up, relay):
            st = await station(port, pki, "CS-2", v, profile=2, password=PASSWORD_201)
            cp = await csms.next()
            assert await set_network_profile(cp, v, 2, 2, port, identity="CS-2-alt", basic_auth_password=SLOT_PW) == "Accepted"
            assert await set_variables(cp, v, set_variable("OCPPCommCtrlr", "NetworkConfigurationPriority", "2,1"),
                                       set_variable("NetworkConfiguration", "Identity", "CS-2-b", instance="3"),
                                       set_variable("NetworkConfiguration", "BasicAuthPassword", SLOT_PW + "-b",
                                                    instance="3")) == ["Accepted"] * 3
            assert await reset(cp, v) == "Accepted"
            await st.close()
            # through slot 2: its own username and password, still at the URL of CS-2
            st = await station(port, pki, "CS-2", v, profile=2, username="CS-2-alt", password=SLOT_PW)
            await csms.next()
            await st.close()
            st = await station(port, pki, "CS-2", v, profile=2, username="CS-2-b", password=SLOT_PW + "-b")  # slot 3
            await csms.next()
            await st.close()
            st = await station(port, pki, "CS-2", v, profile=2, password=PASSWORD_201)  # slot 1: the station's own
            await csms.next()
            await st.close()
            await refused(port, pki, "CS-2", v, 401, profile=2, username="CS-2-alt", password=PASSWORD_201)
            await refused(port, pki, "CS-2", v, 401, profile=2, username="CS-2-other", password=SLOT_PW)
            assert csms.paths == ["/upstream/CS-2"] * 4
            record = registry.get("CS-2")
            assert record is not None and record.network.slot(2).username == "CS-2-alt"  # type: ignore[union-attr]
            assert SLOT_PW not in repr(record)

    run(main())


def test_a_station_that_is_no_longer_registered_is_not_followed(registry: MemoryRegistry, sink: MemorySink, pki: Pki,
                                                                 port: int, relay: RelayCase) -> None:
    up = free_port()
    v = OcppVersion.V201

    async def main() -> None:
        async with ocpp_csms(up) as csms, gateway({2}, registry, sink, pki, port, up, relay) as gw:
            st = await station(port, pki, "CS-2", v, profile=2, password=PASSWORD_201)
            cp = await csms.next()
            registry.remove("CS-2")
            assert await set_variables(cp, v, set_variable("SecurityCtrlr", "BasicAuthPassword", NEW_201)) == ["Accepted"]
            await st.close()
            follower = gw.follower
            assert follower is not None
            await until(lambda: follower.unfollowed == 1)  # written (or not) after the station left
            await settled(gw)
            assert registry.get("CS-2") is None
        notes = [e.tech_info or "" for e in sink.events if e.type == "ReconfigurationOfSecurityParameters"]
        assert notes == ["not followed: the station is no longer registered; the change is not followed"]

    registry.update(replace(registry.get("CS-2"), serial=None))  # type: ignore[arg-type]
    run(main())


class SlowWrites(MemoryRegistry):
    """A registry whose writes take a while (a busy database), as seen from the station's quick reconnect."""

    def update(self, record: StationRecord) -> None:
        time.sleep(0.3)  # runs in a worker thread: the gateway writes off the loop
        super().update(record)


def test_the_reconnect_waits_for_the_change_to_be_written(registry: MemoryRegistry, sink: MemorySink, pki: Pki, port: int,
                                                          relay: RelayCase) -> None:
    up = free_port()
    slow = SlowWrites(registry.list())
    v = OcppVersion.V201

    async def main() -> None:
        async with ocpp_csms(up) as csms, gateway({2}, slow, sink, pki, port, up, relay):
            st = await station(port, pki, "CS-2", v, profile=2, password=PASSWORD_201)
            cp = await csms.next()
            assert await set_variables(cp, v, set_variable("SecurityCtrlr", "BasicAuthPassword", NEW_201)) == ["Accepted"]
            await st.close()
            st = await station(port, pki, "CS-2", v, profile=2, password=NEW_201)  # before the write is done
            await st.close()

    run(main())


def test_through_a_registry_snapshot_with_the_guard_as_the_cli_runs_it(registry: MemoryRegistry, sink: MemorySink,
                                                                        pki: Pki, port: int, relay: RelayCase,
                                                                        tmp_path: Path) -> None:
    """SQLite registry, the in-memory snapshot the gateway looks stations up in, and the guard re-checking connected
    stations: a rotation and an upgrade are followed, and the guard closes nobody for them."""
    up = free_port()
    v = OcppVersion.V201
    store = open_registry(tmp_path / "st.db")
    store.add(registry.get("CS-2"))  # type: ignore[arg-type]
    snapshot = RegistrySnapshot(store).start()

    async def main() -> None:
        gw = Gateway(policy=ServerPolicy(frozenset({2, 3}), cso_name=CSO), registry=snapshot,
                     upstream=f"ws://127.0.0.1:{up}/upstream", ssl_context=tls_context_for({2, 3}, pki), sink=sink,
                     relay=relay.option, password_cost=FAST)
        guard = StationGuard(gw, registry=snapshot, interval=0.1)
        await guard.start()
        try:
            async with ocpp_csms(up) as csms, gw.serve("127.0.0.1", port):
                st = await station(port, pki, "CS-2", v, profile=2, password=PASSWORD_201)
                cp = await csms.next()
                assert await set_variables(cp, v, set_variable("SecurityCtrlr", "BasicAuthPassword", NEW_201)) == ["Accepted"]
                assert await set_network_profile(cp, v, 2, 3, port) == "Accepted"
                assert await set_variables(cp, v, set_variable("OCPPCommCtrlr", "NetworkConfigurationPriority", "2,1")) == [
                    "Accepted"]
                await until(lambda: (r := store.get("CS-2")) is not None and r.pending_profile == 3
                            and r.pending_password_hash is not None)
                sweeps = guard.stats.sweeps
                await until(lambda: guard.stats.sweeps > sweeps + 1)  # the guard saw the changes: nothing to close
                assert (await st.cp.call(call201.Heartbeat())).current_time
                await st.close()
                st = await station(port, pki, "CS-2", v, profile=2, password=NEW_201)  # the new password
                await csms.next()
                await st.close()
                await refused(port, pki, "CS-2", v, 401, profile=2, password=PASSWORD_201)
                st = await station(port, pki, "CS-2", v, profile=3, cert="CS-2")  # and profile 3
                await csms.next()
                await st.close()
                await refused(port, pki, "CS-2", v, 403, profile=2, password=NEW_201)
                record = store.get("CS-2")  # in the database, not only in the snapshot
                assert record is not None and (record.profile, record.pending_profile, record.pending_password_hash) == (
                    3, None, None)
                assert password_matches(record.password_hash or "", NEW_201.encode(), v)
        finally:
            await guard.stop()
        assert guard.stats.closed == {}

    try:
        run(main())
    finally:
        snapshot.close()
        store.close()
