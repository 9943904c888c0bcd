"""Root rollover and retirement campaigns run by the gateway: InstallCertificate of a new CSMS root (the
new-by-old certificate to a station whose AdditionalRootCertificateCheck is true, the self-signed root
otherwise), confirmed with GetInstalledCertificateIds; a refusing station is failed with its answer and not
retried; a silent one is listed as waiting; ``dry_run`` shows per station what would be sent; retiring the
old root (DeleteCertificate) is refused while a station lacks the new one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ocpp.routing import on
from ocpp.v201 import ChargePoint as Cp201
from ocpp.v201 import call_result as result201

from ocppsec.pki.certmgmt import RootType
from ocppsec.pki.chargepoint.classes import station_charge_point_class
from ocppsec.pki.errors import InputError, PolicyError
from ocppsec.pki.lifecycle.campaign import CampaignKind, CampaignOptions, RowState
from ocppsec.pki.versions import OcppVersion
from ocppsec.security_profiles.client import CsmsConnectionError
from ocppsec.security_profiles.tls import server_context

from .campaign_rig import (
    SimStation,
    gateway_frames_upstream,
    init_ca,
    make_rig,
    make_root,
    pem_of,
    recording_csms,
    registry_of,
    server_chain,
)
from .conftest import Pki
from .helpers import run


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rollover-ca") / "pki"
    init_ca(path)
    return path


class Refusing201(Cp201):
    """A station that refuses every InstallCertificate."""

    @on("InstallCertificate")
    async def on_install(self, **_: Any) -> Any:
        return result201.InstallCertificate(status="Rejected")


def checking_class(store: Any) -> type:
    """The 2.0.1 store station, also answering GetVariables SecurityCtrlr.AdditionalRootCertificateCheck=true."""
    base: Any = station_charge_point_class(OcppVersion.V201, store)

    class Checking(base):  # type: ignore[misc, valid-type]
        @on("GetVariables")
        async def on_get_variables(self, get_variable_data: list[dict[str, Any]], **_: Any) -> Any:
            return result201.GetVariables(get_variable_result=[
                {"attribute_status": "Accepted", "attribute_value": "true", "component": d["component"],
                 "variable": d["variable"]} for d in get_variable_data])

    return Checking


DONE = frozenset({RowState.DONE, RowState.FAILED, RowState.SKIPPED})


def test_rollover_installs_confirms_reports_and_retires(pki: Pki, ca_dir: Path, tmp_path: Path) -> None:
    old, old_key = make_root("Old CSMS Root")
    new, new_key = make_root("New CSMS Root")
    cross, _ = make_root("New CSMS Root", signer=(old, old_key), key=new_key)
    registry = registry_of("CS-CHECK", "CS-16", "CS-NO", "CS-SILENT")
    rig = make_rig(pki, ca_dir, registry, tmp_path)
    checking = SimStation("CS-CHECK", OcppVersion.V201, rig.ca, pki, tmp_path, csms_roots=[old],
                          additional_root_check=True)
    checking.cls = checking_class(checking.store)
    v16 = SimStation("CS-16", OcppVersion.V16, rig.ca, pki, tmp_path, csms_roots=[old])
    refusing = SimStation("CS-NO", OcppVersion.V201, rig.ca, pki, tmp_path, csms_roots=[old], cls=Refusing201)
    detail = {"certificate": pem_of(new), "cross_certificate": pem_of(cross), "old_root": pem_of(old)}

    async def main() -> None:
        async with recording_csms(rig.up) as upstream, rig.gw.serve("127.0.0.1", rig.port):
            await rig.engine.start()
            try:
                for s in (checking, v16, refusing):
                    await s.connect(rig.port)
                # the detail is checked: a cross certificate not signed by the old root is refused
                with pytest.raises(InputError, match=r"M05\.FR\.09"):
                    await rig.engine.start_campaign(CampaignKind.ROLLOVER, CampaignOptions(),
                                                    {**detail, "cross_certificate": pem_of(make_root("New CSMS Root",
                                                     key=new_key)[0]), "old_root": pem_of(old)})
                dry = await rig.engine.start_campaign(CampaignKind.ROLLOVER, CampaignOptions(dry_run=True), detail)
                by = {i["station"]: i for i in dry["stations"]}
                assert set(by) == {"CS-CHECK", "CS-16", "CS-NO", "CS-SILENT"} and dry["ready"] == 3
                assert by["CS-SILENT"]["missing"] == ["not connected (waits until it connects)"]
                assert by["CS-16"]["send"]["InstallCertificate"]["certificateType"] == "CentralSystemRootCertificate"
                assert by["CS-CHECK"]["send"]["InstallCertificate"]["certificateType"] == "CSMSRootCertificate"
                assert rig.engine.summaries() == []
                started = await rig.engine.start_campaign(CampaignKind.ROLLOVER, CampaignOptions(max_attempts=3), detail)
                cid = started["id"]
                rows = {s: await rig.engine.wait_row(cid, s, DONE, timeout=20) for s in ("CS-CHECK", "CS-16", "CS-NO")}
                assert rows["CS-CHECK"].state is RowState.DONE and rows["CS-16"].state is RowState.DONE, rows
                refused = rows["CS-NO"]
                assert refused.state is RowState.FAILED and refused.attempts == 1  # reported, not retried
                assert "InstallCertificate Rejected" in (refused.reason or "")
                assert rig.engine.rows(cid)[-1].state is RowState.PENDING  # CS-SILENT: listed, waiting
                # the checking station got the new-by-old certificate and keeps the old as fallback; the 1.6
                # station (no AdditionalRootCertificateCheck) the self-signed root beside the old one
                assert [c.fingerprint(_sha()) for c in checking.store.roots(RootType.CSMS)] == [cross.fingerprint(_sha())]
                assert {c.fingerprint(_sha()) for c in v16.store.roots(RootType.CSMS)} == {
                    old.fingerprint(_sha()), new.fingerprint(_sha())}
                # retiring the old root is refused while a station lacks the new one ...
                with pytest.raises(PolicyError, match="not confirmed to hold the new root") as refused_retire:
                    await rig.engine.start_campaign(CampaignKind.RETIRE, CampaignOptions(), detail)
                assert {v.message for v in refused_retire.value.violations} == {
                    "station CS-NO lacks the new root", "station CS-SILENT lacks the new root"}
                # ... and done for the stations that hold it
                retire = await rig.engine.start_campaign(
                    CampaignKind.RETIRE, CampaignOptions(stations=("CS-16",)), detail)
                row = await rig.engine.wait_row(retire["id"], "CS-16", DONE, timeout=20)
                assert row.state is RowState.DONE, row
                assert [c.fingerprint(_sha()) for c in v16.store.roots(RootType.CSMS)] == [new.fingerprint(_sha())]
                for s in (checking, v16, refusing):
                    await s.disconnect()
            finally:
                await rig.engine.close()
            assert gateway_frames_upstream(upstream) == []

    try:
        run(main(), timeout=60)
    finally:
        rig.close()


def test_rollover_then_the_server_certificate_switch_drops_no_one(pki: Pki, ca_dir: Path, tmp_path: Path) -> None:
    """The operator's whole rollover: the gateway serves a certificate under the old root; the campaign installs
    the new root on every station (one refuses); the gateway's server certificate is switched to one under the
    new root while the stations stay connected (they keep relaying); a station that took the new root reconnects
    and verifies the new certificate with it; the one that refused cannot (which is why retiring waits)."""
    old, old_key = make_root("Old CSMS Root")
    new, new_key = make_root("New CSMS Root")
    detail = {"certificate": pem_of(new), "old_root": pem_of(old)}
    registry = registry_of("CS-A", "CS-B", "CS-NO")
    rig = make_rig(pki, ca_dir, registry, tmp_path, server_chains=[server_chain((old, old_key), tmp_path, "old")])
    a = SimStation("CS-A", OcppVersion.V201, rig.ca, pki, tmp_path, csms_roots=[old], trust_installed_roots=True)
    b = SimStation("CS-B", OcppVersion.V16, rig.ca, pki, tmp_path, csms_roots=[old], trust_installed_roots=True)
    refusing = SimStation("CS-NO", OcppVersion.V201, rig.ca, pki, tmp_path, csms_roots=[old], cls=Refusing201,
                          trust_installed_roots=True)
    switched = server_context([server_chain((new, new_key), tmp_path, "new")], client_roots=[tmp_path / "station-ca.pem"],
                              client_cert="required")

    async def main() -> None:
        async with recording_csms(rig.up) as upstream, rig.gw.serve("127.0.0.1", rig.port):
            await rig.engine.start()
            try:
                for s in (a, b, refusing):
                    await s.connect(rig.port)
                cid = (await rig.engine.start_campaign(CampaignKind.ROLLOVER, CampaignOptions(max_attempts=3),
                                                       detail))["id"]
                rows = {s: await rig.engine.wait_row(cid, s, DONE, timeout=20) for s in ("CS-A", "CS-B", "CS-NO")}
                assert rows["CS-A"].state is RowState.DONE and rows["CS-B"].state is RowState.DONE, rows
                assert rows["CS-NO"].state is RowState.FAILED, rows
                connections = {s.identity: s.conn for s in (a, b, refusing)}
                rig.gw.set_ssl_context(switched)  # what SIGHUP does with the new --server-cert files
                for s in (a, b, refusing):  # no one was dropped: the same connections relay on
                    assert s.conn is connections[s.identity]
                    await s.heartbeat()
                for s in (a, b):  # the new certificate, verified with the root the campaign installed
                    await s.disconnect()
                    await s.connect(rig.port)
                    await s.heartbeat()
                await refusing.disconnect()
                with pytest.raises(CsmsConnectionError):
                    await refusing.connect(rig.port)
                for s in (a, b):
                    await s.disconnect()
            finally:
                await rig.engine.close()
            assert gateway_frames_upstream(upstream) == []

    try:
        run(main(), timeout=60)
    finally:
        rig.close()


def _sha() -> Any:
    from cryptography.hazmat.primitives import hashes

    return hashes.SHA256()
