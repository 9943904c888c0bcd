"""The station registry contract over memory, SQLite and PostgreSQL; two gateway processes sharing one registry."""

from __future__ import annotations

import json
import multiprocessing
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from ocppsec.cli.main import cli
from ocppsec.pki.errors import DuplicateError, NotFoundError, StoreError, UsageError
from ocppsec.pki.storage import Dialect
from ocppsec.security_profiles.basic_auth import hash_password, password_matches
from ocppsec.security_profiles.client import CsmsConnectionError, connect
from ocppsec.security_profiles.registry import (
    MemoryRegistry,
    StationRecord,
    StationRegistry,
    confirm_password,
    discard_pending_password,
    set_pending_password,
)
from ocppsec.security_profiles.registry_sql import open_registry

from .conftest import FAST, free_port
from .helpers import run
from .test_cli import _wait_port
from .test_gateway import raw_upstream

OLD, NEW = "old-password-000001", "new-password-000002"






@pytest.fixture(params=["sqlite", "postgres"])
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """What ``--stations`` / ``open_registry`` takes: a SQLite path or a PostgreSQL URL."""
    return str(tmp_path / "stations.db") if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def reg(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StationRegistry]:
    if request.param == "memory":
        yield MemoryRegistry()
        return
    store = open_registry(tmp_path / "st.db" if request.param == "sqlite" else request.getfixturevalue("pg_url"))
    yield store
    store.close()


def test_contract_crud(reg: StationRegistry) -> None:
    reg.add(StationRecord("CS-1", 2, serial="SN-1", password_hash="h"))
    with pytest.raises(DuplicateError, match="registered already"):
        reg.add(StationRecord("CS-1", 1))
    got = reg.get("CS-1")
    assert got == StationRecord("CS-1", 2, serial="SN-1", password_hash="h")
    assert reg.get("CS-9") is None
    reg.update(replace(got, profile=3, serial=None, pending_profile=2))
    got = reg.get("CS-1")
    assert got is not None and (got.profile, got.serial, got.pending_profile, got.expected_serial) == (3, None, 2, "CS-1")
    assert got.accepted_profiles == {2, 3}
    with pytest.raises(NotFoundError, match="not registered"):
        reg.update(StationRecord("CS-9", 1))
    reg.remove("CS-1")
    assert reg.get("CS-1") is None
    with pytest.raises(NotFoundError):
        reg.remove("CS-1")


def test_contract_downgrade_switch_and_network_slots(reg: StationRegistry) -> None:
    from ocppsec.security_profiles.registry import NetworkProfiles, NetworkSlot

    reg.add(StationRecord("CS-1", 2, password_hash="h"))
    assert reg.get("CS-1") == StationRecord("CS-1", 2, password_hash="h", allow_downgrade=False)
    network = NetworkProfiles((2, 1), (NetworkSlot(1, 2), NetworkSlot(2, 3), NetworkSlot(7, 2, "CS-1-alt", "slot-hash")))
    reg.update(replace(reg.get("CS-1"), allow_downgrade=True, network=network))  # type: ignore[arg-type]
    got = reg.get("CS-1")
    assert got is not None and got.allow_downgrade and got.network == network and got.network.first_profile == 3
    assert "slot-hash" not in repr(got)
    reg.update(replace(got, network=NetworkProfiles()))
    assert reg.get("CS-1") == StationRecord("CS-1", 2, password_hash="h", allow_downgrade=True)
    with pytest.raises(UsageError, match="unique and sorted"):
        NetworkProfiles((), (NetworkSlot(2), NetworkSlot(1)))


def test_unreadable_network_column_is_a_store_error(tmp_path: Path) -> None:
    import sqlite3

    reg = open_registry(tmp_path / "st.db")
    reg.add(StationRecord("CS-1", 2))
    with sqlite3.connect(tmp_path / "st.db") as conn:
        conn.execute("""UPDATE registry_stations SET network = '{"slots":[{"slot":"x"}]}'""")
    with pytest.raises(StoreError, match="network slots of station 'CS-1'"):
        reg.get("CS-1")
    reg.close()


def test_contract_list_is_sorted_by_code_point(reg: StationRegistry) -> None:
    for identity in ("cs-1", "CS-b", "CS-A", "CS-10", "CS-2", "_x"):
        reg.add(StationRecord(identity, 3))
    assert [r.identity for r in reg.list()] == sorted(["cs-1", "CS-b", "CS-A", "CS-10", "CS-2", "_x"])


def test_contract_rotation_a01(reg: StationRegistry) -> None:
    reg.add(StationRecord("CS-1", 2, password_hash=hash_password(OLD, cost=FAST)))
    set_pending_password(reg, "CS-1", hash_password(NEW, cost=FAST))
    rec = reg.get("CS-1")
    assert rec is not None and len(rec.password_hashes) == 2
    confirm_password(reg, "CS-1")
    rec = reg.get("CS-1")
    assert rec is not None and rec.password_hashes == (rec.password_hash,) and rec.password_hash
    assert password_matches(rec.password_hash, NEW.encode()) and not password_matches(rec.password_hash, OLD.encode())
    set_pending_password(reg, "CS-1", hash_password("third-password-0003", cost=FAST))
    discard_pending_password(reg, "CS-1")
    rec = reg.get("CS-1")
    assert rec is not None and rec.pending_password_hash is None and password_matches(rec.password_hash or "", NEW.encode())
    with pytest.raises(NotFoundError):
        set_pending_password(reg, "CS-9", "h")


def test_open_registry_selects_by_spec(tmp_path: Path, pg_url: str) -> None:
    sqlite = open_registry(f"sqlite://{tmp_path / 'a.db'}")
    assert sqlite.dialect is Dialect.SQLITE and (tmp_path / "a.db").exists()
    pg = open_registry(pg_url)
    assert pg.dialect is Dialect.POSTGRES and pg.schema_version() == 3
    for store in (sqlite, pg):
        store.close()
    with pytest.raises(UsageError, match="unsupported station registry URL"):
        open_registry("mysql://x")
    with pytest.raises(StoreError, match="cannot connect to the station registry") as info:
        open_registry(f"postgresql://postgres:s3cret@/nope?host={tmp_path}")
    assert "s3cret" not in str(info.value)


def test_pg_rejects_bad_rows_and_newer_schemas(pg_url: str) -> None:
    reg = open_registry(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO registry_stations (identity, profile) VALUES ('CS-1', 4)")
        conn.execute("UPDATE ocppsec_schema SET version = 7 WHERE component = 'registry'")
    reg.close()
    with pytest.raises(StoreError, match="newer than this ocppsec"):
        open_registry(pg_url)


def _writer(spec: str, start: int) -> None:
    reg = open_registry(spec)
    for i in range(start, start + 40):
        reg.add(StationRecord(f"CS-{i}", 3, serial=f"SN-{i}"))
    reg.close()


def test_shared_by_several_processes(spec: str) -> None:
    open_registry(spec).close()
    procs = [multiprocessing.get_context("spawn").Process(target=_writer, args=(spec, n * 100)) for n in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    reg = open_registry(spec)
    assert len(reg.list()) == 120 and reg.get("CS-239") is not None
    reg.close()


def _cli(*args: str, env: dict[str, str] | None = None) -> str:
    result = CliRunner().invoke(cli, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.output


def test_two_gateways_share_one_registry(spec: str) -> None:
    """A01 through two gateway processes: the rotation confirmed through one is what the other enforces."""
    _cli("stations", "add", "CS-2", "--profile", "1", "--password-from-env", "PW", "--stations", spec, env={"PW": OLD})
    up = free_port()
    ports = [free_port(), free_port()]
    procs = [subprocess.Popen([sys.executable, "-m", "ocppsec.cli.main", "gateway", "--listen", f"127.0.0.1:{port}",
                               "--profile", "1", "--upstream", f"ws://127.0.0.1:{up}/csms", "--stations", spec],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for port in ports]
    try:
        for port, proc in zip(ports, procs, strict=True):
            _wait_port(port, proc)
        a, b = (f"ws://127.0.0.1:{port}/" for port in ports)

        async def login(url: str, password: str) -> bool:
            try:
                c = await connect(url, "CS-2", profile=1, password=password)
            except CsmsConnectionError as exc:
                print(f"login to {url} refused: {exc}")  # shown by pytest if the test fails
                return False
            await c.send('[2,"1","Heartbeat",{}]')
            assert await c.recv() == '[2,"1","Heartbeat",{}]'
            await c.close()
            return True

        async def main() -> None:
            async with raw_upstream(up):
                assert await login(a, OLD) and await login(b, OLD)
                # the CSMS starts a rotation (SetVariables BasicAuthPassword) on another node, through the CLI
                _cli("stations", "set-password", "CS-2", "--pending", "--password-from-env", "PW", "--stations", spec,
                     env={"PW": NEW})
                assert await login(b, OLD)  # not confirmed yet: the old password still works (A01.FR.04)
                assert await login(a, NEW)  # first login with the new one confirms it (A01.FR.03)...
                assert not await login(b, OLD)  # ...and the other gateway no longer takes the old one
                assert await login(b, NEW)
                if spec.startswith("postgresql://"):
                    with psycopg.connect(spec, autocommit=True) as admin:  # the server drops every connection
                        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                      "WHERE datname = current_database() AND pid <> pg_backend_pid()")
                    assert await login(a, NEW) and not await login(b, OLD)  # both reconnect transparently

        run(main(), timeout=60)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        errs = [proc.communicate(timeout=15)[1] for proc in procs]
        for port, err in zip(ports, errs, strict=True):
            print(f"gateway on {port}, its log:\n{err[-4000:]}")  # shown by pytest if the test fails
    assert [proc.returncode for proc in procs] == [0, 0], errs
    listed = json.loads(_cli("stations", "list", "--stations", spec, "--json"))
    assert listed == [{"identity": "CS-2", "profile": 1, "pendingProfile": None, "serial": "CS-2", "password": True,
                       "pendingPassword": False, "allowProfileDowngrade": False, "networkPriority": [], "slots": []}]
