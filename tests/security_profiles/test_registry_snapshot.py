"""RegistrySnapshot over real SQLite and PostgreSQL registries: lookups from memory on the loop, read-through from
threads, changes by other connections (another process's CLI) found by the poll and reported once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from ocppsec.cli.main import cli
from ocppsec.security_profiles.registry import MemoryRegistry, StationRecord
from ocppsec.security_profiles.registry_snapshot import RegistryChange, RegistrySnapshot
from ocppsec.security_profiles.registry_sql import SqlRegistry, open_registry


@pytest.fixture(params=["sqlite", "postgres"])
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return str(tmp_path / "st.db") if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))


@pytest.fixture
def registry(spec: str) -> Iterator[SqlRegistry]:
    reg = open_registry(spec)
    reg.add(StationRecord("CS-1", 3, serial="SN-1"))
    yield reg
    reg.close()


def wait_for(predicate: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_change_marker_moves_on_every_write(registry: SqlRegistry, spec: str) -> None:
    first = registry.change_marker()
    assert registry.change_marker() == first  # nothing written: the same value
    other = open_registry(spec)  # another connection, as another process would have
    try:
        other.update(replace(other.get("CS-1"), profile=2))  # type: ignore[arg-type]
        second = registry.change_marker()
        assert second != first
        registry.add(StationRecord("CS-2", 2))  # through this object
        third = registry.change_marker()
        assert third != second
        other.remove("CS-2")
        assert registry.change_marker() != third
    finally:
        other.close()


def test_changes_by_another_process_reach_the_snapshot(registry: SqlRegistry, spec: str) -> None:
    changes: list[RegistryChange] = []
    with RegistrySnapshot(registry, interval=0.05) as snap:
        snap.subscribe(changes.append)
        assert snap.get("CS-1") == registry.get("CS-1") and len(snap) == 1
        reloads, polled = snap.refreshes, snap.last_refresh
        assert polled is not None
        wait_for(lambda: snap.last_refresh is not None and snap.last_refresh > polled + 0.2)  # several polls...
        assert snap.refreshes == reloads  # ...saw an unchanged marker: no reload
        runner = CliRunner()
        result = runner.invoke(cli, ["stations", "add", "CS-9", "--profile", "3", "--serial", "SN-9", "--stations", spec])
        assert result.exit_code == 0, result.output
        wait_for(lambda: any("CS-9" in c.added for c in changes))
        result = runner.invoke(cli, ["stations", "remove", "CS-1", "--stations", spec])
        assert result.exit_code == 0, result.output
        wait_for(lambda: any("CS-1" in c.removed for c in changes))
        assert snap.get("CS-1") is None
        assert [r.identity for r in snap.list()] == ["CS-9"]
        versions = [c.version for c in changes]
        assert versions == sorted(versions) and len(set(versions)) == len(versions)


def test_lookups_on_the_loop_come_from_memory(registry: SqlRegistry, spec: str) -> None:
    other = open_registry(spec)
    snap = RegistrySnapshot(registry, interval=3600).start()  # no poll during the test
    try:
        other.update(replace(registry.get("CS-1"), serial="SN-NEW"))  # type: ignore[arg-type]

        async def on_loop() -> StationRecord | None:
            return snap.get("CS-1")

        assert asyncio.run(on_loop()).serial == "SN-1"  # type: ignore[union-attr]  # the snapshot, not the database
        # a worker thread (serve() checks passwords in one) reads the registry itself and refreshes the snapshot
        seen: list[RegistryChange] = []
        snap.subscribe(seen.append)
        assert snap.get("CS-1").serial == "SN-NEW"  # type: ignore[union-attr]
        assert asyncio.run(on_loop()).serial == "SN-NEW"  # type: ignore[union-attr]
        assert seen and seen[0].updated == {"CS-1"}
    finally:
        snap.close()
        other.close()


def test_writes_through_the_snapshot_apply_at_once() -> None:
    inner = MemoryRegistry([StationRecord("CS-1", 2)])
    changes: list[RegistryChange] = []
    snap = RegistrySnapshot(inner, interval=3600).start()
    snap.subscribe(changes.append)

    async def on_loop(identity: str) -> StationRecord | None:
        return snap.get(identity)

    snap.update(StationRecord("CS-1", 3, serial="SN-1"))
    snap.add(StationRecord("CS-2", 1))
    snap.remove("CS-1")
    assert asyncio.run(on_loop("CS-1")) is None and asyncio.run(on_loop("CS-2")) is not None
    assert [(c.added, c.removed, c.updated) for c in changes] == [
        (frozenset(), frozenset(), {"CS-1"}), ({"CS-2"}, frozenset(), frozenset()), (frozenset(), {"CS-1"}, frozenset())]
    assert snap.refresh(force=True) is None  # the registry agrees with the snapshot
    snap.close()


def test_outage_keeps_the_last_snapshot(postgres_cluster: object, pg_url: str) -> None:
    reg = open_registry(pg_url)
    reg.add(StationRecord("CS-1", 3, serial="SN-1"))
    snap = RegistrySnapshot(reg, interval=0.05).start()
    try:
        postgres_cluster.stop()  # type: ignore[attr-defined]

        wait_for(lambda: snap.failing)  # a poll failed

        async def on_loop() -> StationRecord | None:
            return snap.get("CS-1")

        assert asyncio.run(on_loop()) is not None
        assert snap.get("CS-1") is not None  # read-through fails: the snapshot answers
    finally:
        postgres_cluster.start()  # type: ignore[attr-defined]
        snap.close()
        reg.close()
