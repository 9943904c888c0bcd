"""One gateway process as a service: serve, reload on SIGHUP, drain on SIGTERM/SIGINT, the admin listener.

:class:`GatewayService` runs a configured :class:`~.core.Gateway` (with its :class:`~.guard.StationGuard`)
until a signal stops it:

- **SIGHUP** reloads (:class:`~.reload.Reloader`): new handshakes get the new server certificates and trust
  roots, the CRLs, the ledger and the registry are read again; no connection is dropped, and a reload that
  fails keeps the old state (logged, and reported on ``/readyz``).
- **SIGTERM** / **SIGINT** drain: the listening socket closes (no new station), ``/readyz`` answers 503,
  every station is closed with **1001** (going away; the gateway closes its upstream connection with
  1001 too), and the service waits at most ``drain_seconds`` for them; stations still there are then
  cut. The event sink is flushed by its owner after :meth:`GatewayService.run` returns. The exit status
  is 0 after SIGTERM and 130 after SIGINT (the shell's code for an interrupt).
- The admin listener (:mod:`.admin`) answers ``/healthz``, ``/readyz``, ``/metrics``, ``/stations``; the
  metrics are brought up to date every ``metrics_interval`` seconds (5) and at each scrape. A gateway with a
  campaign engine (``gateway.campaign_engine``) also answers the campaign routes of
  :mod:`.campaigns.routes`; the engine is started after the listener (taking up the record's running
  campaigns) and closed, its changes written, when the service stops.
- Under systemd (``Type=notify``) it sends ``READY=1`` once listening, ``RELOADING=1`` / ``READY=1``
  around a reload and ``STOPPING=1`` when draining (:mod:`._sdnotify`).
- A stop that takes longer than ``drain_seconds + stall_report`` seconds (a store that does not let go, a
  task that ignores its cancellation) writes every thread's stack to stderr (:mod:`faulthandler`), so a
  stuck shutdown says where it is stuck; the owner cancels the report once the process's stores are
  closed (:func:`cancel_stall_report`). Off by default (``None``): the process's owner turns it on
  (``ocppsec gateway`` does, with :data:`DEFAULT_STALL_REPORT`), since only the owner knows when it ends.
- The process's full garbage collections skip what survived the previous one, with a full walk every
  eighth (:mod:`._gc`; ``freeze_gc_survivors=False`` leaves the collector as it is).

With ``reuse_port`` the listening socket is bound with ``SO_REUSEPORT`` (the workers of
:mod:`.workers` share the port; the kernel spreads new connections over them).
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ocppsec.pki._io import file_error
from ocppsec.security_profiles.gateway._gc import FrozenSurvivors
from ocppsec.security_profiles.gateway._sdnotify import notify
from ocppsec.security_profiles.gateway.core import Gateway
from ocppsec.security_profiles.gateway.guard import StationGuard
from ocppsec.security_profiles.gateway.reload import Reloader

__all__ = ["DEFAULT_DRAIN_SECONDS", "DEFAULT_STALL_REPORT", "EXIT_INTERRUPTED", "GatewayService", "ServiceOptions",
           "cancel_stall_report"]

_log = logging.getLogger("ocppsec.security_profiles.gateway.service")
_log.setLevel(logging.INFO)  # the service's own lines (listening, reload, drain) are always shown
DEFAULT_DRAIN_SECONDS = 10.0
DEFAULT_STALL_REPORT = 10.0  # seconds a stop may take past its drain before the threads' stacks are written
GOING_AWAY = 1001
EXIT_INTERRUPTED = 130


@dataclass
class ServiceOptions:
    host: str
    port: int
    drain_seconds: float = DEFAULT_DRAIN_SECONDS
    admin: Any = None  # an admin.AdminAddress, or None for no admin listener
    admin_required: bool = True  # False: an admin address in use is logged and the gateway runs without one
    reuse_port: bool = False
    worker: int | None = None  # the worker's number under a supervisor
    metrics: bool = True
    upstream_probe: float | None = 5.0  # seconds between TCP probes of the upstream (None: no probe)
    metrics_interval: float = 5.0  # seconds between metric syncs (a scrape of this process syncs too)
    announce: Callable[[str], None] | None = None  # gets the "listening" line
    describe: Callable[[], str] | None = None  # the listening line's text
    serve_kwargs: dict[str, Any] = field(default_factory=dict)
    admin_token: str | None = field(default=None, repr=False)  # Bearer token of the admin POST routes (campaigns)
    freeze_gc_survivors: bool = True  # full collections skip what survived the last one (see _gc; ADR 23)
    stall_report: float | None = None  # seconds past the drain before a stuck stop dumps stacks (the CLI: 10)


class GatewayService:
    """Runs ``gateway`` (and ``guard``) as a service (see the module docstring); :meth:`run` returns the exit code."""

    def __init__(self, gateway: Gateway, guard: StationGuard | None, options: ServiceOptions, *,
                 reloader: Reloader | None = None) -> None:
        self.gateway = gateway
        self.guard = guard
        self.options = options
        self.reloader = reloader if reloader is not None else Reloader(gateway)
        self.metrics: Any = None
        self.source: Any = None
        self.admin: Any = None
        self.probe: Any = None
        self.stop_signal: int | None = None
        self.server: Any = None
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- signals ------------------------------------------------------------------------------------------
    def request_stop(self, signum: int = signal.SIGTERM) -> None:
        if self.stop_signal is None:
            self.stop_signal = signum
        self._stop.set()

    def request_reload(self) -> None:
        task = asyncio.get_running_loop().create_task(self._reload())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reload(self) -> None:
        notify("RELOADING=1")
        try:
            await self.reloader.reload()
        except Exception:
            _log.exception("reload failed")
        finally:
            notify("READY=1")

    def _install_signals(self) -> list[int]:
        loop = asyncio.get_running_loop()
        installed: list[int] = []
        handlers: list[tuple[int, Callable[[], None]]] = [
            (signal.SIGTERM, lambda: self.request_stop(signal.SIGTERM)),
            (signal.SIGINT, lambda: self.request_stop(signal.SIGINT)),
            (signal.SIGHUP, self.request_reload),
        ]
        for signum, handler in handlers:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, handler)
                installed.append(signum)
        return installed

    # -- running ------------------------------------------------------------------------------------------
    async def _start_admin(self) -> None:
        from ocppsec.security_profiles.gateway.admin import AdminRoutes, GatewaySource, UpstreamProbe, start_admin

        if self.options.upstream_probe is not None:
            self.probe = UpstreamProbe(self.gateway.upstream, interval=self.options.upstream_probe)
        self.source = GatewaySource(self.gateway, metrics=self.metrics, guard=self.guard, reloader=self.reloader,
                                    probe=self.probe, worker=self.options.worker)
        if self.options.admin is not None:
            routes = AdminRoutes.standard(self.source)
            engine = self.gateway.campaign_engine
            if engine is not None:
                from ocppsec.security_profiles.gateway.campaigns.routes import add_campaign_routes

                add_campaign_routes(routes, engine, token=self.options.admin_token)
            self.admin = await start_admin(routes, self.options.admin, required=self.options.admin_required)
        if self.probe is not None:
            self.probe.start()  # after the admin listener: a gateway that cannot start logs no probe of its upstream

    async def _sync_metrics(self) -> None:
        while True:
            await asyncio.sleep(self.options.metrics_interval)
            try:
                self.metrics.sync(self.gateway, guard=self.guard, reloader=self.reloader)
            except Exception:
                _log.exception("updating the metrics failed")

    async def run(self) -> int:
        """Serve until SIGTERM/SIGINT (or :meth:`request_stop`), then drain; the exit code (0, or 130 after SIGINT)."""
        loop = asyncio.get_running_loop()
        installed = self._install_signals()
        collector = FrozenSurvivors() if self.options.freeze_gc_survivors else None
        if self.options.metrics:
            from ocppsec.security_profiles.gateway.metrics import GatewayMetrics

            self.metrics = GatewayMetrics()
        try:
            if self.guard is not None:
                await self.guard.start()
            kwargs = dict(self.options.serve_kwargs)
            if self.options.reuse_port:
                kwargs["reuse_port"] = True
            try:
                self.server = await self.gateway.serve(self.options.host, self.options.port, **kwargs)
            except OSError as exc:  # port taken, address not local, a port below 1024: one line naming it (exit 3)
                host = self.options.host
                address = f"[{host}]:{self.options.port}" if ":" in host else f"{host}:{self.options.port}"
                raise file_error(exc, address, what="", action="listen on") from None
            if self.gateway.campaign_engine is not None:
                await self.gateway.campaign_engine.start()  # takes up the record's running campaigns
            await self._start_admin()
            self.source.listening = True
            if collector is not None:
                collector.install()
            if self.metrics is not None:
                task = loop.create_task(self._sync_metrics())
                self._tasks.add(task)
            if self.options.announce is not None and self.options.describe is not None:
                self.options.announce(self.options.describe())
            if self.options.worker is None:
                notify("READY=1", "STATUS=serving")
            await self._stop.wait()
            if self.options.stall_report is not None:
                faulthandler.dump_traceback_later(self.options.drain_seconds + self.options.stall_report, exit=False)
            if self.options.worker is None:
                notify("STOPPING=1")
            self.source.draining = True
            await self.drain()
        finally:
            for task in list(self._tasks):
                task.cancel()
            for task in list(self._tasks):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if self.admin is not None:
                await self.admin.stop()
            if self.gateway.campaign_engine is not None:
                await self.gateway.campaign_engine.close()  # writes what changed
            if self.probe is not None:
                await self.probe.stop()
            if self.guard is not None:
                await self.guard.stop()
            for signum in installed:
                loop.remove_signal_handler(signum)
            if collector is not None:
                collector.uninstall()
        return EXIT_INTERRUPTED if self.stop_signal == signal.SIGINT else 0

    async def drain(self) -> bool:
        """Stop accepting, close every station with 1001, wait at most ``drain_seconds``; True if all left in time."""
        server = self.server
        if server is None:
            return True
        started = time.monotonic()
        count = len(self.gateway.sessions)
        _log.info("draining: closing %d station(s) with 1001, waiting up to %.0f s", count, self.options.drain_seconds,
                  extra={"event": "drain", "stations": count})
        server.close(close_connections=True, code=GOING_AWAY, reason="gateway shutting down")
        try:
            await asyncio.wait_for(server.wait_closed(), self.options.drain_seconds)
        except TimeoutError:
            left = list(getattr(server, "all_connections", ()))
            _log.warning("drain: %d connection(s) still open after %.0f s; cutting them", len(left),
                         self.options.drain_seconds, extra={"event": "drain_timeout", "stations": len(left)})
            for connection in left:
                with contextlib.suppress(Exception):
                    connection.transport.abort()
            for session in list(self.gateway.sessions):
                with contextlib.suppress(Exception):
                    session.upstream.transport.abort()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 2.0)
            return False
        _log.info("drained in %.1f s", time.monotonic() - started, extra={"event": "drained"})
        return True


def cancel_stall_report() -> None:
    """The stop got through (the stores are closed): no stack report. Call it last, from the process's owner."""
    faulthandler.cancel_dump_traceback_later()
