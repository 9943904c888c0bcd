"""The station inventory contract over SQLite and PostgreSQL, and a PKI directory whose inventory follows its ledger URL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from _postgres import PostgresCluster
from click.testing import CliRunner

from ocppsec.cli.main import cli
from ocppsec.pki import Hierarchy, HierarchyConfig, PkiDirectory
from ocppsec.pki.certmgmt import (
    CertificateService,
    CertificateUse,
    InstalledCertificate,
    InstalledType,
    InventoryEntry,
    InventoryStore,
    LocalCaSigner,
    RootType,
    SignRequest,
    StationInfo,
    Status,
    inventory_location,
    open_inventory,
)
from ocppsec.pki.certmgmt.codecs import CODECS
from ocppsec.pki.certmgmt.inventory import entry_for
from ocppsec.pki.errors import StoreError
from ocppsec.pki.hashdata import CertificateHashData, compute_hash_data
from ocppsec.pki.lifecycle.inventory_file import load_inventory_file
from ocppsec.pki.storage import Dialect
from ocppsec.pki.versions import OcppVersion

from .conftest import CSO, NOW, SERIAL, make_store


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the inventory lives: a SQLite file or a PostgreSQL URL (what ``open_inventory`` takes)."""
    return str(tmp_path / "inventory.db") if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))


@pytest.fixture
def inv(target: str) -> Iterator[InventoryStore]:
    store = open_inventory(target)
    yield store
    store.close()


@pytest.fixture(scope="module")
def certs(hierarchy: Hierarchy) -> dict[str, tuple[object, object]]:
    ca = hierarchy.ca("csms-root")
    leafs = {f"SN-{n}": hierarchy.issue_leaf("charging-station", ca="csms-root", subject={"O": CSO, "CN": f"SN-{n}"}, at=NOW)
             for n in range(3)}
    return {sn: (issued.certificate, ca.certificate) for sn, issued in leafs.items()}


def _entries(certs: dict[str, tuple[object, object]], station: str, state: str = "sent") -> list[InventoryEntry]:
    return [entry_for(station, "charging-station", c, i, state=state, at=NOW, request_id=n)  # type: ignore[arg-type]
            for n, (c, i) in enumerate(certs.values())]


def test_open_inventory_picks_the_backend(inv: InventoryStore, target: str) -> None:
    assert inv.dialect is (Dialect.POSTGRES if target.startswith("postgresql://") else Dialect.SQLITE)  # type: ignore[attr-defined]
    assert inv.all() == [] and inv.for_station("CS001") == [] and inv.latest_sent("CS001") is None


def test_contract_upsert_find_and_states(inv: InventoryStore, certs: dict[str, tuple[object, object]]) -> None:
    first = _entries(certs, "CS001")
    inv.upsert(first)
    inv.upsert(_entries(certs, "CS002", "installed")[2:])  # another certificate for another station
    got = inv.for_station("CS001")
    assert got == first  # every field round-trips, in insertion order
    assert got[0].updated_at.tzinfo is not None and got[0].updated_at.utcoffset() == timedelta(0)
    assert got[0].not_after == first[0].not_after and got[0].pem is not None and got[0].request_id == 0
    assert [e.station_id for e in inv.all()] == ["CS001"] * 3 + ["CS002"]
    latest = inv.latest_sent("CS001")
    assert latest is not None and latest.hash_key == first[2].hash_key
    assert inv.latest_sent("CS002") is None

    # hash data reported in another case, with leading zeros, finds the same row
    _alg, name_hash, key_hash, serial = first[0].hash_key.split(":")
    shouted = CertificateHashData("sha256", name_hash.upper(), key_hash.upper(), "000" + serial.upper())
    found = inv.find("CS001", shouted)
    assert found is not None and found.serial == first[0].serial
    assert inv.find("CS002", shouted) is None

    later = NOW + timedelta(minutes=5)
    assert inv.set_state("CS001", shouted, "installed", later)
    assert not inv.set_state("CS009", shouted, "installed", later)
    row = inv.find("CS001", shouted)
    assert row is not None and row.state == "installed" and row.updated_at == later
    assert [e.hash_key for e in inv.for_station("CS001")] == [e.hash_key for e in first]  # order unchanged


def test_upsert_keeps_known_details_and_row_order(inv: InventoryStore, certs: dict[str, tuple[object, object]]) -> None:
    first = _entries(certs, "CS001")
    inv.upsert(first)
    # a bare "reported" row for a known certificate: state and source change, PEM, subject and request id stay
    bare = InventoryEntry("CS001", "charging-station", first[1].hash_key, first[1].serial, "installed",
                          NOW + timedelta(hours=1), "reported")
    inv.upsert([bare])
    row = inv.find("CS001", first[1].hash_data)
    assert row is not None
    assert (row.state, row.source, row.updated_at) == ("installed", "reported", NOW + timedelta(hours=1))
    assert (row.pem, row.subject, row.fingerprint, row.request_id) == (first[1].pem, first[1].subject,
                                                                       first[1].fingerprint, 1)
    assert [e.hash_key for e in inv.all()] == [e.hash_key for e in first]
    # other time zones are stored as UTC with whole seconds
    cet = timezone(timedelta(hours=1))
    inv.upsert([replace(first[0], updated_at=(NOW + timedelta(seconds=1.75)).astimezone(cet))])
    row = inv.find("CS001", first[0].hash_data)
    assert row is not None and row.updated_at == NOW + timedelta(seconds=1) and row.updated_at.utcoffset() == timedelta(0)


def test_bad_batch_writes_nothing(inv: InventoryStore, certs: dict[str, tuple[object, object]]) -> None:
    good, *_ = _entries(certs, "CS001")
    with pytest.raises(StoreError):
        inv.upsert([good, replace(good, station_id="CS002", state="lost")])  # not a state
    assert inv.all() == []
    inv.upsert([])
    assert inv.all() == []


def test_reconcile_through_the_service(target: str, certs: dict[str, tuple[object, object]], signer, hierarchy) -> None:
    inventory = open_inventory(target)
    service = CertificateService(signer, cso_name=CSO, stations={"CS001": StationInfo("CS001", serial=SERIAL, secc_ids=())},
                                 inventory=inventory)
    store = make_store(hierarchy)
    outcome, order = service.handle("CS001", SignRequest(store.create_csr(CertificateUse.CHARGING_STATION, at=NOW),
                                                         CertificateUse.CHARGING_STATION), at=NOW)
    assert outcome.accepted and order is not None
    assert inventory.latest_sent("CS001") is not None
    answer = store.certificate_signed(order.chain_pem, CertificateUse.CHARGING_STATION, at=NOW)
    service.certificate_signed_result(order, answer, at=NOW)
    mo = hierarchy.ca("mo-root").certificate
    service.install_result("CS001", RootType.MO, mo, answer, at=NOW)
    entry = inventory.find("CS001", order.leaf_hash_data)
    assert entry is not None and entry.state == "installed"

    codec = CODECS[OcppVersion.V201]
    status, reported = codec.parse_get_installed_ids_response(
        codec.get_installed_ids_response(store.installed([InstalledType.MO_ROOT])))
    assert status is Status.ACCEPTED
    report = service.installed_ids_result("CS001", reported, at=NOW, kinds=["mo"])
    assert report.clean, report.to_json()
    stranger = CertificateHashData("SHA256", "aa" * 32, "bb" * 32, "0abc")
    report = service.installed_ids_result("CS001", [InstalledCertificate(InstalledType.MANUFACTURER_ROOT, stranger)],
                                          at=NOW, kinds=["mo", "manufacturer"])
    assert [e.kind for e in report.missing] == ["mo"] and len(report.unknown) == 1
    assert inventory.find("CS001", stranger) is not None  # recorded as "unknown"
    service.delete_result("CS001", compute_hash_data(mo, mo), answer, at=NOW)
    deleted = inventory.find("CS001", compute_hash_data(mo, mo))
    assert deleted is not None and deleted.state == "deleted"
    inventory.close()

    # the lifecycle adapter reads the same rows through the store, whichever backend
    items = load_inventory_file(target)
    assert sorted(i.state for i in items) == ["deleted", "installed", "unknown"]
    leaf = next(i for i in items if i.kind == "charging-station")
    assert leaf.serial == format(order.chain.leaf.serial_number, "x") and leaf.not_after == order.chain.leaf.not_valid_after_utc


def test_load_inventory_file_of_nothing(tmp_path: Path) -> None:
    assert load_inventory_file(tmp_path / "missing.db") == []
    assert not (tmp_path / "missing.db").exists()
    (tmp_path / "junk.db").write_bytes(b"not a database at all, just some bytes" * 100)
    with pytest.raises(StoreError):
        load_inventory_file(tmp_path / "junk.db")


# -- PostgreSQL specifics --------------------------------------------------------------------------------
def test_pg_migrations_are_idempotent_and_newer_schemas_refused(pg_url: str) -> None:
    first, second = open_inventory(pg_url), open_inventory(pg_url)
    assert first.schema_version() == second.schema_version() == 1
    first.close()
    second.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE ocppsec_schema SET version = 99 WHERE component = 'inventory'")
    with pytest.raises(StoreError, match="newer than this ocppsec"):
        open_inventory(pg_url)


def test_pg_shares_a_database_with_the_ledger_and_registry(pg_url: str, certs: dict[str, tuple[object, object]]) -> None:
    from ocppsec.pki.ledger_sql import open_ledger
    from ocppsec.security_profiles.registry import StationRecord
    from ocppsec.security_profiles.registry_sql import open_registry

    ledger, registry, inv = open_ledger(pg_url), open_registry(pg_url), open_inventory(pg_url)
    inv.upsert(_entries(certs, "CS001"))
    registry.add(StationRecord("CS001", 3, serial=SERIAL))
    assert ledger.count() == 0 and len(inv.all()) == 3 and len(registry.list()) == 1
    with psycopg.connect(pg_url) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        versions = dict(conn.execute("SELECT component, version FROM ocppsec_schema").fetchall())
    assert {"inventory_station_certificates", "registry_stations", "ledger_certificates", "ocppsec_schema"} <= tables
    assert all(t.startswith(("inventory_", "registry_", "ledger_", "ocppsec_")) for t in tables), tables
    assert set(versions) == {"ledger", "inventory", "registry"}
    for store in (ledger, registry, inv):
        store.close()


def test_pg_survives_a_dropped_connection(pg_url: str, certs: dict[str, tuple[object, object]]) -> None:
    inv = open_inventory(pg_url)
    inv.upsert(_entries(certs, "CS001"))
    with psycopg.connect(pg_url, autocommit=True) as admin:
        killed = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchall()
    assert killed == [(True,)]
    assert len(inv.for_station("CS001")) == 3  # a read reconnects and retries once
    inv.upsert(_entries(certs, "CS002"))
    assert inv.count() == 6
    inv.close()
    with pytest.raises(StoreError, match="closed"):
        inv.all()


def test_pg_bad_url(tmp_path: Path, postgres_cluster: PostgresCluster) -> None:
    with pytest.raises(StoreError, match="cannot connect to the inventory") as info:
        open_inventory(f"postgresql://postgres:s3cret@/no_such_db?host={tmp_path}")
    assert "s3cret" not in str(info.value)


# -- a PKI directory whose ledger is on PostgreSQL keeps its inventory there too ----------------------------
def test_inventory_location(tmp_path: Path) -> None:
    assert inventory_location(tmp_path) == tmp_path / "inventory.db"
    assert inventory_location(tmp_path, "postgresql://x@h/db") == "postgresql://x@h/db"
    (tmp_path / "ledger.url").write_text("postgresql://ca@db.example/pki\n")
    assert inventory_location(tmp_path) == "postgresql://ca@db.example/pki"


def test_directory_on_postgres_keeps_inventory_beside_its_ledger(pg_url: str, tmp_path: Path, hierarchy: Hierarchy) -> None:
    from ocppsec.cli.gateway import _csr_signing
    from ocppsec.security_profiles.registry import MemoryRegistry, StationRecord

    path = tmp_path / "pki"
    PkiDirectory.init(path, HierarchyConfig.default(cso_name=CSO), passphrase=None, at=NOW - timedelta(days=1),
                      ledger_url=pg_url).close()
    assert inventory_location(path) == pg_url
    # the gateway's certificate service (ocppsec gateway --sign-csrs --pki DIR) writes the inventory there
    closers: list = []
    signing = _csr_signing(str(path), "csms-root", None, None, MemoryRegistry([StationRecord("CS001", 3, serial=SERIAL)]),
                           CSO, closers)
    service = signing.service
    assert service.inventory.dialect is Dialect.POSTGRES and isinstance(service.signer, LocalCaSigner)  # type: ignore[union-attr]
    store = make_store(hierarchy)
    outcome, order = service.handle("CS001", SignRequest(store.create_csr(CertificateUse.CHARGING_STATION, at=NOW),
                                                         CertificateUse.CHARGING_STATION), at=NOW)
    assert outcome.accepted and order is not None
    mo = hierarchy.ca("mo-root").certificate  # a root the station holds that this directory never issued
    service.inventory.upsert([entry_for("CS001", "mo", mo, None, state="installed", at=NOW)])
    for close in reversed(closers):
        close()
    assert not (path / "inventory.db").exists()
    inv = open_inventory(pg_url)
    assert [e.kind for e in inv.all()] == ["charging-station", "mo"]
    inv.close()

    # `ocppsec pki expiring DIR` reads the ledger and the inventory from the same database
    result = CliRunner().invoke(cli, ["pki", "expiring", str(path), "--json", "--at", NOW.isoformat(), "--within", "36500"])
    assert result.exit_code == 0, result.output
    items = {i["serial"]: i for i in json.loads(result.output)}
    leaf = items[format(order.chain.leaf.serial_number, "x")]
    assert (leaf["source"], leaf["station"], leaf["role"]) == ("ledger", "CS001", "charging-station")
    root = items[format(mo.serial_number, "x")]
    assert (root["source"], root["station"], root["role"]) == ("inventory", "CS001", "mo-root")
