"""``ocppsec gateway status``: what a running gateway says on its admin listener.

Reads ``/healthz``, ``/readyz``, ``/stations`` and a few ``/metrics`` of the gateway at ``--admin`` (default
the gateway's default admin address) and prints a summary and the connected stations, or ``--json``.
Exit codes: 0 ready, 1 running but not ready, 3 not reachable.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from typing import Any

import click

from ocppsec.cli._common import echo_json, echo_table
from ocppsec.pki.errors import BackendError
from ocppsec.security_profiles.gateway.config import DEFAULT_ADMIN

__all__ = ["status"]

_SUMMED = {
    "ocppsec_gateway_connections": "connections",
    "ocppsec_gateway_handshakes_total": "handshakes",
    "ocppsec_gateway_frames_relayed_total": "frames relayed",
    "ocppsec_gateway_upstream_failures_total": "upstream failures",
    "ocppsec_gateway_event_queue_depth": "event queue",
    "ocppsec_gateway_event_spool_depth": "event spool",
    "ocppsec_gateway_reloads_total": "reloads",
    "ocppsec_gateway_workers": "workers",
}


def _get(base: str, path: str, timeout: float) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(base.rstrip("/") + path, timeout=timeout) as response:  # noqa: S310 - http(s) only
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise BackendError(f"no gateway admin listener at {base}: {reason}",
                           hint="is the gateway running, and is --admin the address it listens on?") from None


def _metrics(text: str) -> dict[str, float]:
    """The sums of the few metrics the summary shows (every label set added up)."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            label = _SUMMED.get(sample.name)
            if label is not None:
                out[label] = out.get(label, 0) + sample.value
    return out


@click.command("status")
@click.option("--admin", "admin_url", default=f"http://{DEFAULT_ADMIN}", show_default=True, metavar="URL",
              help="the gateway's admin listener")
@click.option("--timeout", type=click.FloatRange(0.1, 60), default=5.0, show_default=True, help="seconds per request")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def status(admin_url: str, timeout: float, as_json: bool) -> None:
    """Show a running gateway's health, readiness, connected stations and counters."""
    if "://" not in admin_url:
        admin_url = f"http://{admin_url}"
    if not admin_url.startswith(("http://", "https://")):
        from ocppsec.pki.errors import UsageError

        raise UsageError(f"--admin {admin_url!r} is not an http(s) URL")
    _, health_body = _get(admin_url, "/healthz", timeout)
    ready_status, ready_body = _get(admin_url, "/readyz", timeout)
    _, stations_body = _get(admin_url, "/stations", timeout)
    _, metrics_body = _get(admin_url, "/metrics", timeout)
    try:
        health: dict[str, Any] = json.loads(health_body)
        ready: dict[str, Any] = json.loads(ready_body)
        stations: list[dict[str, Any]] = json.loads(stations_body)
    except ValueError:
        raise BackendError(f"{admin_url} did not answer like a gateway admin listener") from None
    counters = _metrics(metrics_body.decode("utf-8", "replace"))
    if as_json:
        echo_json({"admin": admin_url, "health": health, "ready": ready_status == 200, "readiness": ready,
                   "metrics": counters, "stations": stations})
    else:
        click.echo(f"gateway at {admin_url}: pid {health.get('pid')}, up {health.get('uptime')} s, "
                   f"{'ready' if ready_status == 200 else 'NOT READY'}")
        for name, value in ready.get("checks", {}).items():
            click.echo(f"  {name}: {json.dumps(value, default=str)}")
        if counters:
            click.echo("  " + ", ".join(f"{k} {v:g}" for k, v in counters.items()))
        headers = ["identity", "profile", "version", "peer", "since", "cert serial", "cert notAfter"]
        has_worker = any("worker" in s for s in stations)
        if has_worker:
            headers.append("worker")
        rows = []
        for s in stations:
            row = [s.get("identity"), s.get("profile"), s.get("version"), s.get("peer"), s.get("since"),
                   s.get("certificate_serial"), s.get("certificate_not_after")]
            if has_worker:
                row.append(s.get("worker"))
            rows.append(row)
        click.echo(f"{len(stations)} station(s) connected")
        if rows:
            echo_table(headers, rows)
    if ready_status != 200:
        sys.exit(1)  # not click.exceptions.Exit: click returns that code in non-standalone mode
