"""The issuance ledger: every certificate a PKI directory issued, with serial, role, issuer and status.

:class:`Ledger` is the storage interface (narrow on purpose); :class:`SqliteLedger` is the default
adapter (WAL, ``synchronous=FULL``). A certificate counts as issued only once its row is committed:
issuance writes the row in the same transaction that reserves the serial, so a kill at any moment
leaves either nothing or a complete record, and ``UNIQUE(issuer_ca, serial)`` makes a duplicate serial
impossible. Schema changes go through numbered migrations (``MIGRATIONS``).
"""

from __future__ import annotations

import base64
import hashlib
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ocppsec.pki.errors import DuplicateError, NotFoundError, StoreError

__all__ = ["CertificateRecord", "Ledger", "SqliteLedger", "is_ledger_url", "open_ledger", "record_for"]


@dataclass(frozen=True, slots=True)
class CertificateRecord:
    """One issued certificate as the ledger keeps it."""

    serial: str  # lowercase hex, no leading zeros
    issuer_ca: str  # name of the issuing CA in this directory (the root's own name for a root)
    role: str  # profile name
    subject: str
    not_before: datetime
    not_after: datetime
    issued_at: datetime
    fingerprint: str  # SHA-256 of the DER, hex
    pem: str
    name: str | None = None  # CAs and named certificates (csms-server-rsa, ...)
    is_ca: bool = False
    key_ref: str | None = None  # "file:keys/x.key.pem" or a pkcs11: URI, for keys this PKI holds
    status: str = "valid"  # valid | revoked
    revoked_at: datetime | None = None
    revocation_reason: str | None = None
    station: str | None = None  # charging-station identity the certificate was issued for

    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.pem.encode())

    def to_json(self) -> dict[str, object]:
        return {
            "serial": self.serial, "name": self.name, "role": self.role, "issuer": self.issuer_ca,
            "subject": self.subject, "not_before": self.not_before.isoformat(), "not_after": self.not_after.isoformat(),
            "status": self.status, "is_ca": self.is_ca, "issued_at": self.issued_at.isoformat(),
            "fingerprint": self.fingerprint, "station": self.station,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "revocation_reason": self.revocation_reason,
        }


def record_for(
    cert: x509.Certificate, *, issuer_ca: str, role: str, issued_at: datetime, name: str | None = None,
    key_ref: str | None = None, station: str | None = None,
) -> CertificateRecord:
    """Build the ledger row of a freshly signed certificate (pure)."""
    bc_ca = False
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        bc_ca = bc.ca
    except x509.ExtensionNotFound:
        pass
    return _record(cert, cert.subject, bc_ca, issuer_ca=issuer_ca, role=role, issued_at=issued_at, name=name,
                   key_ref=key_ref, station=station)


def _record(
    cert: x509.Certificate, subject: x509.Name, is_ca: bool, *, issuer_ca: str, role: str, issued_at: datetime,
    name: str | None = None, key_ref: str | None = None, station: str | None = None,
) -> CertificateRecord:
    """:func:`record_for` with the subject and CA flag supplied by an issuer that just encoded them into ``cert``."""
    der = cert.public_bytes(Encoding.DER)  # one serialisation for both the fingerprint and the PEM
    return CertificateRecord(
        serial=format(cert.serial_number, "x"), issuer_ca=issuer_ca, role=role,
        subject=subject.rfc4514_string(), not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc, issued_at=issued_at,
        fingerprint=hashlib.sha256(der).hexdigest(), pem=_certificate_pem(der),
        name=name, is_ca=is_ca, key_ref=key_ref, station=station,
    )


def _issued_record(
    der: bytes, serial: int, subject: str, not_before: datetime, not_after: datetime, is_ca: bool, *, issuer_ca: str,
    role: str, issued_at: datetime, station: str | None = None,
) -> CertificateRecord:
    """:func:`record_for` from the values an issuer just encoded into ``der`` (nothing parsed back).

    ``subject`` is the subject's ``rfc4514_string()``; ``not_before``/``not_after`` the validity as encoded
    (UTC, whole seconds), as ``not_valid_before_utc``/``not_valid_after_utc`` read it."""
    return CertificateRecord(
        serial=format(serial, "x"), issuer_ca=issuer_ca, role=role, subject=subject, not_before=not_before,
        not_after=not_after, issued_at=issued_at, fingerprint=hashlib.sha256(der).hexdigest(), pem=_certificate_pem(der),
        is_ca=is_ca, station=station,
    )


def _encoded_validity(not_before: datetime, not_after: datetime) -> tuple[datetime, datetime]:
    """The validity dates as a certificate carries them: UTC (naive means UTC), whole seconds."""
    return tuple(  # type: ignore[return-value]
        (d.astimezone(UTC) if d.tzinfo is not None else d.replace(tzinfo=UTC)).replace(microsecond=0)
        for d in (not_before, not_after)
    )


def _certificate_pem(der: bytes) -> str:
    """PEM exactly as ``Certificate.public_bytes(Encoding.PEM)`` writes it (64-character lines)."""
    b64 = base64.b64encode(der).decode("ascii")
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


class Ledger(Protocol):
    """What issuance, listing and revocation need from storage."""

    def add(self, records: Sequence[CertificateRecord]) -> None:
        """Insert all records in one transaction; :class:`DuplicateError` (and nothing written) on a clash."""
        ...

    def get_named(self, name: str) -> CertificateRecord | None: ...

    def find_serial(self, serial: str, issuer_ca: str | None = None) -> list[CertificateRecord]: ...

    def all(self) -> list[CertificateRecord]: ...

    def expiring(self, before: datetime) -> list[CertificateRecord]: ...

    def revoke(self, serial: str, issuer_ca: str, at: datetime, reason: str) -> CertificateRecord: ...

    def revoked(self, issuer_ca: str) -> list[CertificateRecord]: ...

    def next_crl_number(self, issuer_ca: str) -> int:
        """Reserve the next CRL number of ``issuer_ca`` (monotonic, shared by every node using the ledger)."""
        ...

    def close(self) -> None: ...


MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE certificates (
        id INTEGER PRIMARY KEY,
        serial TEXT NOT NULL,
        issuer_ca TEXT NOT NULL,
        role TEXT NOT NULL,
        subject TEXT NOT NULL,
        not_before TEXT NOT NULL,
        not_after TEXT NOT NULL,
        issued_at TEXT NOT NULL,
        fingerprint TEXT NOT NULL UNIQUE,
        pem TEXT NOT NULL,
        name TEXT,
        is_ca INTEGER NOT NULL DEFAULT 0,
        key_ref TEXT,
        status TEXT NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'revoked')),
        revoked_at TEXT,
        revocation_reason TEXT,
        station TEXT,
        UNIQUE (issuer_ca, serial)
    );
    CREATE UNIQUE INDEX certificates_name ON certificates(name) WHERE name IS NOT NULL;
    CREATE INDEX certificates_not_after ON certificates(not_after);
    CREATE INDEX certificates_station ON certificates(station) WHERE station IS NOT NULL;
    """,
    """
    CREATE TABLE crl_numbers (
        issuer_ca TEXT PRIMARY KEY,
        last_number INTEGER NOT NULL
    );
    """,
)

_COLUMNS = (
    "serial, issuer_ca, role, subject, not_before, not_after, issued_at, fingerprint, pem, name, is_ca, "
    "key_ref, status, revoked_at, revocation_reason, station"
)


def _ts(dt: datetime | None) -> str | None:
    return dt.astimezone(UTC).isoformat(timespec="seconds") if dt is not None else None


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _row(r: sqlite3.Row | tuple[object, ...]) -> CertificateRecord:
    (serial, issuer_ca, role, subject, nb, na, ia, fp, pem, name, is_ca, key_ref, status, rat, reason, station) = r
    return CertificateRecord(
        serial=str(serial), issuer_ca=str(issuer_ca), role=str(role), subject=str(subject),
        not_before=datetime.fromisoformat(str(nb)), not_after=datetime.fromisoformat(str(na)),
        issued_at=datetime.fromisoformat(str(ia)), fingerprint=str(fp), pem=str(pem),
        name=None if name is None else str(name), is_ca=bool(is_ca), key_ref=None if key_ref is None else str(key_ref),
        status=str(status), revoked_at=_dt(None if rat is None else str(rat)),
        revocation_reason=None if reason is None else str(reason), station=None if station is None else str(station),
    )


_INSERT = f"INSERT INTO certificates ({_COLUMNS}) VALUES ({', '.join('?' * 16)})"


def _rows(records: Sequence[CertificateRecord]) -> list[tuple[object, ...]]:
    """The INSERT parameters of every record; a batch shares its few timestamps, so each is formatted once."""
    texts: dict[datetime, str | None] = {}

    def ts(dt: datetime | None) -> str | None:
        if dt is None:
            return None
        text = texts.get(dt)
        if text is None:
            text = texts[dt] = _ts(dt)
        return text

    return [
        (r.serial, r.issuer_ca, r.role, r.subject, ts(r.not_before), ts(r.not_after), ts(r.issued_at), r.fingerprint,
         r.pem, r.name, int(r.is_ca), r.key_ref, r.status, ts(r.revoked_at), r.revocation_reason, r.station)
        for r in records
    ]


class SqliteLedger:
    """The default ledger: one SQLite file, WAL journal, every commit fsynced."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=30000")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open ledger {self.path}: {exc}", hint="is it an ocppsec ledger file?") from None
        self._lock = threading.Lock()

    def _migrate(self) -> None:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        for n, sql in enumerate(MIGRATIONS[version:], start=version + 1):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for stmt in filter(str.strip, sql.split(";")):
                    self._db.execute(stmt)
                self._db.execute(f"PRAGMA user_version = {n}")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def add(self, records: Sequence[CertificateRecord]) -> None:
        rows = _rows(records)  # before the transaction: the write lock is held only for the inserts and the commit
        try:
            with self._tx() as db:
                db.executemany(_INSERT, rows)
        except sqlite3.IntegrityError as exc:
            raise DuplicateError(
                f"ledger refused the record: {exc}", hint="a certificate with this serial or name exists already"
            ) from None
        except sqlite3.OperationalError as exc:
            raise StoreError(f"ledger write failed: {exc}") from None

    def _query(self, where: str, args: Iterable[object] = ()) -> list[CertificateRecord]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM certificates {where}", tuple(args)).fetchall()
        return [_row(r) for r in rows]

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
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM certificates").fetchone()[0])

    def expiring(self, before: datetime) -> list[CertificateRecord]:
        return self._query("WHERE not_after < ? AND status = 'valid' ORDER BY not_after", (_ts(before),))

    def revoke(self, serial: str, issuer_ca: str, at: datetime, reason: str) -> CertificateRecord:
        matches = self.find_serial(serial, issuer_ca)
        if not matches:
            raise NotFoundError(f"no certificate with serial {serial} issued by {issuer_ca}")
        with self._tx() as db:
            db.execute(
                "UPDATE certificates SET status='revoked', revoked_at=?, revocation_reason=? "
                "WHERE serial=? AND issuer_ca=? AND status='valid'",
                (_ts(at), reason, matches[0].serial, issuer_ca),
            )
        return replace(matches[0], status="revoked", revoked_at=at, revocation_reason=reason)

    def revoked(self, issuer_ca: str) -> list[CertificateRecord]:
        return self._query("WHERE issuer_ca = ? AND status = 'revoked' ORDER BY id", (issuer_ca,))

    def next_crl_number(self, issuer_ca: str) -> int:
        """Reserve the next CRL number of ``issuer_ca`` (1, 2, 3 ...; RFC 5280 §5.2.3: monotonically increasing)."""
        with self._tx() as db:
            row = db.execute(
                "INSERT INTO crl_numbers (issuer_ca, last_number) VALUES (?, 1) "
                "ON CONFLICT (issuer_ca) DO UPDATE SET last_number = last_number + 1 RETURNING last_number",
                (issuer_ca,),
            ).fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


def is_ledger_url(text: str) -> bool:
    """True for ``postgresql://`` / ``postgres://`` URLs (a PostgreSQL ledger shared by several CSMS nodes)."""
    return text.startswith(("postgresql://", "postgres://"))


def open_ledger(url_or_path: str | Path) -> Ledger:
    """A ``postgresql://`` URL opens :class:`ocppsec.pki.pg_ledger.PgLedger`; anything else is a SQLite file."""
    if isinstance(url_or_path, str) and is_ledger_url(url_or_path):
        from ocppsec.pki.pg_ledger import PgLedger  # needs psycopg (extra "postgres")

        return PgLedger(url_or_path)
    return SqliteLedger(url_or_path)
