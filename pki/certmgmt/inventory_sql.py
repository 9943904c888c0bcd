"""The per-station certificate inventory in SQL: one :class:`~ocppsec.pki.certmgmt.inventory.InventoryStore`
for SQLite and PostgreSQL.

Rows are keyed by ``(station_id, hash_key)``; an upsert batch is one transaction; ``updated_at`` and
``not_after`` come back as aware UTC datetimes with whole seconds; ``ORDER BY id`` is insertion order.
:func:`open_inventory` takes a file path (``DIR/inventory.db``), ``sqlite:///path`` or a
``postgresql://`` URL. The table is ``inventory_station_certificates`` and its migrations are the
component ``inventory`` of ``ocppsec_schema``, so it can share a database with the ledger, the station
registry and the event store. A SQLite inventory written before ``ocppsec_schema`` (table
``station_certificates``, ``PRAGMA user_version``) is adopted on first open.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ocppsec.pki.certmgmt.inventory import EntrySource, InventoryEntry, InventoryState, hash_key
from ocppsec.pki.hashdata import CertificateHashData
from ocppsec.pki.storage import Database, Migration, Schema, SqlStore, StoreUrl, Transaction, adopt_tables, connect

__all__ = ["SCHEMA", "SqlInventory", "open_inventory"]

_TABLE = "inventory_station_certificates"
_INDEX = f"CREATE INDEX {_TABLE}_station ON {_TABLE}(station_id, state)"


def _adopt(tx: Transaction) -> int:
    """A SQLite inventory from before ``ocppsec_schema`` (version 1: station_certificates)."""
    return adopt_tables(tx, {"station_certificates": _TABLE}, drop_indexes=("station_certificates_station",),
                        create=(_INDEX,))


SCHEMA = Schema("inventory", "inventory", (
    Migration("certificates per station", (
        f"""CREATE TABLE {_TABLE} (
            id {{ID}},
            station_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            hash_key TEXT NOT NULL,
            serial TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('sent', 'installed', 'rejected', 'deleted', 'unknown')),
            source TEXT NOT NULL,
            updated_at {{TIMESTAMP}} NOT NULL,
            fingerprint TEXT,
            subject TEXT,
            not_after {{TIMESTAMP}},
            pem TEXT,
            request_id {{BIGINT}},
            UNIQUE (station_id, hash_key)
        )""",
        _INDEX,
    )),
), adopt=_adopt)

_COLS = "station_id, kind, hash_key, serial, state, source, updated_at, fingerprint, subject, not_after, pem, request_id"
_SELECT = f"SELECT {_COLS} FROM {_TABLE} "
_UPSERT = (
    f"INSERT INTO {_TABLE} ({_COLS}) VALUES ({', '.join('?' * 12)}) "
    "ON CONFLICT (station_id, hash_key) DO UPDATE SET kind = excluded.kind, state = excluded.state, "
    "updated_at = excluded.updated_at, source = excluded.source, "
    + ", ".join(f"{c} = coalesce(excluded.{c}, {_TABLE}.{c})"
                for c in ("fingerprint", "subject", "not_after", "pem", "request_id"))
)
_STATES = {s.value: s for s in InventoryState}
_SOURCES = {s.value: s for s in EntrySource}


class SqlInventory(SqlStore):
    """The inventory in one SQLite file or PostgreSQL database. Thread-safe."""

    SCHEMA = SCHEMA

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self._ts = database.timestamp
        self._dt = database.datetime

    def _entry(self, r: Sequence[Any]) -> InventoryEntry:
        sid, kind, hk, serial, state, source, upd, fp, subject, na, pem, rid = r
        return InventoryEntry(
            station_id=sid, kind=kind, hash_key=hk, serial=serial, state=_STATES[state],
            updated_at=self._dt(upd), source=_SOURCES[source], fingerprint=fp,  # type: ignore[arg-type]
            subject=subject, not_after=self._dt(na), pem=pem, request_id=None if rid is None else int(rid),
        )

    def _query(self, where: str, args: Sequence[object] = ()) -> list[InventoryEntry]:
        return [self._entry(r) for r in self.database.fetchall(_SELECT + where, args)]

    # -- the InventoryStore interface -------------------------------------------------------------
    def upsert(self, entries: Sequence[InventoryEntry]) -> None:
        if not entries:
            return
        ts = self._ts
        rows = [(e.station_id, e.kind, e.hash_key, e.serial, str(e.state), str(e.source), ts(e.updated_at), e.fingerprint,
                 e.subject, ts(e.not_after), e.pem, e.request_id) for e in entries]
        with self.database.transaction() as tx:
            tx.executemany(_UPSERT, rows)

    def set_state(self, station_id: str, hash_data: CertificateHashData, state: InventoryState, at: datetime) -> bool:
        changed = self.database.execute(
            f"UPDATE {_TABLE} SET state = ?, updated_at = ? WHERE station_id = ? AND hash_key = ?",
            (str(state), self._ts(at), station_id, hash_key(hash_data)),
        )
        return changed > 0

    def for_station(self, station_id: str) -> list[InventoryEntry]:
        return self._query("WHERE station_id = ? ORDER BY id", (station_id,))

    def find(self, station_id: str, hash_data: CertificateHashData) -> InventoryEntry | None:
        rows = self._query("WHERE station_id = ? AND hash_key = ?", (station_id, hash_key(hash_data)))
        return rows[0] if rows else None

    def latest_sent(self, station_id: str) -> InventoryEntry | None:
        rows = self._query("WHERE station_id = ? AND state = 'sent' ORDER BY id DESC LIMIT 1", (station_id,))
        return rows[0] if rows else None

    def all(self) -> list[InventoryEntry]:
        return self._query("ORDER BY id")

    def count(self) -> int:
        row = self.database.fetchone(f"SELECT count(*) FROM {_TABLE}")
        return int(row[0]) if row else 0


def open_inventory(spec: str | os.PathLike[str] | StoreUrl) -> SqlInventory:
    """Open (creating and migrating if needed) the inventory at a file path, ``sqlite://`` or ``postgresql://`` URL."""
    return SqlInventory(connect(spec, what="inventory", schema=SCHEMA))

