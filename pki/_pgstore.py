"""Plumbing shared by the small PostgreSQL stores (station inventory, station registry): psycopg 3.

One connection per store object, serialised by a lock (the stores are thread-safe, like their SQLite
twins). Each store kind is one *component* with its own numbered migrations, recorded in the
``ocppsec_schema`` table the ledger and the event store use too, and its own table-name prefix
(``inventory_``, ``registry_``), so all of them can live in one database.

A connection that broke (server restart, idle timeout, ``pg_terminate_backend``) is replaced on the next
call; a read that failed because of it is retried once on the new connection. A write is not retried
(its commit may or may not have happened): it raises :class:`~ocppsec.pki.errors.StoreError`.
"""

from __future__ import annotations

import contextlib
import threading
import zlib
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ocppsec.pki.errors import DuplicateError, StoreError

__all__ = ["PgStore", "is_postgres_url", "safe_location"]

_T = TypeVar("_T")


def is_postgres_url(text: str) -> bool:
    """True for ``postgresql://`` and ``postgres://`` URLs."""
    return text.startswith(("postgresql://", "postgres://"))


def safe_location(url: str) -> str:
    """The URL without user and password, for messages."""
    return url.split("@")[-1] if "@" in url else url


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class PgStore:
    """Base of a store kept in PostgreSQL: connection, migrations, error mapping, reconnection.

    Subclasses set ``COMPONENT`` (the row in ``ocppsec_schema``), ``MIGRATIONS`` (a tuple of steps, each
    a tuple of SQL statements) and ``WHAT`` (how messages name the store).
    """

    COMPONENT = ""
    WHAT = "store"
    MIGRATIONS: tuple[tuple[str, ...], ...] = ()

    def __init__(self, url: str, *, connect_timeout: int = 10) -> None:
        try:
            import psycopg
        except ImportError:
            raise StoreError(f"a postgresql:// {self.WHAT} needs psycopg", hint="pip install 'ocppsec[postgres]'") from None
        self._psycopg = psycopg
        self.url = url
        self.location = safe_location(url)  # never show a password
        self._connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._conn: Any = None
        self._closed = False
        with self._lock:
            self._conn = self._connect()
            for attempt in range(3):
                try:
                    self._migrate(self._conn)
                    break
                except psycopg.errors.UniqueViolation:
                    # two components creating ocppsec_schema at the same moment: the loser retries
                    if attempt == 2:
                        raise StoreError(f"{self.WHAT} {self.location}: schema setup kept clashing") from None
                except psycopg.Error as exc:
                    self._conn.close()
                    raise StoreError(f"{self.WHAT} {self.location}: schema setup failed: {_first_line(exc)}") from None
                except BaseException:
                    self._conn.close()
                    raise

    @property
    def latest(self) -> int:
        return len(self.MIGRATIONS)

    # -- plumbing -------------------------------------------------------------------------------------
    def _connect(self) -> Any:
        psycopg = self._psycopg
        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=self._connect_timeout)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to the {self.WHAT} at {self.location}: {_first_line(exc)}",
                             hint="is PostgreSQL running, and does the URL name an existing database?") from None

    def _healthy(self) -> bool:
        return self._conn is not None and not self._conn.closed and not self._conn.broken

    def _run(self, work: Callable[[Any], _T], *, read: bool = False) -> _T:
        """Run ``work(connection)`` under the lock; psycopg errors become ocppsec errors."""
        psycopg = self._psycopg
        with self._lock:
            if self._closed:
                raise StoreError(f"{self.WHAT} {self.location} is closed")
            for attempt in (1, 2):
                if not self._healthy():
                    with contextlib.suppress(Exception):
                        self._conn.close()
                    self._conn = self._connect()
                try:
                    return work(self._conn)
                except psycopg.errors.UniqueViolation as exc:
                    raise DuplicateError(f"{self.WHAT} refused the record: {_first_line(exc)}") from None
                except psycopg.OperationalError as exc:
                    if read and attempt == 1 and not self._healthy():
                        continue  # the connection died under us: one more try on a fresh one
                    raise StoreError(f"{self.WHAT} {self.location} is unavailable: {_first_line(exc)}") from None
                except psycopg.Error as exc:
                    raise StoreError(f"{self.WHAT} {self.location} failed: {_first_line(exc)}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _migrate(self, conn: Any) -> None:
        lock_key = zlib.crc32(f"ocppsec.{self.COMPONENT}.migrate".encode())
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key,))
            cur.execute("CREATE TABLE IF NOT EXISTS ocppsec_schema (component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
            cur.execute("SELECT version FROM ocppsec_schema WHERE component = %s", (self.COMPONENT,))
            row = cur.fetchone()
            current = int(row[0]) if row else 0
            if current > self.latest:
                raise StoreError(
                    f"{self.WHAT} {self.location} has schema version {current}, newer than this ocppsec ({self.latest})",
                    hint="upgrade ocppsec",
                )
            for statements in self.MIGRATIONS[current:]:
                for statement in statements:
                    cur.execute(statement)
            if current < self.latest:
                cur.execute("INSERT INTO ocppsec_schema (component, version) VALUES (%s, %s) "
                            "ON CONFLICT (component) DO UPDATE SET version = excluded.version", (self.COMPONENT, self.latest))

    def schema_version(self) -> int:
        def work(conn: Any) -> int:
            row = conn.execute("SELECT version FROM ocppsec_schema WHERE component = %s", (self.COMPONENT,)).fetchone()
            return int(row[0]) if row else 0

        return self._run(work, read=True)

    def _fetch(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        return self._run(lambda conn: list(conn.execute(sql, tuple(args)).fetchall()), read=True)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
