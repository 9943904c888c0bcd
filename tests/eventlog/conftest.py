"""Fixtures of the event log tests: a throw-away PostgreSQL cluster and stores of both kinds."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _postgres import PostgresCluster, find_bindir, throwaway_cluster

from ocppsec.eventlog.store import EventStore, open_store

_db_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """One cluster for the whole session (initdb takes a second); each test gets its own database."""
    if find_bindir() is None:
        pytest.skip("PostgreSQL binaries not installed (scripts/test.sh installs the Debian package)")
    with throwaway_cluster() as cluster:
        yield cluster


@pytest.fixture
def pg_url(postgres_cluster: PostgresCluster) -> str:
    if not postgres_cluster.running:
        postgres_cluster.start()
    return postgres_cluster.create_database(f"t{next(_db_numbers)}")


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    """The same contract over both backends."""
    s = open_store(tmp_path / "events.db") if request.param == "sqlite" else open_store(request.getfixturevalue("pg_url"))
    yield s
    s.close()
