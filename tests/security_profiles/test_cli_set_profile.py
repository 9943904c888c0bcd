"""``ocppsec stations set-profile / show / update``: a station moves from profile 2 to 3 without losing its password,
and connects at 3 through serve() afterwards (real TLS on 127.0.0.1, the SQLite registry the CLI wrote)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ocppsec.cli.main import cli
from ocppsec.pki.errors import PolicyError
from ocppsec.pki.events.sink import MemorySink
from ocppsec.security_profiles.client import CsmsConnectionError, connect
from ocppsec.security_profiles.registry_sql import open_registry

from .conftest import PASSWORD_201, Pki
from .helpers import run, running
from .test_profiles_loopback import roundtrip


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.output


@pytest.mark.parametrize("pending", [True, False])
def test_set_profile_keeps_the_password_and_the_station_connects_at_3(pending: bool, pki: Pki, sink: MemorySink,
                                                                     port: int, tmp_path: Path) -> None:
    db = str(tmp_path / "st.db")
    assert invoke("stations", "add", "CS-7", "--password-from-env", "PW", "--stations", db, env={"PW": PASSWORD_201})[0] == 0
    before = open_registry(db).get("CS-7")
    assert before is not None and before.password_hash
    code, out = invoke("stations", "update", "CS-7", "--serial", "SN-0007", "--stations", db)
    assert code == 0 and "serial SN-0007" in out, out
    args = ["stations", "set-profile", "CS-7", "3", "--stations", db, "--json"] + (["--pending"] if pending else [])
    code, out = invoke(*args)
    assert code == 0, out
    shown = json.loads(out)
    assert (shown["profile"], shown["pendingProfile"], shown["password"]) == ((2, 3, True) if pending else (3, None, True))
    after = open_registry(db).get("CS-7")
    assert after is not None and after.password_hash == before.password_hash  # the password stays
    registry = open_registry(db)
    url = f"wss://localhost:{port}/"

    async def main() -> None:
        async with running({2, 3}, registry, sink, pki, port):
            if pending:  # until it connects at 3, the station still gets in with its password
                c = await connect(url, "CS-7", profile=2, password=PASSWORD_201, csms_roots=[pki.csms_root])
                assert (await roundtrip(c)).startswith("CS-7|2|")
            c = await connect(url, "CS-7", profile=3, csms_roots=[pki.csms_root], client_chain=pki.station("SN-0007"))
            assert (await roundtrip(c)).startswith("CS-7|3|")
            with pytest.raises(CsmsConnectionError, match="403"):  # from now on only profile 3 (A05.FR.07)
                await connect(url, "CS-7", profile=2, password=PASSWORD_201, csms_roots=[pki.csms_root])

    run(main())
    final = open_registry(db).get("CS-7")
    assert final is not None and (final.profile, final.pending_profile) == (3, None)
    assert final.password_hash == before.password_hash
    code, out = invoke("stations", "show", "CS-7", "--stations", db)
    assert code == 0 and "profile:          3" in out and "password:         set" in out and "SN-0007" in out


def test_set_profile_refusals_name_the_requirement(tmp_path: Path) -> None:
    db = str(tmp_path / "st.db")
    assert invoke("stations", "add", "CS-8", "--profile", "3", "--stations", db)[0] == 0
    assert invoke("stations", "set-profile", "CS-8", "2", "--stations", db)[0] != 0
    record = open_registry(db).get("CS-8")
    assert record is not None and record.profile == 3
    # through main(): one line with the requirement and what to do
    def cli_run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ocppsec.cli.main", *args, "--stations", db], capture_output=True,
                              text=True, check=False, timeout=60)

    proc = cli_run("stations", "set-profile", "CS-8", "2")
    assert proc.returncode == 1 and "[A05.FR.10]" in proc.stderr and "--allow-downgrade" in proc.stderr, proc.stderr
    proc = cli_run("stations", "set-profile", "CS-8", "2", "--allow-downgrade")
    assert proc.returncode == 1 and "[A00.FR.205]" in proc.stderr and "set-password" in proc.stderr, proc.stderr
    proc = cli_run("stations", "set-profile", "CS-8", "1", "--allow-downgrade")
    assert proc.returncode == 1 and "[A05.FR.09]" in proc.stderr, proc.stderr
    proc = cli_run("stations", "set-profile", "CS-8", "3")
    assert proc.returncode == 2 and "already" in proc.stderr, proc.stderr
    proc = cli_run("stations", "set-profile", "CS-8", "2", "--ocpp-version", "1.6", "--allow-downgrade")
    assert proc.returncode == 1 and "[A05.FR.01]" in proc.stderr, proc.stderr
    proc = cli_run("stations", "show", "ghost")
    assert proc.returncode == 1 and "not registered" in proc.stderr
    proc = cli_run("stations", "update", "CS-8")
    assert proc.returncode == 2 and "nothing to update" in proc.stderr
    record = open_registry(db).get("CS-8")
    assert record is not None and record.profile == 3 and record.pending_profile is None


def test_set_profile_follows_the_recorded_downgrade_switch(tmp_path: Path) -> None:
    """3 -> 2 is decided by the registry's AllowSecurityProfileDowngrade (what `stations add
    --allow-profile-downgrade`, `stations profile-downgrade` and the gateway's follower write);
    ``--allow-downgrade`` records it with the change, a refused change records nothing."""
    from dataclasses import replace

    from ocppsec.security_profiles.registry import NetworkProfiles, NetworkSlot

    db = str(tmp_path / "st.db")
    env = {"PW": PASSWORD_201}
    assert invoke("stations", "add", "CS-9", "--profile", "3", "--password-from-env", "PW", "--allow-profile-downgrade",
                  "--stations", db, env=env)[0] == 0
    code, out = invoke("stations", "set-profile", "CS-9", "2", "--stations", db, "--json")
    assert code == 0, out
    assert (json.loads(out)["profile"], json.loads(out)["allowProfileDowngrade"]) == (2, True)
    # a station whose switch is off: refused without the flag, allowed and recorded with it
    assert invoke("stations", "add", "CS-10", "--profile", "3", "--password-from-env", "PW", "--stations", db,
                  env=env)[0] == 0
    def refusal(*args: str) -> list[str]:
        result = CliRunner().invoke(cli, ["stations", "set-profile", *args, "--stations", db])
        assert isinstance(result.exception, PolicyError), result.output
        return [v.requirement for v in result.exception.violations]

    assert refusal("CS-10", "2") == ["A05.FR.10"]
    assert refusal("CS-10", "1", "--allow-downgrade") == ["A05.FR.09"]
    record = open_registry(db).get("CS-10")
    assert record is not None and (record.profile, record.allow_downgrade) == (3, False)  # refused: nothing written
    code, out = invoke("stations", "set-profile", "CS-10", "2", "--allow-downgrade", "--pending", "--stations", db)
    assert code == 0, out
    record = open_registry(db).get("CS-10")
    assert record is not None and (record.profile, record.pending_profile, record.allow_downgrade) == (3, 2, True)
    # show prints the switch and the network slots the follower keeps
    registry = open_registry(db)
    registry.update(replace(record, network=NetworkProfiles((1,), (NetworkSlot(1, 2, "cs10-slot1", "h"),))))
    code, out = invoke("stations", "show", "CS-10", "--stations", db)
    assert code == 0 and "downgrade 3 -> 2: allowed" in out and "network priority: 1" in out, out
    assert "slot 1: profile 2, username cs10-slot1, its own password" in out and "h\n" not in out, out
    code, out = invoke("stations", "show", "CS-10", "--stations", db, "--json")
    shown = json.loads(out)
    assert shown["slots"] == [{"slot": 1, "profile": 2, "username": "cs10-slot1", "password": True}], shown
