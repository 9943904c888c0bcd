"""The station registry: who may connect, with which profile, serial number and password hash.

:class:`StationRegistry` is the narrow interface the handshake needs; :class:`MemoryRegistry` keeps
records in a dict (tests, embedding), :class:`SqliteRegistry` in a SQLite file that several gateway
processes on one host can share (WAL journal, busy timeout, every write in its own short transaction),
and :class:`~ocppsec.security_profiles.pg_registry.PostgresRegistry` in PostgreSQL, shared by gateways
and CSMS nodes on several hosts. :func:`open_registry` picks the store from a path or URL.

A record holds at most two password hashes: the active one and, during an A01 rotation, the pending
one. Both are accepted until the station confirms the change (:meth:`confirm_password`); from then on
only the new one works (A01.FR.03). A rejected change drops the pending one and keeps the old
(A01.FR.04). The same two-slot scheme carries an A05 profile change (``pending_profile``).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ocppsec.pki.errors import DuplicateError, NotFoundError, StoreError, UsageError
from ocppsec.security_profiles.identity import validate_identity

if TYPE_CHECKING:
    from ocppsec.security_profiles.pg_registry import PostgresRegistry

__all__ = [
    "DEFAULT_REGISTRY",
    "MemoryRegistry",
    "SqliteRegistry",
    "StationRecord",
    "StationRegistry",
    "confirm_password",
    "discard_pending_password",
    "open_registry",
    "set_pending_password",
]

DEFAULT_REGISTRY = "./ocppsec-stations.db"


@dataclass(frozen=True, slots=True)
class StationRecord:
    """One registered station. Hashes never appear in ``repr``."""

    identity: str
    profile: int
    serial: str | None = None
    password_hash: str | None = field(default=None, repr=False)
    pending_password_hash: str | None = field(default=None, repr=False)
    pending_profile: int | None = None

    def __post_init__(self) -> None:
        validate_identity(self.identity)
        if self.profile not in (1, 2, 3):
            raise UsageError(f"security profile {self.profile} is not 1, 2 or 3")
        if self.pending_profile is not None and self.pending_profile not in (1, 2, 3):
            raise UsageError(f"pending security profile {self.pending_profile} is not 1, 2 or 3")

    @property
    def expected_serial(self) -> str:
        """The serial number the profile-3 certificate CN must carry (the identity if none is set)."""
        return self.serial or self.identity

    @property
    def accepted_profiles(self) -> frozenset[int]:
        return frozenset({self.profile} | ({self.pending_profile} if self.pending_profile else set()))

    @property
    def password_hashes(self) -> tuple[str, ...]:
        return tuple(h for h in (self.password_hash, self.pending_password_hash) if h)


@runtime_checkable
class StationRegistry(Protocol):
    """What the handshake and the CLI need from a registry."""

    def get(self, identity: str) -> StationRecord | None: ...

    def add(self, record: StationRecord) -> None: ...

    def update(self, record: StationRecord) -> None: ...

    def remove(self, identity: str) -> None: ...

    def list(self) -> list[StationRecord]: ...


def _require(record: StationRecord | None, identity: str) -> StationRecord:
    if record is None:
        raise NotFoundError(f"station {identity!r} is not registered", hint="add it with `ocppsec stations add`")
    return record


def set_pending_password(registry: StationRegistry, identity: str, password_hash: str) -> StationRecord:
    """Start an A01 rotation: the new hash is accepted next to the old one until confirmed."""
    record = replace(_require(registry.get(identity), identity), pending_password_hash=password_hash)
    registry.update(record)
    return record


def confirm_password(registry: StationRegistry, identity: str) -> StationRecord:
    """The station accepted the new password: only the new one works from now on (A01.FR.03)."""
    record = _require(registry.get(identity), identity)
    if record.pending_password_hash is None:
        return record
    record = replace(record, password_hash=record.pending_password_hash, pending_password_hash=None)
    registry.update(record)
    return record


def discard_pending_password(registry: StationRegistry, identity: str) -> StationRecord:
    """The station rejected the change: keep accepting the old password (A01.FR.04)."""
    record = replace(_require(registry.get(identity), identity), pending_password_hash=None)
    registry.update(record)
    return record


class MemoryRegistry:
    """A registry in a dict; thread-safe."""

    def __init__(self, records: list[StationRecord] | None = None) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, StationRecord] = {r.identity: r for r in records or ()}

    def get(self, identity: str) -> StationRecord | None:
        with self._lock:
            return self._records.get(identity)

    def add(self, record: StationRecord) -> None:
        with self._lock:
            if record.identity in self._records:
                raise DuplicateError(f"station {record.identity!r} is registered already")
            self._records[record.identity] = record

    def update(self, record: StationRecord) -> None:
        with self._lock:
            _require(self._records.get(record.identity), record.identity)
            self._records[record.identity] = record

    def remove(self, identity: str) -> None:
        with self._lock:
            _require(self._records.pop(identity, None), identity)

    def list(self) -> list[StationRecord]:
        with self._lock:
            return sorted(self._records.values(), key=lambda r: r.identity)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS stations (
    identity TEXT PRIMARY KEY,
    profile INTEGER NOT NULL CHECK (profile IN (1, 2, 3)),
    serial TEXT,
    password_hash TEXT,
    pending_password_hash TEXT,
    pending_profile INTEGER CHECK (pending_profile IS NULL OR pending_profile IN (1, 2, 3)),
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS stations_serial ON stations(serial);
"""
_COLUMNS = "identity, profile, serial, password_hash, pending_password_hash, pending_profile"


_GET = f"SELECT {_COLUMNS} FROM stations WHERE identity = ?"
_CACHE_MAX = 65_536


class SqliteRegistry:
    """A registry in a SQLite file shared by several processes (WAL, ``busy_timeout``).

    :meth:`get` keeps the records it has read while the database is unchanged: each call asks SQLite for
    ``PRAGMA data_version``, which changes whenever another connection (any process) commits, and every
    write through this object empties the cache too. So a get never returns what a plain ``SELECT``
    would not, and it skips the query and the record validation when nothing was written.
    """

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 10_000) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._cache: dict[str, StationRecord | None] = {}
        self._cache_version: object = None
        try:
            self._db = sqlite3.connect(self.path, timeout=busy_timeout_ms / 1000, isolation_level=None,
                                       check_same_thread=False)
            self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open station registry {self.path}: {exc}",
                             hint="check the path and its permissions") from None

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._cache.clear()  # our own commits do not change data_version
            self._cache_version = None
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"station registry {self.path}: {exc}") from None

    @staticmethod
    def _row(row: tuple[object, ...]) -> StationRecord:
        identity, profile, serial, ph, pph, pp = row
        return StationRecord(str(identity), int(profile), serial, ph, pph, pp)  # type: ignore[arg-type, call-overload]

    def get(self, identity: str) -> StationRecord | None:
        with self._lock:
            try:
                version = self._db.execute("PRAGMA data_version").fetchone()[0]
                if version != self._cache_version:
                    self._cache.clear()
                    self._cache_version = version
                elif identity in self._cache:
                    return self._cache[identity]
                row = self._db.execute(_GET, (identity,)).fetchone()
            except sqlite3.Error as exc:
                raise StoreError(f"station registry {self.path}: {exc}") from None
            record = self._row(row) if row else None
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[identity] = record
            return record

    def add(self, record: StationRecord) -> None:
        with self._tx() as db:
            if db.execute("SELECT 1 FROM stations WHERE identity = ?", (record.identity,)).fetchone():
                raise DuplicateError(f"station {record.identity!r} is registered already",
                                     hint="use `ocppsec stations set-password` or remove it first")
            db.execute(f"INSERT INTO stations ({_COLUMNS}, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (*self._values(record), datetime.now(UTC).isoformat()))

    def update(self, record: StationRecord) -> None:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE stations SET profile = ?, serial = ?, password_hash = ?, pending_password_hash = ?, "
                "pending_profile = ?, updated_at = ? WHERE identity = ?",
                (*self._values(record)[1:], datetime.now(UTC).isoformat(), record.identity),
            )
            if cur.rowcount == 0:
                _require(None, record.identity)

    def remove(self, identity: str) -> None:
        with self._tx() as db:
            if db.execute("DELETE FROM stations WHERE identity = ?", (identity,)).rowcount == 0:
                _require(None, identity)

    def list(self) -> list[StationRecord]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM stations ORDER BY identity").fetchall()
        return [self._row(r) for r in rows]

    @staticmethod
    def _values(r: StationRecord) -> tuple[object, ...]:
        return (r.identity, r.profile, r.serial, r.password_hash, r.pending_password_hash, r.pending_profile)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_registry(spec: str | Path | None = None) -> SqliteRegistry | PostgresRegistry:
    """Open the registry named by a SQLite path (``sqlite://`` prefix allowed) or a ``postgresql://`` URL."""
    text = str(spec) if spec is not None else DEFAULT_REGISTRY
    if text.startswith(("postgresql://", "postgres://")):
        from ocppsec.security_profiles.pg_registry import PostgresRegistry  # needs psycopg (extra "postgres")

        return PostgresRegistry(text)
    if "://" in text and not text.startswith("sqlite://"):
        raise UsageError(f"unsupported registry {text.split('://')[0]}://",
                         hint="use a SQLite file path or a postgresql:// URL")
    return SqliteRegistry(text.removeprefix("sqlite://"))
