"""Round trips with the `ocpp` package as the real peer over websockets on 127.0.0.1, for each version.

Station (ocpp ChargePoint + our station adapter) <-> CSMS (ocpp ChargePoint + our CSMS adapter), with
SecurityEventNotification, GetLog and LogStatusNotification; the log goes to the upload receiver over
loopback HTTP. The `ocpp` package validates every message it sends and receives against the official
schemas (except the CSMS's SecurityEventNotification handler, which is lenient on purpose); the codec
payloads are validated here against the same schemas with jsonschema.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import websockets
from _eventlog_schemas import validate
from ocpp.exceptions import OCPPError

from ocppsec.eventlog import v16, v21, v201
from ocppsec.eventlog.getlog import GetLogRequest, GetLogStatus, LogStatus
from ocppsec.eventlog.receiver import ReceiverConfig, UploadReceiver
from ocppsec.eventlog.station import StationSecurityLog
from ocppsec.eventlog.store import EventQuery, EventStore
from ocppsec.eventlog.store_sql import open_store
from ocppsec.pki.events.model import FLAG_NAIVE, FLAG_TRUNCATED, FLAG_UNKNOWN, normalize_event

VERSIONS = [pytest.param(v16, id="1.6"), pytest.param(v201, id="2.0.1"), pytest.param(v21, id="2.1")]
NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass
class Net:
    store: EventStore
    csms: dict[str, Any]
    port: int


@contextlib.asynccontextmanager
async def csms(adapter: ModuleType, store: EventStore) -> AsyncIterator[Net]:
    peers: dict[str, Any] = {}

    async def on_connect(ws: Any) -> None:
        cp = adapter.CsmsChargePoint(ws.request.path.strip("/"), ws, sink=store)
        peers[cp.id] = cp
        with contextlib.suppress(websockets.ConnectionClosed):
            await cp.start()

    async with websockets.serve(on_connect, "127.0.0.1", 0, subprotocols=[adapter.VERSION.subprotocol]) as server:
        port = server.sockets[0].getsockname()[1]
        yield Net(store, peers, port)


@contextlib.asynccontextmanager
async def station(adapter: ModuleType, net: Net, log: StationSecurityLog, **options: Any) -> AsyncIterator[Any]:
    async with websockets.connect(f"ws://127.0.0.1:{net.port}/{log.station_id}",
                                  subprotocols=[adapter.VERSION.subprotocol]) as ws:
        cp = adapter.StationChargePoint(log.station_id, ws, station_log=log, **options)
        task = asyncio.create_task(cp.start())
        for _ in range(200):
            if log.station_id in net.csms:
                break
            await asyncio.sleep(0.01)
        try:
            yield cp
        finally:
            await cp.getlog.close()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                await task


@pytest.mark.parametrize("adapter", VERSIONS)
def test_security_events_and_getlog_round_trip(adapter: ModuleType, tmp_path: Path) -> None:
    version = adapter.VERSION
    store = open_store(tmp_path / "csms.db")
    log = StationSecurityLog(tmp_path / "station", station_id="CS-1", ocpp_version=version)
    # offline: events happen before the station is connected
    log.raise_event("StartupOfTheDevice", at=NOW - timedelta(minutes=5))
    log.raise_event("InvalidTLSVersion", at=NOW - timedelta(minutes=4), tech_info="TLS 1.0 offered")
    log.raise_event("InvalidTLSVersion", at=NOW - timedelta(minutes=3), tech_info="TLS 1.0 offered")
    log.raise_event("InvalidCsmsCertificate", at=NOW - timedelta(minutes=2), tech_info="expired")
    log.raise_event("InvalidMessages", at=NOW - timedelta(minutes=1))
    expected_pushed = 1 if version.value == "1.6" else 3  # TLS/cert events are critical only in 2.x

    async def scenario() -> None:
        async with csms(adapter, store) as net, station(adapter, net, log) as cp:
            assert await cp.deliver_pending() == expected_pushed
            assert len(log.queue) == 0
            await cp.send_security_event("ResetOrReboot", at=NOW, tech_info="operator reset")
            pushed = store.query(EventQuery(station_id="CS-1"))
            assert len(pushed) == expected_pushed + 1
            assert all(p.event.ocpp_version is version for p in pushed)
            if version.value != "1.6":
                assert [p.event.type for p in pushed].count("InvalidTLSVersion") == 1  # queued only once

            with UploadReceiver(ReceiverConfig(tmp_path / "uploads"), store=store) as rx:
                peer = net.csms["CS-1"]
                request = GetLogRequest("SecurityLog", 42, rx.remote_location("CS-1", 42), retries=1, retry_interval=1)
                reply = await peer.request_security_log(request)
                assert reply.status is GetLogStatus.ACCEPTED and reply.filename
                assert await peer.wait_log_status(42, {LogStatus.UPLOADED, LogStatus.UPLOAD_FAILURE}) is LogStatus.UPLOADED
                assert [s for s, rid in peer.log_statuses if rid == 42] == [LogStatus.UPLOADING, LogStatus.UPLOADED]
                (upload,) = rx.received
                if version.value == "2.1":  # N01.FR.21: file name appended to the directory URL
                    assert upload.path.name == f"42-{reply.filename}"
                assert upload.imported + upload.duplicates == 6  # every event, non-critical ones too

                # nothing to upload in the window: Rejected without a filename
                empty = GetLogRequest("SecurityLog", 43, rx.remote_location("CS-1", 43),
                                      oldest=NOW + timedelta(days=1))
                reply = await peer.request_security_log(empty)
                assert reply.status is GetLogStatus.REJECTED and reply.filename is None
                diag = GetLogRequest("DiagnosticsLog", 44, rx.remote_location("CS-1", 44))
                assert (await peer.request_security_log(diag)).status is GetLogStatus.REJECTED

        everything = store.query(EventQuery(station_id="CS-1"))
        assert len(everything) == 6  # pushed ones and uploaded ones stored once
        assert {e.event.canonical_type for e in everything} >= {"InvalidMessages", "InvalidCsmsCertificate"}

    asyncio.run(scenario())
    store.close()


@pytest.mark.parametrize("adapter", VERSIONS)
def test_upload_failure_and_cancel_are_reported(adapter: ModuleType, tmp_path: Path) -> None:
    store = open_store(tmp_path / "csms.db")
    log = StationSecurityLog(tmp_path / "station", station_id="CS-2", ocpp_version=adapter.VERSION)
    log.raise_event("StartupOfTheDevice", at=NOW)

    async def scenario() -> None:
        async with csms(adapter, store) as net, station(adapter, net, log) as cp:
            peer = net.csms["CS-2"]
            auth = ReceiverConfig(tmp_path / "up", basic_auth=("logs", "right"))
            with UploadReceiver(auth, store=store) as rx:
                url = rx.remote_location("CS-2", 1)
                reply = await peer.request_security_log(GetLogRequest("SecurityLog", 1, url, retries=1, retry_interval=0))
                assert reply.status is GetLogStatus.ACCEPTED
                assert await peer.wait_log_status(1, {LogStatus.PERMISSION_DENIED, LogStatus.UPLOADED}) is LogStatus.PERMISSION_DENIED

                # a long retry wait, then a new GetLog cancels it
                dead = "http://127.0.0.1:9/never"
                await peer.request_security_log(GetLogRequest("SecurityLog", 2, dead, retries=3, retry_interval=60))
                for _ in range(300):
                    if cp.getlog.machine.job and cp.getlog.machine.job.waiting_until:
                        break
                    await asyncio.sleep(0.02)
                good = url.replace("http://", "http://logs:right@")
                reply = await peer.request_security_log(GetLogRequest("SecurityLog", 3, good))
                assert reply.status is GetLogStatus.ACCEPTED_CANCELED
                assert await peer.wait_log_status(3, {LogStatus.UPLOADED}) is LogStatus.UPLOADED
                statuses = [s for s, rid in peer.log_statuses if rid == 2]
                if adapter.VERSION.value == "1.6":
                    assert statuses == [LogStatus.UPLOADING]  # 1.6 cannot say AcceptedCanceled
                else:
                    assert statuses == [LogStatus.UPLOADING, LogStatus.ACCEPTED_CANCELED]

                ftp = await peer.request_security_log(GetLogRequest("SecurityLog", 4, "ftp://u:p@127.0.0.1/x"))
                assert ftp.status is GetLogStatus.ACCEPTED
                assert await peer.wait_log_status(4, {LogStatus.NOT_SUPPORTED_OPERATION}) is LogStatus.NOT_SUPPORTED_OPERATION

    asyncio.run(scenario())
    store.close()


@pytest.mark.parametrize("adapter", VERSIONS)
def test_bad_notifications_are_handled_one_by_one(adapter: ModuleType, tmp_path: Path) -> None:
    store = open_store(tmp_path / "csms.db")
    log = StationSecurityLog(tmp_path / "station", station_id="CS-3", ocpp_version=adapter.VERSION)
    call = adapter.CODEC  # the codec knows the version's ocpp call classes

    async def send(cp: Any, **payload: Any) -> None:
        message = call.event_call(normalize_event(station_id="CS-3", type="X", timestamp=NOW, at=NOW))
        for key, value in payload.items():
            setattr(message, key, value)
        await cp.call(message, suppress=False, skip_schema_validation=True)

    async def scenario() -> None:
        async with csms(adapter, store) as net, station(adapter, net, log) as cp:
            await send(cp, type="StartupOfTheDevice", timestamp="2026-11-23T10:00:00Z", tech_info="t" * 300)
            await send(cp, type="StartupOfTheDevice", timestamp="2026-11-23T10:00:00", tech_info=None)
            await send(cp, type="AcmeDoorOpened", timestamp="2026-11-23T10:00:01Z", tech_info=None)
            await send(cp, type="ResetOrReboot", timestamp="2999-01-01T00:00:00Z", tech_info=None)
            with pytest.raises(OCPPError) as bad_time:
                await send(cp, type="ResetOrReboot", timestamp="not a time", tech_info=None)
            assert "Format" in bad_time.value.code or "Formation" in bad_time.value.code
            with pytest.raises(OCPPError):
                await send(cp, type="", timestamp="2026-11-23T10:00:00Z", tech_info=None)
            with pytest.raises(OCPPError):
                await send(cp, type="T" * 60, timestamp="2026-11-23T10:00:00Z", tech_info=None)
            # a duplicate delivery (the station did not see our confirmation): stored once
            await send(cp, type="AcmeDoorOpened", timestamp="2026-11-23T10:00:01Z", tech_info=None)
            await send(cp, type="ResetOrReboot", timestamp="2026-11-23T10:00:02Z", tech_info="still alive")

    asyncio.run(scenario())
    rows = [r.event for r in store.query(EventQuery(station_id="CS-3"))]
    assert len(rows) == 5
    by_type = {(e.type, e.tech_info): e for e in rows}
    assert FLAG_TRUNCATED in by_type[("StartupOfTheDevice", "t" * 255)].flags
    assert FLAG_NAIVE in by_type[("StartupOfTheDevice", None)].flags
    assert FLAG_UNKNOWN in by_type[("AcmeDoorOpened", None)].flags
    assert any("timestamp-in-future" in e.flags for e in rows)
    store.close()


@pytest.mark.parametrize("adapter", VERSIONS)
def test_codec_payloads_match_the_official_schemas(adapter: ModuleType) -> None:
    v = adapter.VERSION.value
    codec = adapter.CODEC
    for type_ in ("InvalidCsmsCertificate", "MaintenanceLoginFailed", "VendorX"):
        event = normalize_event(station_id="CS", type=type_, timestamp=NOW, tech_info='{"user": "a"}', at=NOW,
                                ocpp_version=adapter.VERSION)
        payload = codec.event_to_payload(event)
        validate(v, "SecurityEventNotification", payload)
        back = codec.event_from_payload(payload, station_id="CS", at=NOW)
        assert back.dedup_key == event.dedup_key
    if v == "1.6":
        assert codec.event_to_payload(normalize_event(station_id="CS", type="InvalidCsmsCertificate", timestamp=NOW,
                                                      at=NOW))["type"] == "InvalidCentralSystemCertificate"
    request = GetLogRequest("SecurityLog", 9, "https://h/logs/", oldest=NOW - timedelta(days=1), latest=NOW,
                            retries=0, retry_interval=5)
    payload = codec.getlog_to_payload(request)
    validate(v, "GetLog", payload)
    assert codec.getlog_from_payload(payload) == request
    for status in LogStatus:
        p = codec.log_status_payload(status, 9)
        if p is None:
            assert v == "1.6" and status is LogStatus.ACCEPTED_CANCELED
        else:
            validate(v, "LogStatusNotification", p)
    validate(v, "SecurityEventNotification", {}, response=True)
    for status in GetLogStatus:
        validate(v, "GetLog", {"status": status.value, "filename": "x.log"}, response=True)


def test_schema_validation_rejects_what_the_codec_must_never_produce() -> None:
    import jsonschema

    with pytest.raises(jsonschema.ValidationError):
        validate("2.0.1", "SecurityEventNotification", {"type": "X", "timestamp": "2026", "techInfo": "t" * 256})
    with pytest.raises(jsonschema.ValidationError):
        validate("1.6", "LogStatusNotification", {"status": "AcceptedCanceled", "requestId": 1})


class FailingSink:
    """A CSMS whose store is down and which has no buffer: it must not confirm the event."""

    def __init__(self) -> None:
        self.down = True
        self.events: list[Any] = []

    def record(self, event: Any) -> None:
        from ocppsec.eventlog.store import StoreUnavailableError

        if self.down:
            raise StoreUnavailableError("database down")
        self.events.append(event)


def test_unconfirmed_events_stay_queued_until_the_csms_stores_them(tmp_path: Path) -> None:
    sink = FailingSink()
    log = StationSecurityLog(tmp_path / "station", station_id="CS-4", ocpp_version=v201.VERSION)
    log.raise_event("TamperDetectionActivated", at=NOW)

    async def scenario() -> None:
        async with csms(v201, sink) as net, station(v201, net, log) as cp:  # type: ignore[arg-type]
            assert await cp.deliver_pending() == 0  # CallError: not confirmed, still queued
            assert len(log.queue) == 1
            sink.down = False
            assert await cp.deliver_pending() == 1
            assert len(log.queue) == 0

    asyncio.run(scenario())
    assert [e.type for e in sink.events] == ["TamperDetectionActivated"]
