from __future__ import annotations

import multiprocessing
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from ocppsec.pki.errors import DuplicateError, NotFoundError, UsageError
from ocppsec.security_profiles.basic_auth import hash_password, password_matches
from ocppsec.security_profiles.registry import (
    MemoryRegistry,
    StationRecord,
    StationRegistry,
    confirm_password,
    discard_pending_password,
    set_pending_password,
)
from ocppsec.security_profiles.registry_sql import open_registry

from .conftest import FAST


@pytest.fixture(params=["memory", "sqlite"])
def reg(request: pytest.FixtureRequest, tmp_path: Path) -> StationRegistry:
    return MemoryRegistry() if request.param == "memory" else open_registry(tmp_path / "st.db")


def test_crud(reg: StationRegistry) -> None:
    reg.add(StationRecord("CS-1", 2, serial="SN-1", password_hash="h"))
    with pytest.raises(DuplicateError):
        reg.add(StationRecord("CS-1", 1))
    got = reg.get("CS-1")
    assert got is not None and got.serial == "SN-1" and got.profile == 2
    assert [r.identity for r in reg.list()] == ["CS-1"]
    reg.remove("CS-1")
    assert reg.get("CS-1") is None
    with pytest.raises(NotFoundError):
        reg.remove("CS-1")


def test_rotation_a01(reg: StationRegistry) -> None:
    reg.add(StationRecord("CS-1", 2, password_hash=hash_password("old-password-0001", cost=FAST)))
    set_pending_password(reg, "CS-1", hash_password("new-password-0002", cost=FAST))
    rec = reg.get("CS-1")
    assert rec is not None and len(rec.password_hashes) == 2
    confirm_password(reg, "CS-1")
    rec = reg.get("CS-1")
    assert rec is not None and rec.password_hashes == (rec.password_hash,)
    assert rec.password_hash and password_matches(rec.password_hash, b"new-password-0002")
    assert not password_matches(rec.password_hash, b"old-password-0001")
    set_pending_password(reg, "CS-1", hash_password("third-password-03", cost=FAST))
    discard_pending_password(reg, "CS-1")
    rec = reg.get("CS-1")
    assert rec is not None and rec.pending_password_hash is None


def test_bad_records() -> None:
    with pytest.raises(UsageError):
        StationRecord("CS-1", 4)
    with pytest.raises(Exception, match=r"colon|':'"):
        StationRecord("a:b", 1)
    assert "h4sh" not in repr(StationRecord("CS-1", 1, password_hash="h4sh"))


def _writer(path: str, start: int) -> None:
    reg = open_registry(path)
    for i in range(start, start + 50):
        reg.add(StationRecord(f"CS-{i}", 3, serial=f"SN-{i}"))


def test_shared_by_several_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    open_registry(path)
    procs = [multiprocessing.get_context("spawn").Process(target=_writer, args=(path, n * 100)) for n in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert len(open_registry(path).list()) == 150
    assert open_registry(path).get("CS-201") is not None


def test_sqlite_get_sees_every_commit_at_once(tmp_path: Path) -> None:
    """get() caches records, but never returns what a fresh SELECT would not: writes by another
    connection, by another process and by itself are all seen by the very next get."""
    path = tmp_path / "cached.db"
    reader, writer = open_registry(path), open_registry(path)
    assert reader.get("CS-1") is None and reader.get("CS-1") is None  # a cached miss...
    writer.add(StationRecord("CS-1", 3, serial="SN-1"))
    assert reader.get("CS-1") == StationRecord("CS-1", 3, serial="SN-1")  # ...is not served after an add
    assert reader.get("CS-1") == StationRecord("CS-1", 3, serial="SN-1")
    writer.update(StationRecord("CS-1", 3, serial="SN-2"))
    got = reader.get("CS-1")
    assert got is not None and got.serial == "SN-2"
    script = ("from ocppsec.security_profiles.registry_sql import open_registry; import sys; "
              "open_registry(sys.argv[1]).remove('CS-1')")
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, timeout=60)
    assert reader.get("CS-1") is None  # removed by another process
    reader.add(StationRecord("CS-1", 2, password_hash="h"))
    assert reader.get("CS-1") == StationRecord("CS-1", 2, password_hash="h")  # its own writes
    reader.update(replace(StationRecord("CS-1", 2, password_hash="h"), pending_password_hash="h2"))
    got = reader.get("CS-1")
    assert got is not None and got.pending_password_hash == "h2"
    assert writer.get("CS-1") == got
    reader.close()
    writer.close()


def test_open_registry_refuses_unknown_urls() -> None:
    with pytest.raises(UsageError):
        open_registry("mysql://x")
