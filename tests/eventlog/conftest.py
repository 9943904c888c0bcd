"""Fixtures of the event log tests: a throw-away PostgreSQL cluster and stores of both kinds."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from ocppsec.eventlog.store import EventStore
from ocppsec.eventlog.store_sql import open_store


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    """The same contract over both backends."""
    s = open_store(tmp_path / "events.db") if request.param == "sqlite" else open_store(request.getfixturevalue("pg_url"))
    yield s
    s.close()
