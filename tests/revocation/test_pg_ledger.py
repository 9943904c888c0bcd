"""The ledger contract over SQLite and PostgreSQL, and two processes issuing against one PostgreSQL (one SIGKILLed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from ocppsec.pki.directory import PkiDirectory
from ocppsec.pki.errors import DuplicateError, NotFoundError, StoreError, UsageError
from ocppsec.pki.hierarchy import Hierarchy, HierarchyConfig
from ocppsec.pki.ledger import CertificateRecord, Ledger, record_for
from ocppsec.pki.ledger_sql import open_ledger
from revocation.conftest import AT


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    target = str(tmp_path / "ledger.db") if request.param == "sqlite" else request.getfixturevalue("pg_url")
    store = open_ledger(target)
    yield store
    store.close()


@pytest.fixture(scope="module")
def records() -> list[CertificateRecord]:
    h = Hierarchy.build(at=AT)
    out = []
    for n in range(3):
        leaf = h.issue_leaf("charging-station", ca="csms-root", subject={"O": "Example CSO", "CN": f"SN-{n}"},
                            at=AT, validity_days=10 * (n + 1))
        out.append(record_for(leaf.certificate, issuer_ca="csms-root", role="charging-station", issued_at=AT,
                              station=f"st-{n}"))
    root = h.ca("csms-root").certificate
    out.append(record_for(root, issuer_ca="csms-root", role="csms-root", issued_at=AT, name="csms-root", key_ref="file:k"))
    return out


def test_contract(ledger: Ledger, records: list[CertificateRecord]) -> None:
    ledger.add(records)
    assert [r.serial for r in ledger.all()] == [r.serial for r in records]
    named = ledger.get_named("csms-root")
    assert named is not None and named.is_ca and named.key_ref == "file:k" and named.not_after == records[3].not_after
    assert ledger.get_named("nope") is None
    leaf = records[0]
    assert ledger.find_serial("0x" + leaf.serial.upper())[0].fingerprint == leaf.fingerprint
    assert ledger.find_serial(leaf.serial, "other-ca") == []
    soon = ledger.expiring(AT + timedelta(days=15))
    assert [r.serial for r in soon] == [leaf.serial]
    done = ledger.revoke(leaf.serial, "csms-root", AT + timedelta(days=1), "keyCompromise")
    assert done.status == "revoked"
    (rev,) = ledger.revoked("csms-root")
    assert rev.serial == leaf.serial and rev.revocation_reason == "keyCompromise"
    assert rev.revoked_at == AT + timedelta(days=1)
    assert ledger.expiring(AT + timedelta(days=15)) == []  # revoked ones need no renewal
    with pytest.raises(NotFoundError):
        ledger.revoke("abcdef", "csms-root", AT, "superseded")
    assert [ledger.next_crl_number("csms-root") for _ in range(3)] == [1, 2, 3]
    assert ledger.next_crl_number("other") == 1


def test_duplicate_batch_writes_nothing(ledger: Ledger, records: list[CertificateRecord]) -> None:
    ledger.add(records[:1])
    clash = replace(records[1], serial=records[0].serial)
    with pytest.raises(DuplicateError):
        ledger.add([records[2], clash])
    assert len(ledger.all()) == 1  # records[2] was rolled back with the clash


def test_bad_urls(tmp_path: Path, postgres_cluster: object) -> None:
    with pytest.raises(StoreError, match="cannot connect"):
        open_ledger("postgresql://postgres@/no_such_db?host=" + str(tmp_path))
    with pytest.raises(UsageError, match="ledger URL"):
        PkiDirectory.open(tmp_path, ledger_url="mysql://x")


def test_pg_ledger_migrations_are_idempotent(pg_url: str) -> None:
    from ocppsec.pki.ledger_sql import SCHEMA

    first = open_ledger(pg_url)
    second = open_ledger(pg_url)
    assert first.schema_version() == second.schema_version() == SCHEMA.latest == 4
    first.close()
    second.close()


WORKER = textwrap.dedent("""
    import sys
    from datetime import UTC, datetime
    from ocppsec.pki.csr import make_csr
    from ocppsec.pki.directory import PkiDirectory
    from ocppsec.pki.keys import KeySpec, generate_key

    directory, name, count, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    pki = PkiDirectory.open(directory)
    done = 0
    while done < count:
        csrs = [make_csr(generate_key(KeySpec.P256), {"O": "Example CSO", "CN": f"{name}-{done + i}"}) for i in range(batch)]
        results = pki.issue_many(csrs, ca="csms-root", at=datetime.now(UTC), station=name)
        for r in results:  # reported only after the batch is committed
            print(r.record.serial, flush=True)
        done += batch
    print("DONE", flush=True)
""")


def test_two_processes_one_killed(pg_url: str, tmp_path: Path) -> None:
    directory = tmp_path / "pki"
    PkiDirectory.init(directory, HierarchyConfig.default(), passphrase=None, at=AT, ledger_url=pg_url).close()
    assert (directory / "ledger.url").stat().st_mode & 0o077 == 0
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    batch = 3

    def start(name: str, count: int) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, str(script), str(directory), name, str(count), str(batch)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

    survivor = start("A", 60)
    victim = start("B", 100000)
    seen_b: list[str] = []
    deadline = time.monotonic() + 60
    assert victim.stdout is not None
    while len(seen_b) < 12 and time.monotonic() < deadline:
        line = victim.stdout.readline()
        if not line:
            break
        seen_b.append(line.strip())
    assert len(seen_b) >= 12, victim.stderr.read() if victim.stderr else ""
    victim.send_signal(signal.SIGKILL)  # mid-issuance: it issues without pause
    rest, _ = victim.communicate(timeout=30)
    seen_b += [x for x in rest.split() if x]
    out_a, err_a = survivor.communicate(timeout=120)
    assert survivor.returncode == 0, err_a
    lines_a = out_a.split()
    assert lines_a[-1] == "DONE"
    seen_a = lines_a[:-1]
    assert len(seen_a) == 60

    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT serial, issuer_ca, station FROM ledger_certificates").fetchall()
        dupes = conn.execute("SELECT serial FROM ledger_certificates GROUP BY serial HAVING count(*) > 1").fetchall()
    assert dupes == []
    by_station: dict[str | None, set[str]] = {}
    for serial, _issuer, station in rows:
        by_station.setdefault(station, set()).add(serial)
    assert set(seen_a) == by_station["A"]  # nothing lost, nothing extra
    assert set(seen_b) <= by_station["B"]  # every reported certificate is recorded...
    assert len(by_station["B"]) - len(set(seen_b)) in range(batch + 1)  # ...at most one committed batch unreported
    assert len(by_station["B"]) % batch == 0  # batches are all-or-nothing


def test_revocation_marker_moves_with_each_revocation(ledger: Ledger, records: list[CertificateRecord]) -> None:
    ledger.add(records)
    marker = ledger.revocation_marker()  # type: ignore[attr-defined]
    assert marker == 0
    ledger.revoke(records[0].serial, "csms-root", AT, "keyCompromise")
    assert ledger.revocation_marker() == 1  # type: ignore[attr-defined]
    ledger.revoke(records[0].serial, "csms-root", AT, "superseded")  # revoked already: nothing changes
    assert ledger.revocation_marker() == 1  # type: ignore[attr-defined]
    ledger.revoke(records[1].serial, "csms-root", AT, "superseded")
    assert ledger.revocation_marker() == 2  # type: ignore[attr-defined]
