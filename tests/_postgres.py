"""A throw-away PostgreSQL cluster for tests and benchmarks (reusable by every area).

Uses the Debian ``postgresql`` binaries (``/usr/lib/postgresql/<N>/bin``, or ``pg_ctl`` on PATH):
``initdb`` into a temporary directory, start listening only on a unix socket inside that directory (no
TCP port to collide with), hand out ``postgresql://`` URLs, stop and delete everything at the end.
As root the server runs as the ``postgres`` system user (initdb refuses to run as root).

    with throwaway_cluster() as cluster:
        url = cluster.create_database("t1")

In pytest, use the session fixture built on it (see ``tests/eventlog/conftest.py``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import quote

__all__ = ["PostgresCluster", "find_bindir", "throwaway_cluster"]


def find_bindir() -> Path | None:
    """The directory of initdb / pg_ctl, or None if PostgreSQL is not installed."""
    env = os.environ.get("OCPPSEC_PG_BINDIR")
    if env and Path(env, "initdb").exists():
        return Path(env)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


class PostgresCluster:
    """One cluster in ``base``: ``data/`` is the data directory, the socket lives in ``base`` itself."""

    def __init__(self, bindir: Path, base: Path) -> None:
        self.bindir = bindir
        self.base = base
        self.data = base / "data"
        self.logfile = base / "server.log"
        self._as_postgres = os.geteuid() == 0

    def _cmd(self, *args: str) -> list[str]:
        command = [str(self.bindir / args[0]), *args[1:]]
        return ["runuser", "-u", "postgres", "--", *command] if self._as_postgres else command

    def _run(self, *args: str) -> None:
        result = subprocess.run(self._cmd(*args), capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            log = self.logfile.read_text() if self.logfile.exists() else ""
            raise RuntimeError(f"{' '.join(args[:2])} failed: {result.stderr or result.stdout}\n{log[-2000:]}")

    def init(self) -> None:
        if self._as_postgres:
            pw = pwd.getpwnam("postgres")
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        os.chmod(self.base, 0o700)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        options = (
            f"-k {self.base} -c listen_addresses='' -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=50"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.logfile), "-o", options, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@/{dbname}?host={quote(str(self.base), safe='')}"

    def create_database(self, name: str) -> str:
        """Create a fresh database and return its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@contextmanager
def throwaway_cluster() -> Iterator[PostgresCluster]:
    """initdb + start; yields the running cluster; stops it and removes its files at the end."""
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    base = Path(tempfile.mkdtemp(prefix="ocppsec-pg-"))
    cluster = PostgresCluster(bindir, base)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        if cluster.running:
            with suppress(RuntimeError):
                cluster.stop()
        shutil.rmtree(base, ignore_errors=True)
