"""Campaigns driven through the admin listener: the routes, ``ocppsec campaign start|status|stop|resume
--gateway URL`` (real subprocesses against a real gateway), the Bearer token of the POST routes, and the
campaign metrics."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from ocppsec.pki.lifecycle.campaign import RowState
from ocppsec.pki.versions import OcppVersion
from ocppsec.security_profiles.gateway.admin import AdminAddress, AdminRoutes, AdminServer
from ocppsec.security_profiles.gateway.campaigns.routes import add_campaign_routes
from ocppsec.security_profiles.gateway.metrics import GatewayMetrics

from .campaign_rig import SimStation, init_ca, make_rig, recording_csms, registry_of
from .conftest import Pki
from .helpers import run

TOKEN = "campaign-admin-token-123"


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("campaign-admin-ca") / "pki"
    init_ca(path)
    return path


async def cli(*args: str, token: str | None = TOKEN) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OCPPSEC_ADMIN_TOKEN"}
    if token is not None:
        env["OCPPSEC_ADMIN_TOKEN"] = token
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "ocppsec.cli.main", "campaign", *args,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                stdin=asyncio.subprocess.DEVNULL, env=env)
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def test_campaign_cli_through_the_admin_listener(pki: Pki, ca_dir: Path, tmp_path: Path) -> None:
    rig = make_rig(pki, ca_dir, registry_of("CS-A1", "CS-A2"), tmp_path)
    stations = [SimStation(i, OcppVersion.V201, rig.ca, pki, tmp_path, validity_days=20) for i in ("CS-A1", "CS-A2")]

    async def main() -> None:
        routes = AdminRoutes()
        add_campaign_routes(routes, rig.engine, token=TOKEN)
        async with recording_csms(rig.up), rig.gw.serve("127.0.0.1", rig.port), \
                AdminServer(routes, AdminAddress(host="127.0.0.1", port=0)) as admin:
            assert admin.bound is not None
            url = f"http://127.0.0.1:{admin.bound.port}"
            await rig.engine.start()
            try:
                await stations[0].connect(rig.port)  # CS-A2 stays away
                # dry run: per station what would be sent and what is missing
                code, out, err = await cli("start", "renew", "--gateway", url, "--dry-run", "--json")
                assert code == 0, err
                report = json.loads(out)
                assert report["dry_run"] and report["total"] == 1 and report["ready"] == 1
                (item,) = report["stations"]
                assert item["station"] == "CS-A1" and "TriggerMessage" in item["send"] and item["missing"] == []
                assert rig.engine.summaries() == []  # a dry run starts nothing
                # the same for a station that is not connected (its certificate is known from the handshake only
                # once it has connected: it is not selected by expiry)
                code, out, _ = await cli("start", "renew", "--gateway", url, "--dry-run", "--station", "CS-A2",
                                         "--force")
                assert code == 0 and "CS-A2" in out and "not connected" in out, out
                # without the token: refused, one line
                code, _, err = await cli("start", "renew", "--gateway", url, token=None)
                assert code == 1 and "admin token" in err and "Traceback" not in err
                # bad options: the gateway's refusal, exit 1
                code, _, err = await cli("start", "rollover", "--gateway", url, "--certificate", str(pki.csms_root),
                                         "--root-check", "cross", "--cross-certificate", str(pki.csms_root))
                assert code == 1 and "old_root" in err, err
                code, _, err = await cli("start", "renew", "--gateway", url, "--certificate", str(pki.csms_root))
                assert code == 2 and "rollover and retire" in err
                # start, stop, resume
                code, out, err = await cli("start", "renew", "--gateway", url, "--max-in-flight", "5",
                                           "--cert-signing-wait-minimum", "30", "--cert-signing-repeat-times", "2")
                assert code == 0 and "1 station(s)" in out, (out, err)
                cid = out.split()[1]
                row = await rig.engine.wait_row(cid, "CS-A1", frozenset({RowState.AWAITING_RECONNECT}), timeout=20)
                assert row.expected is not None
                code, out, _ = await cli("stop", cid, "--gateway", url)
                assert code == 0 and "stopped" in out
                code, out, _ = await cli("resume", cid, "--gateway", url)
                assert code == 0 and "running" in out
                await stations[0].disconnect()
                await stations[0].connect(rig.port)
                await rig.engine.wait_finished(cid, timeout=20)
                code, out, _ = await cli("status", "--gateway", url, "--json")
                assert code == 0
                (summary,) = json.loads(out)["campaigns"]
                assert summary["id"] == cid and summary["status"] == "done" and summary["progress"]["done"] == 1
                assert summary["options"]["station_wait_minimum"] == 30
                code, out, _ = await cli("status", cid, "--gateway", url)
                assert code == 0 and "1 done, 0 failed of 1" in out and "CS-A1" in out and "done" in out
                code, out, _ = await cli("status", cid, "--gateway", url, "--json")
                assert [s["state"] for s in json.loads(out)["stations"]] == ["done"]
                code, _, err = await cli("status", "renew-nope", "--gateway", url)
                assert code == 1 and "no campaign" in err
                code, _, err = await cli("status", "--gateway", "http://127.0.0.1:1")
                assert code == 3 and "no gateway admin listener" in err
                # metrics
                metrics = GatewayMetrics()
                metrics.sync(rig.gw)
                text = metrics.render().decode()
                assert f'ocppsec_gateway_campaign_stations{{campaign="{cid}",kind="renew",state="done"}} 1.0' in text
                assert 'ocppsec_gateway_campaign_finished_total{kind="renew",outcome="done"} 1.0' in text
                assert "ocppsec_gateway_campaign_calls_total 1.0" in text
                await stations[0].disconnect()
            finally:
                await rig.engine.close()

    try:
        run(main(), timeout=120)
    finally:
        rig.close()


def test_gateway_cli_runs_a_renewal_across_a_restart(pki: Pki, ca_dir: Path, tmp_path: Path) -> None:
    """``ocppsec gateway --sign-csrs --campaigns DB``: a renewal started with ``ocppsec campaign start``, the gateway
    stopped (SIGTERM) once the station holds its new certificate, started again on the same record: the
    station's reconnect with the new certificate completes the campaign without a second trigger."""
    import signal
    import subprocess

    from ocppsec.pki.directory import PkiDirectory
    from ocppsec.pki.pem import certificates_to_pem
    from ocppsec.security_profiles.registry import StationRecord
    from ocppsec.security_profiles.registry_sql import open_registry

    from .campaign_rig import PKI_PASS
    from .conftest import CSO, free_port
    from .test_cli import _wait_port

    db = tmp_path / "st.db"
    reg = open_registry(db)
    reg.add(StationRecord("CS-R", 3, serial="CS-R"))
    reg.close()
    ca = PkiDirectory.open(ca_dir, PKI_PASS)
    trust = tmp_path / "station-ca.pem"
    trust.write_text(certificates_to_pem([ca.ca_certificate("csms-root")]))
    station = SimStation("CS-R", OcppVersion.V201, ca, pki, tmp_path, validity_days=20)
    port, up, admin_port = free_port(), free_port(), free_port()
    url = f"http://127.0.0.1:{admin_port}"
    argv = [sys.executable, "-m", "ocppsec.cli.main", "gateway", "--listen", f"127.0.0.1:{port}", "--profile", "3",
            "--upstream", f"ws://127.0.0.1:{up}/csms", "--server-cert", str(pki.rsa.certfile), "--server-key",
            str(pki.rsa.keyfile), "--server-cert", str(pki.ecdsa.certfile), "--server-key", str(pki.ecdsa.keyfile),
            "--trust", str(trust), "--cso-name", CSO, "--stations", str(db), "--sign-csrs", "--pki", str(ca_dir),
            "--ca", "csms-root", "--inventory", str(tmp_path / "inv.db"), "--campaigns", str(tmp_path / "camp.db"),
            "--admin", f"127.0.0.1:{admin_port}"]
    env = {**os.environ, "OCPPSEC_PASSPHRASE": PKI_PASS.decode()}

    def start_gateway() -> subprocess.Popen[str]:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                stdin=subprocess.DEVNULL)
        _wait_port(port, proc)
        _wait_port(admin_port, proc)
        return proc

    def stop_gateway(proc: subprocess.Popen[str]) -> str:
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:  # the stall report (stacks, 20 s after SIGTERM) says where it hung
            proc.kill()
            _, err = proc.communicate()
            raise AssertionError(f"the gateway did not exit 30 s after SIGTERM; its stderr:\n{err}") from None
        assert proc.returncode == 0, err
        return err

    async def main() -> None:
        async with recording_csms(up) as upstream:
            proc = await asyncio.to_thread(start_gateway)
            try:
                await station.connect(port)
                code, out, err = await cli("start", "renew", "--gateway", url, "--within-days", "30")
                assert code == 0 and "1 station(s)" in out, (out, err)
                cid = out.split()[1]
                await asyncio.wait_for(station.cp.renewed.wait(), 30)  # CertificateSigned stored by the station
                await station.heartbeat()  # its answer to CertificateSigned went out before this call
            finally:
                await asyncio.to_thread(stop_gateway, proc)
            await station.disconnect()
            proc = await asyncio.to_thread(start_gateway)
            try:
                await station.connect(port)  # with the renewed certificate (A02.FR.08)
                assert station.presented is not None and station.presented.role.value == "renewed"
                code, out, _ = await cli("status", cid, "--gateway", url, "--json")
                assert code == 0
                answer = json.loads(out)
                assert answer["status"] == "done" and [s["state"] for s in answer["stations"]] == ["done"], answer
                assert answer["stations"][0]["attempts"] == 1  # no second trigger after the restart
                await station.disconnect()
            finally:
                await asyncio.to_thread(stop_gateway, proc)
            sent = [f[2] for d, _i, f in upstream.frames if d == "in" and f[0] == 2]
            assert sent == ["BootNotification", "Heartbeat", "BootNotification"], sent

    try:
        run(main(), timeout=120)
    finally:
        ca.close()


def test_cli_usage_of_campaigns_and_onboarding(tmp_path: Path) -> None:
    """The option combinations ``ocppsec gateway`` refuses (exit 2, one line) and the registry's onboarding field
    through ``ocppsec stations``."""
    import subprocess

    def ocppsec(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ocppsec.cli.main", *args], capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})

    db = str(tmp_path / "st.db")
    base = ["gateway", "--listen", "127.0.0.1:0", "--profile", "1", "--upstream", "ws://127.0.0.1:1/x", "--stations", db]
    for extra, words in ((["--campaigns", str(tmp_path / "c.db"), "--workers", "2"], "--workers"),
                         (["--campaigns", str(tmp_path / "c.db"), "--admin", "off"], "--admin off"),
                         (["--campaigns", str(tmp_path / "c.db"), "--admin", "0.0.0.0:9"], "--admin-token-env"),
                         (["--admin-token-env", "OCPPSEC_TEST_UNSET_TOKEN"], "not set"),
                         (["--onboarding"], "--onboarding needs profile 3"),
                         (["--manufacturer-root", "x.pem"], "only makes sense with --onboarding")):
        proc = ocppsec(*base, *extra)
        assert proc.returncode == 2 and words in proc.stderr and "Traceback" not in proc.stderr, (extra, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) <= 2
    checked = ocppsec(*base, "--campaigns", str(tmp_path / "nowhere" / "c.db"), "--check-config")
    assert checked.returncode == 2 and "--campaigns" in checked.stderr and "does not exist" in checked.stderr
    checked = ocppsec(*base, "--campaigns", str(tmp_path / "c.db"), "--check-config")
    assert checked.returncode == 0 and f"--campaigns {tmp_path / 'c.db'}" in checked.stdout, checked.stderr
    assert ocppsec("stations", "add", "CS-9", "--profile", "3", "--onboarding", "expired,factory",
                   "--stations", db).returncode == 0
    bad = ocppsec("stations", "add", "CS-8", "--profile", "3", "--onboarding", "sometimes", "--stations", db)
    assert bad.returncode == 2 and "expired, factory" in bad.stderr
    listed = json.loads(ocppsec("stations", "list", "--stations", db, "--json").stdout)
    assert listed[0]["onboarding"] == ["expired", "factory"]
    changed = ocppsec("stations", "onboarding", "CS-9", "none", "--stations", db)
    assert changed.returncode == 0 and "onboarding none" in changed.stdout
    listed = json.loads(ocppsec("stations", "list", "--stations", db, "--json").stdout)
    assert "onboarding" not in listed[0]
