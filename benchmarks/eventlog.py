"""Benchmark: security event ingestion into SQLite and PostgreSQL, and query latency over 1 M events.

Usage: ``python benchmarks/eventlog.py [--events 1000000] [--batch 50000] [--pg-url URL | --no-postgres]``

Goals: SQLite ingestion (WAL, batched, with the query index) >= 100,000 events/s; PostgreSQL
ingestion via COPY >= 100,000 events/s; a query by station and time window over 1 M events < 50 ms.

The events (2,000 stations, 30 days, a realistic mix of types) are built batch by batch as SecurityEvent
objects ("build"); "ingest" times only ``store.add_many`` (sorting, row building, dedup by the unique index,
the database). Without ``--pg-url`` a throw-away PostgreSQL cluster is started with ``tests/_postgres.py``
(fsync off, like the tests).

Made for a shared 2-core machine: every batch is one *round* in which our ingest and a same-run baseline
run back to back on the same events, in alternating order (ours first in even rounds, the baseline first in
odd ones), so both see the same load. SQLite runs all its rounds first, then PostgreSQL (the events are
built again from the same seed), so the server's background work does not fall into the SQLite rounds. Baselines (rows prepared outside the timing, no indexes, no dedup):

- SQLite: a plain ``executemany`` of the rows into an equivalent table without the unique index (same file
  settings: WAL, ``synchronous=FULL``, one transaction per batch);
- PostgreSQL: a plain psycopg ``COPY`` (text format, ``write_row``) into an equivalent logged table without
  indexes.

Reported per method: the overall rate (all events / all time), the best and the median per-round rate, the
rate per CPU second of the ingesting process (SQLite: this process; PostgreSQL: this process, and the server
backend read from ``/proc`` when the server is local), and the ratio to the baseline (overall, and the
median of the per-round ratios, which cancels most of the load). The 1-minute load average is sampled every
round. Query latency is measured over 300 random (station, 24 h window) queries after ANALYZE. The last line
is one JSON object with the figures and ratios (ratio = measured / goal, >= 1.0 meets the goal; latency
ratio = goal / measured); ``meets_goals`` judges the median per-round wall rates.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # tests/_postgres.py

from ocppsec.eventlog.store import EventQuery, EventStore
from ocppsec.eventlog.store_sql import open_store
from ocppsec.pki.events.model import SecurityEvent, Source
from ocppsec.pki.versions import OcppVersion

GOAL_INGEST = 100_000
_COLUMNS = (
    "station_id, ts, type, canonical_type, critical, tech_info, ocpp_version, source, received_at, flags, dedup_key"
)
GOAL_QUERY_MS = 50.0
T0 = datetime(2026, 10, 1, tzinfo=UTC)
SPAN = timedelta(days=30)
STATIONS = 2000
TYPES = (
    ["StartupOfTheDevice"] * 20 + ["ResetOrReboot"] * 15 + ["SettingSystemTime"] * 10 + ["InvalidMessages"] * 15
    + ["FailedToAuthenticateAtCsms"] * 8 + ["InvalidTLSVersion"] * 3 + ["InvalidCsmsCertificate"] * 3
    + ["FirmwareUpdated"] * 5 + ["MemoryExhaustion"] * 2 + ["TamperDetectionActivated"] * 1
    + ["MaintenanceLoginAccepted"] * 5 + ["CSRGenerationFailed"] * 2
)


def print_table(headers: list[str], rows: list[list[object]]) -> None:
    """An aligned plain-text table; numbers right-aligned with thousands separators."""

    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.0f}"
        if isinstance(value, int):
            return f"{value:,}"
        return str(value)

    text = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in text]) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row[i], int | float) for row in rows) for i in range(len(headers))]

    def line(values: list[str]) -> str:
        cells = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(cells).rstrip()

    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for row_text in text:
        print(line(row_text))


def batches(total: int, size: int, seed: int = 6) -> Iterator[tuple[list[SecurityEvent], float]]:
    """Events in arrival order (time increasing, stations interleaved); yields (batch, build seconds)."""
    rng = random.Random(seed)
    step = SPAN / total
    versions = list(OcppVersion)
    for start in range(0, total, size):
        t = time.perf_counter()
        batch = []
        for i in range(start, min(total, start + size)):
            ts = T0 + step * i
            batch.append(
                SecurityEvent(
                    station_id=f"CS-{rng.randrange(STATIONS):05d}",
                    type=rng.choice(TYPES),
                    timestamp=ts,
                    tech_info=f"seq={i}" if i % 3 else None,
                    ocpp_version=versions[i % 3],
                    source=Source.OCPP,
                    received_at=ts + timedelta(seconds=1),
                )
            )
        yield batch, time.perf_counter() - t


def query_latency(store: EventStore, rounds: int = 300, seed: int = 7) -> dict[str, float]:
    rng = random.Random(seed)
    times = []
    rows = 0
    for _ in range(rounds):
        since = T0 + timedelta(hours=rng.randrange(0, 24 * 29))
        q = EventQuery(station_id=f"CS-{rng.randrange(STATIONS):05d}", since=since, until=since + timedelta(days=1))
        t = time.perf_counter()
        rows += len(store.query(q))
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {
        "median_ms": statistics.median(times),
        "p95_ms": times[int(len(times) * 0.95) - 1],
        "max_ms": times[-1],
        "rows_per_query": rows / rounds,
    }


_COLUMN_DEFS = (
    "station_id TEXT, ts {ts}, type TEXT, canonical_type TEXT, critical {bool}, tech_info TEXT, ocpp_version TEXT, "
    "source TEXT, received_at {ts}, flags TEXT, dedup_key BIGINT"
)


def sqlite_rows(events: list[SecurityEvent]) -> list[tuple[Any, ...]]:
    """The SQLite column values of ``events`` (for the baseline; prepared outside the timing)."""
    return [
        (e.station_id, e.millis, e.type, e.canonical_type, e.critical, e.tech_info,
         None if e.ocpp_version is None else e.ocpp_version.value, e.source, e.received_millis,
         ",".join(sorted(e.flags)), e.dedup_key)
        for e in events
    ]


class SqliteBaseline:
    """Plain ``executemany`` into an equivalent table without the unique index, same file settings."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        for pragma in ("page_size=16384", "journal_mode=WAL", "cache_size=-65536", "synchronous=FULL"):
            self.db.execute(f"PRAGMA {pragma}")
        self.db.execute(
            "CREATE TABLE baseline (id INTEGER PRIMARY KEY, " + _COLUMN_DEFS.format(ts="INTEGER", bool="INTEGER") + ")"
        )
        self.sql = "INSERT INTO baseline (" + _COLUMNS + ") VALUES (" + ",".join("?" * 11) + ")"

    def add(self, rows: list[tuple[Any, ...]]) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        self.db.executemany(self.sql, rows)
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()


class PostgresBaseline:
    """Plain psycopg COPY (text) into an equivalent logged table without indexes; finds our store's backend."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True)
        self.conn.execute("CREATE TABLE baseline (" + _COLUMN_DEFS.format(ts="TIMESTAMPTZ", bool="BOOLEAN") + ")")
        row = self.conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        self.pid = int(row[0])

    def other_backend(self) -> int | None:
        """The pid of the one other client backend in this database (the store's connection)."""
        rows = self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'"
        ).fetchall()
        return int(rows[0][0]) if len(rows) == 1 else None

    def add(self, rows: list[tuple[Any, ...]]) -> None:
        with self.conn.transaction(), self.conn.cursor() as cur, cur.copy(f"COPY baseline ({_COLUMNS}) FROM STDIN") as cp:
            for row in rows:
                cp.write_row(row)

    def close(self) -> None:
        self.conn.close()


def process_cpu(pid: int | None) -> float | None:
    """CPU seconds (user + system) of a local process, None if it cannot be read (remote server)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Meter:
    """Per-round samples of one method: events, wall seconds, CPU seconds of this process and of a server."""

    def __init__(self) -> None:
        self.events: list[int] = []
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.server_cpu: list[float | None] = []

    def run(self, n: int, work: Callable[[], object], server_pid: int | None = None) -> None:
        s0 = process_cpu(server_pid)
        t, c = time.perf_counter(), time.process_time()
        work()
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        s1 = process_cpu(server_pid)
        self.events.append(n)
        self.wall.append(wall)
        self.cpu.append(cpu)
        self.server_cpu.append(None if s0 is None or s1 is None else s1 - s0)

    def rates(self) -> list[float]:
        return [n / w for n, w in zip(self.events, self.wall, strict=True)]

    def summary(self) -> dict[str, Any]:
        n = sum(self.events)
        rates = self.rates()
        out: dict[str, Any] = {
            "events_per_s": n / sum(self.wall),
            "best_round_events_per_s": max(rates),
            "median_round_events_per_s": statistics.median(rates),
            "events_per_cpu_s": n / max(sum(self.cpu), 1e-9),
        }
        if self.server_cpu and all(v is not None for v in self.server_cpu):
            server = sum(v for v in self.server_cpu if v is not None)
            out["events_per_server_cpu_s"] = n / max(server, 1e-9)
            out["events_per_total_cpu_s"] = n / max(server + sum(self.cpu), 1e-9)
        return out


def versus(ours: Meter, base: Meter) -> dict[str, float]:
    """Ours / baseline: overall, median of the paired per-round ratios, and per CPU second (client plus
    server when the server's CPU time is known)."""

    def cpu_per_event(m: Meter) -> float:
        server = sum(v for v in m.server_cpu if v is not None) if all(v is not None for v in m.server_cpu) else 0.0
        return (sum(m.cpu) + server) / sum(m.events)

    paired = [a / b for a, b in zip(ours.rates(), base.rates(), strict=True)]
    return {
        "overall": (sum(ours.events) / sum(ours.wall)) / (sum(base.events) / sum(base.wall)),
        "median_of_rounds": statistics.median(paired),
        "per_cpu_s": cpu_per_event(base) / cpu_per_event(ours),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument("--pg-url", help="use this PostgreSQL database instead of a throw-away cluster")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ocppsec-bench-")))
        sqlite_store = open_store(workdir / "events.db")
        stack.callback(sqlite_store.close)
        sqlite_base = SqliteBaseline(workdir / "baseline.db")
        stack.callback(sqlite_base.close)
        pg_store = pg_base = None
        pg_url = None
        if not args.no_postgres:
            if args.pg_url:
                pg_url = args.pg_url
            else:
                from _postgres import throwaway_cluster

                cluster = stack.enter_context(throwaway_cluster())
                pg_url = cluster.create_database("bench")
            pg_store = open_store(pg_url)
            stack.callback(pg_store.close)
            pg_base = PostgresBaseline(pg_url)
            stack.callback(pg_base.close)
        pg_pid = pg_base.other_backend() if pg_base is not None else None

        meters = {name: Meter() for name in ("sqlite", "sqlite_baseline", "postgres", "postgres_baseline")}
        loads = [os.getloadavg()[0]]
        build_s = 0.0
        first_batch: list[SecurityEvent] = []
        # One phase per backend (the same events, built again from the same seed), so the PostgreSQL server's
        # background work (WAL writer, checkpointer, autovacuum) does not land in the SQLite rounds.
        phases = ["sqlite"] + (["postgres"] if pg_store is not None else [])
        for phase in phases:
            for index, (batch, built) in enumerate(batches(args.events, args.batch)):
                n = len(batch)
                if phase == "sqlite":
                    build_s += built
                    if not first_batch:
                        first_batch = batch[:50_000]
                    rows = sqlite_rows(batch)
                    steps: list[tuple[Meter, Callable[[], object], int | None]] = [
                        (meters["sqlite"], partial(sqlite_store.add_many, batch), None),
                        (meters["sqlite_baseline"], partial(sqlite_base.add, rows), None),
                    ]
                else:
                    assert pg_store is not None
                    assert pg_base is not None
                    from ocppsec.eventlog.store_sql import pg_row as _row

                    now = datetime.now(UTC)
                    pg_rows = [_row(e, now) for e in batch]
                    steps = [
                        (meters["postgres"], partial(pg_store.add_many, batch), pg_pid),
                        (meters["postgres_baseline"], partial(pg_base.add, pg_rows), pg_base.pid),
                    ]
                if index % 2:  # the baseline first in odd rounds
                    steps.reverse()
                for meter, work, pid in steps:
                    meter.run(n, work, pid)
                loads.append(os.getloadavg()[0])

        n = args.events
        results: dict[str, Any] = {
            "events": n,
            "batch": args.batch,
            "rounds": len(meters["sqlite"].events),
            "cpus": os.cpu_count(),
            "load_average_1min": {
                "before": loads[0], "after": loads[-1], "min": min(loads), "max": max(loads),
                "mean": statistics.fmean(loads),
            },
            "build_events_per_s": n / build_s,
            "sqlite_ingest": meters["sqlite"].summary(),
            "sqlite_baseline_executemany_no_index": meters["sqlite_baseline"].summary(),
            "sqlite_vs_baseline": versus(meters["sqlite"], meters["sqlite_baseline"]),
        }
        # a redelivered batch: every event is a duplicate (the path that checks the unique index)
        dup = first_batch
        t = time.perf_counter()
        dup_result = sqlite_store.add_many(dup)
        results["sqlite_duplicate_batch_events_per_s"] = len(dup) / (time.perf_counter() - t)
        assert dup_result.inserted == 0, dup_result
        results["sqlite_query"] = query_latency(sqlite_store)
        results["sqlite_query_plan"] = sqlite_store.explain(
            EventQuery(station_id="CS-00001", since=T0, until=T0 + timedelta(days=1))
        )
        if pg_store is not None and pg_base is not None:
            results["postgres_ingest"] = meters["postgres"].summary()
            results["postgres_baseline_copy_no_index"] = meters["postgres_baseline"].summary()
            results["postgres_vs_baseline"] = versus(meters["postgres"], meters["postgres_baseline"])
            t = time.perf_counter()
            dup_result = pg_store.add_many(dup)
            results["postgres_duplicate_batch_events_per_s"] = len(dup) / (time.perf_counter() - t)
            assert dup_result.inserted == 0, dup_result
            pg_base.conn.execute("ANALYZE security_events")
            results["postgres_query"] = query_latency(pg_store)

    sq = results["sqlite_ingest"]
    ratios = {
        "sqlite_ingest_vs_goal": sq["median_round_events_per_s"] / GOAL_INGEST,
        "sqlite_ingest_vs_baseline": results["sqlite_vs_baseline"]["median_of_rounds"],
        "sqlite_query_p95_vs_goal": GOAL_QUERY_MS / results["sqlite_query"]["p95_ms"],
    }
    rate_headers = ["ingest (events/s)", "overall", "best round", "median round", "per CPU-s", "goal", "ratio"]

    def rate_row(label: str, m: dict[str, Any], goal: object = "-", ratio: object = "-") -> list[object]:
        return [label, m["events_per_s"], m["best_round_events_per_s"], m["median_round_events_per_s"],
                m["events_per_cpu_s"], goal, ratio]

    rate_rows = [
        rate_row("SQLite (WAL, FULL, indexed, dedup)", sq, GOAL_INGEST, f"{ratios['sqlite_ingest_vs_goal']:.2f}"),
        rate_row("SQLite baseline: executemany, no index", results["sqlite_baseline_executemany_no_index"], "-",
                 f"ours {ratios['sqlite_ingest_vs_baseline']:.2f}x"),
    ]
    other_rows: list[list[object]] = [
        ["build SecurityEvent objects", results["build_events_per_s"], "events/s", "-", "-"],
        ["SQLite re-ingest of duplicates", results["sqlite_duplicate_batch_events_per_s"], "events/s", "-", "-"],
        ["SQLite query station+24h, median", results["sqlite_query"]["median_ms"], "ms", "-", "-"],
        ["SQLite query station+24h, p95", results["sqlite_query"]["p95_ms"], "ms", GOAL_QUERY_MS,
         f"{ratios['sqlite_query_p95_vs_goal']:.1f}"],
    ]
    if "postgres_ingest" in results:
        pg = results["postgres_ingest"]
        ratios["postgres_ingest_vs_goal"] = pg["median_round_events_per_s"] / GOAL_INGEST
        ratios["postgres_ingest_vs_baseline"] = results["postgres_vs_baseline"]["median_of_rounds"]
        ratios["postgres_query_p95_vs_goal"] = GOAL_QUERY_MS / results["postgres_query"]["p95_ms"]
        rate_rows += [
            rate_row("PostgreSQL (COPY binary, indexed, dedup)", pg, GOAL_INGEST,
                     f"{ratios['postgres_ingest_vs_goal']:.2f}"),
            rate_row("PostgreSQL baseline: psycopg COPY, no index", results["postgres_baseline_copy_no_index"], "-",
                     f"ours {ratios['postgres_ingest_vs_baseline']:.2f}x"),
        ]
        other_rows += [
            ["PostgreSQL re-ingest of duplicates", results["postgres_duplicate_batch_events_per_s"], "events/s", "-",
             "-"],
            ["PostgreSQL query station+24h, median", results["postgres_query"]["median_ms"], "ms", "-", "-"],
            ["PostgreSQL query station+24h, p95", results["postgres_query"]["p95_ms"], "ms", GOAL_QUERY_MS,
             f"{ratios['postgres_query_p95_vs_goal']:.1f}"],
        ]
    load = results["load_average_1min"]
    print(f"{n:,} events, {STATIONS:,} stations, 30 days, {results['rounds']} rounds of {args.batch:,} (ours and "
          f"baseline alternating); load average {load['min']:.2f}-{load['max']:.2f} (mean {load['mean']:.2f}) on "
          f"{os.cpu_count()} CPUs")
    print_table(rate_headers, rate_rows)
    if "postgres_ingest" in results and "events_per_server_cpu_s" in results["postgres_ingest"]:
        pg, pb = results["postgres_ingest"], results["postgres_baseline_copy_no_index"]
        print(f"PostgreSQL server backend: ours {pg['events_per_server_cpu_s']:,.0f} events per server CPU-s "
              f"(client {pg['events_per_cpu_s']:,.0f}), baseline {pb['events_per_server_cpu_s']:,.0f} "
              f"(client {pb['events_per_cpu_s']:,.0f})")
    print()
    print_table(["measurement", "value", "unit", "goal", "ratio"], other_rows)
    print(f"SQLite plan: {results['sqlite_query_plan']}")
    results["ratios"] = ratios
    results["goals"] = {"ingest_events_per_s": GOAL_INGEST, "query_ms": GOAL_QUERY_MS,
                        "judged_on": "median per-round wall rate; query p95"}
    results["meets_goals"] = all(v >= 1.0 for k, v in ratios.items() if k.endswith("_vs_goal"))
    print(json.dumps(results, default=str))


if __name__ == "__main__":
    main()
