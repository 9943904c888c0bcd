"""``ocppsec events``: query, follow, count, export and receive security events.

The store is a SQLite file (default ``./ocppsec-events.db``) or a ``postgresql://`` URL, chosen with
``--store`` or ``OCPPSEC_EVENT_STORE``. No domain logic here: this parses options, opens the store or
the receiver from :mod:`ocppsec.eventlog` and renders text, JSON or CSV.
"""

from __future__ import annotations

import csv
import json
import re
import ssl
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TextIO, TypeVar

import click

from ocppsec.cli._common import echo_json, echo_table, parse_time
from ocppsec.cli._serve import loop_option, serve_until_signal
from ocppsec.eventlog.receiver import ReceiverConfig, UploadReceiver
from ocppsec.eventlog.store import DEFAULT_STORE, EventQuery, EventStore, StoredEvent
from ocppsec.eventlog.store_sql import open_store
from ocppsec.pki.errors import StoreError, UsageError
from ocppsec.pki.events import catalogue
from ocppsec.pki.events.model import format_timestamp
from ocppsec.pki.storage import parse_url
from ocppsec.pki.versions import OcppVersion

__all__ = ["events"]

STORE_ENV = "OCPPSEC_EVENT_STORE"
_F = TypeVar("_F", bound=Callable[..., Any])
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _store_option(func: _F) -> _F:
    return click.option(
        "--store",
        "store_spec",
        envvar=STORE_ENV,
        default=DEFAULT_STORE,
        show_default=True,
        metavar="PATH|URL",
        help=f"SQLite file or postgresql:// URL (env {STORE_ENV}).",
    )(func)


def _filter_options(func: _F) -> _F:
    for option in reversed(
        [
            click.option("--station", help="Only this charging station."),
            click.option("--type", "type_", metavar="T", help="Only this event type (1.6 and 2.x names match)."),
            click.option("--critical", is_flag=True, help="Only critical events."),
            click.option("--since", metavar="TIME", help="From this time (inclusive; ISO 8601 or unix seconds)."),
            click.option("--until", metavar="TIME", help="Before this time (exclusive)."),
        ]
    ):
        func = option(func)
    return func


def _open(spec: str, *, must_exist: bool) -> EventStore:
    url = parse_url(spec, what="event store")
    if must_exist and url.path is not None and not url.path.exists():
        raise StoreError(
            f"event store {url.location} does not exist",
            hint=f"pass --store PATH|URL or set {STORE_ENV}; events are written by the CSMS or `events receive`",
        )
    return open_store(url)


def _query(station: str | None, type_: str | None, critical: bool, since: str | None, until: str | None,
           **extra: Any) -> EventQuery:
    return EventQuery(
        station_id=station,
        type=type_,
        critical=True if critical else None,
        since=parse_time(since) if since else None,
        until=parse_time(until) if until else None,
        **extra,
    )


def _clean(text: str | None) -> str:
    """Control characters (terminal escapes) shown escaped."""
    if text is None:
        return ""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _csv_cell(value: Any) -> str:
    """CSV cell safe for spreadsheets: no formula injection."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _row(stored: StoredEvent) -> list[Any]:
    e = stored.event
    critical = {True: "yes", False: "no", None: "?"}[e.critical]
    return [stored.id, format_timestamp(e.timestamp), _clean(e.station_id), _clean(e.type), critical,
            _clean(e.tech_info), ",".join(sorted(e.flags))]


_HEADERS = ["id", "timestamp", "station", "type", "critical", "techInfo", "flags"]
_CSV_FIELDS = ["id", "stationId", "timestamp", "type", "canonicalType", "critical", "techInfo", "ocppVersion",
               "source", "receivedAt", "flags"]


def _json_record(stored: StoredEvent) -> dict[str, Any]:
    return {"id": stored.id, **stored.event.to_json(), "canonicalType": stored.event.canonical_type}


def _write_csv(out: TextIO, rows: Iterable[StoredEvent]) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_CSV_FIELDS)
    n = 0
    for stored in rows:
        data = _json_record(stored)
        data["flags"] = ",".join(data.get("flags", []))
        writer.writerow([_csv_cell(data.get(field)) for field in _CSV_FIELDS])
        n += 1
    return n


def _write_jsonl(out: TextIO, rows: Iterable[StoredEvent]) -> int:
    n = 0
    for stored in rows:
        out.write(json.dumps(_json_record(stored), ensure_ascii=False) + "\n")
        n += 1
    return n


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def events() -> None:
    """Security event log: query, tail, stats, export, and the GetLog upload receiver."""


@events.command()
@_store_option
@_filter_options
@click.option("--limit", type=click.IntRange(min=0), default=1000, show_default=True, help="At most this many.")
@click.option("--newest-first", is_flag=True, help="Newest events first.")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV output.")
def query(store_spec: str, station: str | None, type_: str | None, critical: bool, since: str | None,
          until: str | None, limit: int, newest_first: bool, as_json: bool, as_csv: bool) -> None:
    """List events matching the filters (oldest first)."""
    if as_json and as_csv:
        raise UsageError("--json and --csv exclude each other")
    q = _query(station, type_, critical, since, until, limit=limit, descending=newest_first)
    store = _open(store_spec, must_exist=True)
    try:
        rows = store.query(q)
    finally:
        store.close()
    if as_json:
        echo_json([_json_record(r) for r in rows])
    elif as_csv:
        _write_csv(sys.stdout, rows)
    else:
        echo_table(_HEADERS, [_row(r) for r in rows])


@events.command()
@_store_option
@_filter_options
@click.option("--from-start", is_flag=True, help="Print the stored events first, then follow.")
@click.option("--interval", type=click.FloatRange(min=0.05), default=1.0, show_default=True,
              help="Seconds between polls.")
@click.option("--count", type=click.IntRange(min=1), help="Exit after this many events.")
@click.option("--timeout", type=click.FloatRange(min=0), help="Exit after this many seconds.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def tail(store_spec: str, station: str | None, type_: str | None, critical: bool, since: str | None,
         until: str | None, from_start: bool, interval: float, count: int | None, timeout: float | None,
         as_json: bool) -> None:
    """Follow new events as they are stored (Ctrl-C to stop)."""
    store = _open(store_spec, must_exist=True)
    try:
        last = 0 if from_start else store.last_id()
        seen = 0
        deadline = time.monotonic() + timeout if timeout is not None else None
        while True:
            q = _query(station, type_, critical, since, until, after_id=last, order="id", limit=1000)
            batch = store.query(q)
            for stored in batch:
                last = stored.id
                if as_json:
                    click.echo(json.dumps(_json_record(stored), ensure_ascii=False))
                else:
                    click.echo("  ".join(str(c) for c in _row(stored)[1:6]).rstrip())
                seen += 1
                if count is not None and seen >= count:
                    return
            if deadline is not None and time.monotonic() >= deadline:
                return
            if not batch:
                time.sleep(interval)
    finally:
        store.close()


@events.command()
@_store_option
@_filter_options
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
def stats(store_spec: str, station: str | None, type_: str | None, critical: bool, since: str | None,
          until: str | None, as_json: bool) -> None:
    """Counts per station and event type."""
    store = _open(store_spec, must_exist=True)
    try:
        rows = store.stats(_query(station, type_, critical, since, until))
    finally:
        store.close()
    if as_json:
        echo_json([
            {"stationId": r.station_id, "type": r.type, "count": r.count, "critical": r.critical,
             "first": format_timestamp(r.first), "last": format_timestamp(r.last)}
            for r in rows
        ])
        return
    echo_table(
        ["station", "type", "count", "critical", "first", "last"],
        [[_clean(r.station_id), _clean(r.type), r.count, r.critical, format_timestamp(r.first),
          format_timestamp(r.last)] for r in rows],
    )
    click.echo(f"{sum(r.count for r in rows)} events, {len({r.station_id for r in rows})} stations")


@events.command()
@_store_option
@_filter_options
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), help="File (default: stdout).")
def export(store_spec: str, station: str | None, type_: str | None, critical: bool, since: str | None,
           until: str | None, fmt: str, output: str | None) -> None:
    """Export events (streamed, oldest first) as JSON Lines or CSV."""
    store = _open(store_spec, must_exist=True)
    writer = _write_csv if fmt == "csv" else _write_jsonl
    try:
        rows = store.iter_query(_query(station, type_, critical, since, until))
        if output is None:
            writer(sys.stdout, rows)
            return
        try:
            with open(output, "w", encoding="utf-8", newline="") as fh:
                n = writer(fh, rows)
        except OSError as exc:
            raise StoreError(f"cannot write {output}: {exc.strerror}") from None
        click.echo(f"exported {n} events to {output}", err=True)
    finally:
        store.close()


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--listen {text!r} is not HOST:PORT", hint="e.g. --listen 127.0.0.1:8443 or [::]:8443")
    return host, int(port)


@events.command()
@click.option("--listen", "listen", required=True, metavar="HOST:PORT", help="Address to listen on (port 0: any).")
@click.option("--dir", "directory", required=True, type=click.Path(file_okay=False), help="Where files are stored.")
@_store_option
@click.option("--server-cert", type=click.Path(exists=True, dir_okay=False), help="TLS certificate chain (PEM).")
@click.option("--server-key", type=click.Path(exists=True, dir_okay=False), help="TLS private key (PEM).")
@click.option("--basic-auth-from-env", "auth_env", metavar="VAR", help="Require HTTP Basic user:password from VAR.")
@click.option("--max-bytes", type=click.IntRange(min=1), default=16 * 1024 * 1024, show_default=True,
              help="Largest accepted upload.")
@click.option("--max-uploads", type=click.IntRange(min=1), default=16, show_default=True,
              help="Uploads received at once (more are answered 503).")
@loop_option
def receive(listen: str, directory: str, store_spec: str, server_cert: str | None, server_key: str | None,
            auth_env: str | None, max_bytes: int, max_uploads: int, loop_name: str) -> None:
    """Receive GetLog uploads (HTTP PUT/POST) and import our log files into the store."""
    host, port = _listen(listen)
    if bool(server_cert) != bool(server_key):
        raise UsageError("--server-cert and --server-key go together")
    context = None
    if server_cert and server_key:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(server_cert, server_key)
        except (ssl.SSLError, OSError) as exc:
            raise UsageError(f"cannot load the server certificate/key: {exc}") from None
    auth = ReceiverConfig.basic_auth_from_env(auth_env) if auth_env else None
    store = open_store(store_spec)
    try:
        receiver = UploadReceiver(
            ReceiverConfig(Path(directory), max_bytes=max_bytes, basic_auth=auth, max_uploads=max_uploads), store=store,
            ssl_context=context,
        )

        def ready() -> None:
            click.echo(f"listening on {receiver.url} (uploads go to {receiver.url}logs/<stationId>/<requestId>/)")
            sys.stdout.flush()

        serve_until_signal(loop_name, lambda: receiver.listen(host, port), receiver.aclose, ready)
    finally:
        store.close()


@events.command(name="catalogue")
@click.option("--version", "version", default="2.1", show_default=True, help="OCPP version: 1.6, 2.0.1, 2.1.")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
def catalogue_cmd(version: str, as_json: bool) -> None:
    """The security events of a version with their critical flag."""
    v = OcppVersion.parse(version)
    rows = [d for d in catalogue.CATALOGUE.values() if d.defined_in(v)]
    if as_json:
        echo_json([{"name": d.name_in(v), "canonical": d.name, "critical": d.critical(v),
                    "description": d.description, "requirements": list(d.requirements)} for d in rows])
        return
    echo_table(["event", "critical", "description"],
               [[d.name_in(v), "yes" if d.critical(v) else "no", d.description] for d in rows])
