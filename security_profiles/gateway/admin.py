"""The gateway's admin listener: health, readiness, metrics and the connected stations over HTTP.

``--admin 127.0.0.1:9443`` (the default: loopback only; ``--admin off`` for none). Plain HTTP on its own
port, read-only, no credentials: keep it on loopback or a management network.

========== ============================================================================================
route      answer
========== ============================================================================================
/healthz   200 ``{"status": "ok", "pid": ...}`` while the process runs
/readyz    200 when ready, else 503; JSON with each check: ``listening``, ``upstream`` (reachable within
           the last probes), ``event_sink`` (not failing), ``reload`` (the last reload's problems; does
           not make the gateway unready: it goes on serving with what it had)
/metrics   Prometheus text format (see :mod:`.metrics`)
/stations  JSON list: identity, profile, version, peer, since, relay, certificate serial and notAfter
========== ============================================================================================

Routes are a list (:class:`AdminRoutes`) handed to the listener, so further parts of the gateway (e.g.
campaigns) add theirs with :meth:`AdminRoutes.add`. What the routes answer comes from an
:class:`AdminSource`: :class:`GatewaySource` for one gateway process, the supervisor's merge for
``--workers`` (:mod:`.workers`). aiohttp is imported only when an admin listener is started.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from aiohttp import web

from ocppsec.pki.errors import UsageError
from ocppsec.security_profiles.gateway.config import DEFAULT_ADMIN, AdminAddress, parse_admin
from ocppsec.security_profiles.gateway.metrics import CONTENT_TYPE, GatewayMetrics, sink_counters, station_certificate

if TYPE_CHECKING:
    from ocppsec.security_profiles.gateway.core import Gateway, RelaySession
    from ocppsec.security_profiles.gateway.guard import StationGuard
    from ocppsec.security_profiles.gateway.reload import Reloader

__all__ = [
    "DEFAULT_ADMIN",
    "AdminAddress",
    "AdminRoutes",
    "AdminServer",
    "AdminSource",
    "GatewaySource",
    "Readiness",
    "UpstreamProbe",
    "parse_admin",
    "start_admin",
    "station_row",
]

_log = logging.getLogger("ocppsec.security_profiles.gateway.admin")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    checks: dict[str, Any]


class AdminSource(Protocol):
    """What the admin routes answer from."""

    def health(self) -> dict[str, Any]: ...

    async def readiness(self) -> Readiness: ...

    async def stations(self) -> list[dict[str, Any]]: ...

    async def metrics(self) -> bytes: ...


@dataclass
class AdminRoutes:
    """The admin listener's routes: ``(method, path, handler)``; the standard four from :meth:`standard`."""

    routes: list[tuple[str, str, Handler]] = field(default_factory=list)

    def add(self, method: str, path: str, handler: Handler) -> None:
        self.routes.append((method.upper(), path, handler))

    @classmethod
    def standard(cls, source: AdminSource) -> AdminRoutes:
        async def healthz(_request: web.Request) -> web.StreamResponse:
            return web.json_response(source.health())

        async def readyz(_request: web.Request) -> web.StreamResponse:
            readiness = await source.readiness()
            return web.json_response({"ready": readiness.ready, "checks": readiness.checks},
                                     status=200 if readiness.ready else 503)

        async def metrics(_request: web.Request) -> web.StreamResponse:
            return web.Response(body=await source.metrics(), headers={"Content-Type": CONTENT_TYPE})

        async def stations(_request: web.Request) -> web.StreamResponse:
            return web.json_response(await source.stations(), dumps=_dumps)

        routes = cls()
        routes.add("GET", "/healthz", healthz)
        routes.add("GET", "/readyz", readyz)
        routes.add("GET", "/metrics", metrics)
        routes.add("GET", "/stations", stations)
        return routes

    def application(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024)
        for method, path, handler in self.routes:
            app.router.add_route(method, path, handler)
        return app


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)


class AdminServer:
    """The admin listener serving ``routes`` at ``address`` (``async with AdminServer(...)``)."""

    def __init__(self, routes: AdminRoutes, address: AdminAddress) -> None:
        self.routes = routes
        self.address = address
        self._runner: web.AppRunner | None = None
        self.bound: AdminAddress | None = None

    async def start(self) -> AdminServer:
        runner = web.AppRunner(self.routes.application(), access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site: web.BaseSite
            if self.address.path is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.address.path)  # a socket a previous process left behind
                site = web.UnixSite(runner, self.address.path)
                await site.start()
                self.bound = self.address
            else:
                site = web.TCPSite(runner, self.address.host, self.address.port, reuse_address=True)
                await site.start()
                server = site._server  # aiohttp has no public accessor for the bound port
                port = self.address.port
                sockets = getattr(server, "sockets", None)
                if sockets:
                    port = sockets[0].getsockname()[1]
                self.bound = AdminAddress(host=self.address.host, port=port)
        except OSError as exc:
            await runner.cleanup()
            raise UsageError(f"--admin {self.address}: cannot listen: {exc.strerror or exc}",
                             hint="give another --admin HOST:PORT, or --admin off") from None
        self._runner = runner
        return self

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        if self.address.path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.address.path)

    async def __aenter__(self) -> AdminServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def start_admin(routes: AdminRoutes, address: AdminAddress, *, required: bool = True) -> AdminServer | None:
    """Start the admin listener; with ``required=False`` (the default address, not asked for) an address that
    cannot be bound is logged and None returned, so a second gateway on one host still runs."""
    server = AdminServer(routes, address)
    try:
        return await server.start()
    except UsageError as exc:
        if required:
            raise
        _log.warning("no admin listener: %s", exc.message, extra={"event": "admin_unavailable"})
        return None


def station_row(session: RelaySession) -> dict[str, Any]:
    """One connected station as ``/stations`` lists it."""
    station = session.station
    peer = station.remote_address
    facts = station_certificate(session) if station.profile == 3 else None
    return {
        "identity": station.identity,
        "profile": station.profile,
        "version": station.version.value,
        "peer": f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else str(peer),
        "since": session.since.isoformat() if session.since is not None else None,
        "relay": session.relay.value,
        "certificate_serial": facts.serial_hex if facts else None,
        "certificate_not_after": facts.not_after.isoformat() if facts else None,
    }


class UpstreamProbe:
    """Whether the upstream CSMS accepts TCP connections: a connect every ``interval`` seconds (no request).

    :attr:`reachable` is True when the last probe connected (or a station's upstream connection opened since)."""

    def __init__(self, upstream: str, *, interval: float = 5.0, timeout: float = 3.0) -> None:
        parts = urlsplit(upstream)
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (443 if parts.scheme == "wss" else 80)
        self.interval = interval
        self.timeout = timeout
        self.reachable: bool | None = None  # None: not probed yet
        self.error: str | None = None
        self.checked_at: float | None = None
        self._task: asyncio.Task[None] | None = None

    async def probe(self) -> bool:
        try:
            _reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), self.timeout)
        except (OSError, TimeoutError) as exc:
            if self.reachable is not False:
                _log.warning("upstream %s:%d unreachable: %s", self.host, self.port, exc)
            self.reachable, self.error = False, str(exc) or type(exc).__name__
        else:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            self.reachable, self.error = True, None
        self.checked_at = time.monotonic()
        return self.reachable

    async def _run(self) -> None:
        while True:
            await self.probe()
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class GatewaySource:
    """The admin answers of one gateway process."""

    def __init__(self, gateway: Gateway, *, metrics: GatewayMetrics | None = None, guard: StationGuard | None = None,
                 reloader: Reloader | None = None, probe: UpstreamProbe | None = None,
                 worker: int | None = None) -> None:
        self.gateway = gateway
        self.gateway_metrics = metrics
        self.guard = guard
        self.reloader = reloader
        self.probe = probe
        self.worker = worker
        self.listening = False
        self.draining = False
        self.started = time.time()

    def health(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": "ok", "pid": os.getpid(), "uptime": round(time.time() - self.started, 1)}
        if self.worker is not None:
            out["worker"] = self.worker
        return out

    async def readiness(self) -> Readiness:
        checks: dict[str, Any] = {"listening": self.listening and not self.draining}
        if self.draining:
            checks["draining"] = True
        if self.probe is not None:
            checks["upstream"] = bool(self.probe.reachable)
            if self.probe.error:
                checks["upstream_error"] = self.probe.error
        counters = sink_counters(self.gateway.sink)
        sink_ok = True
        if counters is not None:
            # a store that is away is no failure while its events wait in the spool; lost events are
            sink_ok = bool(getattr(counters, "store_ok", True)) or counters.dropped == 0
            checks["event_sink"] = {"ok": sink_ok, "queue": counters.in_queue, "spool": counters.in_spool,
                                    "dropped": counters.dropped}
        last = self.reloader.last if self.reloader is not None else None
        if last is not None:
            checks["reload"] = {"ok": last.ok, "at": datetime.fromtimestamp(last.at, UTC).isoformat(),
                                "problems": list(last.problems)}
        ready = bool(checks["listening"]) and checks.get("upstream", True) is True and sink_ok
        return Readiness(ready, checks)

    async def stations(self) -> list[dict[str, Any]]:
        rows = [station_row(s) for s in list(self.gateway.sessions)]
        if self.worker is not None:
            for row in rows:
                row["worker"] = self.worker
        return rows

    async def metrics(self) -> bytes:
        if self.gateway_metrics is None:
            return b""
        self.gateway_metrics.sync(self.gateway, guard=self.guard, reloader=self.reloader)
        return self.gateway_metrics.render()


def socket_path(directory: str | Path, worker: int) -> str:
    """The unix socket a worker's admin listener answers the supervisor on."""
    return str(Path(directory) / f"worker-{worker}.sock")
