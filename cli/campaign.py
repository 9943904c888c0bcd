"""``ocppsec campaign``: start, watch, stop and resume the campaigns a running gateway runs.

The gateway (``ocppsec gateway --campaigns DB``) runs them; these commands talk to its admin listener
(``--gateway URL``, default the gateway's default admin address; ``$OCPPSEC_ADMIN_TOKEN`` is sent as the
Bearer token of the POST routes when set)::

    ocppsec campaign start renew --within-days 30 --max-in-flight 50
    ocppsec campaign start rollover --certificate new-root.pem --cross-certificate new-by-old.pem \\
        --old-root old-root.pem --root-type CSMSRootCertificate --dry-run
    ocppsec campaign status [ID] [--json]

Exit codes: 0 ok, 1 the gateway refused the request (bad options, policy), 2 usage, 3 no gateway.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import click

from ocppsec.cli._common import echo_json, echo_table
from ocppsec.pki.errors import BackendError, InputError, NotFoundError, OcppsecError, UsageError
from ocppsec.security_profiles.gateway.config import DEFAULT_ADMIN

__all__ = ["campaign"]

TOKEN_ENV = "OCPPSEC_ADMIN_TOKEN"


class _Refused(OcppsecError):
    exit_code = 1


def _request(base: str, method: str, path: str, body: dict[str, Any] | None, timeout: float) -> Any:
    if "://" not in base:
        base = f"http://{base}"
    if not base.startswith(("http://", "https://")):
        raise UsageError(f"--gateway {base!r} is not an http(s) URL")
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base.rstrip("/") + path, data=data, method=method)  # noqa: S310 - http(s) only
    request.add_header("Content-Type", "application/json")
    token = os.environ.get(TOKEN_ENV)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise BackendError(f"no gateway admin listener at {base}: {reason}",
                           hint="is the gateway running with --campaigns, and is --gateway its admin address?") from None
    try:
        answer = json.loads(raw)
    except ValueError:
        raise BackendError(f"{base} did not answer like a gateway admin listener (HTTP {status})") from None
    if status == 404 and isinstance(answer, dict) and "error" in answer:
        raise NotFoundError(str(answer["error"]))
    if status == 404:
        raise BackendError(f"{base} has no campaign routes", hint="start the gateway with --campaigns DB")
    if status >= 400:
        message = answer.get("error", f"HTTP {status}") if isinstance(answer, dict) else f"HTTP {status}"
        lines = [f"{v.get('requirement')}: {v.get('message')}" for v in answer.get("violations", [])] \
            if isinstance(answer, dict) else []
        raise _Refused(f"the gateway refused: {message}" + (f" ({'; '.join(lines[:5])})" if lines else ""),
                       hint=answer.get("hint") if isinstance(answer, dict) else None)
    return answer


def _pem(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read a PEM file: {exc}") from None


_gateway_option = click.option("--gateway", "gateway_url", default=f"http://{DEFAULT_ADMIN}", show_default=True,
                               metavar="URL", help="the gateway's admin listener")
_timeout_option = click.option("--timeout", type=click.FloatRange(0.1, 300), default=30.0, show_default=True,
                               help="seconds to wait for the gateway's answer")


@click.group("campaign")
def campaign() -> None:
    """Renewal and root campaigns run by a gateway (`ocppsec gateway --campaigns DB`)."""


@campaign.command("start")
@click.argument("kind", type=click.Choice(["renew", "rollover", "retire"]))
@_gateway_option
@_timeout_option
@click.option("--station", "stations", multiple=True, help="only this station (repeatable; default: every one found)")
@click.option("--max-in-flight", type=click.IntRange(1, 100_000), default=None, help="stations between a call and its answer")
@click.option("--max-attempts", type=click.IntRange(1, 100), default=None, help="calls per station before it fails")
@click.option("--call-timeout", type=click.FloatRange(0.1, 3600), default=None, help="seconds a station has to answer")
@click.option("--reconnect-timeout", type=click.FloatRange(1, 86400), default=None,
              help="renew: seconds a station has to reconnect with its new certificate")
@click.option("--retry-delay", type=click.FloatRange(0, 86400), default=None, help="seconds before a retry")
@click.option("--use", type=click.Choice(["charging-station", "v2g", "v2g20"]), default=None,
              help="renew: which certificate (v2g20: 2.1 SignV2G20Certificate)  [default: charging-station]")
@click.option("--within-days", type=click.FloatRange(0, 3650), default=None,
              help="renew: certificates expiring within this many days  [default: 30]")
@click.option("--force", is_flag=True, help="renew: every selected station whatever its expiry; retire: even if "
                                            "stations are not confirmed to hold the new root")
@click.option("--cert-signing-wait-minimum", type=click.IntRange(0), default=None,
              help="renew: the stations' CertSigningWaitMinimum (s), respected before a retrigger")
@click.option("--cert-signing-repeat-times", type=click.IntRange(0), default=None,
              help="renew: the stations' CertSigningRepeatTimes")
@click.option("--certificate", "certificate", metavar="PEM", help="rollover/retire: the new root")
@click.option("--cross-certificate", metavar="PEM",
              help="rollover: the new root signed by the old one (for AdditionalRootCertificateCheck)")
@click.option("--old-root", metavar="PEM", help="rollover: signer of --cross-certificate; retire: the root deleted")
@click.option("--root-type", type=click.Choice(["csms", "manufacturer", "v2g", "mo", "oem"]), default=None,
              help="rollover/retire: the root's type (oem: 2.1 only)  [default: csms]")
@click.option("--root-check", type=click.Choice(["ask", "cross", "self-signed"]), default=None,
              help="rollover: ask each station's AdditionalRootCertificateCheck (default) or send this form")
@click.option("--dry-run", is_flag=True, help="show per station what would be sent and what is missing")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def start(kind: str, gateway_url: str, timeout: float, stations: tuple[str, ...], max_in_flight: int | None,
          max_attempts: int | None, call_timeout: float | None, reconnect_timeout: float | None,
          retry_delay: float | None, use: str | None, within_days: float | None, force: bool,
          cert_signing_wait_minimum: int | None, cert_signing_repeat_times: int | None, certificate: str | None,
          cross_certificate: str | None, old_root: str | None, root_type: str | None, root_check: str | None,
          dry_run: bool, as_json: bool) -> None:
    """Start a campaign of KIND on the gateway."""
    options: dict[str, Any] = {k: v for k, v in {
        "stations": list(stations) or None, "max_in_flight": max_in_flight, "max_attempts": max_attempts,
        "timeout": call_timeout, "reconnect_timeout": reconnect_timeout, "retry_delay": retry_delay, "use": use,
        "within_days": within_days, "station_wait_minimum": cert_signing_wait_minimum,
        "station_repeat_times": cert_signing_repeat_times, "root_type": root_type,
    }.items() if v is not None}
    if dry_run:
        options["dry_run"] = True
    detail: dict[str, Any] = {}
    if kind == "renew":
        if certificate or cross_certificate or old_root or root_check:
            raise UsageError("--certificate/--cross-certificate/--old-root/--root-check are for rollover and retire")
        if force:
            options["force"] = True
    else:
        if not certificate:
            raise UsageError(f"{kind} needs --certificate (the new root)")
        detail = {k: v for k, v in {"certificate": _pem(certificate), "cross_certificate": _pem(cross_certificate),
                                    "old_root": _pem(old_root), "root_check": root_check}.items() if v is not None}
    body = {"kind": kind, "options": options, "detail": detail, "force": force and kind == "retire"}
    answer = _request(gateway_url, "POST", "/campaigns", body, timeout)
    if as_json:
        echo_json(answer)
        return
    if answer.get("dry_run"):
        click.echo(f"dry run of {kind}: {answer.get('ready')} of {answer.get('total')} station(s) ready")
        rows = [[s.get("station"), s.get("version", ""), "yes" if s.get("connected") else "no",
                 json.dumps(s.get("send"), default=str) if s.get("send") else "", "; ".join(s.get("missing", []))]
                for s in answer.get("stations", [])]
        if rows:
            echo_table(["station", "version", "connected", "would send", "missing"], rows)
        return
    progress = answer.get("progress", {})
    click.echo(f"campaign {answer.get('id')} started: {kind}, {progress.get('total', 0)} station(s)")


@campaign.command("status")
@click.argument("campaign_id", required=False)
@_gateway_option
@_timeout_option
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def status(campaign_id: str | None, gateway_url: str, timeout: float, as_json: bool) -> None:
    """List the gateway's campaigns, or show one campaign's stations."""
    if campaign_id is None:
        answer = _request(gateway_url, "GET", "/campaigns", None, timeout)
        if as_json:
            echo_json(answer)
            return
        rows = [[c.get("id"), c.get("kind"), c.get("status"), c["progress"].get("total"), c["progress"].get("done"),
                 c["progress"].get("failed"), ", ".join(f"{k} {v}" for k, v in c["progress"].get("states", {}).items())]
                for c in answer.get("campaigns", [])]
        click.echo(f"{len(rows)} campaign(s)")
        if rows:
            echo_table(["id", "kind", "status", "stations", "done", "failed", "states"], rows)
        return
    answer = _request(gateway_url, "GET", f"/campaigns/{campaign_id}", None, timeout)
    if as_json:
        echo_json(answer)
        return
    p = answer.get("progress", {})
    click.echo(f"campaign {answer.get('id')}: {answer.get('kind')}, {answer.get('status')}; "
               f"{p.get('done')} done, {p.get('failed')} failed of {p.get('total')}")
    rows = [[s.get("station"), s.get("state"), s.get("attempts"), s.get("updated_at"), s.get("reason") or ""]
            for s in answer.get("stations", [])]
    if rows:
        echo_table(["station", "state", "attempts", "updated", "reason"], rows)


@campaign.command("stop")
@click.argument("campaign_id")
@_gateway_option
@_timeout_option
def stop(campaign_id: str, gateway_url: str, timeout: float) -> None:
    """Stop sending calls for a campaign (resume goes on where it stopped)."""
    answer = _request(gateway_url, "POST", f"/campaigns/{campaign_id}/stop", {}, timeout)
    click.echo(f"campaign {answer.get('id')}: {answer.get('status')}")


@campaign.command("resume")
@click.argument("campaign_id")
@_gateway_option
@_timeout_option
def resume(campaign_id: str, gateway_url: str, timeout: float) -> None:
    """Go on with a stopped campaign."""
    answer = _request(gateway_url, "POST", f"/campaigns/{campaign_id}/resume", {}, timeout)
    click.echo(f"campaign {answer.get('id')}: {answer.get('status')}")
