"""Fleet renewal through the certificate service: the renewal planner's items become TriggerMessages to
real stations (the ``ocpp`` package over loopback WebSockets), which then renew through SignCertificate."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import websockets

from ocppsec.pki.certmgmt import (
    CertificateService,
    CertificateUse,
    CredentialRole,
    RootType,
    StationCertificateStore,
    TriggerStatus,
)
from ocppsec.pki.chargepoint.classes import csms_charge_point_class, station_charge_point_class
from ocppsec.pki.hierarchy import Hierarchy
from ocppsec.pki.lifecycle import Action, ExpiringItem, PlanItem, run_renewals
from ocppsec.pki.lifecycle.executor import TriggerRenewalExecutor, trigger_for
from ocppsec.pki.versions import OcppVersion

from .conftest import CSO, SERIAL, pem


def _item(station: str | None, role: str = "charging-station", action: Action = Action.TRIGGER_STATION_CSR) -> PlanItem:
    return PlanItem(action, ExpiringItem("inventory", role, "ab", f"CN={station}", datetime.now(UTC) + timedelta(days=3),
                                         timedelta(days=30), timedelta(days=3), station=station))


def test_trigger_mapping() -> None:
    assert trigger_for(_item("CS001")).value == "sign-charging-station"
    assert trigger_for(_item("CS001", "secc", Action.TRIGGER_V2G_CSR)).value == "sign-v2g"
    assert trigger_for(_item("CS001", "secc-20", Action.TRIGGER_V2G_CSR)).value == "sign-v2g20"
    assert trigger_for(_item("CS001", "csms-server-rsa", Action.REISSUE_SERVER)) is None


def test_planned_renewals_trigger_stations_which_renew_through_the_service(
    hierarchy: Hierarchy, service: CertificateService, store: StationCertificateStore,
) -> None:
    now = datetime.now(UTC)
    assert store.install_root(RootType.CSMS, pem(hierarchy.ca("csms-root").certificate), at=now, max_chars=5500).accepted
    old = hierarchy.issue_leaf("charging-station", ca="csms-root", subject={"O": CSO, "CN": SERIAL}, at=now - timedelta(days=700))
    store.install_client_certificate(CertificateUse.CHARGING_STATION, old.chain_pem(), old.key.private_key)  # type: ignore[union-attr]

    version = OcppVersion.V201
    CsmsCP = csms_charge_point_class(version, service)
    StationCP = station_charge_point_class(version, store)
    csms: dict[str, Any] = {}
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop = asyncio.Event()
    station_holder: dict[str, Any] = {}

    async def on_connect(ws: Any) -> None:
        cp = CsmsCP("CS001", ws)
        csms["CS001"] = cp
        await cp.start()

    async def run() -> None:
        async with websockets.serve(on_connect, "127.0.0.1", 0, subprotocols=[version.subprotocol]) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            ws = await websockets.connect(f"ws://127.0.0.1:{port}/CS001", subprotocols=[version.subprotocol])
            station = StationCP("CS001", ws)
            station_holder["cp"] = station
            task = asyncio.create_task(station.start())
            while "CS001" not in csms:
                await asyncio.sleep(0.01)
            ready.set()
            await stop.wait()
            task.cancel()
            await ws.close()

    async def send_trigger(station: str, trigger: Any) -> TriggerStatus:
        if station not in csms:
            raise ConnectionError(f"{station} is not connected")
        status: TriggerStatus = await csms[station].trigger(trigger)
        return status

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    try:
        assert ready.wait(10)
        executor = TriggerRenewalExecutor(send_trigger, loop, timeout=10)
        plan = [_item("CS001"), _item("CS-OFFLINE"), _item(None), _item(None, "csms-server-rsa", Action.REISSUE_SERVER)]
        progress: list[tuple[int, int]] = []
        report = run_renewals(plan, executor, batch_size=2, progress=lambda d, t, i, o: progress.append((d, t)))
        outcomes = {item.station: outcome for item, outcome in report.done}
        assert outcomes["CS001"].ok, outcomes["CS001"]
        assert not outcomes["CS-OFFLINE"].ok and "not connected" in outcomes["CS-OFFLINE"].detail
        assert progress[-1][0] == progress[-1][1] == len(report.done)
        assert report.batches == 2
        # the trigger made the station send SignCertificate; the CSMS answered with CertificateSigned
        cp = station_holder["cp"]
        asyncio.run_coroutine_threadsafe(asyncio.wait_for(cp.renewed.wait(), 10), loop).result(15)
        creds = store.client_credentials()
        assert creds[0].role is CredentialRole.RENEWED
        assert creds[0].leaf.serial_number != old.certificate.serial_number
        assert creds[0].leaf.not_valid_after_utc > old.certificate.not_valid_after_utc
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
