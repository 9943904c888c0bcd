"""``ocppsec pki revoke | crl | expiring | renew | rollover | cross-sign | retire``: revocation, fleet expiry and the
lifecycle of the directory's own CAs and certificates (added to the ``pki`` group by cli/pki.py).

Every rule lives in the library (:class:`~ocppsec.pki.directory.PkiDirectory`, :mod:`ocppsec.pki.lifecycle`);
these commands parse, call it and render. Library modules are imported by the commands that use them.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ocppsec.cli._common import echo_json, echo_table, parse_time, passphrase_for_reading
from ocppsec.pki.errors import NotFoundError, UsageError

if TYPE_CHECKING:
    from ocppsec.pki.directory import PkiDirectory
    from ocppsec.pki.ledger import CertificateRecord
    from ocppsec.pki.lifecycle.renewal import PlanItem

__all__ = ["COMMANDS", "crl_cmd", "cross_sign_cmd", "expiring_cmd", "renew_cmd", "retire_cmd", "revoke_cmd",
           "rollover_cmd"]

LEDGER_URL = click.option("--ledger-url", metavar="URL", help="postgresql:// ledger shared by CSMS nodes (default: DIR's own).")
INVENTORY = click.option("--inventory", "inventory_url", metavar="PATH|URL",
                         help="Station inventory (default: the directory's, DIR/inventory.db or next to its ledger).")
STATIONS = click.option("--stations", "stations_db", metavar="PATH|URL",
                        help="Station registry: adds the registered stations that have no inventory rows yet.")


def _open(directory: Path, *, passphrase: bool = False, ledger_url: str | None = None) -> PkiDirectory:
    from ocppsec.pki.directory import PkiDirectory

    return PkiDirectory.open(directory, passphrase_for_reading() if passphrase else None, ledger_url=ledger_url)


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
@click.option("--cert", "cert_file", type=click.Path(dir_okay=False),
              help="The certificate to revoke (PEM/DER; a chain file: its leaf).")
@click.option("--reason", required=True, help="RFC 5280 reason: keyCompromise, superseded, cessationOfOperation, ...")
@click.option("--ca", "ca_name", help="Issuing CA, when the serial is ambiguous.")
@click.option("--force", is_flag=True, help="Revoke a root too (it cuts off everything below it).")
@click.option("--at", "at_text", metavar="TIME", help="Revocation time (default now).")
@LEDGER_URL
@click.option("--json", "as_json", is_flag=True)
def revoke_cmd(directory: Path, serial: str | None, cert_file: str | None, reason: str, ca_name: str | None,
               force: bool, at_text: str | None, ledger_url: str | None, as_json: bool) -> None:
    """Record a revocation in the ledger (CRLs and the OCSP responder pick it up)."""
    from ocppsec.cli.pki import read_chain_leaf
    from ocppsec.pki.revocation.crl import parse_reason

    if (serial is None) == (cert_file is None):
        raise UsageError("give either SERIAL or --cert FILE")
    flag = parse_reason(reason)
    at = parse_time(at_text)
    pki_dir = _open(directory, ledger_url=ledger_url)
    try:
        if cert_file is not None:
            cert, _rest = read_chain_leaf(cert_file)
            record = pki_dir.find_certificate(cert)
            if ca_name is not None and record.issuer_ca != ca_name:
                raise NotFoundError(f"{cert_file} was issued by {record.issuer_ca}, not {ca_name}")
        else:
            assert serial is not None
            text = serial.strip().lower().removeprefix("0x").replace(":", "")
            if not text or any(c not in "0123456789abcdef" for c in text):
                raise UsageError(f"serial {serial!r} is not hexadecimal", hint="as `ocppsec pki list` shows it")
            record = _pick(pki_dir.ledger.find_serial(text), f"with serial {text}", ca_name)
        done = pki_dir.revoke(record, at=at, reason=flag.value, force=force)
    finally:
        pki_dir.close()
    if as_json:
        echo_json(done.to_json())
    else:
        click.echo(f"revoked serial {done.serial} of {done.issuer_ca} ({done.subject}), reason {flag.value}")


@click.command("crl")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--ca", "ca_name", required=True, help="The CA whose CRL to sign (NAME@SERIAL: a superseded generation).")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), help="Write here (default stdout).")
@click.option("--next-update-hours", type=click.FloatRange(min=0.01), default=24.0, show_default=True,
              help="nextUpdate = thisUpdate + this.")
@click.option("--der", is_flag=True, help="DER instead of PEM.")
@click.option("--at", "at_text", metavar="TIME", help="thisUpdate (default now).")
@LEDGER_URL
def crl_cmd(directory: Path, ca_name: str, out_file: Path | None, next_update_hours: float, der: bool,
            at_text: str | None, ledger_url: str | None) -> None:
    """Sign the CA's CRL from the ledger's revocations (new CRL number each time)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from ocppsec.pki.keys.files import atomic_write
    from ocppsec.pki.revocation.crl import build_crl, crl_entries

    at = parse_time(at_text)
    pki_dir = _open(directory, passphrase=True, ledger_url=ledger_url)
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


def next_step(item: PlanItem) -> str:
    """What an operator does about one plan item (rendering of :class:`~ocppsec.pki.lifecycle.renewal.Action`)."""
    from ocppsec.pki.lifecycle.renewal import Action

    name = item.item.name or item.item.serial
    return {
        Action.TRIGGER_STATION_CSR: "TriggerMessage SignChargingStationCertificate (A03)",
        Action.TRIGGER_V2G_CSR: "TriggerMessage SignV2GCertificate (A03)",
        Action.REISSUE_SERVER: f"ocppsec pki renew DIR {name}",
        Action.REISSUE_SIGNING: f"ocppsec pki renew DIR {name}",
        Action.RENEW_SUB_CA: f"ocppsec pki renew DIR {name}",
        Action.ROLLOVER_ROOT: f"ocppsec pki rollover DIR {name} --dry-run, then without it",
        Action.RENEW_RESPONDER: "renewed by `ocppsec ocsp serve` at its next start",
        Action.REVIEW: "nothing automatic: review it",
        Action.REPROVISION_STATION: "expired: the station cannot connect with profile 3; give it a new certificate "
                                    "over a profile-2 connection or on site",
        Action.REPLACE_ROOT: "expired: it cannot sign a successor; build a new root and install it by hand (M05.FR.09)",
    }[item.action]


@click.command("expiring")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--within", "within_days", type=click.FloatRange(min=0), metavar="DAYS",
              help="Everything expiring within DAYS (default: each role's own renewal window).")
@click.option("--threshold", "thresholds", multiple=True, metavar="ROLE=DAYS", help="Override a role's renewal window.")
@click.option("--at", "at_text", metavar="TIME")
@LEDGER_URL
@INVENTORY
@click.option("--json", "as_json", is_flag=True)
def expiring_cmd(directory: Path, within_days: float | None, thresholds: tuple[str, ...], at_text: str | None,
                 ledger_url: str | None, inventory_url: str | None, as_json: bool) -> None:
    """Certificates we issued and certificates stations hold that expire soon (or have expired), with the action
    each needs."""
    from ocppsec.pki.certmgmt.inventory import inventory_location
    from ocppsec.pki.lifecycle.expiry import ExpiryPolicy, find_expiring
    from ocppsec.pki.lifecycle.inventory_file import load_inventory_file
    from ocppsec.pki.lifecycle.renewal import plan_renewals

    at = parse_time(at_text)
    pki_dir = _open(directory, ledger_url=ledger_url)
    try:
        policy = ExpiryPolicy.from_config(pki_dir.config.data, dict(_threshold(t) for t in thresholds))
        records = pki_dir.ledger.all()
    finally:
        pki_dir.close()
    inventory = load_inventory_file(inventory_url or inventory_location(directory, ledger_url))
    within = timedelta(days=within_days) if within_days is not None else None
    items = find_expiring(records, inventory, at=at, policy=policy, within=within)
    planned = {(p.item.source, p.item.serial, p.item.station): p for p in plan_renewals(items)}
    rows: list[tuple[Any, PlanItem | None]] = [(i, planned.get((i.source, i.serial, i.station))) for i in items]
    if as_json:
        echo_json([{**i.to_json(), "action": p.action.value if p else None, "next_step": next_step(p) if p else None}
                   for i, p in rows])
        return
    if not items:
        click.echo("nothing expires " + (f"within {within_days:g} days" if within is not None else "inside its renewal window"))
        return
    echo_table(["expires", "days left", "role", "name/station", "serial", "due", "action", "next step"],
               [[f"{i.not_after:%Y-%m-%d}", f"{i.remaining.total_seconds() / 86400:.1f}", i.role,
                 i.name or i.station or "-", i.serial, "EXPIRED" if i.expired else ("yes" if i.due else ""),
                 p.action.value if p else "-", next_step(p) if p else "not due yet"] for i, p in rows])


def _render_record(r: CertificateRecord, at: datetime) -> dict[str, object]:
    return {"name": r.name, "serial": r.serial, "subject": r.subject, "issuer": r.issuer_ca,
            "not_before": r.not_before.isoformat(), "not_after": r.not_after.isoformat(), "status": r.status_at(at).value}


@click.command("renew")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.argument("name")
@click.option("--validity-days", type=click.IntRange(1, 36500), help="Default: the configuration's, else the profile's.")
@click.option("--key-type", type=click.Choice(["p256", "p384", "p521", "ed448", "rsa2048", "rsa3072", "rsa4096"]),
              help="Default: the old key's type.")
@click.option("--at", "at_text", metavar="TIME", help="Issuance time (default now).")
@click.option("--json", "as_json", is_flag=True)
def renew_cmd(directory: Path, name: str, validity_days: int | None, key_type: str | None, at_text: str | None,
              as_json: bool) -> None:
    """Give the sub-CA or named certificate NAME (csms-server-rsa, firmware-signing, cso-sub-ca ...) a new key and
    certificate under the current generation of its issuer.

    The new key is written 0600, encrypted with the passphrase; the old certificate stays in the ledger as
    NAME@SERIAL with its key (CRLs and OCSP answers for what it issued) until `pki retire`. Roots: `pki rollover`."""
    from ocppsec.cli._common import now
    from ocppsec.pki.keys import KeySpec

    at = parse_time(at_text)
    pki_dir = _open(directory, passphrase=True)
    try:
        done = pki_dir.renew(name, at=at, validity_days=validity_days, now=now(),
                             key=KeySpec.parse(key_type) if key_type else None)
    finally:
        pki_dir.close()
    if as_json:
        echo_json({"old": _render_record(done.old, at), "new": _render_record(done.new, at),
                   "key": done.new.key_ref})
        return
    click.echo(f"renewed {name}: serial {done.new.serial}, valid until {done.new.not_after:%Y-%m-%d}, "
               f"issued by {done.new.issuer_ca}")
    click.echo(f"the old certificate is now {done.old.name} (valid until {done.old.not_after:%Y-%m-%d}); "
               f"`ocppsec pki retire {directory} {done.old.name}` once nothing uses it")
    if done.new.key_ref and done.new.key_ref.startswith("file:"):
        click.echo(f"new key: {directory / done.new.key_ref[5:]} (`ocppsec pki export {directory} {name} --chain --key`)")


def _station_inputs(directory: Path, inventory_url: str | None, stations_db: str | None) -> tuple[list[Any], list[str]]:
    from ocppsec.pki.certmgmt.inventory import inventory_location
    from ocppsec.pki.lifecycle.inventory_file import load_inventory_file

    inventory = load_inventory_file(inventory_url or inventory_location(directory, None))
    stations: list[str] = []
    if stations_db is not None:
        from ocppsec.security_profiles.registry_sql import open_registry

        registry = open_registry(stations_db)
        try:
            stations = [r.identity for r in registry.list()]
        finally:
            registry.close()
    return inventory, stations


def _impact_rows(impacts: Any) -> list[list[str]]:
    return [[i.station_id, "yes" if i.has_old_root else "no", "yes" if i.has_new_root else ("sent" if i.pending else "no"),
             "LOSES CONNECTIVITY" if i.would_lose_connectivity else "ok"] for i in impacts]


@click.command("rollover")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.argument("root")
@click.option("--dry-run", is_flag=True, help="Say what would be done and which stations need the new root; write nothing.")
@click.option("--cn", "new_cn", help="CN of the new root (default: the old one's with a generation, '... G2').")
@click.option("--validity-days", type=click.IntRange(1, 36500), help="Of the new root (default: the profile's).")
@click.option("--ocpp-version", "ocpp_version", default="2.0.1", show_default=True,
              help="Version of the InstallCertificate request printed.")
@INVENTORY
@STATIONS
@click.option("--at", "at_text", metavar="TIME")
@click.option("--json", "as_json", is_flag=True)
def rollover_cmd(directory: Path, root: str, dry_run: bool, new_cn: str | None, validity_days: int | None,
                 ocpp_version: str, inventory_url: str | None, stations_db: str | None, at_text: str | None,
                 as_json: bool) -> None:
    """Roll the root ROOT over (M05): a new root (new key, new subject), the new root signed by the old one (what a
    station with AdditionalRootCertificateCheck installs) and the old one signed by the new one.

    ROOT then names the new root; the old one stays trusted as ROOT@SERIAL until `pki retire`, which refuses
    while stations lack the new root. Certificates the old root issued are renewed with `pki renew`."""
    from ocppsec.pki.versions import OcppVersion

    at = parse_time(at_text)
    version = OcppVersion.parse(ocpp_version)
    subject = {"CN": new_cn} if new_cn else None
    inventory, stations = _station_inputs(directory, inventory_url, stations_db)
    if dry_run:
        pki_dir = _open(directory)
        try:
            preview = pki_dir.rollover_preview(root, at=at, inventory=inventory, stations=stations, subject=subject,
                                               validity_days=validity_days)
        finally:
            pki_dir.close()
        if as_json:
            echo_json({"dry_run": True, **preview.to_json()})
            return
        click.echo(f"dry run: {root} ({preview.root.subject}) would become {preview.alias}; the new root "
                   f"{preview.new_subject.rfc4514_string()} valid until {preview.new_not_after:%Y-%m-%d}, "
                   f"its cross-certificate under the old root until {preview.cross_not_after:%Y-%m-%d}")
        if preview.renew_after:
            click.echo("to renew afterwards (`ocppsec pki renew`): " + ", ".join(str(r.name) for r in preview.renew_after))
        if preview.stations:
            click.echo(f"{len(preview.stations)} station(s) must install the new root (InstallCertificate "
                       "CSMSRootCertificate) before the old one is retired:")
            echo_table(["station", "old root", "new root", "when the old root is retired"], _impact_rows(preview.stations))
        else:
            click.echo("no station inventory or registry given: no station listed")
        return
    from ocppsec.pki.lifecycle.rollover import install_plan, station_impacts

    pki_dir = _open(directory, passphrase=True)
    try:
        done = pki_dir.rollover(root, at=at, subject=subject, validity_days=validity_days)
    finally:
        pki_dir.close()
    rolled = done.root_rollover()
    impacts = station_impacts(rolled.old_root, rolled.identities(), inventory, stations)
    plans = {"with_additional_root_check": install_plan(rolled, version, additional_root_check=True),
             "without": install_plan(rolled, version, additional_root_check=False)}
    if as_json:
        echo_json({"old": _render_record(done.old, at), "new": _render_record(done.new, at),
                   "new_by_old": _render_record(done.new_by_old, at), "old_by_new": _render_record(done.old_by_new, at),
                   "install_certificate": plans, "stations": [i.to_json() for i in impacts]})
        return
    click.echo(f"rolled {root} over: the new root is serial {done.new.serial} ({done.new.subject}), valid until "
               f"{done.new.not_after:%Y-%m-%d}; the old one is now {done.old.name}")
    click.echo(f"cross-certificates: new by old serial {done.new_by_old.serial} (until {done.new_by_old.not_after:%Y-%m-%d}),"
               f" old by new serial {done.old_by_new.serial}; files in {directory / 'certs'}")
    click.echo("InstallCertificate for stations with AdditionalRootCertificateCheck carries the new root signed by the "
               "old one (M05.FR.09); others get the self-signed new root (`--json` prints both requests)")
    click.echo(f"next: renew what {done.old.name} issued (`ocppsec pki renew`), install the new root on every station, "
               f"then `ocppsec pki retire {directory} {done.old.name}`")
    if impacts:
        echo_table(["station", "old root", "new root", "when the old root is retired"], _impact_rows(impacts))


@click.command("cross-sign")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.argument("subject")
@click.option("--by", "issuer", required=True, help="The CA that signs SUBJECT's key and name.")
@click.option("--validity-days", type=click.IntRange(1, 36500),
              help="Default: until the earlier notAfter of the two CAs (more is refused).")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), help="Write the certificate here.")
@click.option("--at", "at_text", metavar="TIME")
@click.option("--json", "as_json", is_flag=True)
def cross_sign_cmd(directory: Path, subject: str, issuer: str, validity_days: int | None, out_file: Path | None,
                   at_text: str | None, as_json: bool) -> None:
    """Cross-certify the CA SUBJECT under the CA given with --by: SUBJECT's name and key signed by it, so chains of
    SUBJECT validate for relying parties that trust only the other one (recorded in the ledger)."""
    from ocppsec.pki.keys.files import atomic_write

    at = parse_time(at_text)
    pki_dir = _open(directory, passphrase=True)
    try:
        rec = pki_dir.cross_sign(subject, by=issuer, at=at, validity_days=validity_days)
    finally:
        pki_dir.close()
    if out_file is not None:
        atomic_write(out_file, rec.pem.encode(), 0o644)
    if as_json:
        echo_json({**_render_record(rec, at), "certificate": rec.pem})
    elif out_file is None:
        click.echo(rec.pem, nl=False)
    if not as_json:
        click.echo(f"cross-certified {subject} by {issuer}: serial {rec.serial}, valid until {rec.not_after:%Y-%m-%d}",
                   err=True)


@click.command("retire")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.argument("name")
@click.option("--dry-run", is_flag=True, help="Say what retiring would do (and what stops it); change nothing.")
@click.option("--force", is_flag=True, help="Retire although certificates it issued are valid / stations lack its successor.")
@INVENTORY
@STATIONS
@click.option("--at", "at_text", metavar="TIME")
@click.option("--json", "as_json", is_flag=True)
def retire_cmd(directory: Path, name: str, dry_run: bool, force: bool, inventory_url: str | None,
               stations_db: str | None, at_text: str | None, as_json: bool) -> None:
    """Take the superseded generation NAME (NAME@SERIAL, as `pki renew` or `pki rollover` named it) out of service:
    its key file is deleted and, for a root, it is no longer trusted; prints the DeleteCertificate of a root.

    Refused while certificates it issued are still valid, and for a root while stations of the inventory lack
    the new root (M05.FR.09)."""
    from ocppsec.pki.lifecycle.rollover import retire_plan, station_impacts

    at = parse_time(at_text)
    pki_dir = _open(directory)
    try:
        rec = pki_dir.ledger.get_named(name)
        impacts = None
        delete: dict[str, Any] | None = None
        if rec is not None and rec.is_root and rec.superseded_by is not None:
            inventory, stations = _station_inputs(directory, inventory_url, stations_db)
            rolled = pki_dir.rollover_of(name).root_rollover()
            impacts = station_impacts(rolled.old_root, rolled.identities(), inventory, stations)
            delete = retire_plan(rolled, impacts, force=True)
        if dry_run:
            from ocppsec.pki.errors import PolicyError

            try:
                pki_dir.retire(name, at=at, impacts=impacts, dry_run=True)
                verdict = "would be retired"
            except PolicyError as exc:
                verdict = f"would be refused: {exc}"
        else:
            pki_dir.retire(name, at=at, force=force, impacts=impacts)
            verdict = "retired"
    finally:
        pki_dir.close()
    if as_json:
        echo_json({"name": name, "result": verdict, "dry_run": dry_run, "delete_certificate": delete,
                   "stations": [i.to_json() for i in impacts] if impacts is not None else None})
        return
    click.echo(f"{name} {verdict}")
    if impacts:
        echo_table(["station", "old root", "new root", "when the old root is retired"], _impact_rows(impacts))
    if delete is not None and delete["stations"]:
        click.echo("DeleteCertificate for " + ", ".join(delete["stations"]) + ": "
                   + " ".join(f"{k}={v}" for k, v in delete["certificateHashData"].items()))


COMMANDS: list[click.Command] = [revoke_cmd, crl_cmd, expiring_cmd, renew_cmd, rollover_cmd, cross_sign_cmd, retire_cmd]
