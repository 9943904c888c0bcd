"""Reloading a running gateway (``kill -HUP``) without dropping a connection.

:class:`Reloader` reads again what the running configuration names, each part on its own:

1. the TLS server context (server certificates and keys, the trusted roots): built anew and swapped in
   for the handshakes that follow (:meth:`~.core.Gateway.set_ssl_context`); connected stations keep the
   session they have;
2. the revocation sources (:meth:`~.revocation_io.RevocationChecker.reload`: every CRL and the ledger read
   now, the CRLs checked against the roots as they are now);
3. the registry snapshot (:meth:`~ocppsec.security_profiles.registry_snapshot.RegistrySnapshot.refresh`).

A part that fails (a missing file, a key that does not match its certificate, a wrong passphrase, an
unreadable registry) keeps what it had: the gateway goes on serving with the old part, logs the problem
and reports it in :attr:`Reloader.last` (the admin listener's ``/readyz`` and ``/metrics``). A reload
never stops the gateway. Reloads run one at a time; a signal during a reload runs one more after it.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from cryptography import x509

from ocppsec.pki.errors import OcppsecError
from ocppsec.security_profiles.gateway.core import Gateway
from ocppsec.security_profiles.gateway.revocation_io import RevocationChecker
from ocppsec.security_profiles.registry_snapshot import RegistrySnapshot

__all__ = ["ReloadResult", "Reloader"]

_log = logging.getLogger("ocppsec.security_profiles.gateway.reload")


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """One reload: what was read again and the problems (each kept its old state), with its wall time."""

    at: float  # time.time()
    reloaded: tuple[str, ...]
    problems: tuple[str, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class ReloadStats:
    ok: int = 0
    failed: int = 0
    history: list[ReloadResult] = field(default_factory=list)  # the last few


class Reloader:
    """Reloads ``gateway``'s TLS context, revocation sources and registry snapshot (the module docstring).

    ``tls``: builds the server context from the files as they are now (blocking; run in a thread; raises an
    :class:`~ocppsec.pki.errors.OcppsecError` for a bad file); ``None`` for profile 1. ``roots``: reads the
    trusted roots for the revocation checker (blocking; may be ``None``)."""

    def __init__(self, gateway: Gateway, *, tls: Callable[[], ssl.SSLContext] | None = None,
                 roots: Callable[[], Iterable[x509.Certificate]] | None = None,
                 revocation: RevocationChecker | None = None, registry: RegistrySnapshot | None = None) -> None:
        self.gateway = gateway
        self.tls = tls
        self.roots = roots
        self.revocation = revocation
        self.registry = registry
        self.stats = ReloadStats()
        self.last: ReloadResult | None = None
        self._lock = asyncio.Lock()
        self._again = False

    async def reload(self) -> ReloadResult:
        """Reload every part now (or, while a reload runs, once more after it); never raises for a bad file."""
        if self._lock.locked():
            self._again = True
        async with self._lock:
            result = await self._reload_once()
            while self._again:
                self._again = False
                result = await self._reload_once()
            return result

    async def _reload_once(self) -> ReloadResult:
        started = time.monotonic()
        done: list[str] = []
        problems: list[str] = []
        if self.tls is not None:
            try:
                ctx = await asyncio.to_thread(self.tls)
            except OcppsecError as exc:
                problems.append(f"TLS: {exc.diagnostics()} (the previous certificates stay in use)")
            else:
                self.gateway.set_ssl_context(ctx)
                done.append("tls")
        if self.revocation is not None:
            roots = None
            if self.roots is not None:
                try:
                    roots = list(await asyncio.to_thread(self.roots))
                except OcppsecError as exc:
                    problems.append(f"trusted roots: {exc.diagnostics()}")
            found = await self.revocation.reload(roots)
            problems.extend(f"revocation: {p} (the last good state stays in force)" for p in found)
            if not found:
                done.append("revocation")
        if self.registry is not None:
            try:
                await asyncio.to_thread(self.registry.refresh, force=True)
            except OcppsecError as exc:
                problems.append(f"registry: {exc.message} (the snapshot stays in use)")
            else:
                done.append("registry")
        result = ReloadResult(time.time(), tuple(done), tuple(problems), time.monotonic() - started)
        self.last = result
        if result.ok:
            self.stats.ok += 1
            _log.warning("reloaded: %s (%.0f ms)", ", ".join(done) or "nothing to reload", result.seconds * 1000,
                         extra={"event": "reload", "reloaded": list(done)})
        else:
            self.stats.failed += 1
            for problem in problems:
                _log.error("reload: %s", problem, extra={"event": "reload_failed"})
        self.stats.history = [*self.stats.history[-9:], result]
        return result
