"""Per-station certificate inventory on the CSMS side: what each station holds, reconciled with the ledger.

:class:`InventoryStore` is the narrow storage interface; its implementation is
:class:`ocppsec.pki.certmgmt.inventory_sql.SqlInventory`, opened by
:func:`~ocppsec.pki.certmgmt.inventory_sql.open_inventory` from a file (``inventory.db`` beside the PKI
directory's ledger, or any file the caller names) or a ``postgresql://`` URL (shared by several CSMS
nodes). :func:`inventory_location` says where a PKI directory's inventory lives: in the PostgreSQL
database of its ledger when ``DIR/ledger.url`` names one, else in ``DIR/inventory.db``.

Rows are keyed by station and certificate identity (the canonical CertificateHashData: upper-case
algorithm, lower-case hex, serial without leading zeros, SHA-256), so hash data reported in mixed case or
with leading zeros finds the same row.

States (:class:`InventoryState`): ``sent`` (CertificateSigned sent, no answer yet), ``installed`` (station
accepted / reported it), ``rejected`` (station refused CertificateSigned), ``deleted`` (DeleteCertificate
accepted), ``unknown`` (reported by the station, not issued or installed through us).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from ocppsec.pki.certmgmt.model import InstalledCertificate
from ocppsec.pki.hashdata import CertificateHashData, compute_hash_data
from ocppsec.pki.ledger import CertificateStatus, Ledger

__all__ = [
    "INVENTORY_FILE",
    "EntrySource",
    "InventoryEntry",
    "InventoryState",
    "InventoryStore",
    "IssuedEntryFactory",
    "ReconcileReport",
    "entry_for",
    "hash_key",
    "inventory_location",
    "reconcile",
]

INVENTORY_FILE = "inventory.db"


class InventoryState(enum.StrEnum):
    """Where a certificate stands on a station, as far as the CSMS knows."""

    SENT = "sent"  # CertificateSigned sent, no answer yet
    INSTALLED = "installed"  # the station accepted or reported it
    REJECTED = "rejected"  # the station refused CertificateSigned
    DELETED = "deleted"  # DeleteCertificate accepted
    UNKNOWN = "unknown"  # reported by the station, never issued or installed through us


class EntrySource(enum.StrEnum):
    """How an inventory entry came to be."""

    ISSUED = "issued"  # signed by our CA for the station
    INSTALLED = "installed"  # a root we installed (InstallCertificate)
    REPORTED = "reported"  # listed by the station (GetInstalledCertificateIds)


@dataclass(frozen=True, slots=True)
class InventoryEntry:
    """One certificate a station holds (or was sent)."""

    station_id: str
    kind: str  # neutral type: charging-station, combined, v2g, v2g20, or a root/chain type (csms, v2g-chain, ...)
    hash_key: str  # canonical SHA-256 CertificateHashData "alg:namehash:keyhash:serial"
    serial: str  # lowercase hex
    state: InventoryState
    updated_at: datetime
    source: EntrySource = EntrySource.ISSUED
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
    station_id: str, kind: str, cert: x509.Certificate, issuer: x509.Certificate | None, *, state: InventoryState,
    at: datetime, source: EntrySource = EntrySource.ISSUED, request_id: int | None = None,
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
            state=InventoryState.SENT, updated_at=at, source=EntrySource.ISSUED,
            fingerprint=cert.fingerprint(hashes.SHA256()).hex(), not_after=cert.not_valid_after_utc, request_id=request_id,
        )


class InventoryStore(Protocol):
    """What the certificate service needs from inventory storage."""

    def upsert(self, entries: Sequence[InventoryEntry]) -> None:
        """Insert or replace (by station + hash key) all entries in one transaction."""
        ...

    def set_state(self, station_id: str, hash_data: CertificateHashData, state: InventoryState, at: datetime) -> bool:
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

    def count(self) -> int:
        """How many entries the inventory holds."""
        ...

    def close(self) -> None: ...


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
    known = {e.hash_key: e for e in store.for_station(station_id) if e.state is not InventoryState.DELETED}
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
            updates.append(InventoryEntry(station_id, item.type.value, key, hd.canonical()[3], InventoryState.UNKNOWN, at,
                                          EntrySource.REPORTED))
            continue
        entry = replace(entry, state=InventoryState.INSTALLED, updated_at=at)
        confirmed.append(entry)
        updates.append(entry)
        if ledger is not None:
            for rec in ledger.find_serial(entry.serial):
                if rec.fingerprint != entry.fingerprint:
                    continue
                if rec.status is CertificateStatus.REVOKED:
                    revoked.append(entry)
                if rec.station is not None and rec.station != station_id:
                    foreign.append(entry)
    missing = [
        e for key, e in known.items()
        if key not in seen and e.state is InventoryState.INSTALLED and e.kind not in ("charging-station", "combined")
        and (asked is None or _listed_as(e.kind) in asked)
    ]
    if updates:
        store.upsert(updates)
    return ReconcileReport(station_id, tuple(confirmed), tuple(missing), tuple(unknown), tuple(revoked), tuple(foreign))
