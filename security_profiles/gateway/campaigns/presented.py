"""The certificate each profile-3 station presents at the handshake, kept for the renewal campaigns.

:class:`PresentedCertificates` is an admission step (``gateway.admission_steps``): for a station that
sent a client certificate it puts a :class:`PresentedCertificate` (SHA-256 fingerprint, serial,
notAfter) into the connection's context (``context["certificate"]``), remembers the latest per station,
and, when the certificate changed and its issuer is one of the CA certificates it was given, writes an
inventory row (kind ``charging-station``, state ``installed``, source ``reported``) through a writer
thread that batches rows, so the event loop never waits for the store. It never refuses a station.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509

from ocppsec.pki._untrusted import PYCA_INPUT_ERRORS
from ocppsec.pki.certmgmt.inventory import EntrySource, InventoryEntry, InventoryState, InventoryStore, entry_for
from ocppsec.pki.errors import OcppsecError
from ocppsec.security_profiles.handshake import Reject
from ocppsec.security_profiles.server import Admission

__all__ = ["CLIENT_KINDS", "PresentedCertificate", "PresentedCertificates"]

_log = logging.getLogger("ocppsec.security_profiles.gateway.campaigns")
CLIENT_KINDS = frozenset({"charging-station", "combined"})


@dataclass(frozen=True, slots=True)
class PresentedCertificate:
    """What the renewal needs of a station's client certificate."""

    fingerprint: str  # SHA-256 of the DER, lower-case hex
    serial: str  # lower-case hex
    not_after: datetime
    issuer: x509.Name | None = None

    @classmethod
    def from_der(cls, der: bytes) -> tuple[PresentedCertificate, x509.Certificate] | None:
        try:
            cert = x509.load_der_x509_certificate(der)
            facts = cls(hashlib.sha256(der).hexdigest(), format(cert.serial_number, "x"), cert.not_valid_after_utc,
                        cert.issuer)
        except PYCA_INPUT_ERRORS:
            return None
        return facts, cert

    @classmethod
    def from_entry(cls, entry: InventoryEntry) -> PresentedCertificate | None:
        if entry.fingerprint is None or entry.not_after is None:
            return None
        return cls(entry.fingerprint, entry.serial, entry.not_after)


class PresentedCertificates:
    """The admission step of the module docstring. ``issuers``: the CA certificates station certificates
    are issued by (for the inventory rows' hash data); ``inventory``: where rows go (None: memory only)."""

    def __init__(self, *, issuers: Sequence[x509.Certificate] = (), inventory: InventoryStore | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC), batch: int = 500,
                 flush_interval: float = 0.5) -> None:
        self.latest: dict[str, PresentedCertificate] = {}
        self.inventory = inventory
        self.clock = clock
        self._issuers = {ca.subject.public_bytes(): ca for ca in issuers}
        self._queue: queue.Queue[InventoryEntry | None] = queue.Queue()
        self._batch = batch
        self._interval = flush_interval
        self._writer: threading.Thread | None = None
        self.written = 0

    async def __call__(self, admission: Admission) -> Reject | None:
        der = admission.peer_certificate_der()
        if not der:
            return None
        identity = admission.decision.identity
        fingerprint = hashlib.sha256(der).hexdigest()
        known = self.latest.get(identity)
        if known is not None and known.fingerprint == fingerprint:
            admission.context["certificate"] = known
            return None
        parsed = PresentedCertificate.from_der(der)
        if parsed is None:
            return None  # the handshake's own checks decide about a certificate pyca cannot read
        facts, cert = parsed
        self.latest[identity] = facts
        admission.context["certificate"] = facts
        issuer = self._issuers.get(cert.issuer.public_bytes())
        if self.inventory is not None and issuer is not None:
            try:
                entry = entry_for(identity, "charging-station", cert, issuer, state=InventoryState.INSTALLED,
                                  at=self.clock(), source=EntrySource.REPORTED)
            except (OcppsecError, ValueError) as exc:
                _log.info("%s: presented certificate not recorded: %s", identity, exc)
                return None
            self._put(entry)
        return None

    def known(self, entries: Iterable[InventoryEntry] = ()) -> dict[str, PresentedCertificate]:
        """The client certificate per station: what it presented since this process started, else the inventory's
        installed row that lasts longest."""
        out: dict[str, PresentedCertificate] = {}
        for e in entries:
            if e.kind in CLIENT_KINDS and e.state is InventoryState.INSTALLED:
                facts = PresentedCertificate.from_entry(e)
                prior = out.get(e.station_id)
                if facts is not None and (prior is None or facts.not_after > prior.not_after):
                    out[e.station_id] = facts  # of several installed rows, the one that lasts longest
        out.update(self.latest)
        return out

    # -- the writer thread -----------------------------------------------------------------------
    def _put(self, entry: InventoryEntry) -> None:
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_loop, name="ocppsec-presented-certificates", daemon=True)
            self._writer.start()
        self._queue.put(entry)

    def _write_loop(self) -> None:
        assert self.inventory is not None
        stop = False
        while not stop:
            batch: list[InventoryEntry] = []
            try:
                item = self._queue.get(timeout=self._interval)
            except queue.Empty:
                continue
            while True:
                if item is None:
                    stop = True
                    break
                batch.append(item)
                if len(batch) >= self._batch:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                try:
                    self.inventory.upsert(batch)
                    self.written += len(batch)
                except OcppsecError as exc:  # the store is down: the renewal still has what is in memory
                    _log.warning("presented certificates not written to the inventory: %s", exc.message)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued and stop the writer."""
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join(timeout)
            self._writer = None
