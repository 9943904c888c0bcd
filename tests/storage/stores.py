"""The four stores behind one small test interface: open one, write a row, count what it holds.

Used by the fault tests (in this process and in worker processes started with ``spawn``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ocppsec.eventlog.store import EventQuery
from ocppsec.eventlog.store_sql import open_store
from ocppsec.pki.certmgmt.inventory import InventoryEntry, InventoryState
from ocppsec.pki.certmgmt.inventory_sql import open_inventory
from ocppsec.pki.events.model import normalize_event
from ocppsec.pki.ledger import CertificateRecord
from ocppsec.pki.ledger_sql import open_ledger
from ocppsec.pki.versions import OcppVersion
from ocppsec.security_profiles.registry import StationRecord
from ocppsec.security_profiles.registry_sql import open_registry

AT = datetime(2026, 11, 23, 12, tzinfo=UTC)


def _ledger_write(store: Any, n: int) -> None:
    store.add([CertificateRecord(
        serial=format(0x1000 + n, "x"), issuer_ca="csms-root", role="charging-station", subject=f"CN=SN-{n}",
        not_before=AT, not_after=AT + timedelta(days=365), issued_at=AT, fingerprint=f"{n:064x}",
        pem="-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", station=f"CS-{n}",
    )])


def _inventory_write(store: Any, n: int) -> None:
    store.upsert([InventoryEntry(f"CS-{n}", "charging-station", f"SHA256:{'a' * 64}:{'b' * 64}:{n:x}", f"{n:x}",
                                 InventoryState.SENT, AT)])


def _registry_write(store: Any, n: int) -> None:
    store.add(StationRecord(f"CS-{n}", 3, serial=f"SN-{n}"))


def _events_write(store: Any, n: int) -> None:
    store.add_many([normalize_event(station_id=f"CS-{n}", type="StartupOfTheDevice", timestamp=AT + timedelta(seconds=n),
                                    at=AT, ocpp_version=OcppVersion.V201)])


@dataclass(frozen=True)
class Kind:
    name: str
    open: Callable[[str], Any]
    write: Callable[[Any, int], None]
    count: Callable[[Any], int]


KINDS = {
    "ledger": Kind("ledger", open_ledger, _ledger_write, lambda s: len(s.all())),
    "inventory": Kind("inventory", open_inventory, _inventory_write, lambda s: len(s.all())),
    "registry": Kind("registry", open_registry, _registry_write, lambda s: len(s.list())),
    "events": Kind("events", open_store, _events_write, lambda s: s.count(EventQuery())),
}


def open_write_close(kind: str, spec: str, n: int) -> None:
    store = KINDS[kind].open(spec)
    try:
        KINDS[kind].write(store, n)
    finally:
        store.close()


def race_worker(rounds: list[list[tuple[str, str]]], barrier: Any, n: int, results: Any) -> None:
    """Per round: wait for the other process at ``barrier``, then open each (kind, spec) and write one row."""
    for number, opens in enumerate(rounds):
        barrier.wait(timeout=60)
        for kind, spec in opens:
            try:
                open_write_close(kind, spec, n)
                results.put((number, kind, "ok"))
            except Exception as exc:  # reported to the test, which fails on it
                results.put((number, kind, f"{type(exc).__name__}: {exc}"))
