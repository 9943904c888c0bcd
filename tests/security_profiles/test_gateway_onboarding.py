"""Onboarding: a profile-3 station presenting an expired certificate of our CA (A00.FR.429-430), where its
registry record allows it, is admitted into a renewal-only session: the gateway answers its BootNotification
with Pending, relays nothing upstream, renews its certificate and closes the connection; the station comes
back with the new certificate as a normal profile-3 station, which completes the campaign."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ocppsec.pki.lifecycle.campaign import RowState
from ocppsec.pki.versions import OcppVersion
from ocppsec.security_profiles.client import CsmsConnectionError
from ocppsec.security_profiles.registry import MemoryRegistry, Onboarding, StationRecord

from .campaign_rig import SimStation, gateway_frames_upstream, init_ca, make_rig, make_root, recording_csms
from .conftest import CSO, Pki
from .helpers import run


@pytest.fixture(scope="module")
def old_ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("onboarding-ca") / "pki"
    init_ca(path, days_ago=100)  # a CA old enough to have issued certificates that have expired since
    return path


@pytest.mark.parametrize("version", [OcppVersion.V201, OcppVersion.V16], ids=["2.0.1", "1.6"])
def test_expired_certificate_station_is_onboarded(version: OcppVersion, pki: Pki, old_ca_dir: Path,
                                                  tmp_path: Path) -> None:
    registry = MemoryRegistry([StationRecord("CS-OLD", 3, serial="CS-OLD", onboarding=frozenset({Onboarding.EXPIRED})),
                               StationRecord("CS-STRICT", 3, serial="CS-STRICT")])
    rig = make_rig(pki, old_ca_dir, registry, tmp_path, onboarding=True)
    old = SimStation("CS-OLD", version, rig.ca, pki, tmp_path, validity_days=30, issued_days_ago=60)
    strict = SimStation("CS-STRICT", version, rig.ca, pki, tmp_path, validity_days=30, issued_days_ago=60)
    expired_fp = old.store.client_credentials()[0].fingerprint

    async def main() -> None:
        async with recording_csms(rig.up) as upstream, rig.gw.serve("127.0.0.1", rig.port):
            await rig.engine.start()
            try:
                # without onboarding in its record, an expired certificate is refused (A00.FR.403/407)
                with pytest.raises(CsmsConnectionError, match="HTTP 403"):
                    await strict.connect(rig.port, boot=False)
                await old.connect(rig.port, boot=False)
                boot = await old.boot()
                assert boot.status == "Pending"  # answered by the gateway (A00.FR.429)
                assert old.conn is not None
                await asyncio.wait_for(old.conn.wait_closed(), 30)  # renewed, then closed by the gateway
                assert old.conn.close_code == 1000
                renewed = old.renewed
                assert renewed is not None and renewed.fingerprint != expired_fp
                (summary,) = rig.engine.summaries()
                cid = summary["id"]
                row = rig.engine.rows(cid)[0]
                assert row.state is RowState.AWAITING_RECONNECT and row.expected == renewed.fingerprint
                assert upstream.frames == []  # the CSMS heard nothing of the renewal-only session
                await old.disconnect()
                await old.connect(rig.port)  # a normal profile-3 station now, relayed
                row = await rig.engine.wait_row(cid, "CS-OLD", frozenset({RowState.DONE}), timeout=20)
                assert row.state is RowState.DONE
                assert (await old.heartbeat()).current_time
                await old.disconnect()
            finally:
                await rig.engine.close()
            assert upstream.actions_in() == ["BootNotification", "Heartbeat"]
            assert gateway_frames_upstream(upstream) == []

    try:
        run(main(), timeout=60)
    finally:
        rig.close()


def test_factory_certificate_station_is_onboarded_and_only_onboarded(pki: Pki, old_ca_dir: Path, tmp_path: Path) -> None:
    """A station with a certificate of a configured manufacturer root (A00.FR.806-807) is onboarded like an
    expired one; the manufacturer root admits nothing else: a factory certificate that would pass as a normal
    profile-3 certificate (O with the CSO name) is refused, and so is one whose record does not allow it."""
    maker, maker_key = make_root("Maker Root")
    registry = MemoryRegistry([StationRecord("CS-NEW", 3, serial="CS-NEW", onboarding=frozenset({Onboarding.FACTORY})),
                               StationRecord("CS-SLY", 3, serial="CS-SLY", onboarding=frozenset({Onboarding.FACTORY})),
                               StationRecord("CS-NOPE", 3, serial="CS-NOPE")])
    rig = make_rig(pki, old_ca_dir, registry, tmp_path, onboarding=True, manufacturer_roots=[maker])
    new = SimStation("CS-NEW", OcppVersion.V21, rig.ca, pki, tmp_path, factory=(maker, maker_key))
    sly = SimStation("CS-SLY", OcppVersion.V201, rig.ca, pki, tmp_path, factory=(maker, maker_key), factory_o=CSO)
    nope = SimStation("CS-NOPE", OcppVersion.V201, rig.ca, pki, tmp_path, factory=(maker, maker_key))

    async def main() -> None:
        async with recording_csms(rig.up) as upstream, rig.gw.serve("127.0.0.1", rig.port):
            await rig.engine.start()
            try:
                for refused in (sly, nope):
                    with pytest.raises(CsmsConnectionError, match="HTTP 403"):
                        await refused.connect(rig.port, boot=False)
                await new.connect(rig.port, boot=False)
                assert (await new.boot()).status == "Pending"
                assert new.conn is not None
                await asyncio.wait_for(new.conn.wait_closed(), 30)
                assert new.renewed is not None
                await new.disconnect()
                await new.connect(rig.port)
                (summary,) = rig.engine.summaries()
                row = await rig.engine.wait_row(summary["id"], "CS-NEW", frozenset({RowState.DONE}), timeout=20)
                assert row.state is RowState.DONE
                await new.disconnect()
            finally:
                await rig.engine.close()
            assert upstream.actions_in() == ["BootNotification"]
            assert gateway_frames_upstream(upstream) == []
        reasons = [e.tech_info or "" for e in rig.sink.events]
        assert any("onboarding only" in r for r in reasons), reasons

    try:
        run(main(), timeout=60)
    finally:
        rig.close()
