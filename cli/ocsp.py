"""``ocppsec ocsp serve``: the RFC 6960 responder over HTTP for the CAs of a PKI directory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from ocppsec.cli._common import passphrase_for_reading
from ocppsec.cli._serve import loop_option, serve_until_signal
from ocppsec.pki.directory import PkiDirectory
from ocppsec.pki.errors import UsageError
from ocppsec.pki.revocation.authorities import load_authorities
from ocppsec.pki.revocation.ocsp import OcspResponder
from ocppsec.pki.revocation.server import OcspHttpServer, parse_listen
from ocppsec.pki.storage import Dialect

__all__ = ["ocsp"]


@click.group()
def ocsp() -> None:
    """OCSP: answer certificate-status queries from the PKI ledger."""


@ocsp.command("serve")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--listen", required=True, metavar="HOST:PORT", help="Address to serve on, e.g. 127.0.0.1:8080.")
@click.option("--ca", "ca_names", multiple=True, metavar="NAME", help="Answer for this CA (repeatable; default all).")
@click.option("--no-delegate", is_flag=True, help="Sign with the CA key itself, not a delegated responder certificate.")
@click.option("--validity-hours", type=click.FloatRange(min=0.1), default=24.0, show_default=True,
              help="nextUpdate - thisUpdate of every answer.")
@click.option("--refresh-hours", type=click.FloatRange(min=0.01), default=6.0, show_default=True,
              help="Re-sign pre-produced answers this long before their nextUpdate.")
@click.option("--max-request-bytes", type=click.IntRange(256, 1 << 20), default=8192, show_default=True)
@click.option("--ledger-url", metavar="URL", help="postgresql:// ledger shared by CSMS nodes (default: DIR's own).")
@click.option("--access-log", is_flag=True, help="Print one line per request on stderr.")
@click.option("--quiet", is_flag=True, hidden=True, help="No access log (the default; kept for old scripts).")
@loop_option
def serve_cmd(directory: Path, listen: str, ca_names: tuple[str, ...], no_delegate: bool, validity_hours: float,
              refresh_hours: float, max_request_bytes: int, ledger_url: str | None, access_log: bool, quiet: bool,
              loop_name: str) -> None:
    """Serve OCSP (POST and GET) for the CAs of DIRECTORY until interrupted."""
    host, port = parse_listen(listen)
    if refresh_hours >= validity_hours:
        raise UsageError("--refresh-hours must be less than --validity-hours")
    now = datetime.now(UTC)
    pki_dir = PkiDirectory.open(directory, passphrase_for_reading(), ledger_url=ledger_url)
    try:
        authorities = load_authorities(pki_dir, ca_names, at=now, delegated=not no_delegate)
        responder = OcspResponder(authorities, pki_dir.ledger, validity=timedelta(hours=validity_hours),
                                  refresh_before=timedelta(hours=refresh_hours))
        count = responder.preproduce(at=now)
        # nonce answers are signed on the loop with the directory's own SQLite ledger (less CPU per answer,
        # ADR 15) and in a worker thread with a PostgreSQL one, whose lookups must not stall the loop
        local_ledger = getattr(getattr(pki_dir.ledger, "database", None), "dialect", None) is Dialect.SQLITE
        server = OcspHttpServer((host, port), responder, max_request_bytes=max_request_bytes,
                                access_log=(lambda line: click.echo(line, err=True)) if access_log and not quiet else None,
                                offload_on_demand=not local_ledger)

        def ready() -> None:
            click.echo(f"OCSP responder for {', '.join(a.name for a in authorities)} on {server.url} "
                       f"({count} answers pre-produced)", err=True)

        serve_until_signal(loop_name, server.listen, server.close, ready)
    finally:
        pki_dir.close()
