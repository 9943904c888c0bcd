"""Renewal campaigns run by the gateway, end to end: real loopback TLS, a real gateway with CSR signing,
``ocpp``-package stations (1.6, 2.0.1, 2.1) whose client certificates are in their renewal window, and an
``ocpp``-package CSMS upstream that knows nothing of certificates. The campaign triggers, the gateway signs
and sends CertificateSigned, and a station counts as renewed only when it reconnects with the new
certificate. The upstream never sees a frame of the gateway's."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from ocpp.v16 import call as call16
from ocpp.v21 import call as call21
from ocpp.v201 import call as call201

from ocppsec.pki.certmgmt import CertificateUse, InventoryState
from ocppsec.pki.lifecycle.campaign import CampaignKind, CampaignOptions, RowState
from ocppsec.pki.lifecycle.campaign_sql import open_campaigns
from ocppsec.pki.versions import OcppVersion

from .campaign_rig import SimStation, gateway_frames_upstream, init_ca, make_rig, recording_csms, registry_of
from .conftest import Pki
from .helpers import run


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("campaign-ca") / "pki"
    init_ca(path)
    return path


WAITING = frozenset({RowState.AWAITING_RECONNECT})
DONE = frozenset({RowState.DONE, RowState.FAILED})


@pytest.mark.parametrize("version", [OcppVersion.V201, OcppVersion.V16, OcppVersion.V21], ids=["2.0.1", "1.6", "2.1"])
def test_renewal_campaign_end_to_end(version: OcppVersion, pki: Pki, ca_dir: Path, tmp_path: Path) -> None:
    registry = registry_of("CS-DUE", "CS-FRESH")
    rig = make_rig(pki, ca_dir, registry, tmp_path)
    due = SimStation("CS-DUE", version, rig.ca, pki, tmp_path, validity_days=20)
    fresh = SimStation("CS-FRESH", version, rig.ca, pki, tmp_path, validity_days=200)
    old_fp = due.store.client_credentials()[0].fingerprint

    async def main() -> None:
        async with recording_csms(rig.up) as upstream, rig.gw.serve("127.0.0.1", rig.port):
            await rig.engine.start()
            try:
                for s in (due, fresh):
                    await s.connect(rig.port)
                started = await rig.engine.start_campaign(CampaignKind.RENEW, CampaignOptions(within_days=30, timeout=10))
                cid = started["id"]
                assert started["progress"]["total"] == 1  # only the certificate inside its window
                row = await rig.engine.wait_row(cid, "CS-DUE", WAITING | DONE, timeout=20)
                assert row.state is RowState.AWAITING_RECONNECT, row
                renewed = due.renewed
                assert renewed is not None and renewed.fingerprint == row.expected != old_fp
                assert renewed.leaf.not_valid_after_utc > due.store.client_credentials()[1].leaf.not_valid_after_utc
                # the station switches by reconnecting (A02.FR.08); only then is the renewal done
                await due.disconnect()
                await due.connect(rig.port)
                summary = await rig.engine.wait_finished(cid, timeout=20)
                assert summary["progress"]["done"] == 1 and summary["status"] == "done", summary
                assert rig.gw.sessions and all(s.station.context["certificate"].fingerprint != old_fp
                                               for s in rig.gw.sessions if s.station.identity == "CS-DUE")
                assert (await due.heartbeat()).current_time
                # the CSMS's own TriggerMessage passes through untouched (answered by the station)
                trigger_id = await csms_trigger(upstream.csms["CS-DUE"], version)
                answers = [f for d, i, f in upstream.frames if d == "in" and f[0] in (3, 4) and f[1] == trigger_id]
                assert len(answers) == 1, upstream.frames[-4:]
                await due.disconnect()
                await fresh.disconnect()
            finally:
                await rig.engine.close()
            # the upstream saw each station's boots and heartbeats, the CSMS's own trigger and its answer, and
            # nothing of the campaign
            assert gateway_frames_upstream(upstream) == [], gateway_frames_upstream(upstream)
            assert upstream.actions_in().count("BootNotification") == 3
            assert rig.gw.calls is not None and rig.gw.calls.counts["sent"] >= 1
        # the record says done, with the certificate that was sent
        store = open_campaigns(str(tmp_path / "campaigns.db"))
        try:
            (done,) = store.rows(cid)
            assert done.state is RowState.DONE and done.expected == due.store.client_credentials()[0].fingerprint
        finally:
            store.close()

    try:
        run(main(), timeout=90)
    finally:
        rig.close()
    sent = due.store.client_credentials()[0].leaf.fingerprint(hashes.SHA256()).hex()
    assert sent != old_fp and datetime.now(UTC) < due.store.client_credentials()[0].leaf.not_valid_after_utc


async def csms_trigger(csms: Any, version: OcppVersion) -> str:
    """The CSMS asks the station for a Heartbeat (its own TriggerMessage); returns the call's id."""
    module: Any = {OcppVersion.V16: call16, OcppVersion.V201: call201, OcppVersion.V21: call21}[version]
    unique_id = "csms-trigger-1"
    await csms.call(module.TriggerMessage(requested_message="Heartbeat"), unique_id=unique_id)  # CALLERROR: None
    return unique_id


@pytest.mark.parametrize("version", [OcppVersion.V201, OcppVersion.V16, OcppVersion.V21], ids=["2.0.1", "1.6", "2.1"])
def test_v2g_renewal_needs_no_reconnect(version: OcppVersion, pki: Pki, ca_dir: Path, tmp_path: Path) -> None:
    """TriggerMessage SignV2GCertificate: the SECC certificate is done once the station accepted CertificateSigned;
    a later campaign finds it by its expiry, from the inventory and what the station reports
    (GetInstalledCertificateIds). 1.6 has no such trigger: the row is skipped."""
    rig = make_rig(pki, ca_dir, registry_of("CS-V"), tmp_path)
    station = SimStation("CS-V", version, rig.ca, pki, tmp_path, validity_days=200, secc_id="SECC-0001")
    v2g = CertificateUse.V2G

    async def main() -> None:
        async with recording_csms(rig.up) as upstream, rig.gw.serve("127.0.0.1", rig.port):
            await rig.engine.start()
            try:
                await station.connect(rig.port)
                none_yet = await rig.engine.start_campaign(CampaignKind.RENEW, CampaignOptions(use=v2g, within_days=3650))
                assert none_yet["progress"]["total"] == 0  # no V2G certificate known: nothing selected
                cid = (await rig.engine.start_campaign(CampaignKind.RENEW, CampaignOptions(
                    use=v2g, stations=("CS-V",), force=True)))["id"]
                row = await rig.engine.wait_row(cid, "CS-V", DONE | {RowState.SKIPPED}, timeout=20)
                if version is OcppVersion.V16:  # 1.6 has no V2G trigger (the PNC note's DataTransfer): skipped
                    assert row.state is RowState.SKIPPED and row.attempts == 1 and row.reason, row
                    await station.disconnect()
                    return
                assert row.state is RowState.DONE, row
                secc = station.store.certificate(v2g)
                assert secc is not None and secc.fingerprint == row.expected
                # the inventory knows the station's V2G certificate and its expiry (60 days); even when its row says
                # only "sent", the station's own GetInstalledCertificateIds answer (asked at the start) confirms it
                (entry,) = [e for e in rig.inventory.for_station("CS-V") if e.kind == "v2g"]
                rig.inventory.upsert([replace(entry, state=InventoryState.SENT)])
                calls_before = rig.engine.counters["calls"]
                again = await rig.engine.start_campaign(CampaignKind.RENEW, CampaignOptions(use=v2g, within_days=90))
                assert again["progress"]["total"] == 1
                assert rig.engine.counters["calls"] == calls_before + 1  # the survey's GetInstalledCertificateIds
                (entry,) = [e for e in rig.inventory.for_station("CS-V") if e.kind == "v2g"]
                assert entry.state is InventoryState.INSTALLED
                later = await rig.engine.wait_row(again["id"], "CS-V", DONE, timeout=20)
                assert later.state is RowState.DONE and later.expected != row.expected
                await station.disconnect()
            finally:
                await rig.engine.close()
            assert gateway_frames_upstream(upstream) == []

    try:
        run(main(), timeout=60)
    finally:
        rig.close()


def test_discarded_renewed_certificate_fails_the_row(pki: Pki, ca_dir: Path, tmp_path: Path, pg_url: str) -> None:
    """A station that cannot connect with its renewed certificate, reconnects with the old one and reports
    DiscardedRenewedClientCertificate (A02.FR.28-29): the row fails, with the reason (the campaign record in
    PostgreSQL here)."""
    registry = registry_of("CS-D")
    rig = make_rig(pki, ca_dir, registry, tmp_path, campaigns=pg_url)
    station = SimStation("CS-D", OcppVersion.V201, rig.ca, pki, tmp_path, validity_days=10)

    async def main() -> None:
        async with recording_csms(rig.up), rig.gw.serve("127.0.0.1", rig.port):
            await rig.engine.start()
            try:
                await station.connect(rig.port)
                cid = (await rig.engine.start_campaign(CampaignKind.RENEW, CampaignOptions(within_days=30)))["id"]
                await rig.engine.wait_row(cid, "CS-D", WAITING, timeout=20)
                await station.disconnect()
                # the renewed certificate "fails": the station falls back to the active one (A02.FR.10)
                renewed = station.renewed
                assert renewed is not None
                active = station.store.client_credentials()[1]
                outcome = station.store.connected(active)
                assert outcome is not None and outcome.event == "DiscardedRenewedClientCertificate"
                await station.connect(rig.port)
                await station.cp.send_event(outcome)
                row = await rig.engine.wait_row(cid, "CS-D", DONE, timeout=20)
                assert row.state is RowState.FAILED and "A02.FR.28-29" in (row.reason or "")
                await station.disconnect()
            finally:
                await rig.engine.close()
        record = open_campaigns(pg_url)
        try:
            (failed,) = record.rows(cid)
            assert failed.state is RowState.FAILED and failed.reason == row.reason
            assert record.get(cid).status.value == "done"
        finally:
            record.close()

    try:
        run(main(), timeout=60)
    finally:
        rig.close()


def test_fleet_renewal_completes_every_station(pki: Pki, ca_dir: Path, tmp_path: Path) -> None:
    """200 stations in their window, a third each on OCPP 1.6, 2.0.1 and 2.1, at most 10 in flight: every one
    is renewed and reconnects on its new certificate."""
    n = 200
    versions = (OcppVersion.V16, OcppVersion.V201, OcppVersion.V21)
    names = [f"CS-F{i:03d}" for i in range(n)]
    registry = registry_of(*names)
    rig = make_rig(pki, ca_dir, registry, tmp_path)
    stations = [SimStation(name, versions[i % 3], rig.ca, pki, tmp_path, validity_days=15)
                for i, name in enumerate(names)]

    async def reconnect_when_renewed(cid: str, s: SimStation) -> None:
        await rig.engine.wait_row(cid, s.identity, WAITING, timeout=60)
        await s.disconnect()
        await s.connect(rig.port, boot=False)

    async def main() -> None:
        async with recording_csms(rig.up) as upstream, rig.gw.serve("127.0.0.1", rig.port):
            await rig.engine.start()
            try:
                await asyncio.gather(*(s.connect(rig.port) for s in stations))
                cid = (await rig.engine.start_campaign(CampaignKind.RENEW,
                                                       CampaignOptions(within_days=30, max_in_flight=10)))["id"]
                await asyncio.gather(*(reconnect_when_renewed(cid, s) for s in stations))
                summary = await rig.engine.wait_finished(cid, timeout=60)
                assert summary["progress"]["done"] == n, summary
                assert gateway_frames_upstream(upstream) == []
                await asyncio.gather(*(s.disconnect() for s in stations))
            finally:
                await rig.engine.close()
        assert 2 <= rig.engine.peak_in_flight[cid] <= 10
        assert all(s.presented is not None and s.presented.role.value == "renewed" for s in stations)

    try:
        run(main(), timeout=120)
    finally:
        rig.close()



def test_renewal_needs_csr_signing_and_calls(tmp_path: Path) -> None:
    """Without --sign-csrs the stations' CSRs would go to the CSMS: a renewal is refused (a dry run says why);
    an engine needs a gateway with its own calls."""
    from ocppsec.pki.errors import UsageError
    from ocppsec.security_profiles.gateway import Gateway
    from ocppsec.security_profiles.gateway.calls import StationCalls
    from ocppsec.security_profiles.gateway.campaigns import CampaignEngine
    from ocppsec.security_profiles.handshake import ServerPolicy

    registry = registry_of("CS-1")
    store = open_campaigns(str(tmp_path / "c.db"))
    try:
        with pytest.raises(UsageError, match="calls"):
            CampaignEngine(Gateway(policy=ServerPolicy(frozenset({1})), registry=registry, upstream="ws://127.0.0.1:1"),
                           store)
        gw = Gateway(policy=ServerPolicy(frozenset({1})), registry=registry, upstream="ws://127.0.0.1:1",
                     calls=StationCalls())
        engine = CampaignEngine(gw, store)

        async def main() -> None:
            options = CampaignOptions(stations=("CS-1",), force=True)
            dry = await engine.start_campaign(CampaignKind.RENEW, CampaignOptions(stations=("CS-1",), force=True,
                                                                                  dry_run=True))
            assert "the gateway does not sign CSRs (--sign-csrs)" in dry["stations"][0]["missing"]
            with pytest.raises(UsageError, match="--sign-csrs"):
                await engine.start_campaign(CampaignKind.RENEW, options)
            assert store.campaigns() == []

        run(main())
    finally:
        store.close()
