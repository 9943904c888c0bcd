"""`ocppsec demo` end to end, as a new user runs it: one real process on embedded defaults, then what it left
behind (the PKI directory's ledger, the station registry, the event store) checked against its table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ocppsec.eventlog.store import EventQuery
from ocppsec.eventlog.store_sql import open_store
from ocppsec.pki import PkiDirectory, load_certificates
from ocppsec.pki.ledger import CertificateStatus
from ocppsec.security_profiles import open_registry


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, Any]]]:
    """The demo's directory and its rows by step title, from one `ocppsec demo --json` in a fresh directory."""
    cwd = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if k != "OCPPSEC_PASSPHRASE"}
    proc = subprocess.run([sys.executable, "-m", "ocppsec.cli.main", "demo", "--json"], capture_output=True, text=True,
                          env=env, cwd=cwd, check=False, timeout=300)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    steps = json.loads(proc.stdout)["steps"]
    return cwd / "ocppsec-demo", {s["step"]: s for s in steps}


def _events(directory: Path, station: str) -> list[Any]:
    store = open_store(str(directory / "events.db"))
    try:
        return [s.event for s in store.query(EventQuery(station_id=station))]
    finally:
        store.close()


def test_demo_runs_on_embedded_defaults(demo_run: tuple[Path, dict[str, dict[str, Any]]]) -> None:
    directory, rows = demo_run
    assert rows and all(s["status"] == "ok" for s in rows.values())
    assert (directory / "pki" / "ledger.db").is_file()
    assert (directory / "station" / "station.chain.pem").is_file()


def test_demo_gateway_closes_and_refuses_the_revoked_station(demo_run: tuple[Path, dict[str, dict[str, Any]]]) -> None:
    directory, rows = demo_run
    row = rows["gateway: revocation"]
    assert row["status"] == "ok"
    detail = row["detail"]
    assert "Heartbeat answered" in detail
    assert "revoked in the ledger (keyCompromise): closed 1008 (certificate revoked)" in detail
    assert "reconnect refused (the CSMS refused the connection with HTTP 403)" in detail
    # the demo station's own certificate is the one the ledger now lists as revoked
    leaf = load_certificates((directory / "station" / "station.chain.pem").read_bytes())[0]
    pki = PkiDirectory.open(directory / "pki")
    try:
        [record] = pki.ledger.find_serial(format(leaf.serial_number, "x"), "csms-root")
    finally:
        pki.close()
    assert record.station == "CS-DEMO-0001"
    assert record.status is CertificateStatus.REVOKED and record.revocation_reason == "keyCompromise"
    # the gateway recorded the close (the re-check) and the refused reconnect (the handshake, A00.FR.705)
    revoked = [e for e in _events(directory, "CS-DEMO-0001") if e.type == "InvalidChargingStationCertificate"]
    assert len(revoked) == 2, revoked
    assert all(f"serial {record.serial} revoked (keyCompromise) by ledger" in (e.tech_info or "") for e in revoked)
    assert sum("A00.FR.705" in (e.tech_info or "") for e in revoked) == 1
    assert "events.db: 2 InvalidChargingStationCertificate" in detail


def test_demo_gateway_follows_the_password_rotation(demo_run: tuple[Path, dict[str, dict[str, Any]]]) -> None:
    directory, rows = demo_run
    row = rows["gateway: password rotation"]
    assert row["status"] == "ok"
    detail = row["detail"]
    assert "SetVariables(SecurityCtrlr.BasicAuthPassword) to CS-DEMO-0002 (profile 2): Accepted" in detail
    assert "reconnect with the new password admitted, Heartbeat answered" in detail
    assert "old password refused (the CSMS refused the connection with HTTP 401)" in detail
    # the gateway wrote the new password as pending (A01.FR.03), then promoted it at the station's first login
    # with it; the old one was refused by the password check
    events = _events(directory, "CS-DEMO-0002")
    assert [e.type for e in events] == ["ReconfigurationOfSecurityParameters", "FailedToAuthenticateAtCsms"], events
    assert "new Basic-auth password" in (events[0].tech_info or "") and "A01.FR.03" in (events[0].tech_info or "")
    assert "wrong password" in (events[1].tech_info or "")
    registry = open_registry(directory / "stations.db")
    try:
        station = registry.get("CS-DEMO-0002")
    finally:
        registry.close()
    assert station is not None and station.profile == 2
    assert station.password_hash is not None and station.pending_password_hash is None


def test_demo_gateway_runs_a_renewal_campaign(demo_run: tuple[Path, dict[str, dict[str, Any]]]) -> None:
    from ocppsec.pki.lifecycle.campaign import RowState
    from ocppsec.pki.lifecycle.campaign_sql import open_campaigns

    directory, rows = demo_run
    row = rows["gateway: renewal campaign"]
    assert row["status"] == "ok", row
    assert "1 of 1 renewed; the CSMS got 2 connection(s) and 0 frame(s)" in row["detail"]
    record = open_campaigns(directory / "campaigns.db")
    try:
        (campaign,) = record.campaigns()
        (station,) = record.rows(campaign.id)
    finally:
        record.close()
    assert campaign.status.value == "done" and station.station_id == "CS-DEMO-0001" and station.state is RowState.DONE
    # the certificate the station reconnected with is in the ledger, issued to the demo station by the gateway
    pki = PkiDirectory.open(directory / "pki")
    try:
        issued = [r for r in pki.ledger.all() if r.station == "CS-DEMO-0001" and r.fingerprint == station.expected]
    finally:
        pki.close()
    assert len(issued) == 1
