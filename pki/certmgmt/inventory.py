"""Per-station certificate inventory on the CSMS side: what each station holds, reconciled with the ledger.

:class:`InventoryStore` is the narrow storage interface; :class:`SqliteInventory` keeps its own tables in
``inventory.db`` beside the PKI directory's ledger (or in any file the caller names), and
:class:`~ocppsec.pki.certmgmt.pg_inventory.PostgresInventory` keeps them in PostgreSQL, shared by several
CSMS nodes. :func:`open_inventory` picks one by its argument (a ``postgresql://`` URL or a file);
:func:`inventory_location` says where a PKI directory's inventory lives: in the PostgreSQL database of
its ledger when ``DIR/ledger.url`` names one, else in ``DIR/inventory.db``.

Rows are keyed by station and certificate identity (the canonical CertificateHashData: upper-case
algorithm, lower-case hex, serial without leading zeros, SHA-256), so hash data reported in mixed case or
with leading zeros finds the same row.

States: ``sent`` (CertificateSigned sent, no answer yet), ``installed`` (station accepted / reported it),
``rejected`` (station refused CertificateSigned), ``deleted`` (DeleteCertificate accepted),
``unknown`` (reported by the station, not issued or installed through us).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from ocppsec.pki.certmgmt.model import InstalledCertificate
from ocppsec.pki.errors import StoreError
from ocppsec.pki.hashdata import CertificateHashData, compute_hash_data
from ocppsec.pki.ledger import Ledger

if TYPE_CHECKING:
    from ocppsec.pki.certmgmt.pg_inventory import PostgresInventory

__all__ = [
    "INVENTORY_FILE",
    "InventoryEntry",
    "InventoryStore",
    "IssuedEntryFactory",
    "ReconcileReport",
    "SqliteInventory",
    "entry_for",
    "inventory_location",
    "open_inventory",
    "reconcile",
]

INVENTORY_FILE = "inventory.db"
STATES = ("sent", "installed", "rejected", "deleted", "unknown")


@dataclass(frozen=True, slots=True)
class InventoryEntry:
    """One certificate a station holds (or was sent)."""

    station_id: str
    kind: str  # neutral type: charging-station, combined, v2g, v2g20, or a root/chain type (csms, v2g-chain, ...)
    hash_key: str  # canonical SHA-256 CertificateHashData "alg:namehash:keyhash:serial"
    serial: str  # lowercase hex
    state: str
    updated_at: datetime
    source: str = "issued"  # issued | installed | reported
    fingerprint: str | None = None
    subject: str | None = None
    not_after: datetime | None = None
    pem: str | None = None
    request_id: int | None = None

    @property
    def hash_data(self) -> CertificateHashData:
        alg, name_hash, key_hash, serial = self.hash_key.split(":")
        return CertificateHashData(alg, name_hash, key_hash, serial)


def hash_key(hd: CertificateHashData) -> str:
    return ":".join(hd.canonical())


def entry_for(
    station_id: str, kind: str, cert: x509.Certificate, issuer: x509.Certificate | None, *, state: str, at: datetime,
    source: str = "issued", request_id: int | None = None,
) -> InventoryEntry:
    """Build an entry from a certificate and the certificate that issued it (itself for a root)."""
    hd = compute_hash_data(cert, issuer if issuer is not None else cert, "SHA256")
    return InventoryEntry(
        station_id=station_id, kind=kind, hash_key=hash_key(hd), serial=format(cert.serial_number, "x"), state=state,
        updated_at=at, source=source, fingerprint=cert.fingerprint(hashes.SHA256()).hex(),
        subject=cert.subject.rfc4514_string(), not_after=cert.not_valid_after_utc,
        pem=cert.public_bytes(Encoding.PEM).decode("ascii"), request_id=request_id,
    )


class IssuedEntryFactory:
    """Builds ``sent`` entries for freshly issued leafs quickly (the issuer half of the hash data is cached).

    Issued entries keep no PEM or subject: the ledger holds the certificate, the fingerprint links them.
    """

    def __init__(self) -> None:
        self._issuers: dict[bytes, tuple[str, str]] = {}

    def __call__(self, station_id: str, kind: str, cert: x509.Certificate, issuer: x509.Certificate, *, at: datetime,
                 request_id: int | None = None) -> InventoryEntry:
        key = issuer.fingerprint(hashes.SHA256())
        halves = self._issuers.get(key)
        if halves is None:
            hd = compute_hash_data(cert, issuer, "SHA256")
            halves = (hd.issuer_name_hash.lower(), hd.issuer_key_hash.lower())
            self._issuers[key] = halves
        serial = format(cert.serial_number, "x")
        return InventoryEntry(
            station_id=station_id, kind=kind, hash_key=f"SHA256:{halves[0]}:{halves[1]}:{serial}", serial=serial,
            state="sent", updated_at=at, source="issued", fingerprint=cert.fingerprint(hashes.SHA256()).hex(),
            not_after=cert.not_valid_after_utc, request_id=request_id,
        )


class InventoryStore(Protocol):
    """What the certificate service needs from inventory storage."""

    def upsert(self, entries: Sequence[InventoryEntry]) -> None:
        """Insert or replace (by station + hash key) all entries in one transaction."""
        ...

    def set_state(self, station_id: str, hash_data: CertificateHashData, state: str, at: datetime) -> bool:
        """Change the state of one entry; False if the station has no such entry."""
        ...

    def for_station(self, station_id: str) -> list[InventoryEntry]: ...

    def find(self, station_id: str, hash_data: CertificateHashData) -> InventoryEntry | None: ...

    def latest_sent(self, station_id: str) -> InventoryEntry | None:
        """The most recent entry in state ``sent`` (awaiting the CertificateSigned answer)."""
        ...

    def all(self) -> list[InventoryEntry]:
        """Every entry of every station, in insertion order."""
        ...

    def close(self) -> None: ...


MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE station_certificates (
        id INTEGER PRIMARY KEY,
        station_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        hash_key TEXT NOT NULL,
        serial TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('sent', 'installed', 'rejected', 'deleted', 'unknown')),
        source TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        fingerprint TEXT,
        subject TEXT,
        not_after TEXT,
        pem TEXT,
        request_id INTEGER,
        UNIQUE (station_id, hash_key)
    );
    CREATE INDEX station_certificates_station ON station_certificates(station_id, state)
    """,
)
_COLS = "station_id, kind, hash_key, serial, state, source, updated_at, fingerprint, subject, not_after, pem, request_id"


def _ts(dt: datetime | None) -> str | None:
    return dt.astimezone(UTC).isoformat(timespec="seconds") if dt is not None else None


def _row(r: tuple[object, ...]) -> InventoryEntry:
    sid, kind, hk, serial, state, source, upd, fp, subject, na, pem, rid = r
    return InventoryEntry(
        station_id=str(sid), kind=str(kind), hash_key=str(hk), serial=str(serial), state=str(state),
        updated_at=datetime.fromisoformat(str(upd)), source=str(source), fingerprint=None if fp is None else str(fp),
        subject=None if subject is None else str(subject), not_after=None if na is None else datetime.fromisoformat(str(na)),
        pem=None if pem is None else str(pem), request_id=None if rid is None else int(str(rid)),
    )


class SqliteInventory:
    """The default inventory: its own SQLite file (WAL), separate from the ledger."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
            for n, sql in enumerate(MIGRATIONS[version:], start=version + 1):
                self._db.execute("BEGIN IMMEDIATE")
                for stmt in filter(str.strip, sql.split(";")):
                    self._db.execute(stmt)
                self._db.execute(f"PRAGMA user_version = {n}")
                self._db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open inventory {self.path}: {exc}", hint="is it an ocppsec inventory file?") from None
        self._lock = threading.Lock()

    @classmethod
    def beside(cls, pki_path: Path | str) -> SqliteInventory:
        """The inventory in a PKI directory's folder (``DIR/inventory.db``)."""
        return cls(Path(pki_path) / INVENTORY_FILE)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise StoreError(f"inventory is busy: {exc}") from None
            try:
                yield self._db
            except sqlite3.DatabaseError as exc:
                self._db.execute("ROLLBACK")
                raise StoreError(f"inventory write failed: {exc}") from None
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def upsert(self, entries: Sequence[InventoryEntry]) -> None:
        with self._tx() as db:
            db.executemany(
                f"INSERT INTO station_certificates ({_COLS}) VALUES ({', '.join('?' * 12)}) "
                "ON CONFLICT (station_id, hash_key) DO UPDATE SET kind=excluded.kind, state=excluded.state, "
                "updated_at=excluded.updated_at, source=excluded.source, "
                "fingerprint=coalesce(excluded.fingerprint, fingerprint), subject=coalesce(excluded.subject, subject), "
                "not_after=coalesce(excluded.not_after, not_after), pem=coalesce(excluded.pem, pem), "
                "request_id=coalesce(excluded.request_id, request_id)",
                [(e.station_id, e.kind, e.hash_key, e.serial, e.state, e.source, _ts(e.updated_at), e.fingerprint,
                  e.subject, _ts(e.not_after), e.pem, e.request_id) for e in entries],
            )

    def set_state(self, station_id: str, hash_data: CertificateHashData, state: str, at: datetime) -> bool:
        with self._tx() as db:
            cur = db.execute("UPDATE station_certificates SET state=?, updated_at=? WHERE station_id=? AND hash_key=?",
                             (state, _ts(at), station_id, hash_key(hash_data)))
            return cur.rowcount > 0

    def _query(self, where: str, args: Iterable[object]) -> list[InventoryEntry]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLS} FROM station_certificates {where}", tuple(args)).fetchall()
        return [_row(r) for r in rows]

    def for_station(self, station_id: str) -> list[InventoryEntry]:
        return self._query("WHERE station_id = ? ORDER BY id", (station_id,))

    def find(self, station_id: str, hash_data: CertificateHashData) -> InventoryEntry | None:
        rows = self._query("WHERE station_id = ? AND hash_key = ?", (station_id, hash_key(hash_data)))
        return rows[0] if rows else None

    def latest_sent(self, station_id: str) -> InventoryEntry | None:
        rows = self._query("WHERE station_id = ? AND state = 'sent' ORDER BY id DESC LIMIT 1", (station_id,))
        return rows[0] if rows else None

    def all(self) -> list[InventoryEntry]:
        return self._query("ORDER BY id", ())

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM station_certificates").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_inventory(path_or_url: str | Path) -> SqliteInventory | PostgresInventory:
    """A ``postgresql://`` URL opens :class:`~ocppsec.pki.certmgmt.pg_inventory.PostgresInventory`; anything
    else is a SQLite file (created if missing)."""
    if isinstance(path_or_url, str) and path_or_url.startswith(("postgresql://", "postgres://")):
        from ocppsec.pki.certmgmt.pg_inventory import PostgresInventory  # needs psycopg (extra "postgres")

        return PostgresInventory(path_or_url)
    return SqliteInventory(path_or_url)


def inventory_location(pki_path: Path | str, ledger_url: str | None = None) -> str | Path:
    """Where the inventory of a PKI directory lives, for :func:`open_inventory`.

    The inventory follows the directory's ledger: ``ledger_url`` if given (a ``--ledger-url`` override),
    else the URL in ``DIR/ledger.url`` (the PostgreSQL database several CSMS nodes share; the inventory
    gets its own ``inventory_`` tables there), else the SQLite file ``DIR/inventory.db``.
    """
    from ocppsec.pki.directory import LEDGER_URL_FILE

    if ledger_url:
        return ledger_url
    url_file = Path(pki_path) / LEDGER_URL_FILE
    if url_file.is_file():
        return url_file.read_text().strip()
    return Path(pki_path) / INVENTORY_FILE


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """GetInstalledCertificateIds of one station compared with the inventory and the CA ledger."""

    station_id: str
    confirmed: tuple[InventoryEntry, ...] = ()  # known to us and reported by the station
    missing: tuple[InventoryEntry, ...] = ()  # we installed/issued it, the station does not report it
    unknown: tuple[InstalledCertificate, ...] = ()  # the station reports it, we never installed/issued it
    revoked: tuple[InventoryEntry, ...] = ()  # reported, but revoked in our ledger
    foreign: tuple[InventoryEntry, ...] = field(default=())  # reported, but our ledger issued it to another station

    @property
    def clean(self) -> bool:
        return not (self.missing or self.unknown or self.revoked or self.foreign)

    def to_json(self) -> dict[str, object]:
        return {
            "station": self.station_id, "clean": self.clean,
            "confirmed": [e.serial for e in self.confirmed], "missing": [e.serial for e in self.missing],
            "unknown": [u.hash_data.serial_number.lower() for u in self.unknown],
            "revoked": [e.serial for e in self.revoked], "foreign": [e.serial for e in self.foreign],
        }


def _listed_as(kind: str) -> str:
    """The GetInstalledCertificateIds type an inventory kind is reported under (SECC leafs: the V2G chain)."""
    return "v2g-chain" if kind in ("v2g", "v2g20") else kind


def reconcile(
    store: InventoryStore, station_id: str, reported: Sequence[InstalledCertificate], *, at: datetime,
    ledger: Ledger | None = None, kinds: Iterable[str] | None = None,
) -> ReconcileReport:
    """Update the inventory from a GetInstalledCertificateIds answer and report the differences.

    ``kinds``: the types the request asked for (only entries of these kinds can be "missing");
    ``None`` = all types. Reported V2G chain leafs are looked up in ``ledger`` to flag revoked
    certificates and certificates our CA issued to another station.
    """
    asked = set(kinds) if kinds is not None else None
    known = {e.hash_key: e for e in store.for_station(station_id) if e.state != "deleted"}
    seen: set[str] = set()
    confirmed: list[InventoryEntry] = []
    unknown: list[InstalledCertificate] = []
    revoked: list[InventoryEntry] = []
    foreign: list[InventoryEntry] = []
    updates: list[InventoryEntry] = []
    for item in reported:
        hd = item.hash_data
        if hd.hash_algorithm.upper() != "SHA256":
            unknown.append(item)  # our keys are SHA-256; other algorithms cannot be matched offline
            continue
        key = hash_key(hd)
        seen.add(key)
        entry = known.get(key)
        if entry is None:
            unknown.append(item)
            updates.append(InventoryEntry(station_id, item.type.value, key, hd.canonical()[3], "unknown", at, "reported"))
            continue
        entry = replace(entry, state="installed", updated_at=at)
        confirmed.append(entry)
        updates.append(entry)
        if ledger is not None:
            for rec in ledger.find_serial(entry.serial):
                if rec.fingerprint != entry.fingerprint:
                    continue
                if rec.status == "revoked":
                    revoked.append(entry)
                if rec.station is not None and rec.station != station_id:
                    foreign.append(entry)
    missing = [
        e for key, e in known.items()
        if key not in seen and e.state == "installed" and e.kind not in ("charging-station", "combined")
        and (asked is None or _listed_as(e.kind) in asked)
    ]
    if updates:
        store.upsert(updates)
    return ReconcileReport(station_id, tuple(confirmed), tuple(missing), tuple(unknown), tuple(revoked), tuple(foreign))
