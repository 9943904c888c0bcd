"""SQLite files written before the storage layer open, keep their rows, and come under ``ocppsec_schema``.

The legacy files are made here with the schemas the earlier stores created (ledger and inventory:
``PRAGMA user_version`` migrations; registry: bare ``CREATE TABLE IF NOT EXISTS``; event store: already
``ocppsec_schema``), with rows in their formats.
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from ocppsec.eventlog.store import EventQuery
from ocppsec.eventlog.store_sql import open_store
from ocppsec.pki.certmgmt.inventory import InventoryState
from ocppsec.pki.certmgmt.inventory_sql import open_inventory
from ocppsec.pki.ledger import CertificateStatus
from ocppsec.pki.ledger_sql import open_ledger
from ocppsec.security_profiles.registry import StationRecord
from ocppsec.security_profiles.registry_sql import open_registry

from .stores import AT, KINDS

LEGACY_LEDGER = [
    """CREATE TABLE certificates (id INTEGER PRIMARY KEY, serial TEXT NOT NULL, issuer_ca TEXT NOT NULL,
        role TEXT NOT NULL, subject TEXT NOT NULL, not_before TEXT NOT NULL, not_after TEXT NOT NULL,
        issued_at TEXT NOT NULL, fingerprint TEXT NOT NULL UNIQUE, pem TEXT NOT NULL, name TEXT,
        is_ca INTEGER NOT NULL DEFAULT 0, key_ref TEXT,
        status TEXT NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'revoked')), revoked_at TEXT,
        revocation_reason TEXT, station TEXT, UNIQUE (issuer_ca, serial))""",
    "CREATE UNIQUE INDEX certificates_name ON certificates(name) WHERE name IS NOT NULL",
    "CREATE INDEX certificates_not_after ON certificates(not_after)",
    "CREATE INDEX certificates_station ON certificates(station) WHERE station IS NOT NULL",
    "PRAGMA user_version = 1",
    "CREATE TABLE crl_numbers (issuer_ca TEXT PRIMARY KEY, last_number INTEGER NOT NULL)",
    "PRAGMA user_version = 2",
    "INSERT INTO certificates (serial, issuer_ca, role, subject, not_before, not_after, issued_at, fingerprint, pem, "
    "name, is_ca, key_ref, status, revoked_at, revocation_reason, station) VALUES ('1abc', 'csms-root', 'csms-root', "
    "'CN=root', '2026-11-23T12:00:00+00:00', '2066-11-23T12:00:00+00:00', '2026-11-23T12:00:00+00:00', 'f1', 'PEM', "
    "'csms-root', 1, 'file:keys/csms-root.key.pem', 'valid', NULL, NULL, NULL)",
    "INSERT INTO certificates (serial, issuer_ca, role, subject, not_before, not_after, issued_at, fingerprint, pem, "
    "name, is_ca, key_ref, status, revoked_at, revocation_reason, station) VALUES ('2def', 'csms-root', "
    "'charging-station', 'CN=SN-1', '2026-11-23T12:00:00+00:00', '2027-11-23T12:00:00+00:00', "
    "'2026-11-23T12:00:00+00:00', 'f2', 'PEM', NULL, 0, NULL, 'revoked', '2026-11-24T12:00:00+00:00', "
    "'keyCompromise', 'CS-1')",
    "INSERT INTO crl_numbers VALUES ('csms-root', 7)",
]
LEGACY_INVENTORY = [
    """CREATE TABLE station_certificates (id INTEGER PRIMARY KEY, station_id TEXT NOT NULL, kind TEXT NOT NULL,
        hash_key TEXT NOT NULL, serial TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('sent', 'installed', 'rejected', 'deleted', 'unknown')),
        source TEXT NOT NULL, updated_at TEXT NOT NULL, fingerprint TEXT, subject TEXT, not_after TEXT, pem TEXT,
        request_id INTEGER, UNIQUE (station_id, hash_key))""",
    "CREATE INDEX station_certificates_station ON station_certificates(station_id, state)",
    "PRAGMA user_version = 1",
    "INSERT INTO station_certificates (station_id, kind, hash_key, serial, state, source, updated_at, fingerprint, "
    "not_after, request_id) VALUES ('CS-1', 'charging-station', 'SHA256:aa:bb:2def', '2def', 'installed', 'issued', "
    "'2026-11-23T12:00:00+00:00', 'f2', '2027-11-23T12:00:00+00:00', 4)",
]
LEGACY_REGISTRY = [
    """CREATE TABLE IF NOT EXISTS stations (identity TEXT PRIMARY KEY,
        profile INTEGER NOT NULL CHECK (profile IN (1, 2, 3)), serial TEXT, password_hash TEXT,
        pending_password_hash TEXT,
        pending_profile INTEGER CHECK (pending_profile IS NULL OR pending_profile IN (1, 2, 3)),
        updated_at TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS stations_serial ON stations(serial)",
    "INSERT INTO stations VALUES ('CS-1', 2, 'SN-1', 'hash', NULL, 3, '2026-11-23T12:00:00.123456+00:00')",
]
LEGACY_EVENTS = [
    "CREATE TABLE IF NOT EXISTS ocppsec_schema (component TEXT PRIMARY KEY, version INTEGER NOT NULL)",
    """CREATE TABLE security_events (id INTEGER PRIMARY KEY, station_id TEXT NOT NULL, ts INTEGER NOT NULL,
        type TEXT NOT NULL, canonical_type TEXT NOT NULL, critical INTEGER, tech_info TEXT, ocpp_version TEXT,
        source TEXT NOT NULL, received_at INTEGER NOT NULL, flags TEXT NOT NULL DEFAULT '', dedup_key INTEGER NOT NULL)""",
    "CREATE UNIQUE INDEX security_events_station_ts ON security_events (station_id, ts, dedup_key)",
    "INSERT INTO ocppsec_schema VALUES ('eventlog', 1)",
    "INSERT INTO security_events (station_id, ts, type, canonical_type, critical, tech_info, ocpp_version, source, "
    "received_at, flags, dedup_key) VALUES ('CS-1', 1795435200000, 'StartupOfTheDevice', 'StartupOfTheDevice', 0, "
    "NULL, '2.0.1', 'ocpp', 1795435200000, '', 42)",
]


def _legacy(path: Path, statements: list[str]) -> Path:
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode = WAL")
        for sql in statements:
            db.execute(sql)
    return path


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_schema WHERE type IN ('table', 'index')")}


def _version(path: Path, component: str) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT version FROM ocppsec_schema WHERE component = ?", (component,)).fetchone()[0])


def test_a_legacy_ledger_is_adopted(tmp_path: Path) -> None:
    path = _legacy(tmp_path / "ledger.db", LEGACY_LEDGER)
    ledger = open_ledger(path)
    try:
        root, leaf = ledger.all()
        assert (root.name, root.is_ca, root.key_ref, root.not_after.year) == ("csms-root", True, "file:keys/csms-root.key.pem", 2066)
        assert leaf.status is CertificateStatus.REVOKED and leaf.revoked_at == AT + timedelta(days=1)
        assert ledger.get_named("csms-root") == root and ledger.find_serial("0x02DEF") == [leaf]
        assert ledger.next_crl_number("csms-root") == 8  # the CRL numbers carry on
        KINDS["ledger"].write(ledger, 1)
        assert ledger.count() == 3 and ledger.schema_version() == 4
    finally:
        ledger.close()
    tables = _tables(path)
    assert {"ledger_certificates", "ledger_crl_numbers", "ledger_certificates_name", "ledger_certificates_station"} <= tables
    assert not tables & {"certificates", "crl_numbers", "certificates_name"}
    assert _version(path, "ledger") == 4


def test_a_legacy_ledger_at_version_1_gets_its_missing_step(tmp_path: Path) -> None:
    path = _legacy(tmp_path / "ledger.db", LEGACY_LEDGER[:5])
    ledger = open_ledger(path)
    assert ledger.next_crl_number("csms-root") == 1 and ledger.schema_version() == 4
    ledger.close()


def test_a_legacy_inventory_is_adopted(tmp_path: Path) -> None:
    path = _legacy(tmp_path / "inventory.db", LEGACY_INVENTORY)
    inventory = open_inventory(path)
    try:
        (entry,) = inventory.for_station("CS-1")
        assert (entry.state, entry.serial, entry.request_id, entry.updated_at) == (InventoryState.INSTALLED, "2def", 4, AT)
        KINDS["inventory"].write(inventory, 1)
        assert inventory.count() == 2 and inventory.latest_sent("CS-1") is not None
    finally:
        inventory.close()
    assert "inventory_station_certificates_station" in _tables(path) and _version(path, "inventory") == 1


def test_a_legacy_registry_is_adopted(tmp_path: Path) -> None:
    path = _legacy(tmp_path / "stations.db", LEGACY_REGISTRY)
    registry = open_registry(path)
    try:
        assert registry.get("CS-1") == StationRecord("CS-1", 2, serial="SN-1", password_hash="hash", pending_profile=3)
        KINDS["registry"].write(registry, 2)
        assert [r.identity for r in registry.list()] == ["CS-1", "CS-2"]
    finally:
        registry.close()
    assert "registry_stations" in _tables(path) and _version(path, "registry") == 3


def test_an_event_store_needs_nothing(tmp_path: Path) -> None:
    path = _legacy(tmp_path / "events.db", LEGACY_EVENTS)
    store = open_store(path)
    try:
        (stored,) = store.query(EventQuery())
        assert stored.event.station_id == "CS-1" and stored.event.timestamp == AT
        KINDS["events"].write(store, 1)
        assert store.count(EventQuery()) == 2
    finally:
        store.close()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_stores_can_share_one_sqlite_file(kind: str, tmp_path: Path) -> None:
    """Every store's tables carry their prefix, so any of them can join a file another one created."""
    path = str(tmp_path / "all.db")
    for other in sorted(KINDS, key=lambda k: k != kind):
        store = KINDS[other].open(path)
        KINDS[other].write(store, 1)
        store.close()
    with sqlite3.connect(path) as db:
        versions = dict(db.execute("SELECT component, version FROM ocppsec_schema").fetchall())
    assert versions == {"ledger": 4, "inventory": 1, "registry": 3, "eventlog": 1}
