"""``ocppsec gateway`` with revocation options: usage errors, and the command end to end in its own process (a CRL
file, the ledger of ``--pki``, ``ocppsec pki revoke`` and ``ocppsec stations remove`` while stations are connected)."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ocppsec.eventlog.store import EventQuery
from ocppsec.eventlog.store_sql import open_store

from .conftest import Pki, free_port
from .fleet import Fleet, build_template, closed_within, open_fleet, refused, station_connects
from .helpers import run
from .test_cli import _wait_port, invoke
from .test_gateway import raw_upstream

GATEWAY = [sys.executable, "-m", "ocppsec.cli.main", "gateway"]


def _base(pki: Pki, port: int = 1, profile: str = "3") -> list[str]:
    return [*GATEWAY, "--listen", f"127.0.0.1:{port}", "--upstream", "ws://127.0.0.1:9/csms", "--profile", profile,
            "--server-cert", str(pki.rsa.certfile), "--server-key", str(pki.rsa.keyfile), "--server-cert",
            str(pki.ecdsa.certfile), "--server-key", str(pki.ecdsa.keyfile), "--trust", str(pki.cso_root),
            "--cso-name", "Example CSO"]


def test_revocation_options_are_checked(pki: Pki, tmp_path: Path, fleet_template: Path) -> None:
    not_a_crl = tmp_path / "junk.crl"
    not_a_crl.write_text("not a CRL")
    stations = str(tmp_path / "st.db")
    cases = [
        (["--profile", "2", "--crl", str(not_a_crl)], "need profile 3"),
        (["--revocation-fail", "open"], "needs a revocation source"),
        (["--crl", str(tmp_path / "missing.crl")], "does not exist"),  # a file-system failure: exit 3
        (["--crl", "ftp://crl.example/x.crl"], "neither a file nor an http(s) URL"),
        (["--ocsp", "ocsp.example"], "neither auto nor an http(s) URL"),
        (["--profile", "2", "--pki", str(fleet_template)], "only profile 3 has"),
        (["--ca", "csms-root", "--pki", str(fleet_template)], "only make sense with --sign-csrs"),
        (["--crl", str(not_a_crl)], "--crl: not a CRL"),
        (["--pki", str(fleet_template)], "holds no CA under the trusted roots"),  # --trust names another hierarchy
        (["--ocsp-timeout", "0"], "--ocsp-timeout"),
        (["--crl", str(not_a_crl), "--ocsp-max-age", "60"], "need --ocsp auto|URL"),
    ]
    for extra, message in cases:
        args = _base(pki) + extra + ["--stations", stations]
        if "--profile" in extra:
            i = args.index("--profile")
            del args[i:i + 2]  # the case's own --profile
        proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
        assert proc.returncode == (3 if message == "does not exist" else 2), (extra, proc.stderr)
        assert message in proc.stderr, (extra, proc.stderr)
        assert "Traceback" not in proc.stderr


def test_gateway_command_enforces_revocation(pki: Pki, fleet_template: Path, tmp_path: Path) -> None:
    target = tmp_path / "pki"
    shutil.copytree(fleet_template, target)
    fleet: Fleet = open_fleet(target, tmp_path)
    revoked, revoked_later, removed = fleet.station("cli-crl"), fleet.station("cli-ledger"), fleet.station("cli-removed")
    fleet.revoke(revoked)
    crl = fleet.write_crl(tmp_path / "root.crl")
    db, events = str(tmp_path / "st.db"), str(tmp_path / "events.db")
    for s in (revoked, revoked_later, removed):
        assert invoke("stations", "add", s.identity, "--profile", "3", "--serial", s.serial, "--stations", db)[0] == 0
    port, up = free_port(), free_port()
    cmd = [*_base(pki, port), "--stations", db, "--events", events, "--crl", str(crl), "--pki", str(target)]
    cmd[cmd.index("--upstream") + 1] = f"ws://127.0.0.1:{up}/csms"
    cmd[cmd.index("--trust") + 1] = str(fleet.root_pem)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    timings: dict[str, float] = {}
    try:
        _wait_port(port, proc)

        async def main() -> None:
            async with raw_upstream(up):
                assert "403" in await refused(pki, port, revoked)  # on the CRL
                a = await station_connects(pki, port, revoked_later)
                b = await station_connects(pki, port, removed)
                code, out = await asyncio.to_thread(invoke, "pki", "revoke", str(target), revoked_later.serial_hex,
                                                    "--reason", "keyCompromise")
                assert code == 0, out
                timings["pki revoke"] = await closed_within(a)
                code, out = await asyncio.to_thread(invoke, "stations", "remove", removed.identity, "--stations", db)
                assert code == 0, out
                timings["stations remove"] = await closed_within(b)
                assert "403" in await refused(pki, port, revoked_later)  # and on the ledger from now on

        run(main(), timeout=60)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
        fleet.pki.close()
    assert proc.returncode == 0, err
    assert "revocation: 1 CRL source(s), ledger (1 revoked), fail-closed" in err
    got = sorted((s.event.station_id, s.event.type, s.event.tech_info) for s in open_store(events).query(EventQuery()))
    assert [(station, type_) for station, type_, _ in got] == sorted([
        (revoked.identity, "InvalidChargingStationCertificate"),  # refused on the CRL
        (revoked_later.identity, "InvalidChargingStationCertificate"),  # closed on the ledger
        (revoked_later.identity, "InvalidChargingStationCertificate"),  # refused on the ledger
        (removed.identity, "FailedToAuthenticateAtCsms"),  # closed: removed from the registry
    ]), got
    infos = [info for _, _, info in got]
    assert any(f"revoked (keyCompromise) by crl {crl}" in i for i in infos)
    assert any(i.startswith(f"certificate serial {revoked_later.serial_hex} revoked (keyCompromise) by ledger") for i in infos)
    print("closed after:", {k: round(v, 2) for k, v in timings.items()})


@pytest.fixture(scope="module")
def fleet_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_template(tmp_path_factory.mktemp("fleet") / "pki", free_port())
