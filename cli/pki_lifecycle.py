"""``ocppsec pki revoke | crl | expiring``: revocation and fleet expiry (added to the ``pki`` group by cli/pki.py)."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from ocppsec.cli._common import echo_json, echo_table, parse_time, passphrase_for_reading, read_input_file
from ocppsec.pki.errors import NotFoundError, UsageError
from ocppsec.pki.keys.files import atomic_write
from ocppsec.pki.pem import load_certificate
from ocppsec.pki.revocation.crl import build_crl, crl_entries, parse_reason

if TYPE_CHECKING:
    from ocppsec.pki.ledger import CertificateRecord

__all__ = ["COMMANDS", "crl_cmd", "expiring_cmd", "revoke_cmd"]

LEDGER_URL = click.option("--ledger-url", metavar="URL", help="postgresql:// ledger shared by CSMS nodes (default: DIR's own).")


def _pick(matches: list[CertificateRecord], what: str, ca: str | None) -> CertificateRecord:
    if ca is not None:
        matches = [m for m in matches if m.issuer_ca == ca]
    if not matches:
        raise NotFoundError(f"no certificate {what} in the ledger" + (f" issued by {ca}" if ca else ""),
                            hint="list them with `ocppsec pki list DIR`")
    if len(matches) > 1:
        raise UsageError(f"{what} matches certificates of several CAs: " + ", ".join(m.issuer_ca for m in matches),
                         hint="name the issuer with --ca")
    return matches[0]


@click.command("revoke")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.argument("serial", required=False)
@click.option("--cert", "cert_file", type=click.Path(), help="The certificate to revoke (PEM/DER).")
@click.option("--reason", required=True, help="RFC 5280 reason: keyCompromise, superseded, cessationOfOperation, ...")
@click.option("--ca", "ca_name", help="Issuing CA, when the serial is ambiguous.")
@click.option("--at", "at_text", metavar="TIME", help="Revocation time (default now).")
@LEDGER_URL
@click.option("--json", "as_json", is_flag=True)
def revoke_cmd(directory: Path, serial: str | None, cert_file: str | None, reason: str, ca_name: str | None,
               at_text: str | None, ledger_url: str | None, as_json: bool) -> None:
    """Record a revocation in the ledger (CRLs and the OCSP responder pick it up)."""
    from ocppsec.pki.directory import PkiDirectory

    if (serial is None) == (cert_file is None):
        raise UsageError("give either SERIAL or --cert FILE")
    flag = parse_reason(reason)
    at = parse_time(at_text)
    pki_dir = PkiDirectory.open(directory, ledger_url=ledger_url)
    try:
        if cert_file is not None:
            cert = load_certificate(read_input_file(cert_file, "certificate"), what=f"certificate {cert_file}")
            fp = cert.fingerprint(hashes.SHA256()).hex()
            found = [r for r in pki_dir.ledger.find_serial(format(cert.serial_number, "x")) if r.fingerprint == fp]
            record = _pick(found, f"matching {cert_file}", ca_name)
        else:
            assert serial is not None
            text = serial.strip().lower().removeprefix("0x").replace(":", "")
            if not text or any(c not in "0123456789abcdef" for c in text):
                raise UsageError(f"serial {serial!r} is not hexadecimal", hint="as `ocppsec pki list` shows it")
            record = _pick(pki_dir.ledger.find_serial(text), f"with serial {text}", ca_name)
        if record.status == "revoked":
            raise UsageError(f"serial {record.serial} of {record.issuer_ca} was already revoked "
                             f"({record.revocation_reason}, {record.revoked_at})")
        done = pki_dir.ledger.revoke(record.serial, record.issuer_ca, at, flag.value)
    finally:
        pki_dir.close()
    if as_json:
        echo_json(done.to_json())
    else:
        click.echo(f"revoked serial {done.serial} of {done.issuer_ca} ({done.subject}), reason {flag.value}")


@click.command("crl")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--ca", "ca_name", required=True, help="The CA whose CRL to sign.")
@click.option("--out", "out_file", type=click.Path(path_type=Path), help="Write here (default stdout).")
@click.option("--next-update-hours", type=click.FloatRange(min=0.01), default=24.0, show_default=True,
              help="nextUpdate = thisUpdate + this.")
@click.option("--der", is_flag=True, help="DER instead of PEM.")
@click.option("--at", "at_text", metavar="TIME", help="thisUpdate (default now).")
@LEDGER_URL
def crl_cmd(directory: Path, ca_name: str, out_file: Path | None, next_update_hours: float, der: bool,
            at_text: str | None, ledger_url: str | None) -> None:
    """Sign the CA's CRL from the ledger's revocations (new CRL number each time)."""
    from ocppsec.pki.directory import PkiDirectory

    at = parse_time(at_text)
    pki_dir = PkiDirectory.open(directory, passphrase_for_reading(), ledger_url=ledger_url)
    try:
        ca = pki_dir.ca(ca_name)
        entries = crl_entries(pki_dir.ledger.revoked(ca_name))
        number = pki_dir.ledger.next_crl_number(ca_name)
        crl = build_crl(ca.certificate, ca.key, entries, at=at, number=number,
                        validity=timedelta(hours=next_update_hours))
    finally:
        pki_dir.close()
    data = crl.public_bytes(Encoding.DER if der else Encoding.PEM)
    if out_file is not None:
        atomic_write(out_file, data, 0o644)
        click.echo(f"CRL #{number} of {ca_name}: {len(entries)} revoked -> {out_file}", err=True)
    elif der:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        click.echo(data.decode(), nl=False)


def _threshold(item: str) -> tuple[str, timedelta]:
    role, sep, days = item.partition("=")
    try:
        value = float(days)
    except ValueError:
        value = -1
    if not sep or not role or value < 0:
        raise UsageError(f"--threshold {item!r} must be ROLE=DAYS, e.g. charging-station=45")
    return role, timedelta(days=value)


@click.command("expiring")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--within", "within_days", type=click.FloatRange(min=0), metavar="DAYS",
              help="Everything expiring within DAYS (default: each role's own renewal window).")
@click.option("--threshold", "thresholds", multiple=True, metavar="ROLE=DAYS", help="Override a role's renewal window.")
@click.option("--at", "at_text", metavar="TIME")
@LEDGER_URL
@click.option("--json", "as_json", is_flag=True)
def expiring_cmd(directory: Path, within_days: float | None, thresholds: tuple[str, ...], at_text: str | None,
                 ledger_url: str | None, as_json: bool) -> None:
    """Certificates we issued and certificates stations hold that expire soon, with the action each needs."""
    from ocppsec.pki.certmgmt.inventory import inventory_location
    from ocppsec.pki.directory import PkiDirectory
    from ocppsec.pki.lifecycle.expiry import ExpiryPolicy, find_expiring
    from ocppsec.pki.lifecycle.inventory_file import load_inventory_file

    at = parse_time(at_text)
    pki_dir = PkiDirectory.open(directory, ledger_url=ledger_url)
    try:
        policy = ExpiryPolicy.from_config(pki_dir.config.data, dict(_threshold(t) for t in thresholds))
        records = pki_dir.ledger.all()
    finally:
        pki_dir.close()
    inventory = load_inventory_file(inventory_location(directory, ledger_url))  # follows the ledger (DIR/ledger.url)
    within = timedelta(days=within_days) if within_days is not None else None
    items = find_expiring(records, inventory, at=at, policy=policy, within=within)
    if as_json:
        echo_json([i.to_json() for i in items])
        return
    if not items:
        click.echo("nothing expires " + (f"within {within_days:g} days" if within is not None else "inside its renewal window"))
        return
    echo_table(["expires", "days left", "role", "name/station", "serial", "due", "subject"],
               [[f"{i.not_after:%Y-%m-%d}", f"{i.remaining.total_seconds() / 86400:.1f}", i.role,
                 i.name or i.station or "-", i.serial[:16], "EXPIRED" if i.expired else ("yes" if i.due else ""),
                 i.subject] for i in items])


COMMANDS: list[click.Command] = [revoke_cmd, crl_cmd, expiring_cmd]
