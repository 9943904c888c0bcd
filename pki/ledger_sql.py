"""The issuance ledger in SQL: one implementation of :class:`~ocppsec.pki.ledger.Ledger` for SQLite and PostgreSQL.

:func:`open_ledger` takes a file path (``DIR/ledger.db``), ``sqlite:///path`` or a ``postgresql://`` URL
(a ledger shared by several CSMS nodes); any other scheme is refused. Guarantees on both:

- a certificate counts as issued only once its row is committed; a batch is one transaction (SQLite:
  WAL, ``synchronous=FULL``; PostgreSQL: a dead connection's open transaction is rolled back by the
  server), so a process killed mid-issuance leaves either the whole batch or nothing;
- ``UNIQUE (issuer_ca, serial)`` makes a duplicate serial impossible whatever the number of writers; a
  clash raises :class:`~ocppsec.pki.errors.DuplicateError` with nothing written;
- schema changes are the numbered steps of :data:`SCHEMA` (component ``ledger`` of ``ocppsec_schema``);
- :meth:`SqlLedger.revocation_marker` tells a poller cheaply whether a revocation happened (a partial index
  on the revoked rows keeps it and :meth:`SqlLedger.revoked` off the rest of the table).

Tables are prefixed ``ledger_`` so the ledger can share a database with the other stores. A SQLite
ledger written before ``ocppsec_schema`` (tables ``certificates`` / ``crl_numbers``, ``PRAGMA
user_version``) is adopted on first open: its tables are renamed, its rows kept.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from ocppsec.pki.errors import DuplicateError, NotFoundError
from ocppsec.pki.ledger import CertificateRecord, CertificateStatus
from ocppsec.pki.storage import Database, Migration, Schema, SqlStore, StoreUrl, Transaction, adopt_tables, connect

__all__ = ["SCHEMA", "SqlLedger", "open_ledger"]

_INDEXES = (
    "CREATE UNIQUE INDEX ledger_certificates_name ON ledger_certificates(name) WHERE name IS NOT NULL",
    "CREATE INDEX ledger_certificates_not_after ON ledger_certificates(not_after)",
    "CREATE INDEX ledger_certificates_station ON ledger_certificates(station) WHERE station IS NOT NULL",
)


# revoked() and revocation_marker() read only the revoked rows (a gateway polls them every few seconds)
_REVOKED_INDEX = "CREATE INDEX ledger_certificates_revoked ON ledger_certificates(issuer_ca) WHERE status = 'revoked'"


def _adopt(tx: Transaction) -> int:
    """A SQLite ledger from before ``ocppsec_schema`` (version 1: certificates; 2: also crl_numbers)."""
    return adopt_tables(tx, {"certificates": "ledger_certificates", "crl_numbers": "ledger_crl_numbers"},
                        drop_indexes=("certificates_name", "certificates_not_after", "certificates_station"),
                        create=_INDEXES)


SCHEMA = Schema("ledger", "ledger", (
    Migration("issued certificates", (
        """CREATE TABLE ledger_certificates (
            id {ID},
            serial TEXT NOT NULL,
            issuer_ca TEXT NOT NULL,
            role TEXT NOT NULL,
            subject TEXT NOT NULL,
            not_before {TIMESTAMP} NOT NULL,
            not_after {TIMESTAMP} NOT NULL,
            issued_at {TIMESTAMP} NOT NULL,
            fingerprint TEXT NOT NULL UNIQUE,
            pem TEXT NOT NULL,
            name TEXT,
            is_ca {BOOL} NOT NULL DEFAULT FALSE,
            key_ref TEXT,
            status TEXT NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'revoked')),
            revoked_at {TIMESTAMP},
            revocation_reason TEXT,
            station TEXT,
            UNIQUE (issuer_ca, serial)
        )""",
        *_INDEXES,
    )),
    Migration("CRL numbers", ("CREATE TABLE ledger_crl_numbers (issuer_ca TEXT PRIMARY KEY, last_number {BIGINT} NOT NULL)",)),
    Migration("revoked index", (_REVOKED_INDEX,)),
    Migration("generations", (
        "ALTER TABLE ledger_certificates ADD COLUMN superseded_by TEXT",
        "ALTER TABLE ledger_certificates ADD COLUMN retired_at {TIMESTAMP}",
    )),
), adopt=_adopt)

_COLUMNS = (
    "serial, issuer_ca, role, subject, not_before, not_after, issued_at, fingerprint, pem, name, is_ca, "
    "key_ref, status, revoked_at, revocation_reason, station, superseded_by, retired_at"
)
_SELECT = f"SELECT {_COLUMNS} FROM ledger_certificates "
_INSERT = f"INSERT INTO ledger_certificates ({_COLUMNS}) VALUES ({', '.join('?' * 18)})"
_STATUS = {s.value: s for s in CertificateStatus}


class SqlLedger(SqlStore):
    """The ledger in one SQLite file or PostgreSQL database. Thread-safe."""

    SCHEMA = SCHEMA

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self._ts = database.timestamp
        self._dt = database.datetime

    def _record(self, r: Sequence[Any]) -> CertificateRecord:
        (serial, issuer_ca, role, subject, nb, na, ia, fp, pem, name, is_ca, key_ref, status, rat, reason, station,
         superseded_by, retired) = r
        dt = self._dt
        return CertificateRecord(
            serial=serial, issuer_ca=issuer_ca, role=role, subject=subject, not_before=dt(nb),  # type: ignore[arg-type]
            not_after=dt(na), issued_at=dt(ia), fingerprint=fp, pem=pem,  # type: ignore[arg-type]
            name=name, is_ca=bool(is_ca), key_ref=key_ref, status=_STATUS[status], revoked_at=dt(rat),
            revocation_reason=reason, station=station, superseded_by=superseded_by, retired_at=dt(retired),
        )

    def _rows(self, records: Sequence[CertificateRecord]) -> list[tuple[object, ...]]:
        """The INSERT parameters of every record; a batch shares its few timestamps, so each is converted once."""
        converted: dict[datetime, object] = {}
        convert = self._ts

        def ts(dt: datetime | None) -> object:
            if dt is None:
                return None
            value = converted.get(dt)
            if value is None:
                value = converted[dt] = convert(dt)
            return value

        return [
            (r.serial, r.issuer_ca, r.role, r.subject, ts(r.not_before), ts(r.not_after), ts(r.issued_at), r.fingerprint,
             r.pem, r.name, r.is_ca, r.key_ref, r.status.value, ts(r.revoked_at), r.revocation_reason, r.station,
             r.superseded_by, ts(r.retired_at))
            for r in records
        ]

    def _query(self, where: str, args: Sequence[object] = ()) -> list[CertificateRecord]:
        return [self._record(r) for r in self.database.fetchall(_SELECT + where, args)]

    # -- the Ledger interface -------------------------------------------------------------------
    def add(self, records: Sequence[CertificateRecord]) -> None:
        rows = self._rows(records)  # before the transaction: the write lock is held only for the inserts and the commit
        with self.database.transaction() as tx:
            tx.executemany(_INSERT, rows)

    def get_named(self, name: str) -> CertificateRecord | None:
        rows = self._query("WHERE name = ?", (name,))
        return rows[0] if rows else None

    def find_serial(self, serial: str, issuer_ca: str | None = None) -> list[CertificateRecord]:
        s = serial.lower().removeprefix("0x").lstrip("0") or "0"
        if issuer_ca is None:
            return self._query("WHERE serial = ?", (s,))
        return self._query("WHERE serial = ? AND issuer_ca = ?", (s, issuer_ca))

    def all(self) -> list[CertificateRecord]:
        return self._query("ORDER BY id")

    def count(self) -> int:
        row = self.database.fetchone("SELECT count(*) FROM ledger_certificates")
        return int(row[0]) if row else 0

    def expiring(self, before: datetime) -> list[CertificateRecord]:
        return self._query("WHERE not_after < ? AND status = 'valid' ORDER BY not_after", (self._ts(before),))

    def revoke(self, serial: str, issuer_ca: str, at: datetime, reason: str) -> CertificateRecord:
        matches = self.find_serial(serial, issuer_ca)
        if not matches:
            raise NotFoundError(f"no certificate with serial {serial} issued by {issuer_ca}")
        self.database.execute(
            "UPDATE ledger_certificates SET status = 'revoked', revoked_at = ?, revocation_reason = ? "
            "WHERE serial = ? AND issuer_ca = ? AND status = 'valid'",
            (self._ts(at), reason, matches[0].serial, issuer_ca),
        )
        return replace(matches[0], status=CertificateStatus.REVOKED, revoked_at=at, revocation_reason=reason)

    def revoked(self, issuer_ca: str) -> list[CertificateRecord]:
        return self._query("WHERE issuer_ca = ? AND status = 'revoked' ORDER BY id", (issuer_ca,))

    def supersede(self, old: CertificateRecord, new: Sequence[CertificateRecord], *, alias: str) -> None:
        if old.name is None or not new:
            raise NotFoundError("only a named certificate with a successor can be superseded")
        rows = self._rows(new)
        with self.database.transaction() as tx:
            renamed = tx.execute(
                "UPDATE ledger_certificates SET name = ?, superseded_by = ? WHERE name = ? AND fingerprint = ?",
                (alias, new[0].fingerprint, old.name, old.fingerprint))
            if renamed != 1:
                raise DuplicateError(f"{old.name} changed while it was being renewed", hint="run the command again")
            if old.is_ca:  # what the old generation issued (a root: itself too) follows it
                tx.execute("UPDATE ledger_certificates SET issuer_ca = ? WHERE issuer_ca = ?", (alias, old.name))
                tx.execute("INSERT INTO ledger_crl_numbers (issuer_ca, last_number) SELECT ?, last_number "
                           "FROM ledger_crl_numbers WHERE issuer_ca = ?", (alias, old.name))
            tx.executemany(_INSERT, rows)

    def retire(self, name: str, at: datetime) -> CertificateRecord:
        record = self.get_named(name)
        if record is None:
            raise NotFoundError(f"no certificate named {name!r}")
        self.database.execute("UPDATE ledger_certificates SET retired_at = ? WHERE name = ? AND retired_at IS NULL",
                              (self._ts(at), name))
        return replace(record, retired_at=record.retired_at or at)

    def revocation_marker(self) -> int:
        """How many certificates are revoked: it grows with every revocation (one-way; rows are never deleted),
        so a poller reads :meth:`revoked` only when it moved. One index-only count (0.2 ms for 1,000 revoked
        among 100,000 certificates in PostgreSQL, against 50 ms without the index)."""
        row = self.database.fetchone("SELECT count(*) FROM ledger_certificates WHERE status = 'revoked'")
        return int(row[0]) if row else 0

    def next_crl_number(self, issuer_ca: str) -> int:
        """Reserve the next CRL number of ``issuer_ca`` (1, 2, 3 ...; RFC 5280 §5.2.3), atomic across nodes."""
        with self.database.transaction() as tx:
            row = tx.fetchone(
                "INSERT INTO ledger_crl_numbers (issuer_ca, last_number) VALUES (?, 1) ON CONFLICT (issuer_ca) "
                "DO UPDATE SET last_number = ledger_crl_numbers.last_number + 1 RETURNING last_number",
                (issuer_ca,),
            )
        assert row is not None
        return int(row[0])


def open_ledger(spec: str | os.PathLike[str] | StoreUrl) -> SqlLedger:
    """Open (creating and migrating if needed) the ledger at a file path, ``sqlite://`` or ``postgresql://`` URL."""
    return SqlLedger(connect(spec, what="ledger", schema=SCHEMA))
