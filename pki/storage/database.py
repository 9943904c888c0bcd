"""One connection wrapper for SQLite and PostgreSQL: transactions, error mapping, reconnection.

A :class:`Database` owns one connection and serialises its use with a lock, so a store built on it is
thread-safe (a writer thread may own the writes while other threads read). SQL is written with ``?``
placeholders; :meth:`Database.sql` rewrites it for psycopg (``%s``). The dialect differences live in the
two small driver classes below (how to connect, how a transaction begins, what a driver error means).

SQLite: the file is opened with a busy timeout (``StoreUrl.timeout``, 30 s by default), WAL journal and
``synchronous=FULL`` (a committed transaction survives a power cut); a transaction is ``BEGIN IMMEDIATE``
(the write lock is taken at the start, so two writers never deadlock upgrading a read lock); ``?mode=ro``
opens it read-only.

PostgreSQL (psycopg 3, imported only here and only for a ``postgresql://`` URL): one autocommit
connection; a transaction is an explicit ``BEGIN``/``COMMIT``. A connection that broke (server restart,
``pg_terminate_backend``, network) is replaced: a read that hit it is retried once on a new connection;
a transaction whose ``BEGIN`` hit it starts again on a new one (nothing was sent yet); a transaction that
broke later raises :class:`~ocppsec.pki.errors.StoreUnavailableError` saying whether its commit may have
happened, and the next call reconnects.

Every driver error leaves as a :class:`~ocppsec.pki.errors.StoreError` subclass naming the store, the
cause and a hint: :class:`~ocppsec.pki.errors.StoreBusyError` (locked), ``StoreReadOnlyError``,
``StoreFullError``, :class:`~ocppsec.pki.errors.DuplicateError` (unique violation),
``StoreUnavailableError`` (server gone). A failed SQLite statement is rolled back only while a
transaction is still open (SQLite ends some failed transactions itself), so the cause is never hidden
behind "cannot rollback - no transaction is active".
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from ocppsec.pki.errors import (
    DuplicateError,
    StoreBusyError,
    StoreError,
    StoreFullError,
    StoreReadOnlyError,
    StoreUnavailableError,
)
from ocppsec.pki.storage.url import Dialect, StoreUrl

__all__ = ["Database", "Transaction"]

Params = Sequence[Any]


def _cause(exc: BaseException) -> str:
    """The first line of a driver's message (psycopg adds context lines)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


@dataclass(frozen=True, slots=True)
class _Failure:
    """What a kind of driver error becomes: the StoreError subclass, its message and hint (``str.format``
    fields: what, location, doing, cause, timeout)."""

    kind: type[StoreError]
    message: str
    hint: str | None = None

    def error(self, what: str, location: str, doing: str, exc: BaseException, **extra: str) -> StoreError:
        fields = {"what": what, "location": location, "doing": doing, "cause": _cause(exc), **extra}
        return self.kind(self.message.format(**fields), hint=self.hint.format(**fields) if self.hint else None)


_REFUSED = "{what} refused the record: {cause}"
_DUPLICATE = _Failure(DuplicateError, _REFUSED, "a record with the same key (serial, name, identity) exists already")
_FAILED = _Failure(StoreError, "{what} {location}: {doing} failed: {cause}")
_READ_ONLY = "{what} {location} is read-only ({doing}): {cause}"
_LOCKED = "{what} {location} is locked by another connection ({doing}): {cause}"
_FULL = "{what} {location}: the disk is full ({doing}): {cause}"
_CANNOT_OPEN = "cannot open {what} {location}: {cause}"

# SQLite: by the extended result code's name (sqlite3 gives it as ``sqlite_errorname``), first match wins
_SQLITE_FAILURES: tuple[tuple[tuple[str, ...], _Failure], ...] = (
    (("SQLITE_BUSY", "SQLITE_LOCKED"), _Failure(StoreBusyError, _LOCKED,
        "another process kept a write transaction open for more than {timeout} s; retry, or let it wait longer "
        "with sqlite:///PATH?timeout=SECONDS")),
    (("SQLITE_READONLY",), _Failure(StoreReadOnlyError, _READ_ONLY,
        "this user must be able to write the file and its directory (SQLite keeps -wal and -shm files beside "
        "it); open it with sqlite:///PATH?mode=ro to read only")),
    (("SQLITE_FULL",), _Failure(StoreFullError, _FULL, "free some disk space")),
    (("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"), _DUPLICATE),
    (("SQLITE_CONSTRAINT",), _Failure(StoreError, _REFUSED)),
    (("SQLITE_CANTOPEN",), _Failure(StoreError, _CANNOT_OPEN,
        "check that the path names a file this user may create or open")),
    (("SQLITE_NOTADB", "SQLITE_CORRUPT"), _Failure(StoreError, _CANNOT_OPEN, "is it an ocppsec {what} file?")),
    (("SQLITE_IOERR",), _Failure(StoreError, "{what} {location}: I/O error ({doing}): {cause}",
        "check the disk and the file system")),
)
# PostgreSQL: by psycopg's exception class (psycopg.errors, else psycopg), first match wins
_POSTGRES_FAILURES: tuple[tuple[tuple[str, ...], _Failure], ...] = (
    (("UniqueViolation",), _DUPLICATE),
    (("IntegrityError",), _Failure(StoreError, _REFUSED)),
    (("DiskFull",), _Failure(StoreFullError, _FULL, "free disk space on the database server")),
    (("ReadOnlySqlTransaction",), _Failure(StoreReadOnlyError, _READ_ONLY,
        "the URL names a standby or read-only server (or default_transaction_read_only is on); use the primary")),
    (("LockNotAvailable",), _Failure(StoreBusyError, _LOCKED,
        "another session held a lock on the table for longer than lock_timeout; retry")),
    (("InsufficientPrivilege",), _Failure(StoreError, "{what} {location}: {doing} not permitted: {cause}",
        "grant the database user the privileges on the ocppsec tables")),
    (("OperationalError", "InterfaceError"), _Failure(StoreUnavailableError,
        "{what} {location} is unavailable ({doing}): {cause}", "is PostgreSQL running and reachable?")),
)


class _Sqlite:
    """What is particular to SQLite."""

    dialect = Dialect.SQLITE
    Error: type[Exception] = sqlite3.Error

    def __init__(self, url: StoreUrl, what: str, page_size: int | None, cache_kib: int | None) -> None:
        self.url = url
        self.what = what
        self.page_size = page_size
        self.cache_kib = cache_kib

    def uri(self, read_only: bool) -> str:
        if self.url.path is None:
            return "file::memory:"
        mode = "ro" if read_only else "rwc"
        return f"file:{quote(str(self.url.path.absolute()))}?mode={mode}"

    def connect(self) -> sqlite3.Connection:
        path = self.url.path
        if path is not None and not path.parent.is_dir():
            raise StoreError(f"cannot open {self.what} {path}: directory {path.parent} does not exist",
                             hint="create the directory or name another file")
        if path is not None and path.exists() and not path.is_file():
            kind = "a directory" if path.is_dir() else "not a regular file (a FIFO, socket or device)"
            raise StoreError(f"cannot open {self.what} {path}: it is {kind}",  # SQLite would wait on a FIFO forever
                             hint="name the database file")
        fresh = path is None or not path.exists() or path.stat().st_size == 0
        conn = sqlite3.connect(self.uri(self.url.read_only), uri=True, timeout=self.url.timeout, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.url.timeout * 1000)}")
            if self.page_size and fresh and not self.url.read_only:
                conn.execute(f"PRAGMA page_size = {int(self.page_size)}")  # only before the file has its first page
            if path is not None and not self.url.read_only:
                self._wal(conn)
            conn.execute("PRAGMA synchronous = FULL")
            if self.cache_kib:
                conn.execute(f"PRAGMA cache_size = -{int(self.cache_kib)}")
            conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()  # reads page 1: "not a database" shows here
        except BaseException:
            conn.close()
            raise
        return conn

    def _wal(self, conn: sqlite3.Connection) -> None:
        """Switch the file to WAL. Two connections doing so on a fresh file get SQLITE_BUSY at once (SQLite does
        not wait there), so the switch is tried again until the busy timeout runs out."""
        deadline = time.monotonic() + self.url.timeout
        pause = 0.002
        while True:
            try:
                if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if not str(getattr(exc, "sqlite_errorname", "")).startswith("SQLITE_BUSY") or time.monotonic() > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    @staticmethod
    def begin(conn: Any) -> None:
        conn.execute("BEGIN IMMEDIATE")

    @staticmethod
    def lock(conn: Any, key: str) -> None:
        """Nothing to do: ``BEGIN IMMEDIATE`` holds the database's write lock already."""

    @staticmethod
    def in_transaction(conn: Any) -> bool:
        return bool(conn.in_transaction)

    @staticmethod
    def lost(exc: BaseException | None, conn: Any) -> bool:
        return False  # a SQLite connection does not go away under us

    @staticmethod
    def executemany(conn: Any, sql: str, rows: Any) -> None:
        conn.executemany(sql, rows)

    def stream_connection(self) -> Any:
        """A second connection for long reads (WAL readers and the writer do not block each other)."""
        if self.url.path is None:
            return None
        conn = sqlite3.connect(self.uri(True), uri=True, timeout=self.url.timeout, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(self.url.timeout * 1000)}")
        return conn

    def error(self, exc: BaseException, location: str, doing: str) -> StoreError:
        name = str(getattr(exc, "sqlite_errorname", ""))
        failure = next((f for prefixes, f in _SQLITE_FAILURES if name.startswith(prefixes)), _FAILED)
        return failure.error(self.what, location, doing, exc, timeout=f"{self.url.timeout:g}")

    @staticmethod
    def timestamp(dt: datetime | None) -> Any:
        return dt.astimezone(UTC).isoformat(timespec="seconds") if dt is not None else None

    @staticmethod
    def datetime(value: Any) -> datetime | None:
        return datetime.fromisoformat(value) if value else None


class _Postgres:
    """What is particular to PostgreSQL (psycopg 3)."""

    dialect = Dialect.POSTGRES

    def __init__(self, url: StoreUrl, what: str, connect_timeout: float) -> None:
        try:
            import psycopg
        except ImportError:
            raise StoreError(f"a postgresql:// {what} needs psycopg", hint="pip install 'ocppsec[postgres]'") from None
        self.psycopg = psycopg
        self.Error: type[Exception] = psycopg.Error
        self.url = url
        self.what = what
        self.connect_timeout = connect_timeout

    def connect(self) -> Any:
        try:
            return self.psycopg.connect(self.url.target, autocommit=True, connect_timeout=max(1, int(self.connect_timeout)))
        except self.psycopg.Error as exc:
            raise StoreUnavailableError(
                f"cannot connect to the {self.what} at {self.url.location}: {_cause(exc)}",
                hint="is PostgreSQL running, and does the URL name an existing database?") from None

    @staticmethod
    def begin(conn: Any) -> None:
        conn.execute("BEGIN")

    @staticmethod
    def lock(conn: Any, key: str) -> None:
        """A transaction-scoped advisory lock (released by COMMIT / ROLLBACK, or when the session dies)."""
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (zlib.crc32(key.encode()),))

    def in_transaction(self, conn: Any) -> bool:
        status = conn.info.transaction_status
        return bool(status != self.psycopg.pq.TransactionStatus.IDLE and status != self.psycopg.pq.TransactionStatus.UNKNOWN)

    @staticmethod
    def lost(exc: BaseException | None, conn: Any) -> bool:
        return conn is None or bool(conn.closed or conn.broken)

    @staticmethod
    def executemany(conn: Any, sql: str, rows: Any) -> None:
        with conn.cursor() as cur:
            cur.executemany(sql, rows)

    def stream_connection(self) -> Any:
        return self.connect()

    def error(self, exc: BaseException, location: str, doing: str) -> StoreError:
        psycopg = self.psycopg
        failure = next((f for names, f in _POSTGRES_FAILURES
                        if isinstance(exc, tuple(getattr(psycopg.errors, n, None) or getattr(psycopg, n) for n in names))),
                       _FAILED)
        return failure.error(self.what, location, doing, exc)

    @staticmethod
    def timestamp(dt: datetime | None) -> Any:
        return dt.astimezone(UTC).replace(microsecond=0) if dt is not None else None

    @staticmethod
    def datetime(value: Any) -> datetime | None:
        return value.astimezone(UTC) if value is not None else None


class Transaction:
    """The statements of one transaction (see :meth:`Database.transaction`); SQL with ``?`` placeholders."""

    __slots__ = ("_db", "connection")

    def __init__(self, db: Database, connection: Any) -> None:
        self._db = db
        self.connection: Any = connection  # the driver's connection, for dialect-specific fast paths (COPY ...)

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; the number of rows it changed."""
        return int(self.connection.execute(self._db.sql(sql), params).rowcount)

    def fetchone(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None:
        row = self.connection.execute(self._db.sql(sql), params).fetchone()
        return None if row is None else tuple(row)

    def fetchall(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return list(self.connection.execute(self._db.sql(sql), params).fetchall())

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        self._db._driver.executemany(self.connection, self._db.sql(sql), rows)

    def lock(self, key: str) -> None:
        """Serialise this transaction against every other one taking the same ``key`` (migrations)."""
        self._db._driver.lock(self.connection, key)


class Database:
    """One connection to one SQLite file or PostgreSQL database; ``what`` names the store in messages."""

    def __init__(self, url: StoreUrl, *, what: str, page_size: int | None = None, cache_kib: int | None = None,
                 connect_timeout: float = 10) -> None:
        self.url = url
        self.what = what
        self.dialect = url.dialect
        self._driver: _Sqlite | _Postgres = (
            _Sqlite(url, what, page_size, cache_kib) if url.dialect is Dialect.SQLITE else _Postgres(url, what, connect_timeout)
        )
        self._lock = threading.RLock()
        self._closed = False
        self._in_transaction = False
        self._sql: dict[str, str] = {}
        self._conn: Any = None
        with self._lock:
            self._connection()

    @property
    def location(self) -> str:
        """The file path or the URL without its password."""
        return self.url.location

    def __repr__(self) -> str:
        return f"Database({self.what}, {self.url!r})"

    # -- SQL and values ---------------------------------------------------------------------------
    def sql(self, text: str) -> str:
        """``text`` in this dialect's placeholder style (``?`` for SQLite, ``%s`` for psycopg)."""
        if self.dialect is Dialect.SQLITE:
            return text
        out = self._sql.get(text)
        if out is None:
            out = self._sql[text] = text.replace("%", "%%").replace("?", "%s")
        return out

    def timestamp(self, dt: datetime | None) -> Any:
        """A datetime as this dialect stores it: ISO 8601 UTC text in SQLite, ``timestamptz`` in PostgreSQL;
        both to the whole second."""
        return self._driver.timestamp(dt)

    def datetime(self, value: Any) -> datetime | None:
        """A stored timestamp back as an aware UTC datetime."""
        return self._driver.datetime(value)

    # -- connection ---------------------------------------------------------------------------------
    def _connection(self) -> Any:
        if self._closed:
            raise StoreError(f"{self.what} {self.location} is closed")
        if self._conn is None:
            try:
                self._conn = self._driver.connect()
            except self._driver.Error as exc:
                raise self._driver.error(exc, self.location, "open") from None
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # it is gone either way
                self._conn.close()
        self._conn = None

    # -- reads --------------------------------------------------------------------------------------
    def _read(self, sql: str, params: Params, one: bool) -> Any:
        driver = self._driver
        text = self.sql(sql)
        with self._lock:
            for attempt in (1, 2):
                conn = self._connection()
                try:
                    cursor = conn.execute(text, params)
                    return cursor.fetchone() if one else cursor.fetchall()
                except driver.Error as exc:
                    if driver.lost(exc, conn) and not self._in_transaction:
                        self._drop()
                        if attempt == 1:
                            continue  # the connection died under us: once more on a new one
                    raise driver.error(exc, self.location, "read") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def fetchall(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        """Rows of a query (retried once on a new connection if the old one had died)."""
        return list(self._read(sql, params, False))

    def fetchone(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None:
        row = self._read(sql, params, True)
        return None if row is None else tuple(row)

    def stream(self, sql: str, params: Params = (), *, size: int = 1000) -> Iterator[tuple[Any, ...]]:
        """Rows of a long query, fetched ``size`` at a time on a connection of their own."""
        driver = self._driver
        text = self.sql(sql)
        try:
            conn = driver.stream_connection() if not self._closed else None
        except driver.Error as exc:
            raise driver.error(exc, self.location, "read") from None
        if conn is None:  # SQLite in memory: there is only the one connection
            yield from self.fetchall(sql, params)
            return
        try:
            if self.dialect is Dialect.POSTGRES:
                with conn.transaction(), conn.cursor(name="ocppsec_stream") as cur:
                    cur.itersize = size
                    cur.execute(text, params)
                    yield from (tuple(r) for r in cur)
            else:
                cursor = conn.execute(text, params)
                while chunk := cursor.fetchmany(size):
                    yield from chunk
        except driver.Error as exc:
            raise driver.error(exc, self.location, "read") from None
        finally:
            with contextlib.suppress(Exception):
                conn.close()

    # -- writes -------------------------------------------------------------------------------------
    def _begin(self) -> Any:
        driver = self._driver
        for attempt in (1, 2):
            conn = self._connection()
            try:
                driver.begin(conn)
                return conn
            except driver.Error as exc:
                if driver.lost(exc, conn):
                    self._drop()
                    if attempt == 1:
                        continue  # nothing was sent but BEGIN: start again on a new connection
                raise driver.error(exc, self.location, "write") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _rollback(self, conn: Any) -> None:
        driver = self._driver
        if not driver.lost(None, conn) and driver.in_transaction(conn):
            with contextlib.suppress(Exception):  # the first error is the one to report
                conn.execute("ROLLBACK")

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One write transaction: committed when the block ends, rolled back if it raises.

        Driver errors leave as :class:`StoreError` subclasses; anything else the block raises is re-raised
        unchanged after the rollback. Not re-entrant across threads: the lock is held until the end."""
        driver = self._driver
        with self._lock:
            if self._in_transaction:
                raise StoreError(f"{self.what} {self.location}: a transaction is open already")
            conn = self._begin()
            self._in_transaction = True
            committing = False
            try:
                yield Transaction(self, conn)
                committing = True
                conn.execute("COMMIT")
            except driver.Error as exc:
                lost = driver.lost(exc, conn)
                self._rollback(conn)
                if lost:
                    self._drop()
                    state = "its commit may or may not have happened" if committing else "nothing was written"
                    raise StoreUnavailableError(
                        f"{self.what} {self.location}: the connection was lost during a write ({state}): {_cause(exc)}",
                        hint="is PostgreSQL running? the next call connects again") from None
                raise driver.error(exc, self.location, "write") from None
            except BaseException:
                self._rollback(conn)
                raise
            finally:
                self._in_transaction = False

    def execute(self, sql: str, params: Params = ()) -> int:
        """One statement in a transaction of its own; the number of rows it changed."""
        with self.transaction() as tx:
            return tx.execute(sql, params)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._drop()

