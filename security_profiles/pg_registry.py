"""The station registry on PostgreSQL, shared by several gateway / CSMS nodes (psycopg 3).

Same :class:`~ocppsec.security_profiles.registry.StationRegistry` contract as
:class:`~ocppsec.security_profiles.registry.SqliteRegistry`: every write is its own short transaction,
every handshake reads the current row (nothing is cached), so an A01 password rotation or an A05 profile
change confirmed through one node is what every other node sees on the next connection.

Select it with a URL: ``open_registry("postgresql://user@host/db")`` (``ocppsec stations --stations URL``,
``ocppsec gateway --stations URL``). Its table is ``registry_stations`` and its migrations are the
component ``registry`` of ``ocppsec_schema``, so it can share a database with the ledger, the inventory
and the event store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ocppsec.pki._pgstore import PgStore
from ocppsec.pki.errors import DuplicateError
from ocppsec.security_profiles.registry import StationRecord, _require

__all__ = ["MIGRATIONS", "PostgresRegistry"]

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE registry_stations (
            identity TEXT PRIMARY KEY,
            profile INTEGER NOT NULL CHECK (profile IN (1, 2, 3)),
            serial TEXT,
            password_hash TEXT,
            pending_password_hash TEXT,
            pending_profile INTEGER CHECK (pending_profile IS NULL OR pending_profile IN (1, 2, 3)),
            updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )""",
        "CREATE INDEX registry_stations_serial ON registry_stations(serial)",
    ),
)
_COLUMNS = "identity, profile, serial, password_hash, pending_password_hash, pending_profile"


def _row(row: Sequence[Any]) -> StationRecord:
    identity, profile, serial, ph, pph, pp = row
    return StationRecord(identity, int(profile), serial, ph, pph, None if pp is None else int(pp))


def _values(r: StationRecord) -> tuple[object, ...]:
    return (r.identity, r.profile, r.serial, r.password_hash, r.pending_password_hash, r.pending_profile)


class PostgresRegistry(PgStore):
    """A registry in a PostgreSQL database. Thread-safe (one connection, serialised by a lock)."""

    COMPONENT = "registry"
    WHAT = "station registry"
    MIGRATIONS = MIGRATIONS

    def get(self, identity: str) -> StationRecord | None:
        rows = self._fetch(f"SELECT {_COLUMNS} FROM registry_stations WHERE identity = %s", (identity,))
        return _row(rows[0]) if rows else None

    def add(self, record: StationRecord) -> None:
        def work(conn: Any) -> int:
            cur = conn.execute(f"INSERT INTO registry_stations ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s) "
                               "ON CONFLICT (identity) DO NOTHING", _values(record))
            return int(cur.rowcount)

        if self._run(work) == 0:
            raise DuplicateError(f"station {record.identity!r} is registered already",
                                 hint="use `ocppsec stations set-password` or remove it first")

    def update(self, record: StationRecord) -> None:
        def work(conn: Any) -> int:
            cur = conn.execute(
                "UPDATE registry_stations SET profile = %s, serial = %s, password_hash = %s, pending_password_hash = %s, "
                "pending_profile = %s, updated_at = now() WHERE identity = %s",
                (*_values(record)[1:], record.identity),
            )
            return int(cur.rowcount)

        if self._run(work) == 0:
            _require(None, record.identity)

    def remove(self, identity: str) -> None:
        def work(conn: Any) -> int:
            return int(conn.execute("DELETE FROM registry_stations WHERE identity = %s", (identity,)).rowcount)

        if self._run(work) == 0:
            _require(None, identity)

    def list(self) -> list[StationRecord]:
        return [_row(r) for r in self._fetch(f"SELECT {_COLUMNS} FROM registry_stations ORDER BY identity COLLATE \"C\"")]
