"""``--workers N``: N gateway processes sharing the listening port, under one supervisor.

The supervisor binds no station port. It starts N workers, each the same ``ocppsec gateway`` command line
with ``$OCPPSEC_GATEWAY_WORKER`` set to its number: a worker runs the whole gateway and binds the listen
address with ``SO_REUSEPORT``, so the kernel spreads new connections over the workers and TLS handshakes
use every core. The supervisor

- restarts a worker that dies (after 0.5 s, doubling to at most 30 s while workers keep dying within
  30 s of their start);
- forwards SIGHUP (reload) to every worker; on SIGTERM/SIGINT sends SIGTERM to every worker, waits for
  them to drain (their ``--drain-seconds`` plus a margin; then SIGKILL) and exits 0 (130 after SIGINT);
- serves the admin listener: ``/metrics`` sums what the workers wrote to ``$PROMETHEUS_MULTIPROC_DIR``
  (prometheus_client's multiprocess mode, in a temporary directory the supervisor creates and removes),
  plus the supervisor's own ``ocppsec_gateway_workers`` and ``ocppsec_gateway_worker_restarts_total``;
  ``/stations``, ``/readyz`` and ``/healthz`` ask each worker's own admin listener on a unix socket in
  that directory and merge the answers (``/readyz``: ready when every worker is).

Under systemd the supervisor is the main process: it sends ``READY=1`` once every worker answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocppsec.security_profiles.gateway._sdnotify import notify
from ocppsec.security_profiles.gateway.config import AdminAddress

__all__ = ["RUNDIR_ENV", "WORKER_ENV", "Supervisor", "WorkerState"]

_log = logging.getLogger("ocppsec.security_profiles.gateway.workers")
_log.setLevel(logging.INFO)
WORKER_ENV = "OCPPSEC_GATEWAY_WORKER"
RUNDIR_ENV = "OCPPSEC_GATEWAY_RUNDIR"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
STABLE_AFTER = 30.0  # a worker that ran this long restarts after the first back-off again


@dataclass
class WorkerState:
    index: int
    process: asyncio.subprocess.Process | None = None
    started: float = 0.0
    restarts: int = 0
    backoff: float = BACKOFF_FIRST
    exits: list[int] = field(default_factory=list)  # exit codes of its previous processes (the last few)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None


class Supervisor:
    """Runs ``argv`` (the gateway command line) as ``workers`` processes (see the module docstring)."""

    def __init__(self, argv: Sequence[str], workers: int, *, admin: AdminAddress | None, drain_seconds: float,
                 announce: Callable[[str], None] | None = None, ready_timeout: float = 60.0,
                 admin_required: bool = True) -> None:
        self.argv = list(argv)
        self.workers = [WorkerState(i) for i in range(workers)]
        self.admin_address = admin
        self.drain_seconds = drain_seconds
        self.announce = announce
        self.ready_timeout = ready_timeout
        self.admin_required = admin_required
        self.rundir = ""
        self.stop_signal: int | None = None
        self._stopping = asyncio.Event()
        self._monitors: list[asyncio.Task[None]] = []
        self.admin: Any = None

    # -- paths ----------------------------------------------------------------------------------------------
    @property
    def metrics_dir(self) -> str:
        return str(Path(self.rundir) / "metrics")

    def socket_of(self, worker: WorkerState) -> str:
        from ocppsec.security_profiles.gateway.admin import socket_path

        return socket_path(self.rundir, worker.index)

    # -- workers --------------------------------------------------------------------------------------------
    def _env(self, worker: WorkerState) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}  # only the supervisor talks to systemd
        env[WORKER_ENV] = str(worker.index)
        env[RUNDIR_ENV] = self.rundir
        env[MULTIPROC_ENV] = self.metrics_dir
        return env

    async def _spawn(self, worker: WorkerState) -> None:
        worker.process = await asyncio.create_subprocess_exec(*self.argv, env=self._env(worker), stdin=asyncio.subprocess.DEVNULL)
        worker.started = time.monotonic()
        _log.info("worker %d started (pid %d)", worker.index, worker.process.pid,
                  extra={"event": "worker_started", "worker": worker.index, "pid": worker.process.pid})

    async def _monitor(self, worker: WorkerState) -> None:
        while True:
            process = worker.process
            assert process is not None
            code = await process.wait()
            self._dead(process.pid)
            worker.exits = [*worker.exits[-4:], code]
            if self._stopping.is_set():
                return
            ran = time.monotonic() - worker.started
            if ran >= STABLE_AFTER:
                worker.backoff = BACKOFF_FIRST
            _log.error("worker %d (pid %d) exited with %d after %.1f s; restarting in %.1f s", worker.index, process.pid,
                       code, ran, worker.backoff,
                       extra={"event": "worker_died", "worker": worker.index, "pid": process.pid, "code": code})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), worker.backoff)
            if self._stopping.is_set():
                return
            worker.backoff = min(worker.backoff * 2, BACKOFF_MAX)
            worker.restarts += 1
            await self._spawn(worker)

    def _dead(self, pid: int) -> None:
        """Tell prometheus_client a worker is gone: its live gauges stop counting (its counters stay)."""
        from prometheus_client import multiprocess

        with contextlib.suppress(OSError):
            multiprocess.mark_process_dead(pid, self.metrics_dir)  # type: ignore[no-untyped-call]

    def _signal_all(self, signum: int) -> None:
        for worker in self.workers:
            process = worker.process
            if process is not None and process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signum)

    # -- signals --------------------------------------------------------------------------------------------
    def request_stop(self, signum: int = signal.SIGTERM) -> None:
        if self.stop_signal is None:
            self.stop_signal = signum
        self._stopping.set()
        self._signal_all(signal.SIGTERM)

    def request_reload(self) -> None:
        _log.info("reloading %d worker(s)", len(self.workers), extra={"event": "reload"})
        self._signal_all(signal.SIGHUP)

    # -- the admin listener ------------------------------------------------------------------------------
    async def ask(self, worker: WorkerState, path: str, *, timeout: float = 2.0) -> tuple[int, Any] | None:
        """GET ``path`` from ``worker``'s admin socket: (status, JSON), or None when it does not answer."""
        import aiohttp

        sock = self.socket_of(worker)
        if not os.path.exists(sock):
            return None
        try:
            async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=sock),
                                             timeout=aiohttp.ClientTimeout(total=timeout)) as session, \
                    session.get(f"http://worker{path}") as response:
                return response.status, await response.json()
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
            return None

    async def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline and not self._stopping.is_set():
            answers = await asyncio.gather(*(self.ask(w, "/healthz") for w in self.workers))
            if all(a is not None and a[0] == 200 for a in answers):
                return True
            await asyncio.sleep(0.1)
        return False

    # -- running --------------------------------------------------------------------------------------------
    async def run(self) -> int:
        """Start the workers and supervise them until SIGTERM/SIGINT; the exit code (0, or 130 after SIGINT)."""
        loop = asyncio.get_running_loop()
        self.rundir = tempfile.mkdtemp(prefix="ocppsec-gateway-")
        os.mkdir(self.metrics_dir)
        installed: list[int] = []
        handlers: list[tuple[int, Callable[[], None]]] = [
            (signal.SIGTERM, lambda: self.request_stop(signal.SIGTERM)),
            (signal.SIGINT, lambda: self.request_stop(signal.SIGINT)),
            (signal.SIGHUP, self.request_reload)]
        for signum, handler in handlers:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, handler)
                installed.append(signum)
        try:
            if self.admin_address is not None:
                from ocppsec.security_profiles.gateway.admin import AdminRoutes, start_admin

                self.admin = await start_admin(AdminRoutes.standard(_SupervisorSource(self)), self.admin_address,
                                               required=self.admin_required)
            for worker in self.workers:
                await self._spawn(worker)
            self._monitors = [loop.create_task(self._monitor(w)) for w in self.workers]
            if await self._wait_ready():
                pids = ", ".join(str(w.pid) for w in self.workers)
                admin = f"; admin http://{self.admin.bound}" if self.admin is not None else ""
                if self.announce is not None:
                    self.announce(f"gateway supervisor (pid {os.getpid()}): {len(self.workers)} workers (pids {pids}){admin}")
                notify("READY=1", f"STATUS={len(self.workers)} workers")
            await self._stopping.wait()
            notify("STOPPING=1")
            await self._wait_workers()
        finally:
            self._stopping.set()
            self._signal_all(signal.SIGTERM)
            for task in self._monitors:
                task.cancel()
            for task in self._monitors:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self._wait_workers(kill_after=5.0)
            if self.admin is not None:
                await self.admin.stop()
            for signum in installed:
                loop.remove_signal_handler(signum)
            shutil.rmtree(self.rundir, ignore_errors=True)
        return 130 if self.stop_signal == signal.SIGINT else 0

    async def _wait_workers(self, kill_after: float | None = None) -> None:
        """Wait for every worker to exit: their drain time plus a margin, then SIGKILL."""
        limit = kill_after if kill_after is not None else self.drain_seconds + 10.0
        running = [w.process for w in self.workers if w.process is not None and w.process.returncode is None]
        if not running:
            return
        waits = [asyncio.ensure_future(p.wait()) for p in running]
        _done, pending = await asyncio.wait(waits, timeout=limit)
        if pending:
            _log.warning("%d worker(s) still running after %.0f s: killing them", len(pending), limit)
            for process in running:
                if process.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
            await asyncio.wait(pending, timeout=5.0)


class _SupervisorSource:
    """The supervisor's admin answers: the workers' merged."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        self.started = time.time()

    def _workers(self) -> Iterator[WorkerState]:
        return iter(self.supervisor.workers)

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "pid": os.getpid(), "uptime": round(time.time() - self.started, 1),
                "workers": [{"worker": w.index, "pid": w.pid, "restarts": w.restarts,
                             "running": w.process is not None and w.process.returncode is None} for w in self._workers()]}

    async def readiness(self) -> Any:
        from ocppsec.security_profiles.gateway.admin import Readiness

        workers = list(self._workers())
        answers = await asyncio.gather(*(self.supervisor.ask(w, "/readyz") for w in workers))
        checks: dict[str, Any] = {}
        ready = not self.supervisor._stopping.is_set()
        listening = ready
        for worker, answer in zip(workers, answers, strict=True):
            if answer is None:
                checks[f"worker {worker.index}"] = {"ready": False, "error": "no answer"}
                ready = listening = False
            else:
                status, body = answer
                checks[f"worker {worker.index}"] = body
                ready = ready and status == 200
                listening = listening and bool(body.get("checks", {}).get("listening"))
        return Readiness(ready, {"listening": listening, **checks})

    async def stations(self) -> list[dict[str, Any]]:
        workers = list(self._workers())
        answers = await asyncio.gather(*(self.supervisor.ask(w, "/stations") for w in workers))
        rows: list[dict[str, Any]] = []
        for worker, answer in zip(workers, answers, strict=True):
            if answer is not None and isinstance(answer[1], list):
                for row in answer[1]:
                    row.setdefault("worker", worker.index)
                    row["pid"] = worker.pid
                    rows.append(row)
        return sorted(rows, key=lambda r: str(r.get("identity")))

    async def metrics(self) -> bytes:
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
        from prometheus_client.registry import Collector

        from ocppsec.security_profiles.gateway.metrics import multiprocess_registry

        supervisor = self.supervisor
        # the workers sync their values every 5 s; a scrape sees them at most that old
        text = bytes(generate_latest(multiprocess_registry(supervisor.metrics_dir)))

        class Own(Collector):
            def collect(self) -> Iterator[Any]:
                running = GaugeMetricFamily("ocppsec_gateway_workers", "Gateway worker processes running")
                running.add_metric([], sum(1 for w in supervisor.workers
                                           if w.process is not None and w.process.returncode is None))
                yield running
                restarts = CounterMetricFamily("ocppsec_gateway_worker_restarts", "Worker processes restarted",
                                               labels=["worker"])
                for w in supervisor.workers:
                    restarts.add_metric([str(w.index)], w.restarts)
                yield restarts

        own = CollectorRegistry()
        own.register(Own())
        return text + bytes(generate_latest(own))
