"""Faults every store survives, on SQLite and on PostgreSQL.

- the database goes away and comes back (PostgreSQL restarted; a SQLite file locked by another process
  past the store's timeout): calls in between fail with StoreUnavailableError, the next call after it
  is back succeeds, in the same process, on the same store object;
- two processes opening the same fresh database at the same moment (20 rounds, started together at a
  barrier): no failure, no "table ... already exists";
- a locked or read-only database: a StoreError subclass that names the cause, never "cannot rollback -
  no transaction is active".
"""

from __future__ import annotations

import multiprocessing
import os
import pwd
import sqlite3
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from _postgres import PostgresCluster

from ocppsec.pki.csr import make_csr
from ocppsec.pki.directory import PkiDirectory
from ocppsec.pki.errors import OcppsecError, StoreBusyError, StoreError, StoreReadOnlyError, StoreUnavailableError
from ocppsec.pki.hierarchy import HierarchyConfig
from ocppsec.pki.keys import KeySpec, generate_key

from .stores import KINDS, race_worker

ROLLBACK_MASK = "cannot rollback"


def _csrs(n: int, name: str) -> list[bytes]:
    return [make_csr(generate_key(KeySpec.P256), {"O": "Example CSO", "CN": f"{name}-{i}"}) for i in range(n)]


# -- the database goes away and comes back -------------------------------------------------------------
def test_pki_directory_survives_a_postgres_restart(postgres_cluster: PostgresCluster, pg_url: str, tmp_path: Path) -> None:
    at = datetime.now(UTC)
    PkiDirectory.init(tmp_path / "pki", HierarchyConfig.default(), passphrase=None, at=at, ledger_url=pg_url).close()
    pki = PkiDirectory.open(tmp_path / "pki")
    try:
        assert len(pki.issue_many(_csrs(2, "before"), ca="csms-root", at=at, station="A")) == 2
        postgres_cluster.stop()
        try:
            with pytest.raises(StoreUnavailableError, match="cannot connect to the ledger") as info:
                pki.issue_many(_csrs(1, "down"), ca="csms-root", at=at, station="A")
            assert info.value.exit_code == 3 and info.value.hint
        finally:
            postgres_cluster.start()
        issued = pki.issue_many(_csrs(2, "after"), ca="csms-root", at=at, station="A")  # the first call after the restart
        assert len(issued) == 2
        assert {r.station for r in pki.ledger.all()} >= {"A"} and pki.ledger.count() == len(pki.ledger.all())
        assert sum(1 for r in pki.ledger.all() if r.station == "A") == 4
    finally:
        pki.close()


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("first", ["read", "write"])
def test_stores_survive_a_postgres_restart(kind: str, first: str, postgres_cluster: PostgresCluster, pg_url: str) -> None:
    k = KINDS[kind]
    store = k.open(pg_url)
    try:
        k.write(store, 1)
        postgres_cluster.stop()
        try:
            with pytest.raises(StoreUnavailableError):
                k.count(store)
            with pytest.raises(StoreUnavailableError):
                k.write(store, 2)
        finally:
            postgres_cluster.start()
        if first == "read":  # the first call after the restart, on the same store object
            assert k.count(store) == 1
            k.write(store, 3)
        else:
            k.write(store, 3)
            assert k.count(store) == 2
    finally:
        store.close()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_stores_survive_a_lock_held_past_their_timeout(kind: str, tmp_path: Path) -> None:
    """The SQLite counterpart of a server outage: another process keeps the write lock, then lets go."""
    k = KINDS[kind]
    path = tmp_path / f"{kind}.db"
    k.open(str(path)).close()
    store = k.open(f"sqlite://{path}?timeout=0.2")
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        k.write(store, 1)
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreBusyError, match="is locked by another connection") as info:
            k.write(store, 2)
        assert "database is locked" in str(info.value) and ROLLBACK_MASK not in str(info.value)
        assert isinstance(info.value, StoreUnavailableError) and info.value.hint
        assert k.count(store) == 1  # WAL readers are not blocked by the writer
        holder.execute("ROLLBACK")
        k.write(store, 3)  # the next call after the lock is released
        assert k.count(store) == 2
    finally:
        holder.close()
        store.close()


# -- two processes opening the same fresh database at once --------------------------------------------------
def _race(rounds: list[list[tuple[str, str]]], reverse_second: bool) -> list[str]:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    second = [list(reversed(r)) for r in rounds] if reverse_second else rounds
    procs = [ctx.Process(target=race_worker, args=(plan, barrier, n + 1, results)) for n, plan in enumerate((rounds, second))]
    for p in procs:
        p.start()
    expected = 2 * sum(len(r) for r in rounds)
    outcomes = [results.get(timeout=120) for _ in range(expected)]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    return [f"round {n} {kind}: {text}" for n, kind, text in outcomes if text != "ok"]


def test_two_processes_open_the_same_fresh_sqlite_file_20_times(tmp_path: Path) -> None:
    rounds = [[(kind, str(tmp_path / f"{kind}-{n}.db"))] for n in range(20) for kind in sorted(KINDS)]
    assert _race(rounds, reverse_second=False) == []
    for kind in KINDS:
        for n in range(20):
            store = KINDS[kind].open(str(tmp_path / f"{kind}-{n}.db"))
            assert KINDS[kind].count(store) == 2  # both processes wrote their row
            store.close()


def test_two_processes_open_the_same_fresh_postgres_database(postgres_cluster: PostgresCluster) -> None:
    urls = [postgres_cluster.create_database(f"race{n}") for n in range(10)]
    # each round: all four stores in one fresh database, the second process opening them in reverse order
    rounds = [[(kind, url) for kind in sorted(KINDS)] for url in urls]
    assert _race(rounds, reverse_second=True) == []
    with psycopg.connect(urls[0]) as conn:
        versions = dict(conn.execute("SELECT component, version FROM ocppsec_schema").fetchall())
    assert versions == {"ledger": 4, "inventory": 1, "registry": 3, "eventlog": 1}


# -- a locked or read-only database -------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_fresh_sqlite_file_locked_by_another_process(kind: str, tmp_path: Path) -> None:
    path = tmp_path / f"{kind}.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode = WAL")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreBusyError) as info:  # creating the schema needs the write lock
            KINDS[kind].open(f"sqlite://{path}?timeout=0.1")
        assert "database is locked" in str(info.value) and ROLLBACK_MASK not in str(info.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    store = KINDS[kind].open(str(path))
    KINDS[kind].write(store, 1)
    store.close()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_read_only_sqlite_store_reads_and_refuses_writes_with_the_cause(kind: str, tmp_path: Path) -> None:
    k = KINDS[kind]
    path = tmp_path / f"{kind}.db"
    store = k.open(str(path))
    k.write(store, 1)
    store.close()
    ro = k.open(f"sqlite://{path}?mode=ro")
    try:
        assert k.count(ro) == 1
        with pytest.raises(StoreReadOnlyError, match="is read-only") as info:
            k.write(ro, 2)
        assert "attempt to write a readonly database" in str(info.value)  # the cause, from SQLite itself
        assert ROLLBACK_MASK not in str(info.value) and info.value.hint and info.value.exit_code == 3
    finally:
        ro.close()


def test_a_read_only_fresh_sqlite_file_cannot_be_created(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="unable to open database file"):
        KINDS["ledger"].open(f"sqlite://{tmp_path / 'missing.db'}?mode=ro")


def _probe(kind: str, path: str, as_nobody: bool, answer: Any) -> None:
    """In a forked child: drop root (if it is root), then open the store and write one row."""
    try:
        if as_nobody:
            nobody = pwd.getpwnam("nobody")
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
        store = KINDS[kind].open(path)
        KINDS[kind].write(store, 2)
        answer.send(("written", ""))
    except OcppsecError as exc:
        answer.send((type(exc).__name__, exc.diagnostics()))
    except BaseException as exc:  # a foreign exception: the test shows it
        answer.send((type(exc).__name__, repr(exc)))


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory an unprivileged user can enter (pytest's own temporary directories are private to root)."""
    with tempfile.TemporaryDirectory(prefix="ocppsec-ro-") as name:
        os.chmod(name, 0o755)
        yield Path(name)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_store_this_user_may_not_write(kind: str, shared_dir: Path) -> None:
    """What an operator meets: the store's file and directory belong to someone else (mode 0644 / 0755).

    The probe runs as an unprivileged user: root writes anything, so under root the forked probe becomes
    ``nobody``; otherwise the file and directory are made read-only for this user."""
    path = shared_dir / f"{kind}.db"
    store = KINDS[kind].open(str(path))
    KINDS[kind].write(store, 1)
    store.close()
    as_nobody = os.geteuid() == 0
    os.chmod(path, 0o644 if as_nobody else 0o444)
    if not as_nobody:
        os.chmod(shared_dir, 0o555)
    ctx = multiprocessing.get_context("fork")
    mine, theirs = ctx.Pipe()
    child = ctx.Process(target=_probe, args=(kind, str(path), as_nobody, theirs))
    try:
        child.start()
        assert mine.poll(60), "the probe did not answer"
        name, message = mine.recv()
        child.join(30)
    finally:
        os.chmod(shared_dir, 0o755)
    assert name in ("StoreReadOnlyError", "StoreError"), (name, message)
    assert "readonly" in message or "unable to open" in message, message
    assert ROLLBACK_MASK not in message and "hint:" in message


def _one_row_then(kind: str, pg_url: str, setting: str) -> Any:
    """A store of ``kind`` holding one row, opened again after ``ALTER DATABASE ... SET setting``."""
    store = KINDS[kind].open(pg_url)
    KINDS[kind].write(store, 1)
    store.close()
    dbname = pg_url.split("/")[-1].split("?")[0]
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{dbname}" SET {setting}')
    return KINDS[kind].open(pg_url)  # an up-to-date schema opens without writing


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_read_only_postgres_database(kind: str, pg_url: str) -> None:
    k = KINDS[kind]
    store = _one_row_then(kind, pg_url, "default_transaction_read_only = on")
    try:
        assert k.count(store) == 1
        with pytest.raises(StoreReadOnlyError, match="read-only transaction") as info:
            k.write(store, 2)
        assert info.value.hint and ROLLBACK_MASK not in str(info.value)
    finally:
        store.close()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_locked_postgres_table(kind: str, pg_url: str) -> None:
    k = KINDS[kind]
    table = {"ledger": "ledger_certificates", "inventory": "inventory_station_certificates",
             "registry": "registry_stations", "events": "security_events"}[kind]
    store = _one_row_then(kind, pg_url, "lock_timeout = 200")
    holder = psycopg.connect(pg_url)
    try:
        holder.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(StoreBusyError, match="lock timeout") as info:
            k.write(store, 2)
        assert ROLLBACK_MASK not in str(info.value)
        holder.rollback()
        k.write(store, 3)  # the lock is gone: the next call succeeds
        assert k.count(store) == 2
    finally:
        holder.close()
        store.close()
