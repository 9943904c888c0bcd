"""Benchmark: security event ingestion into SQLite and PostgreSQL, and query latency over 1 M events.

Usage: ``python benchmarks/eventlog.py [--events 1000000] [--pg-url URL | --no-postgres]``

Goals (issue 6): SQLite ingestion (WAL, batched, with the query index) >= 100,000 events/s; PostgreSQL
ingestion via COPY >= 100,000 events/s; a query by station and time window over 1 M events < 50 ms.

The events (2,000 stations, 30 days, a realistic mix of types) are built in batches as SecurityEvent
objects; "ingest" times only ``store.add_many`` (dedup, row building, sorting, the database), "build"
times constructing the events. Without ``--pg-url`` a throw-away PostgreSQL cluster is started with
``tests/_postgres.py`` (fsync off, like the tests). A raw psycopg COPY of the same rows into a table
without indexes is measured as the baseline ("psycopg COPY does about 110,000/s here"). Query latency is
measured over 300 random (station, 24 h window) queries, after ANALYZE. SQLite work runs in this process,
so its rate per CPU second is also given (independent of other load on a shared machine). The load
average is recorded. The last line is one JSON object
with the figures and ratios (ratio = measured / goal, >= 1.0 meets the goal; latency ratio = goal /
measured).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # tests/_postgres.py

from ocppsec.eventlog.model import SecurityEvent, Source
from ocppsec.eventlog.store import EventQuery, EventStore, open_store
from ocppsec.pki.versions import OcppVersion

GOAL_INGEST = 100_000
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


def raw_copy_baseline(url: str, events: list[SecurityEvent]) -> float:
    """psycopg COPY of the same rows into an index-free table: what the driver alone does here."""
    import psycopg

    from ocppsec.eventlog._postgres import _row

    now = datetime.now(UTC)
    rows = [_row(e, now) for e in events]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TEMP TABLE baseline (station_id TEXT, ts TIMESTAMPTZ, type TEXT, canonical_type TEXT, "
            "critical BOOLEAN, tech_info TEXT, ocpp_version TEXT, source TEXT, received_at TIMESTAMPTZ, "
            "flags TEXT, dedup_key BIGINT)"
        )
        t = time.perf_counter()
        with conn.transaction(), conn.cursor() as cur, cur.copy("COPY baseline FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return len(rows) / (time.perf_counter() - t)


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
        pg_store = None
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

        load_before = os.getloadavg()
        build_s = sqlite_s = pg_s = sqlite_cpu = 0.0
        first_batch: list[SecurityEvent] = []
        for batch, built in batches(args.events, args.batch):
            build_s += built
            if not first_batch:
                first_batch = batch[:200_000]
            t, c = time.perf_counter(), time.process_time()
            sqlite_store.add_many(batch)
            sqlite_s += time.perf_counter() - t
            sqlite_cpu += time.process_time() - c
            if pg_store is not None:
                t = time.perf_counter()
                pg_store.add_many(batch)
                pg_s += time.perf_counter() - t

        n = args.events
        results: dict[str, Any] = {
            "events": n,
            "batch": args.batch,
            "build_events_per_s": n / build_s,
            "sqlite_ingest_events_per_s": n / sqlite_s,
            "sqlite_ingest_events_per_cpu_s": n / sqlite_cpu,
            "load_average_before": load_before,
            "cpus": os.cpu_count(),
        }
        # a redelivered batch: every event is a duplicate (the path that checks the unique index)
        dup = first_batch[: min(len(first_batch), 50_000)]
        t = time.perf_counter()
        sqlite_store.add_many(dup)
        results["sqlite_duplicate_batch_events_per_s"] = len(dup) / (time.perf_counter() - t)
        results["sqlite_query"] = query_latency(sqlite_store)
        results["sqlite_query_plan"] = sqlite_store.explain(
            EventQuery(station_id="CS-00001", since=T0, until=T0 + timedelta(days=1))
        )
        if pg_store is not None and pg_url is not None:
            results["postgres_ingest_events_per_s"] = n / pg_s
            t = time.perf_counter()
            pg_store.add_many(dup)
            results["postgres_duplicate_batch_events_per_s"] = len(dup) / (time.perf_counter() - t)
            import psycopg

            with psycopg.connect(pg_url, autocommit=True) as conn:
                conn.execute("ANALYZE security_events")
            results["postgres_query"] = query_latency(pg_store)
            results["postgres_raw_copy_baseline_events_per_s"] = raw_copy_baseline(pg_url, first_batch)

    ratios = {
        "sqlite_ingest_vs_goal": results["sqlite_ingest_events_per_s"] / GOAL_INGEST,
        "sqlite_query_p95_vs_goal": GOAL_QUERY_MS / results["sqlite_query"]["p95_ms"],
    }
    rows: list[list[object]] = [
        ["build SecurityEvent objects", results["build_events_per_s"], "events/s", "-", "-"],
        ["SQLite ingest (WAL, batched, indexed)", results["sqlite_ingest_events_per_s"], "events/s", GOAL_INGEST,
         f"{ratios['sqlite_ingest_vs_goal']:.2f}"],
        ["SQLite ingest per CPU second", results["sqlite_ingest_events_per_cpu_s"], "events/s", "-", "-"],
        ["SQLite re-ingest of duplicates", results["sqlite_duplicate_batch_events_per_s"], "events/s", "-", "-"],
        ["SQLite query station+24h, median", results["sqlite_query"]["median_ms"], "ms", "-", "-"],
        ["SQLite query station+24h, p95", results["sqlite_query"]["p95_ms"], "ms", GOAL_QUERY_MS,
         f"{ratios['sqlite_query_p95_vs_goal']:.1f}"],
    ]
    if "postgres_ingest_events_per_s" in results:
        ratios["postgres_ingest_vs_goal"] = results["postgres_ingest_events_per_s"] / GOAL_INGEST
        ratios["postgres_ingest_vs_raw_copy"] = (
            results["postgres_ingest_events_per_s"] / results["postgres_raw_copy_baseline_events_per_s"]
        )
        ratios["postgres_query_p95_vs_goal"] = GOAL_QUERY_MS / results["postgres_query"]["p95_ms"]
        rows += [
            ["PostgreSQL ingest (COPY, indexed)", results["postgres_ingest_events_per_s"], "events/s", GOAL_INGEST,
             f"{ratios['postgres_ingest_vs_goal']:.2f}"],
            ["psycopg raw COPY, no index (baseline)", results["postgres_raw_copy_baseline_events_per_s"], "events/s",
             "-", f"{ratios['postgres_ingest_vs_raw_copy']:.2f} of it"],
            ["PostgreSQL re-ingest of duplicates", results["postgres_duplicate_batch_events_per_s"], "events/s", "-",
             "-"],
            ["PostgreSQL query station+24h, median", results["postgres_query"]["median_ms"], "ms", "-", "-"],
            ["PostgreSQL query station+24h, p95", results["postgres_query"]["p95_ms"], "ms", GOAL_QUERY_MS,
             f"{ratios['postgres_query_p95_vs_goal']:.1f}"],
        ]
    results["load_average_after"] = os.getloadavg()
    print(f"{args.events:,} events, {STATIONS:,} stations, 30 days, batches of {args.batch:,}; "
          f"load average {results['load_average_before'][0]:.2f} on {os.cpu_count()} CPUs (shared machine: "
          "wall-clock rates drop when others run)")
    print_table(["measurement", "value", "unit", "goal", "ratio"], rows)
    print(f"SQLite plan: {results['sqlite_query_plan']}")
    results["ratios"] = ratios
    results["goals"] = {"ingest_events_per_s": GOAL_INGEST, "query_ms": GOAL_QUERY_MS}
    results["meets_goals"] = all(v >= 1.0 for k, v in ratios.items() if k.endswith("_vs_goal"))
    print(json.dumps(results, default=str))


if __name__ == "__main__":
    main()
