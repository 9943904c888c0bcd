"""Fixtures of the event log tests: a throw-away PostgreSQL cluster, stores of both kinds, schemas."""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import ocpp
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _postgres import PostgresCluster, find_bindir, throwaway_cluster

from ocppsec.eventlog.store import EventStore, open_store

_db_numbers = itertools.count(1)
SCHEMA_DIRS = {
    "1.6": Path(ocpp.__file__).parent / "v16" / "schemas",
    "2.0.1": Path(ocpp.__file__).parent / "v201" / "schemas",
    "2.1": Path(ocpp.__file__).parent / "v21" / "schemas",
}


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


def schema_for(version: str, action: str, response: bool = False) -> dict[str, Any]:
    directory = SCHEMA_DIRS[version]
    if version == "1.6":
        name = f"{action}Response.json" if response else f"{action}.json"
    else:
        name = f"{action}Response.json" if response else f"{action}Request.json"
    return json.loads((directory / name).read_text(encoding="utf-8-sig"))


def validate(version: str, action: str, payload: dict[str, Any], response: bool = False) -> None:
    """Validate against the official JSON schema shipped in the ocpp package (format checks included)."""
    schema = schema_for(version, action, response)
    jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker()).validate(payload)
