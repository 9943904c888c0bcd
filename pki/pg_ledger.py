"""The issuance ledger on PostgreSQL, shared by several CSMS nodes (psycopg 3), behind the same
:class:`~ocppsec.pki.ledger.Ledger` interface as :class:`~ocppsec.pki.ledger.SqliteLedger`.

Select it with a URL: ``open_ledger("postgresql://user@host/db")``. Guarantees, as for SQLite:

- a certificate counts as issued only once its row is committed; a batch is one transaction, so a
  process killed mid-issuance (even by SIGKILL: the server rolls back the open transaction of a dead
  connection) leaves either the whole batch or nothing;
- ``UNIQUE (issuer_ca, serial)`` makes a duplicate serial impossible whatever the number of writers;
  a clash raises :class:`~ocppsec.pki.errors.DuplicateError` with nothing written, and the issuer signs
  again with fresh serials;
- schema changes are numbered migrations (``MIGRATIONS``), applied under a transaction-scoped advisory
  lock, recorded in ``ocppsec_schema`` (component ``ledger``) — the table the event store uses too.

Tables are prefixed ``ledger_`` so the ledger can share a database with the event store.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

from ocppsec.pki.errors import DuplicateError, NotFoundError, StoreError
from ocppsec.pki.ledger import CertificateRecord

__all__ = ["MIGRATIONS", "PgLedger"]

COMPONENT = "ledger"
_LOCK_KEY = zlib.crc32(b"ocppsec.pki.ledger.migrate")
_T = TypeVar("_T")

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE ledger_certificates (
            id BIGSERIAL PRIMARY KEY,
            serial TEXT NOT NULL,
            issuer_ca TEXT NOT NULL,
            role TEXT NOT NULL,
            subject TEXT NOT NULL,
            not_before TIMESTAMPTZ NOT NULL,
            not_after TIMESTAMPTZ NOT NULL,
            issued_at TIMESTAMPTZ NOT NULL,
            fingerprint TEXT NOT NULL UNIQUE,
            pem TEXT NOT NULL,
            name TEXT,
            is_ca BOOLEAN NOT NULL DEFAULT FALSE,
            key_ref TEXT,
            status TEXT NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'revoked')),
            revoked_at TIMESTAMPTZ,
            revocation_reason TEXT,
            station TEXT,
            UNIQUE (issuer_ca, serial)
        )""",
        "CREATE UNIQUE INDEX ledger_certificates_name ON ledger_certificates(name) WHERE name IS NOT NULL",
        "CREATE INDEX ledger_certificates_not_after ON ledger_certificates(not_after)",
        "CREATE INDEX ledger_certificates_station ON ledger_certificates(station) WHERE station IS NOT NULL",
    ),
    (
        "CREATE TABLE ledger_crl_numbers (issuer_ca TEXT PRIMARY KEY, last_number BIGINT NOT NULL)",
    ),
)
LATEST = len(MIGRATIONS)

_COLUMNS = (
    "serial, issuer_ca, role, subject, not_before, not_after, issued_at, fingerprint, pem, name, is_ca, "
    "key_ref, status, revoked_at, revocation_reason, station"
)


def _row(r: Sequence[Any]) -> CertificateRecord:
    (serial, issuer_ca, role, subject, nb, na, ia, fp, pem, name, is_ca, key_ref, status, rat, reason, station) = r
    return CertificateRecord(
        serial=serial, issuer_ca=issuer_ca, role=role, subject=subject, not_before=nb, not_after=na, issued_at=ia,
        fingerprint=fp, pem=pem, name=name, is_ca=bool(is_ca), key_ref=key_ref, status=status, revoked_at=rat,
        revocation_reason=reason, station=station,
    )


def _params(rec: CertificateRecord) -> tuple[object, ...]:
    return (
        rec.serial, rec.issuer_ca, rec.role, rec.subject, rec.not_before, rec.not_after, rec.issued_at,
        rec.fingerprint, rec.pem, rec.name, rec.is_ca, rec.key_ref, rec.status, rec.revoked_at,
        rec.revocation_reason, rec.station,
    )


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class PgLedger:
    """A ledger in a PostgreSQL database. Thread-safe (one connection, serialised by a lock)."""

    def __init__(self, url: str, *, connect_timeout: int = 10) -> None:
        try:
            import psycopg
        except ImportError:
            raise StoreError("a postgresql:// ledger needs psycopg", hint="pip install 'ocppsec[postgres]'") from None
        self._psycopg = psycopg
        self.url = url
        self.location = url.split("@")[-1] if "@" in url else url  # never show a password
        self._lock = threading.Lock()
        try:
            self._conn = psycopg.connect(url, autocommit=True, connect_timeout=connect_timeout)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to the ledger at {self.location}: {_first_line(exc)}",
                             hint="is PostgreSQL running, and does the URL name an existing database?") from None
        self._run(self._migrate)

    # -- plumbing -------------------------------------------------------------------------------
    def _run(self, work: Callable[[Any], _T]) -> _T:
        psycopg = self._psycopg
        with self._lock:
            try:
                return work(self._conn)
            except psycopg.errors.UniqueViolation as exc:
                raise DuplicateError(f"ledger refused the record: {_first_line(exc)}",
                                     hint="a certificate with this serial or name exists already") from None
            except psycopg.Error as exc:
                raise StoreError(f"ledger {self.location} failed: {_first_line(exc)}") from None

    def _migrate(self, conn: Any) -> None:
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            cur.execute("CREATE TABLE IF NOT EXISTS ocppsec_schema (component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
            cur.execute("SELECT version FROM ocppsec_schema WHERE component = %s", (COMPONENT,))
            row = cur.fetchone()
            current = int(row[0]) if row else 0
            if current > LATEST:
                raise StoreError(f"ledger {self.location} has schema version {current}, newer than this ocppsec ({LATEST})",
                                 hint="upgrade ocppsec")
            for statements in MIGRATIONS[current:]:
                for statement in statements:
                    cur.execute(statement)
            if current < LATEST:
                cur.execute("INSERT INTO ocppsec_schema (component, version) VALUES (%s, %s) "
                            "ON CONFLICT (component) DO UPDATE SET version = excluded.version", (COMPONENT, LATEST))

    def schema_version(self) -> int:
        def work(conn: Any) -> int:
            row = conn.execute("SELECT version FROM ocppsec_schema WHERE component = %s", (COMPONENT,)).fetchone()
            return int(row[0]) if row else 0

        return self._run(work)

    def _query(self, where: str, args: Iterable[object] = ()) -> list[CertificateRecord]:
        def work(conn: Any) -> list[CertificateRecord]:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM ledger_certificates {where}", tuple(args)).fetchall()
            return [_row(r) for r in rows]

        return self._run(work)

    # -- the Ledger interface -------------------------------------------------------------------
    def add(self, records: Sequence[CertificateRecord]) -> None:
        def work(conn: Any) -> None:
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO ledger_certificates ({_COLUMNS}) VALUES ({', '.join(['%s'] * 16)})",
                    [_params(r) for r in records],
                )

        self._run(work)

    def get_named(self, name: str) -> CertificateRecord | None:
        rows = self._query("WHERE name = %s", (name,))
        return rows[0] if rows else None

    def find_serial(self, serial: str, issuer_ca: str | None = None) -> list[CertificateRecord]:
        s = serial.lower().removeprefix("0x").lstrip("0") or "0"
        if issuer_ca is None:
            return self._query("WHERE serial = %s", (s,))
        return self._query("WHERE serial = %s AND issuer_ca = %s", (s, issuer_ca))

    def all(self) -> list[CertificateRecord]:
        return self._query("ORDER BY id")

    def count(self) -> int:
        return self._run(lambda conn: int(conn.execute("SELECT count(*) FROM ledger_certificates").fetchone()[0]))

    def expiring(self, before: datetime) -> list[CertificateRecord]:
        return self._query("WHERE not_after < %s AND status = 'valid' ORDER BY not_after", (before,))

    def revoke(self, serial: str, issuer_ca: str, at: datetime, reason: str) -> CertificateRecord:
        matches = self.find_serial(serial, issuer_ca)
        if not matches:
            raise NotFoundError(f"no certificate with serial {serial} issued by {issuer_ca}")

        def work(conn: Any) -> None:
            conn.execute(
                "UPDATE ledger_certificates SET status='revoked', revoked_at=%s, revocation_reason=%s "
                "WHERE serial=%s AND issuer_ca=%s AND status='valid'",
                (at, reason, matches[0].serial, issuer_ca),
            )

        self._run(work)
        return replace(matches[0], status="revoked", revoked_at=at, revocation_reason=reason)

    def revoked(self, issuer_ca: str) -> list[CertificateRecord]:
        return self._query("WHERE issuer_ca = %s AND status = 'revoked' ORDER BY id", (issuer_ca,))

    def next_crl_number(self, issuer_ca: str) -> int:
        """Reserve the next CRL number of ``issuer_ca`` (atomic across nodes)."""
        def work(conn: Any) -> int:
            row = conn.execute(
                "INSERT INTO ledger_crl_numbers (issuer_ca, last_number) VALUES (%s, 1) ON CONFLICT (issuer_ca) "
                "DO UPDATE SET last_number = ledger_crl_numbers.last_number + 1 RETURNING last_number",
                (issuer_ca,),
            ).fetchone()
            return int(row[0])

        return self._run(work)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
