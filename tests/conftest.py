"""Shared fixtures. Each area adds its own fixtures in its test modules or in helper modules under tests/."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from _postgres import PostgresCluster, find_bindir, throwaway_cluster

REPO = Path(__file__).resolve().parent.parent
VECTORS = REPO / "tests" / "vectors"  # public conformance vectors, kept in the repository (see its README)


@pytest.fixture
def at() -> datetime:
    """A fixed 'now' for sans-I/O tests (core functions take time as an argument)."""
    return datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def vectors() -> Path:
    if not VECTORS.is_dir():
        pytest.fail(f"conformance vectors not found at {VECTORS}: the checkout is incomplete")
    return VECTORS


_db_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """One throw-away PostgreSQL cluster for the whole session (initdb takes a second)."""
    if find_bindir() is None:
        pytest.fail("PostgreSQL binaries not installed (scripts/test.sh installs the Debian package)")
    with throwaway_cluster() as cluster:
        yield cluster


@pytest.fixture
def pg_url(postgres_cluster: PostgresCluster) -> str:
    """A fresh database in the session cluster (restarted if a test stopped it to simulate an outage)."""
    if not postgres_cluster.running:
        postgres_cluster.start()
    return postgres_cluster.create_database(f"t{next(_db_numbers)}")
