"""One composed CSMS class (certificate management + security events + the event log's GetLog part) against
one composed station class, the ``ocpp`` package on both ends over real websockets on 127.0.0.1, per version.

The station's SecurityEventNotification — raised by certificate management after a refused
CertificateSigned, and queued by its security log — must reach the CSMS's event store (it used to be
answered ``{}`` by the certificate class's own handler and lost).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import websockets
from ocpp.messages import MessageType, get_validator

from ocppsec.eventlog import EventQuery, open_store
from ocppsec.eventlog import v16 as log_v16
from ocppsec.eventlog import v21 as log_v21
from ocppsec.eventlog import v201 as log_v201
from ocppsec.eventlog.station import StationSecurityLog
from ocppsec.pki import Hierarchy
from ocppsec.pki.certmgmt import CertificateService, CertificateUse, Status, Trigger, TriggerStatus
from ocppsec.pki.certmgmt.codecs import CODECS
from ocppsec.pki.chargepoint import csms_charge_point_class, station_charge_point_class
from ocppsec.pki.events.sink import MemorySink
from ocppsec.pki.versions import OcppVersion

from .conftest import make_store

LOGS = {OcppVersion.V16: log_v16, OcppVersion.V201: log_v201, OcppVersion.V21: log_v21}
STATION = "CS001"


async def _until(predicate: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("version", list(OcppVersion), ids=lambda v: v.value)
def test_station_events_reach_the_store_of_the_composed_csms(version: OcppVersion, hierarchy: Hierarchy,
                                                             service: CertificateService, tmp_path: Path) -> None:
    log: ModuleType = LOGS[version]
    codec = CODECS[version]
    events = open_store(tmp_path / "events.db")
    CsmsCP = csms_charge_point_class(version, service, events=events, parts=[log.CSMS_LOG_PART])
    store = make_store(hierarchy)
    StationCP = station_charge_point_class(version, store, parts=[log.STATION_LOG_PART])
    station_log = StationSecurityLog(tmp_path / "station-log", station_id=STATION, ocpp_version=version)
    peers: dict[str, Any] = {}

    async def on_connect(ws: Any) -> None:
        cp = CsmsCP(ws.request.path.strip("/"), ws)
        peers[cp.id] = cp
        with contextlib.suppress(websockets.ConnectionClosed):
            await cp.start()

    async def main() -> None:
        async with websockets.serve(on_connect, "127.0.0.1", 0, subprotocols=[version.subprotocol]) as server:
            port = server.sockets[0].getsockname()[1]
            async with websockets.connect(f"ws://127.0.0.1:{port}/{STATION}", subprotocols=[version.subprotocol]) as ws:
                station = StationCP(STATION, ws, station_log=station_log)
                task = asyncio.create_task(station.start())
                await _until(lambda: STATION in peers)
                csms = peers[STATION]
                assert csms.event_sink is events

                # certificate management: trigger -> SignCertificate -> CertificateSigned, accepted
                assert await csms.trigger(Trigger.SIGN_CHARGING_STATION) is TriggerStatus.ACCEPTED
                await asyncio.wait_for(csms.signed.wait(), 20)
                order, answer = csms.results[0]
                assert answer.status is Status.ACCEPTED

                # a refused CertificateSigned: the station's event goes to the CSMS's store, not to {}
                bad = codec.certificate_signed_request(order.chain_pem + "garbage", CertificateUse.CHARGING_STATION, None)
                assert (await csms.send_raw("CertificateSigned", bad))["status"] == "Rejected"
                await _until(lambda: len(events.query(EventQuery(station_id=STATION))) == 1)
                sent = station.sent_events[0]
                get_validator(MessageType.Call, "SecurityEventNotification", version.value).validate(sent)

                # the station's security log delivers a queued critical event through the same handler
                await station.send_security_event("TamperDetectionActivated", at=datetime.now(UTC), tech_info="lid")
                assert len(station_log.queue) == 0  # confirmed by the CSMS only once stored
                task.cancel()

        stored = {s.event.canonical_type: s.event for s in events.query(EventQuery(station_id=STATION))}
        assert set(stored) == {"InvalidChargingStationCertificate", "TamperDetectionActivated"}
        refused = stored["InvalidChargingStationCertificate"]
        assert refused.type == sent["type"] == codec.event_name("InvalidChargingStationCertificate")
        assert refused.ocpp_version is version and refused.critical is (version is not OcppVersion.V16)
        assert refused.tech_info == sent["techInfo"] and "A02.FR.06" in refused.tech_info
        assert stored["TamperDetectionActivated"].tech_info == "lid"

    asyncio.run(asyncio.wait_for(main(), 60))
    events.close()


def test_without_an_event_store_each_connection_keeps_its_events() -> None:
    cls = csms_charge_point_class(OcppVersion.V201)
    first, second = cls("CS-1", None), cls("CS-2", None)
    assert isinstance(first.event_sink, MemorySink) and first.event_sink is not second.event_sink
