"""The revocation sources of the gateway and the checker that runs them (the adapters of :mod:`.revocation`).

:class:`RevocationChecker` holds the current :class:`~.revocation.RevocationState` and answers one question
per profile-3 handshake (:meth:`RevocationChecker.check`): an in-memory lookup in the CRL indexes and the
ledger's revoked set, plus, with OCSP, the cached answer or, on a miss, one awaited query bounded by a
short timeout. Everything else runs in background tasks whose blocking work goes to worker threads:

- :class:`CrlFile` (``--crl FILE``): ``stat`` every ``poll`` seconds; a changed mtime, size or inode reloads
  the file (PEM or DER), checks it against its issuing CA (the issuers given: ``--trust`` and the ledger's
  CAs) and indexes it. A file that cannot be read or checked keeps the last good CRL in force (logged).
- :class:`CrlUrl` (``--crl URL``): fetched at start, then again ``refresh`` seconds after each fetch or a
  margin ahead of the CRL's nextUpdate, whichever comes first; a failed fetch is retried after ``retry``.
- :class:`LedgerSource` (``--pki DIR``): the ledger's revoked certificates (by fingerprint) and revoked
  CAs, probed every ``interval`` seconds (the ledger's revocation count, an index-only query) and read
  again when the probe moved, and at least every ``full_every``.
- :class:`OcspChecker` (``--ocsp auto|URL``): answers cached per certificate until the earlier of their
  nextUpdate and thisUpdate + ``max_age``; concurrent misses for one certificate share one query; a
  responder that failed is not asked again for ``retry_after`` seconds (misses are then unknown at once).
  Connected stations' answers are fetched again in the background when they expire.

Every change of what the sources say bumps :attr:`RevocationChecker.generation` and calls the listeners
(:meth:`RevocationChecker.add_listener`), which the re-check of connected stations (:mod:`.guard`) uses.

The HTTP calls (OCSP queries, CRL downloads) go through :func:`ocsp_query` and :func:`crl_download`, the one
place to point at another HTTP client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding

from ocppsec.pki._untrusted import pyca_input
from ocppsec.pki.errors import OcppsecError, UsageError
from ocppsec.pki.ledger import CertificateStatus, Ledger
from ocppsec.pki.revocation.check import CrlError, CrlIndex, index_crl, load_crl
from ocppsec.pki.revocation.ocsp import CertId, CertStatus, issuer_hashes
from ocppsec.security_profiles.gateway.revocation import (
    CrlState,
    FailMode,
    LedgerRevocation,
    LedgerState,
    OcspAnswer,
    RevocationState,
    StationCertificate,
    Status,
    Verdict,
    evaluate,
    issuer_keys,
    key_id,
)

__all__ = [
    "CrlFile",
    "CrlSource",
    "CrlUrl",
    "Issuers",
    "LedgerSource",
    "OcspChecker",
    "RevocationChecker",
    "crl_download",
    "ocsp_query",
]

_log = logging.getLogger("ocppsec.security_profiles.gateway.revocation")
MAX_REFRESHING = 32  # connected stations' OCSP answers fetched again at once (the rest wait for a later sweep)
T = TypeVar("T")


def _now() -> datetime:
    return datetime.now(UTC)


def _message(exc: BaseException) -> str:
    """One line about a failure: our own errors' message, else the exception's class and text."""
    if isinstance(exc, OcppsecError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


# -- HTTP (the one place to re-point at another client) --------------------------------------------------
async def ocsp_query(url: str, cert_id: CertId, *, issuer: x509.Certificate, at: datetime, timeout: float,
                     executor: ThreadPoolExecutor | None = None) -> Any:
    """One OCSP request to ``url`` about ``cert_id``, its answer checked against ``issuer`` (an ``OcspResult``).

    Runs the kernel client's :func:`~ocppsec.pki.revocation.client.query` in a worker thread; its own timeout is
    ``timeout`` and the wait is bounded by it too."""
    from ocppsec.pki.revocation.client import query

    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(executor, lambda: query(url, cert_id, at=at, issuer=issuer, timeout=timeout))
    return await asyncio.wait_for(future, timeout + 1.0)


def crl_download(url: str, *, timeout: float) -> bytes:
    """Download the CRL at ``url`` (blocking; run in a worker thread)."""
    from ocppsec.pki.revocation.client import fetch_crl

    return fetch_crl(url, timeout=timeout)


# -- issuers -------------------------------------------------------------------------------------------------
class Issuers:
    """The CA certificates CRLs and OCSP answers are checked against, by subject Name (DER)."""

    def __init__(self, certificates: Iterable[x509.Certificate] = ()) -> None:
        self._by_subject: dict[bytes, list[x509.Certificate]] = {}
        self.add(certificates)

    def add(self, certificates: Iterable[x509.Certificate]) -> None:
        for cert in certificates:
            same = self._by_subject.setdefault(cert.subject.public_bytes(), [])
            if cert not in same:
                same.append(cert)

    def named(self, subject: bytes) -> Sequence[x509.Certificate]:
        return tuple(self._by_subject.get(subject, ()))

    def issuer_of(self, cert: StationCertificate) -> x509.Certificate | None:
        """The CA that issued ``cert`` (the one whose key verifies it when several share the issuer Name)."""
        candidates = self._by_subject.get(cert.issuer, [])
        if len(candidates) == 1:
            return candidates[0]
        for ca in candidates:
            if key_id(ca) == cert.issuer_key:
                return ca
        parsed = cert.certificate if candidates else None
        for ca in candidates:
            assert parsed is not None
            try:
                parsed.verify_directly_issued_by(ca)
            except (ValueError, TypeError, InvalidSignature):
                continue
            return ca
        return None

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_subject.values())


def check_crl(data: bytes, issuers: Issuers, *, at: datetime) -> tuple[CrlIndex, x509.Certificate]:
    """Parse a CRL (PEM or DER) and index it against the issuer that signed it (returned with the index);
    :class:`CrlError` otherwise."""
    with pyca_input("the CRL cannot be parsed", error=CrlError):
        crl = load_crl(data)
        candidates = issuers.named(crl.issuer.public_bytes())
        if not candidates:
            raise CrlError(f"the CRL of {crl.issuer.rfc4514_string()} is of no CA the gateway holds",
                           hint="give its CA certificate with --trust (or --pki)")
        last: CrlError | None = None
        for ca in candidates:
            try:
                return index_crl(crl, ca, at=at), ca
            except CrlError as exc:
                last = exc
        assert last is not None
        raise last


# -- CRL sources -------------------------------------------------------------------------------------------
class CrlSource:
    """One ``--crl`` source; :attr:`state` is what it holds now."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.state = CrlState(name)
        self.loads = 0

    def _loaded(self, checked: tuple[CrlIndex, x509.Certificate]) -> bool:
        """Take a new index; True when it differs from the one held (another CRL number or issue time).

        A CRL of the same issuer with a lower CRLNumber than the one held is refused (an old CRL served again
        would bring back a revoked certificate): the held one stays in force."""
        index, issuer = checked
        old = self.state.index
        if old is not None and old.issuer == index.issuer and index.number < old.number:
            self._failed(f"an older CRL (#{index.number}, the one in force is #{old.number}) was refused")
            return False
        self.state = CrlState.loaded(self.name, index, issuer)
        self.loads += 1
        return old is None or (old.number, old.this_update, old.entries) != (index.number, index.this_update, index.entries)

    def _failed(self, message: str) -> None:
        if self.state.error != message:
            _log.warning("CRL %s: %s%s", self.name, message,
                         " (the last good CRL stays in force)" if self.state.index is not None else "")
        self.state = replace(self.state, error=message)

    def initial(self, issuers: Issuers, *, at: datetime) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    async def run(self, checker: RevocationChecker) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def reload_now(self, issuers: Issuers, *, at: datetime) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError


class CrlFile(CrlSource):
    """A CRL file, reloaded when its mtime, size or inode changes (checked every ``poll`` seconds)."""

    def __init__(self, path: str | os.PathLike[str], *, poll: float = 1.0) -> None:
        self.path = Path(path)
        super().__init__(str(self.path))
        self.poll = poll
        self._seen: tuple[int, int, int] | None = None

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _read(self, issuers: Issuers, at: datetime) -> tuple[CrlIndex, x509.Certificate]:
        seen = self._stat()
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise CrlError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        checked = check_crl(data, issuers, at=at)
        self._seen = seen
        return checked

    def initial(self, issuers: Issuers, *, at: datetime) -> None:
        """Load the file now; :class:`CrlError` when it cannot be read or checked (a configuration error)."""
        self._loaded(self._read(issuers, at))

    def reload_now(self, issuers: Issuers, *, at: datetime) -> bool:
        """Read the file again now (blocking); True when the CRL in force changed. Raises :class:`CrlError`
        (the last good CRL stays in force)."""
        try:
            checked = self._read(issuers, at)
        except Exception as exc:
            self._failed(_message(exc))
            raise
        changed = self._loaded(checked)
        if self.state.error is not None:  # refused (an older CRL): the one in force stays
            raise CrlError(self.state.error)
        return changed

    async def run(self, checker: RevocationChecker) -> None:
        while True:
            await asyncio.sleep(self.poll)
            seen = await checker.blocking(self._stat)
            if seen is None:
                self._failed(f"{self.path} is missing")
                continue
            if seen == self._seen:
                continue
            try:
                checked = await checker.blocking(self._read, checker.issuers, checker.clock())
            except Exception as exc:
                self._seen = seen  # do not retry an unusable file until it changes again
                self._failed(_message(exc))
                continue
            index = checked[0]
            if self._loaded(checked):
                _log.info("CRL %s reloaded: #%d, %d entries, next update %s", self.name, index.number,
                          len(index.entries), index.next_update)
                checker.changed(f"crl {self.name}")


class CrlUrl(CrlSource):
    """A CRL fetched over HTTP(S): at start, every ``refresh`` seconds and ahead of its nextUpdate."""

    def __init__(self, url: str, *, refresh: float = 3600.0, retry: float = 30.0, timeout: float = 10.0) -> None:
        super().__init__(url)
        self.url = url
        self.refresh = refresh
        self.retry = retry
        self.timeout = timeout
        self._next: datetime | None = None  # when to fetch next

    def _fetch(self, issuers: Issuers, at: datetime) -> tuple[CrlIndex, x509.Certificate]:
        return check_crl(crl_download(self.url, timeout=self.timeout), issuers, at=at)

    def _schedule(self, at: datetime, index: CrlIndex | None) -> None:
        delay = timedelta(seconds=self.refresh if index is not None else self.retry)
        if index is not None and index.next_update is not None:
            lifetime = index.next_update - index.this_update
            ahead = index.next_update - min(timedelta(minutes=5), lifetime / 10)
            delay = min(delay, max(ahead - at, timedelta(seconds=self.retry)))
        self._next = at + delay

    def initial(self, issuers: Issuers, *, at: datetime) -> None:
        """Fetch now; a failure is logged (the source counts as unknown until a fetch succeeds)."""
        try:
            self._loaded(self._fetch(issuers, at))
            self._schedule(at, self.state.index)
        except Exception as exc:
            self._failed(_message(exc))
            self._schedule(at, None)

    def reload_now(self, issuers: Issuers, *, at: datetime) -> bool:
        """Fetch again now (blocking); True when the CRL in force changed. Raises what the fetch raises (the
        last good CRL stays in force)."""
        try:
            checked = self._fetch(issuers, at)
        except Exception as exc:
            self._failed(_message(exc))
            raise
        changed = self._loaded(checked)
        self._schedule(at, checked[0])
        if self.state.error is not None:  # refused (an older CRL): the one in force stays
            raise CrlError(self.state.error)
        return changed

    async def run(self, checker: RevocationChecker) -> None:
        while True:
            at = checker.clock()
            wait = (self._next - at).total_seconds() if self._next is not None else 0.0
            await asyncio.sleep(max(wait, 0.05))
            at = checker.clock()
            try:
                checked = await checker.blocking(self._fetch, checker.issuers, at)
            except Exception as exc:
                self._failed(_message(exc))
                self._next = at + timedelta(seconds=self.retry)
                continue
            changed = self._loaded(checked)
            self._schedule(at, checked[0])
            if changed:
                checker.changed(f"crl {self.name}")


# -- the ledger ----------------------------------------------------------------------------------------------
class _HasDatabase(Protocol):
    database: Any


class LedgerSource:
    """The revocations of a PKI directory's ledger (SQLite or PostgreSQL), read every ``interval`` seconds.

    ``ca_names``: the CAs whose records are read (:meth:`from_directory` takes every CA of the hierarchy).
    ``max_age``: how long the last successful read stands in when the ledger cannot be read."""

    def __init__(self, ledger: Ledger, ca_names: Sequence[str], *, interval: float = 2.0,
                 max_age: timedelta = timedelta(seconds=30), full_every: timedelta = timedelta(minutes=1),
                 close: Callable[[], None] | None = None) -> None:
        if not ca_names:
            raise UsageError("the ledger revocation source needs at least one CA name")
        self.ledger = ledger
        self.ca_names = tuple(ca_names)
        self.interval = interval
        self.max_age = max_age
        self.full_every = full_every  # read everything at least this often, whatever the probe says
        self._full_at: datetime | None = None
        self.state = LedgerState()
        self.ca_certificates: list[x509.Certificate] = []
        self.reads = 0
        self._marker: object = None
        self._close = close

    @classmethod
    def from_directory(cls, path: str | os.PathLike[str], *, trusted: Sequence[x509.Certificate] | None = None,
                       **kwargs: Any) -> LedgerSource:
        """The ledger of the PKI directory at ``path`` (its own connection; no key is opened).

        ``trusted``: read only the CAs that chain to one of these roots (the gateway's ``--trust``: no other CA
        can have issued a certificate a station gets through the TLS handshake with); None: every CA."""
        from ocppsec.pki.directory import PkiDirectory

        pki = PkiDirectory.open(Path(path))
        try:
            names = [e.name for e in pki.config.plan().cas]
            if trusted is not None:
                roots = {c.public_bytes(Encoding.DER) for c in trusted}
                names = [n for n in names if (chain := pki.chain_of(n)) and chain[-1].public_bytes(Encoding.DER) in roots]
                if not names:
                    raise UsageError(f"the PKI directory {path} holds no CA under the trusted roots",
                                     hint="--pki names the directory whose CA issued the station certificates")
        except Exception:
            pki.close()
            raise
        return cls(pki.ledger, names, close=pki.close, **kwargs)

    def _probe(self) -> object:
        """A cheap value that moves with every revocation (None: no probe, read every time): the ledger's
        ``revocation_marker()`` (:class:`~ocppsec.pki.ledger_sql.SqlLedger`: an index-only count), else
        SQLite's data_version."""
        marker = getattr(self.ledger, "revocation_marker", None)
        if callable(marker):
            return marker()
        db = getattr(self.ledger, "database", None)
        if db is None or getattr(db, "dialect", None) is None or db.dialect.name != "SQLITE":
            return None
        row = db.fetchone("PRAGMA data_version")
        return row[0] if row else None

    def read(self, at: datetime) -> LedgerState | None:
        """Read the ledger (blocking); the new state, or None when SQLite says nothing changed."""
        marker = self._probe()
        full = self._full_at is None or at >= self._full_at
        if marker is not None and marker == self._marker and self.state.read_at is not None and not full:
            return None
        revoked: dict[str, LedgerRevocation] = {}
        revoked_cas: dict[bytes, LedgerRevocation] = {}
        cas: set[bytes] = set()
        certificates: list[x509.Certificate] = []
        for name in self.ca_names:
            record = self.ledger.get_named(name)
            if record is None or not record.is_ca:
                continue
            cert = record.certificate()
            certificates.append(cert)
            keys = issuer_keys(cert)
            cas |= keys
            if record.status is CertificateStatus.REVOKED:
                for key in keys:
                    revoked_cas[key] = LedgerRevocation(record.serial, name, record.revocation_reason, record.revoked_at)
            for r in self.ledger.revoked(name):
                revoked[r.fingerprint] = LedgerRevocation(r.serial, r.issuer_ca, r.revocation_reason, r.revoked_at)
        self._marker = marker
        self._full_at = at + self.full_every
        self.reads += 1
        self.ca_certificates = certificates
        return LedgerState(revoked, revoked_cas, frozenset(cas), at)

    def _take(self, fresh: LedgerState | None, at: datetime) -> bool:
        old = self.state
        if fresh is None:
            self.state = replace(old, read_at=at, error=None)
            return False
        self.state = fresh
        return (old.revoked.keys(), old.revoked_cas.keys()) != (fresh.revoked.keys(), fresh.revoked_cas.keys())

    def initial(self, *, at: datetime) -> None:
        """Read now; raises what the ledger raises (the gateway does not start on a ledger it cannot read)."""
        self._take(self.read(at), at)

    def reload_now(self, *, at: datetime) -> bool:
        """Read every revocation again now, whatever the probe says (blocking); True when they changed."""
        self._full_at = None
        return self._take(self.read(at), at)

    async def run(self, checker: RevocationChecker) -> None:
        while True:
            await asyncio.sleep(self.interval)
            at = checker.clock()
            try:
                fresh = await checker.blocking(self.read, at)
            except Exception as exc:
                if self.state.error is None:
                    _log.warning("ledger unreadable (its last read stands for %s): %s", self.max_age, _message(exc))
                self.state = replace(self.state, error=_message(exc))
                continue
            if self.state.error is not None:
                _log.warning("ledger readable again")
            if fresh is not None:
                checker.issuers.add(self.ca_certificates)
            if self._take(fresh, at):
                checker.changed("ledger")

    def close(self) -> None:
        if self._close is not None:
            self._close()


# -- OCSP --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Key:
    issuer: bytes
    serial: int


OcspQuery = Callable[..., Awaitable[Any]]


class OcspChecker:
    """OCSP for station certificates: ``responder`` is ``"auto"`` (each certificate's AIA OCSP URL; one without
    it is not checked by OCSP) or the URL of one responder for every certificate. See the module docstring."""

    def __init__(self, responder: str = "auto", *, max_age: timedelta = timedelta(hours=1), timeout: float = 3.0,
                 retry_after: float = 10.0, max_entries: int = 100_000, workers: int = 8,
                 query: OcspQuery | None = None) -> None:
        if responder != "auto" and not responder.startswith(("http://", "https://")):
            raise UsageError(f"OCSP responder {responder!r} is neither auto nor an http(s) URL")
        if timeout <= 0 or max_age <= timedelta(0):
            raise UsageError("the OCSP timeout and maximum answer age must be positive")
        self.responder = responder
        self.max_age = max_age
        self.timeout = timeout
        self.retry_after = retry_after
        self.max_entries = max_entries
        self.workers = workers
        self._query: OcspQuery = query or ocsp_query
        self._cache: dict[_Key, OcspAnswer] = {}
        self._inflight: dict[_Key, asyncio.Future[OcspAnswer]] = {}
        self._down: dict[str, tuple[float, str]] = {}  # responder URL -> (loop time it may be asked again, why)
        self._executor: ThreadPoolExecutor | None = None
        self.queries = 0  # requests sent
        self.hits = 0  # answers served from the cache

    def url_for(self, cert: StationCertificate) -> str | None:
        return cert.ocsp_url if self.responder == "auto" else self.responder

    def cached(self, cert: StationCertificate, *, at: datetime) -> OcspAnswer | None:
        answer = self._cache.get(_Key(cert.issuer, cert.serial))
        if answer is None or answer.expires is None or at >= answer.expires:
            return None
        return answer

    def _answer_from(self, result: Any, source: str, at: datetime) -> OcspAnswer:
        status = {CertStatus.GOOD: Status.GOOD, CertStatus.REVOKED: Status.REVOKED,
                  CertStatus.UNKNOWN: Status.UNKNOWN}[result.status]
        expires = result.this_update + self.max_age
        if result.next_update is not None:
            expires = min(expires, result.next_update)
        detail = {Status.REVOKED: (result.reason.value if result.reason is not None else "unspecified"),
                  Status.UNKNOWN: "the responder does not know the certificate", Status.GOOD: ""}[status]
        return OcspAnswer(status, source, detail, result.reason, result.revoked_at, expires if expires > at else None)

    async def _fetch(self, key: _Key, url: str, cert: StationCertificate, issuer: x509.Certificate,
                     at: datetime) -> OcspAnswer:
        source = f"ocsp {url}"
        loop = asyncio.get_running_loop()
        down = self._down.get(url)
        if down is not None and loop.time() < down[0]:
            return OcspAnswer(Status.UNKNOWN, source, down[1])
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="ocsp-query")
        self.queries += 1
        try:
            cert_id = CertId("sha256", *issuer_hashes(issuer, "sha256"), cert.serial)
            result = await self._query(url, cert_id, issuer=issuer, at=at,
                                       timeout=self.timeout, executor=self._executor)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            from ocppsec.pki.revocation.client import OcspUnavailableError

            if isinstance(exc, TimeoutError):
                why = f"responder unavailable (no answer within {self.timeout:g} s)"
            elif isinstance(exc, OcspUnavailableError | OSError):
                why = f"responder unavailable ({_message(exc)})"
            else:
                why = f"unusable answer ({_message(exc)})"
            self._down[url] = (loop.time() + self.retry_after, why)
            _log.warning("OCSP responder %s: %s", url, why)
            return OcspAnswer(Status.UNKNOWN, source, why)
        self._down.pop(url, None)
        answer = self._answer_from(result, source, at)
        if answer.expires is not None:
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            self._cache[key] = answer
        return answer

    async def answer(self, cert: StationCertificate, issuer: x509.Certificate | None, *, at: datetime,
                     cached_only: bool = False) -> OcspAnswer | None:
        """The OCSP outcome for ``cert`` (None: OCSP does not apply to it): cached, or fetched now (one query
        for concurrent callers). ``cached_only``: never wait for the network (None on a miss)."""
        url = self.url_for(cert)
        if url is None:
            return None
        hit = self.cached(cert, at=at)
        if hit is not None:
            self.hits += 1
            return hit
        if issuer is None:
            return OcspAnswer(Status.UNKNOWN, f"ocsp {url}", "the issuing CA is not held (no CertID can be built)")
        if cached_only:
            return None
        key = _Key(cert.issuer, cert.serial)
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[OcspAnswer] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            answer = await self._fetch(key, url, cert, issuer, at)
            future.set_result(answer)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody else waited
            raise
        finally:
            del self._inflight[key]
        return answer

    def previous(self, cert: StationCertificate) -> OcspAnswer | None:
        """The last cached answer about ``cert``, expired or not."""
        return self._cache.get(_Key(cert.issuer, cert.serial))

    def in_flight(self, cert: StationCertificate) -> bool:
        return _Key(cert.issuer, cert.serial) in self._inflight

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


# -- the checker ------------------------------------------------------------------------------------------------
class RevocationChecker:
    """All revocation sources of a gateway, their background tasks, and the per-handshake check.

    ``issuers``: the CA certificates CRLs and OCSP answers are checked against (the ``--trust`` roots; the
    ledger source adds its CAs). ``fail``: what an unknown status gets at the handshake (:class:`FailMode`).
    Use ``async with checker:`` (or :meth:`start` / :meth:`stop`) on the gateway's loop: :meth:`start` loads
    every source once and raises for a CRL file or ledger that cannot be read or checked.
    """

    def __init__(self, *, issuers: Iterable[x509.Certificate] = (), crls: Sequence[CrlSource] = (),
                 ledger: LedgerSource | None = None, ocsp: OcspChecker | None = None,
                 fail: FailMode | str = FailMode.CLOSED, clock: Callable[[], datetime] = _now) -> None:
        try:
            self.fail = FailMode(fail)
        except ValueError:
            raise UsageError(f"revocation fail mode {fail!r} is not open or closed") from None
        if not crls and ledger is None and ocsp is None:
            raise UsageError("a revocation checker needs at least one source (CRL, ledger or OCSP)")
        self.issuers = Issuers(issuers)
        self.crls = tuple(crls)
        self.ledger = ledger
        self.ocsp = ocsp
        self.clock = clock
        self.generation = 0
        self.checks = 0
        self.refused = 0
        self._listeners: list[Callable[[str], None]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._refreshing: set[asyncio.Task[None]] = set()
        self._executor: ThreadPoolExecutor | None = None

    # -- state ------------------------------------------------------------------------------------------------
    @property
    def state(self) -> RevocationState:
        return RevocationState(tuple(c.state for c in self.crls), self.ledger.state if self.ledger else None,
                               self.ledger.max_age if self.ledger else timedelta(seconds=30))

    def add_listener(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call ``callback(what)`` on the loop whenever a source's revocations changed; returns the remover."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    def changed(self, what: str) -> None:
        self.generation += 1
        for callback in list(self._listeners):
            try:
                callback(what)
            except Exception:
                _log.exception("a revocation listener failed")

    async def blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in the sources' worker threads."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(2, thread_name_prefix="revocation")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # -- checking ---------------------------------------------------------------------------------------------
    async def verdict(self, cert: StationCertificate, *, at: datetime | None = None) -> Verdict:
        """Every source's finding about ``cert`` (awaits one OCSP query on a cache miss)."""
        at = at or self.clock()
        state = self.state
        base = evaluate(cert, state, at=at)
        if self.ocsp is None or base.revocation is not None:
            return base
        answer = await self.ocsp.answer(cert, self.issuers.issuer_of(cert), at=at)
        return base.with_finding(answer.finding() if answer is not None else None)

    def verdict_now(self, cert: StationCertificate, *, at: datetime | None = None) -> Verdict:
        """:meth:`verdict` from what is held now (OCSP: the cached answer, expired or not), never waiting."""
        at = at or self.clock()
        base = evaluate(cert, self.state, at=at)
        if self.ocsp is not None and self.ocsp.url_for(cert) is not None:
            previous = self.ocsp.previous(cert)
            if previous is not None:
                base = base.with_finding(previous.finding())
        return base

    def refresh_ocsp(self, cert: StationCertificate) -> None:
        """Fetch ``cert``'s OCSP answer again in the background when the cached one has expired (connected
        stations); a change of its status counts as a change of the revocations."""
        ocsp = self.ocsp
        if ocsp is None or ocsp.url_for(cert) is None or ocsp.in_flight(cert) or len(self._refreshing) >= MAX_REFRESHING:
            return
        at = self.clock()
        if ocsp.cached(cert, at=at) is not None:
            return
        issuer = self.issuers.issuer_of(cert)
        if issuer is None:
            return
        before = ocsp.previous(cert)

        async def refresh() -> None:
            answer = await ocsp.answer(cert, issuer, at=at)
            if answer is not None and answer.expires is not None and (before is None or before.status != answer.status):
                self.changed(f"ocsp {cert.serial_hex}")

        task = asyncio.get_running_loop().create_task(refresh())
        self._refreshing.add(task)
        task.add_done_callback(self._refreshing.discard)

    # -- lifecycle --------------------------------------------------------------------------------------------
    def _initial(self, at: datetime) -> None:
        if self.ledger is not None:
            self.ledger.initial(at=at)
            self.issuers.add(self.ledger.ca_certificates)
        for source in self.crls:
            source.initial(self.issuers, at=at)

    async def start(self) -> None:
        """Load every source once (raising for a CRL file or ledger that cannot be used), then keep them fresh."""
        if self._tasks:
            return
        await self.blocking(self._initial, self.clock())
        loop = asyncio.get_running_loop()
        runners: list[Any] = [s.run(self) for s in self.crls]
        if self.ledger is not None:
            runners.append(self.ledger.run(self))
        self._tasks = [loop.create_task(r) for r in runners]
        for task in self._tasks:
            task.add_done_callback(_log_crash)

    async def reload(self, issuers: Iterable[x509.Certificate] | None = None) -> list[str]:
        """Read every CRL and the ledger again now (the gateway's SIGHUP); the problems found, one line each.

        ``issuers``: the trusted roots as they are now (replacing those given at construction; the ledger's
        CAs are kept). A source that cannot be read keeps its last good state; a change wakes the listeners."""
        if issuers is not None:
            fresh = Issuers(issuers)
            if self.ledger is not None:
                fresh.add(self.ledger.ca_certificates)
            self.issuers = fresh
        changed, problems = await self.blocking(self._reload, self.clock())
        if changed:
            self.changed("reload")
        return problems

    def _reload(self, at: datetime) -> tuple[bool, list[str]]:
        changed = False
        problems: list[str] = []
        if self.ledger is not None:
            try:
                changed |= self.ledger.reload_now(at=at)
                self.issuers.add(self.ledger.ca_certificates)
            except Exception as exc:
                problems.append(f"ledger: {_message(exc)}")
        for source in self.crls:
            try:
                changed |= source.reload_now(self.issuers, at=at)
            except Exception as exc:
                problems.append(f"CRL {source.name}: {_message(exc)}")
        return changed, problems

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks + list(self._refreshing), []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.ocsp is not None:
            self.ocsp.close()
        if self.ledger is not None:
            self.ledger.close()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def __aenter__(self) -> RevocationChecker:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def describe(self) -> str:
        """One line for the gateway's startup message."""
        parts = [f"{len(self.crls)} CRL source(s)"] if self.crls else []
        if self.ledger is not None:
            parts.append(f"ledger ({len(self.ledger.state.revoked)} revoked)")
        if self.ocsp is not None:
            parts.append(f"OCSP {self.ocsp.responder}")
        return ", ".join(parts) + f", fail-{self.fail.value}"


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        _log.error("a revocation source stopped: %r", task.exception())
