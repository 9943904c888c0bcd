"""The per-station certificate inventory on PostgreSQL, shared by several CSMS nodes (psycopg 3).

Same :class:`~ocppsec.pki.certmgmt.inventory.InventoryStore` contract as
:class:`~ocppsec.pki.certmgmt.inventory.SqliteInventory`: rows keyed by ``(station_id, hash_key)``,
an upsert batch is one transaction, ``updated_at`` / ``not_after`` come back as aware UTC datetimes with
whole seconds (what the SQLite file keeps), ``ORDER BY id`` is insertion order.

Select it with a URL: ``open_inventory("postgresql://user@host/db")``. Its tables are prefixed
``inventory_`` and its migrations are the component ``inventory`` of ``ocppsec_schema``, so it can share
a database with the ledger, the station registry and the event store.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ocppsec.pki._pgstore import PgStore
from ocppsec.pki.certmgmt.inventory import InventoryEntry, hash_key
from ocppsec.pki.hashdata import CertificateHashData

__all__ = ["MIGRATIONS", "PostgresInventory"]

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE inventory_station_certificates (
            id BIGSERIAL PRIMARY KEY,
            station_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            hash_key TEXT NOT NULL,
            serial TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('sent', 'installed', 'rejected', 'deleted', 'unknown')),
            source TEXT NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL,
            fingerprint TEXT,
            subject TEXT,
            not_after TIMESTAMPTZ,
            pem TEXT,
            request_id BIGINT,
            UNIQUE (station_id, hash_key)
        )""",
        "CREATE INDEX inventory_station_certificates_station ON inventory_station_certificates(station_id, state)",
    ),
)
_TABLE = "inventory_station_certificates"
_COLS = "station_id, kind, hash_key, serial, state, source, updated_at, fingerprint, subject, not_after, pem, request_id"
_UPSERT = (
    f"INSERT INTO {_TABLE} ({_COLS}) VALUES ({', '.join(['%s'] * 12)}) "
    "ON CONFLICT (station_id, hash_key) DO UPDATE SET kind=excluded.kind, state=excluded.state, "
    f"updated_at=excluded.updated_at, source=excluded.source, fingerprint=coalesce(excluded.fingerprint, {_TABLE}.fingerprint), "
    f"subject=coalesce(excluded.subject, {_TABLE}.subject), not_after=coalesce(excluded.not_after, {_TABLE}.not_after), "
    f"pem=coalesce(excluded.pem, {_TABLE}.pem), request_id=coalesce(excluded.request_id, {_TABLE}.request_id)"
)


def _ts(dt: datetime | None) -> datetime | None:
    return dt.astimezone(UTC).replace(microsecond=0) if dt is not None else None


def _params(e: InventoryEntry) -> tuple[object, ...]:
    return (e.station_id, e.kind, e.hash_key, e.serial, e.state, e.source, _ts(e.updated_at), e.fingerprint,
            e.subject, _ts(e.not_after), e.pem, e.request_id)


def _row(r: Sequence[Any]) -> InventoryEntry:
    sid, kind, hk, serial, state, source, upd, fp, subject, na, pem, rid = r
    return InventoryEntry(
        station_id=sid, kind=kind, hash_key=hk, serial=serial, state=state, updated_at=upd.astimezone(UTC),
        source=source, fingerprint=fp, subject=subject, not_after=None if na is None else na.astimezone(UTC), pem=pem,
        request_id=None if rid is None else int(rid),
    )


class PostgresInventory(PgStore):
    """The inventory in a PostgreSQL database. Thread-safe (one connection, serialised by a lock)."""

    COMPONENT = "inventory"
    WHAT = "inventory"
    MIGRATIONS = MIGRATIONS

    def upsert(self, entries: Sequence[InventoryEntry]) -> None:
        if not entries:
            return

        def work(conn: Any) -> None:
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(_UPSERT, [_params(e) for e in entries])

        self._run(work)

    def set_state(self, station_id: str, hash_data: CertificateHashData, state: str, at: datetime) -> bool:
        def work(conn: Any) -> bool:
            cur = conn.execute(f"UPDATE {_TABLE} SET state=%s, updated_at=%s WHERE station_id=%s AND hash_key=%s",
                               (state, _ts(at), station_id, hash_key(hash_data)))
            return bool(cur.rowcount > 0)

        return self._run(work)

    def _query(self, where: str, args: Sequence[object] = ()) -> list[InventoryEntry]:
        return [_row(r) for r in self._fetch(f"SELECT {_COLS} FROM {_TABLE} {where}", args)]

    def for_station(self, station_id: str) -> list[InventoryEntry]:
        return self._query("WHERE station_id = %s ORDER BY id", (station_id,))

    def find(self, station_id: str, hash_data: CertificateHashData) -> InventoryEntry | None:
        rows = self._query("WHERE station_id = %s AND hash_key = %s", (station_id, hash_key(hash_data)))
        return rows[0] if rows else None

    def latest_sent(self, station_id: str) -> InventoryEntry | None:
        rows = self._query("WHERE station_id = %s AND state = 'sent' ORDER BY id DESC LIMIT 1", (station_id,))
        return rows[0] if rows else None

    def all(self) -> list[InventoryEntry]:
        return self._query("ORDER BY id")

    def count(self) -> int:
        return int(self._fetch(f"SELECT count(*) FROM {_TABLE}")[0][0])
