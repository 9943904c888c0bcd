"""SQLite event store (WAL mode, batched inserts, one writer at a time, thread-safe).

Durability: WAL with ``synchronous=FULL``, so a batch reported as stored survives a power cut (the WAL is
synced at every commit). That costs one fsync per :meth:`SqliteStore.add_many`, which batches amortise
(negligible at thousands of events per batch); ``synchronous=NORMAL`` would only save that fsync.

Write path (measured with ``benchmarks/eventlog.py``): a batch is sorted by station so that the unique
(station, ts, dedup_key) index is walked in order, its parameters are laid out in one flat list, and rows go
in with one multi-row ``INSERT OR IGNORE ... VALUES (...), (...), ...`` per :data:`_ROWS_PER_STATEMENT`
rows: one statement step for many rows instead of one per row.
"""

from __future__ import annotations

import operator
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ocppsec.eventlog import migrations
from ocppsec.eventlog.store import (
    AddResult,
    EventQuery,
    EventStore,
    StatRow,
    StoredEvent,
    order_clause,
    where_clause,
)
from ocppsec.pki.errors import StoreError
from ocppsec.pki.events.model import SecurityEvent
from ocppsec.pki.versions import OcppVersion

__all__ = ["SqliteStore"]

_COLUMNS = (
    "station_id, ts, type, canonical_type, critical, tech_info, ocpp_version, source, received_at, "
    "flags, dedup_key"
)
_SELECT = "SELECT id, station_id, ts, type, tech_info, ocpp_version, source, received_at, flags FROM security_events"
_NCOL = 11
_ROW = "(" + ",".join("?" * _NCOL) + ")"
_ROWS_PER_STATEMENT = 200  # 2,200 parameters; fewer if this SQLite allows fewer (999 before 3.32)
_VERSIONS = {v.value: v for v in OcppVersion}
_BY_STATION = operator.attrgetter("station_id")


def _insert_sql(rows: int) -> str:
    return f"INSERT OR IGNORE INTO security_events ({_COLUMNS}) VALUES " + ",".join([_ROW] * rows)


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _from_ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)


def _event(row: tuple[Any, ...]) -> StoredEvent:
    ident, station, ts, type_, tech, version, source, received, flags = row
    return StoredEvent(
        ident,
        SecurityEvent(
            station_id=station,
            type=type_,
            timestamp=_from_ms(ts),
            tech_info=tech,
            ocpp_version=_VERSIONS.get(version) if version else None,
            source=source,
            received_at=_from_ms(received),
            flags=frozenset(flags.split(",")) if flags else frozenset(),
        ),
    )


class SqliteStore:
    """The default store: one SQLite file in WAL mode."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._lock = threading.RLock()
        if path != ":memory:" and not Path(path).parent.is_dir():
            raise StoreError(
                f"cannot open event store {path}: directory {Path(path).parent} does not exist",
                hint="create the directory or pass --store with another path",
            )
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
            if not Path(path).exists() or Path(path).stat().st_size == 0:
                self._db.execute("PRAGMA page_size=16384")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA cache_size=-65536")
            self._db.execute("PRAGMA synchronous=FULL")
            self._migrate()
            limit = self._db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
            per_statement = max(1, min(_ROWS_PER_STATEMENT, limit // _NCOL))
            self._chunk = per_statement
            self._insert_many = _insert_sql(per_statement)
            self._insert_one = _insert_sql(1)
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"cannot open event store {path}: {exc}",
                hint="is it a SQLite database written by ocppsec, and is the file writable?",
            ) from None

    @property
    def location(self) -> str:
        return self._path

    # -- schema ---------------------------------------------------------------------------------------
    def _migrate(self) -> None:
        db = self._db
        db.execute(migrations.SCHEMA_TABLE_SQLITE)
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute(
                "SELECT version FROM ocppsec_schema WHERE component = ?", (migrations.COMPONENT,)
            ).fetchone()
            current = row[0] if row else 0
            for statement in migrations.pending_statements(current, str(self._path), "sqlite"):
                db.execute(statement)
            if current < migrations.LATEST:
                db.execute(
                    "INSERT INTO ocppsec_schema (component, version) VALUES (?, ?) "
                    "ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                    (migrations.COMPONENT, migrations.LATEST),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def schema_version(self) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT version FROM ocppsec_schema WHERE component = ?", (migrations.COMPONENT,)
            ).fetchone()
        return int(row[0]) if row else 0

    # -- writing --------------------------------------------------------------------------------------
    def record(self, event: SecurityEvent) -> None:
        self.add_many((event,))

    def add_many(self, events: Iterable[SecurityEvent]) -> AddResult:
        # Sorted by station (stable: arrival order within one) so inserts walk the (station, ts) index in
        # order: several times faster. INSERT OR IGNORE skips duplicates, in the batch or stored.
        batch = sorted(events, key=_BY_STATION)
        now_ms = _ms(datetime.now(UTC))
        # One flat parameter list, extended inline (no call per row and no row tuples kept alive for the
        # garbage collector to scan): this loop is most of the Python time of an ingest.
        flat: list[Any] = []
        extend = flat.extend
        for e in batch:
            extend(
                (
                    e.station_id,
                    e.millis,
                    e.type,
                    e.canonical_type,
                    e.critical,
                    e.tech_info,
                    None if e.ocpp_version is None else e.ocpp_version._value_,
                    e.source,
                    e.received_millis or now_ms,
                    ",".join(sorted(e.flags)) if e.flags else "",
                    e.dedup_key,
                )
            )
        step = self._chunk * _NCOL
        whole = len(batch) // self._chunk * step
        with self._lock:
            db = self._db
            try:
                before = db.total_changes
                db.execute("BEGIN IMMEDIATE")
                try:
                    if whole:
                        db.executemany(self._insert_many, (flat[i : i + step] for i in range(0, whole, step)))
                    if whole < len(flat):
                        db.executemany(self._insert_one, (flat[i : i + _NCOL] for i in range(whole, len(flat), _NCOL)))
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                inserted = db.total_changes - before
            except sqlite3.Error as exc:
                raise StoreError(f"cannot write to event store {self._path}: {exc}") from None
        return AddResult(inserted, len(batch) - inserted)

    # -- reading --------------------------------------------------------------------------------------
    def _select(self, q: EventQuery) -> tuple[str, list[Any]]:
        where, params = where_clause(q, "?", _ms)
        sql = _SELECT + where + order_clause(q)
        if q.limit is not None:
            sql += f" LIMIT {int(q.limit)}"
        return sql, params

    def query(self, q: EventQuery) -> list[StoredEvent]:
        sql, params = self._select(q)
        with self._lock:
            try:
                rows = self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read event store {self._path}: {exc}") from None
        return [_event(r) for r in rows]

    def iter_query(self, q: EventQuery) -> Iterator[StoredEvent]:
        sql, params = self._select(q)
        # A separate read connection: WAL readers do not block the writer, nor the other way round.
        reader = sqlite3.connect(self._path, check_same_thread=False) if self._path != ":memory:" else None
        db = reader or self._db
        try:
            cursor = db.execute(sql, params)
            while True:
                chunk = cursor.fetchmany(1000)
                if not chunk:
                    break
                for r in chunk:
                    yield _event(r)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read event store {self._path}: {exc}") from None
        finally:
            if reader is not None:
                reader.close()

    def count(self, q: EventQuery) -> int:
        where, params = where_clause(q, "?", _ms)
        with self._lock:
            row = self._db.execute("SELECT count(*) FROM security_events" + where, params).fetchone()
        return int(row[0])

    def stats(self, q: EventQuery) -> list[StatRow]:
        where, params = where_clause(q, "?", _ms)
        sql = (
            "SELECT station_id, canonical_type, count(*), sum(coalesce(critical, 0)), min(ts), max(ts) "
            f"FROM security_events{where} GROUP BY station_id, canonical_type "
            "ORDER BY count(*) DESC, station_id, canonical_type"
        )
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        return [StatRow(s, t, int(n), int(c), _from_ms(a), _from_ms(b)) for s, t, n, c, a, b in rows]

    def last_id(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT max(id) FROM security_events").fetchone()
        return int(row[0] or 0)

    def explain(self, q: EventQuery) -> str:
        sql, params = self._select(q)
        with self._lock:
            rows = self._db.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
        return "\n".join(str(r[-1]) for r in rows)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _conforms(store: SqliteStore) -> EventStore:  # mypy checks that SqliteStore implements EventStore
    return store
