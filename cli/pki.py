"""``ocppsec pki``: build hierarchies, issue from CSRs, make CSRs, verify, lint, hash data, list, export.

Renewal, rollover, cross-signing, retirement, revocation and expiry are in :mod:`ocppsec.cli.pki_lifecycle`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from ocppsec.cli._common import (
    echo_json,
    echo_table,
    now,
    parse_time,
    passphrase_for_reading,
    passphrase_for_writing,
    read_input_file,
)
from ocppsec.pki.chain import verify_chain, verify_issued_chain
from ocppsec.pki.csr import PolicyContext, check_csr, make_csr
from ocppsec.pki.errors import ChainError, InputError, UsageError
from ocppsec.pki.hashdata import compute_hash_data
from ocppsec.pki.keys import KeySpec, generate_key
from ocppsec.pki.keys.files import atomic_write, key_to_pem, load_key_file
from ocppsec.pki.lint import guess_profile, lint_certificate
from ocppsec.pki.names import name_value
from ocppsec.pki.pem import certificates_to_pem, load_certificates, load_csr
from ocppsec.pki.profiles import PROFILES, get_profile

if TYPE_CHECKING:
    from cryptography import x509

    from ocppsec.pki.issuance import BatchOutcome
    from ocppsec.pki.ledger import CertificateRecord

# The PKI directory (ledger, storage, SQLite), the hierarchy builder and the revocation modules are imported
# by the commands that use them.

__all__ = ["pki", "read_chain_leaf"]


def read_chain_leaf(path: str, what: str = "certificate") -> tuple[x509.Certificate, list[x509.Certificate]]:
    """The first certificate of a file (a certificate, or a chain as `pki issue` writes it: leaf first) and the rest."""
    certs = load_certificates(read_input_file(path, what), what=path)
    return certs[0], certs[1:]


@click.group()
def pki() -> None:
    """Certificate hierarchies of a charging network (OCPP CSO and manufacturer, ISO 15118 V2G/MO/OEM)."""


@pki.command("config")
def config_cmd() -> None:
    """Print the built-in hierarchy configuration (TOML), to copy and edit."""
    from ocppsec.pki.hierarchy import default_config_text

    click.echo(default_config_text(), nl=False)


@pki.command("profiles")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def profiles_cmd(as_json: bool) -> None:
    """List the certificate profiles (roles) with their key types and validity defaults."""
    rows = [
        {"name": p.name, "family": p.family.value, "ca": p.is_ca, "path_length": p.path_length,
         "keys": [k.value for k in p.allowed_keys], "validity_days": p.validity_days,
         "issuers": list(p.issuers), "description": p.description}
        for p in PROFILES.values()
    ]
    if as_json:
        echo_json(rows)
        return
    echo_table(["profile", "family", "CA", "keys", "days", "issued by"],
               [[r["name"], r["family"], "yes" if r["ca"] else "", ",".join(r["keys"]),  # type: ignore[arg-type]
                 r["validity_days"], ",".join(r["issuers"]) or "(root)"] for r in rows])  # type: ignore[arg-type]


@pki.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Hierarchy TOML (default: the built-in one, see `ocppsec pki config`).")
@click.option("--cso-name", help="CSO organisation name (O of station and CSMS certificates).")
@click.option("--csms-fqdn", help="FQDN of the CSMS (CN of its server certificates).")
@click.option("--iso15118-20", "iso20", is_flag=True, help="Also build the ISO 15118-20 twins of the V2G hierarchies.")
@click.option("--ca-key", "ca_keys", multiple=True, metavar="NAME=URI",
              help="Use an existing key (pkcs11: URI) for the entity NAME instead of a new key file.")
@click.option("--no-encrypt", is_flag=True, help="Store private keys unencrypted (not recommended).")
@click.option("--at", "at_text", metavar="TIME", help="Issue as of TIME (default now).")
@click.option("--json", "as_json", is_flag=True)
def init_cmd(directory: Path, config_file: Path | None, cso_name: str | None, csms_fqdn: str | None, iso20: bool,
             ca_keys: tuple[str, ...], no_encrypt: bool, at_text: str | None, as_json: bool) -> None:
    """Build every CA and certificate of the hierarchy into DIRECTORY (resumable).

    On an existing directory: keeps what is there, builds what the configuration adds, and refuses options
    that contradict what was built and a passphrase that does not open its keys."""
    from ocppsec.pki.directory import PkiDirectory

    raw = read_input_file(str(config_file), "configuration") if config_file else None
    config = PkiDirectory.configuration(directory, raw, what=f"configuration {config_file}", iso15118_20=iso20,
                                        cso_name=cso_name, csms_fqdn=csms_fqdn)
    config.plan()  # validate before touching the disk
    keys = {}
    for item in ca_keys:
        name, sep, uri = item.partition("=")
        if not sep or not uri.startswith("pkcs11:"):
            raise UsageError(f"--ca-key {item!r} must be NAME=pkcs11:...")
        keys[name] = uri
    passphrase = passphrase_for_writing(no_encrypt)
    at = parse_time(at_text)
    pki_dir = PkiDirectory.init(directory, config, passphrase=passphrase, at=at, ca_keys=keys)
    try:
        report = pki_dir.init_report
        records = pki_dir.ledger.all()
        if as_json:
            echo_json([r.to_json(at) for r in records])
            return
        if report.existed:
            click.echo(f"PKI in {directory} exists: kept {len(report.kept)} entities as they were"
                       + (f", built {len(report.built)}: {', '.join(report.built)}" if report.built else
                          " (nothing to build)"))
        else:
            click.echo(f"PKI in {directory}: {len(records)} certificates")
        _table(records, at)
    finally:
        pki_dir.close()


def _table(records: Sequence[CertificateRecord], at: datetime) -> None:
    """One row per certificate: the full serial (as `pki revoke` takes it) and the status at ``at``."""
    rows = [[r.name or "-", r.role, r.serial, r.issuer_ca, f"{r.not_after:%Y-%m-%d}", r.status_at(at).value, r.subject]
            for r in records]
    echo_table(["name", "role", "serial", "issuer", "expires", "status", "subject"], rows)


@pki.command("issue")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--ca", "ca_name", required=True, help="Name of the issuing CA (e.g. csms-root, cpo-sub-ca-2).")
@click.option("--csr", "csr_file", type=click.Path(dir_okay=False), help="PKCS#10 request (PEM or DER).")
@click.option("--batch", "batch_source", type=click.Path(path_type=Path),
              help="A folder of CSR files (*.csr, *.pem, *.der) or a CSV with columns csr[,expected_cn][,station].")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path),
              help="--batch: write each chain as OUT_DIR/<name>.chain.pem (default: in the JSON report).")
@click.option("--profile", "profile_name", help="Profile of the new certificate (default: what the CA issues).")
@click.option("--expected-cn", help="The requester's identity: CN must equal it (station serial, SECC ID).")
@click.option("--serial-registry", "registry_file", type=click.Path(dir_okay=False),
              help="File of known station serial numbers (one per line): a station CN must be among them.")
@click.option("--validity-days", type=click.IntRange(1, 36500))
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), help="Write the chain here.")
@click.option("--at", "at_text", metavar="TIME", help="Issuance time (default now; notBefore is 5 minutes earlier).")
@click.option("--json", "as_json", is_flag=True)
def issue_cmd(directory: Path, ca_name: str, csr_file: str | None, batch_source: Path | None, out_dir: Path | None,
              profile_name: str | None, expected_cn: str | None, registry_file: str | None, validity_days: int | None,
              out_file: Path | None, at_text: str | None, as_json: bool) -> None:
    """Issue a certificate from a CSR under the profile's policy; print the chain as CertificateSigned carries it.

    notBefore lies 5 minutes before the issuance time (stations refuse certificates not valid yet, A02.FR.06);
    a validity past the CA's notAfter is refused. With --batch, every CSR of a folder or CSV is issued in one
    run (progress on stderr, a JSON report on stdout); a CSR that fails the policy is reported, not issued."""
    from ocppsec.pki.directory import PkiDirectory

    if (csr_file is None) == (batch_source is None):
        raise UsageError("give either --csr FILE or --batch FOLDER|CSV")
    if batch_source is None and out_dir is not None:
        raise UsageError("--out-dir goes with --batch; use --out for one chain")
    if batch_source is not None and (out_file is not None or expected_cn is not None):
        raise UsageError("--batch takes each expected CN from its CSV (column expected_cn), and writes to --out-dir")
    profile = get_profile(profile_name) if profile_name else None
    at = parse_time(at_text)
    clock = now()
    csr = load_csr(read_input_file(csr_file, "CSR"), what=f"CSR {csr_file}") if csr_file is not None else None
    pki_dir = PkiDirectory.open(directory, passphrase_for_reading())
    try:
        ctx = pki_dir.policy_context(expected_cn=expected_cn)
        if registry_file:
            lines = read_input_file(registry_file, "serial registry").decode("utf-8", "replace").splitlines()
            ctx = replace(ctx, serial_registry=frozenset(x.strip() for x in lines if x.strip() and not x.startswith("#")))
        if batch_source is not None:
            _issue_batch(pki_dir, batch_source, ca_name, profile, ctx, validity_days, at, clock, out_dir)
            return
        assert csr is not None
        result = pki_dir.issue_from_csr(csr, ca=ca_name, at=at, profile=profile, ctx=ctx, validity_days=validity_days,
                                        now=clock)
    finally:
        pki_dir.close()
    chain = result.chain_pem()
    if out_file:
        atomic_write(out_file, chain.encode(), 0o644)
    for w in result.warnings:
        click.echo(f"warning: {w}", err=True)
    if as_json:
        echo_json({"serial": result.record.serial, "profile": result.record.role, "issuer": ca_name,
                   "subject": result.record.subject, "not_before": result.record.not_before.isoformat(),
                   "not_after": result.record.not_after.isoformat(), "certificateChain": chain,
                   "warnings": [{"requirement": w.requirement, "message": w.message} for w in result.warnings]})
    elif not out_file:
        click.echo(chain, nl=False)
    else:
        click.echo(f"issued {result.record.role} serial {result.record.serial} -> {out_file}", err=True)


_CSR_SUFFIXES = (".csr", ".pem", ".der", ".req")


def _batch_inputs(source: Path) -> list[tuple[str, Path, str | None, str | None]]:
    """(label, CSR file, expected CN, station) per request of a folder or CSV."""
    import csv

    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.is_file() and p.suffix.lower() in _CSR_SUFFIXES)
        if not files:
            raise UsageError(f"{source} holds no CSR files", hint="names ending in " + ", ".join(_CSR_SUFFIXES))
        return [(p.name, p, None, None) for p in files]
    text = read_input_file(str(source), "CSV", limit=256 * 1024 * 1024).decode("utf-8-sig", "replace")
    reader = csv.DictReader(text.splitlines())
    if reader.fieldnames is None or "csr" not in reader.fieldnames:
        raise UsageError(f"CSV {source} needs a header line with a column csr (and optionally expected_cn, station)")
    out = []
    for row in reader:
        name = (row.get("csr") or "").strip()
        if not name:
            continue
        path = Path(name) if Path(name).is_absolute() else source.parent / name
        out.append((name, path, (row.get("expected_cn") or "").strip() or None, (row.get("station") or "").strip() or None))
    if not out:
        raise UsageError(f"CSV {source} lists no CSR")
    return out


def _issue_batch(pki_dir: Any, source: Path, ca_name: str, profile: Any, ctx: PolicyContext, validity_days: int | None,
                 at: datetime, clock: datetime, out_dir: Path | None) -> None:
    import sys

    from ocppsec.pki.errors import OcppsecError
    from ocppsec.pki.issuance import BatchRequest

    inputs = _batch_inputs(source)
    pipeline = pki_dir.pipeline(ca_name, profile, ctx=ctx, validity_days=validity_days)
    requests: list[BatchRequest] = []
    index: list[int] = []  # requests[n] is inputs[index[n]]
    unreadable: dict[int, OcppsecError] = {}
    with click.progressbar(length=2 * len(inputs), label=f"issuing {len(inputs)} CSRs", file=sys.stderr) as bar:
        for n, (label, path, expected, station) in enumerate(inputs):
            try:
                csr = load_csr(read_input_file(str(path), "CSR"), what=f"CSR {label}")
            except OcppsecError as exc:
                unreadable[n] = exc  # one bad file is reported, not the end of the batch
            else:
                index.append(n)
                requests.append(BatchRequest(csr, replace(ctx, expected_cn=expected) if expected else None, station))
            bar.update(1)
        bar.update(len(unreadable))
        outcomes = pipeline.issue_each(requests, at=at, now=clock, progress=bar.update)
    by_input: dict[int, BatchOutcome] = {index[o.index]: o for o in outcomes}
    above = certificates_to_pem(pipeline.authority.sub_cas)  # the same sub-CAs follow every leaf of the batch
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    items: list[dict[str, object]] = []
    for n, (label, _path, expected, station) in enumerate(inputs):
        item: dict[str, object] = {"csr": label, "expected_cn": expected, "station": station}
        outcome = by_input.get(n)
        if outcome is None or outcome.result is None:
            reasons = ([{"requirement": v.requirement, "message": v.message} for v in outcome.violations]
                       if outcome is not None else [{"requirement": unreadable[n].requirement,
                                                     "message": unreadable[n].message}])
            items.append({**item, "issued": False, "violations": reasons})
            continue
        res = outcome.result
        item.update(issued=True, serial=res.record.serial, subject=res.record.subject,
                    not_after=res.record.not_after.isoformat(),
                    warnings=[{"requirement": w.requirement, "message": w.message} for w in res.warnings])
        chain = res.record.pem + above
        if out_dir is not None:
            target = out_dir / (Path(label).stem + ".chain.pem")
            target.write_text(chain)  # the ledger is the durable record; chains can be exported again
            item["chain_file"] = str(target)
        else:
            item["certificateChain"] = chain
        items.append(item)
    issued = sum(1 for i in items if i["issued"])
    echo_json({"ca": ca_name, "profile": pipeline.profile.name, "total": len(items), "issued": issued,
               "refused": len(items) - issued, "items": items})
    if issued < len(items):
        sys.exit(1)


@pki.command("csr")
@click.option("--profile", "profile_name", default="charging-station", show_default=True)
@click.option("--org", "org", help="Subject O (for stations: the CSO name).")
@click.option("--cn", required=True, help="Subject CN (station serial, SECC ID, eMAID, PCID, FQDN).")
@click.option("--country", help="Subject C (two letters).")
@click.option("--dc", help="Subject DC (e.g. CPO for SECC certificates).")
@click.option("--key-type", type=click.Choice([k.value for k in KeySpec]), help="Default: the profile's key type.")
@click.option("--key-out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), help="CSR file (default stdout).")
@click.option("--no-encrypt", is_flag=True, help="Store the new key unencrypted.")
def csr_cmd(profile_name: str, org: str | None, cn: str, country: str | None, dc: str | None, key_type: str | None,
            key_out: Path, out_file: Path | None, no_encrypt: bool) -> None:
    """Generate a key locally (it never leaves) and a CSR for it (station side)."""
    profile = get_profile(profile_name)
    if key_out.exists():
        raise UsageError(f"{key_out} exists already", hint="choose another --key-out; keys are never overwritten")
    subject = {k: v for k, v in {"O": org, "CN": cn, "C": country, "DC": dc}.items() if v}
    spec = KeySpec(key_type) if key_type else profile.default_key
    key = generate_key(spec)
    csr = make_csr(key, subject, profile)
    report = check_csr(csr, profile, PolicyContext())
    passphrase = passphrase_for_writing(no_encrypt)
    atomic_write(key_out, key_to_pem(key, passphrase), 0o600)
    pem = csr.public_bytes(serialization.Encoding.PEM)
    if out_file:
        atomic_write(out_file, pem, 0o644)
    else:
        click.echo(pem.decode(), nl=False)
    for v in report.violations:
        click.echo(f"warning: {v}", err=True)


@pki.command("verify")
@click.argument("chain_file", type=click.Path(dir_okay=False))
@click.option("--trust", "trust_files", multiple=True, required=True, type=click.Path(dir_okay=False),
              help="Trusted root certificate(s) (PEM); repeatable.")
@click.option("--profile", "profile_name", help="Also lint the leaf against this profile.")
@click.option("--expected-cn", help="Leaf CN must equal this (FQDN or station serial).")
@click.option("--lenient", is_flag=True, help="Accept sub-CAs in any order and a root inside the chain file.")
@click.option("--crl", "crl_files", multiple=True, type=click.Path(dir_okay=False),
              help="Check revocation against this CRL (PEM or DER; repeatable), the trust anchor's own included.")
@click.option("--ocsp", "ocsp_url", is_flag=False, flag_value="aia", default=None, metavar="[URL]",
              help="Ask OCSP about every certificate: the responder at URL, or each certificate's AIA responder.")
@click.option("--soft-fail", is_flag=True, help="With --crl/--ocsp: accept a certificate whose status is unknown.")
@click.option("--at", "at_text", metavar="TIME")
@click.option("--json", "as_json", is_flag=True)
def verify_cmd(chain_file: str, trust_files: tuple[str, ...], profile_name: str | None, expected_cn: str | None,
               lenient: bool, crl_files: tuple[str, ...], ocsp_url: str | None, soft_fail: bool, at_text: str | None,
               as_json: bool) -> None:
    """Validate a chain (leaf first, then sub-CAs, no root) against trusted roots (RFC 5280; CN identity; ISO depth).

    With --crl and/or --ocsp, every certificate's revocation status too: a revoked one (the root included)
    fails, and so does one no CRL or responder answers for unless --soft-fail."""
    certs = load_certificates(read_input_file(chain_file, "chain"), what=chain_file)
    roots = [c for f in trust_files for c in load_certificates(read_input_file(f, "trust anchor"), what=f)]
    at = parse_time(at_text)
    leaf, rest = certs[0], certs[1:]
    profile = get_profile(profile_name) if profile_name else guess_profile(leaf)
    roots_fp = {r.fingerprint(hashes.SHA256()) for r in roots}
    intermediates = [c for c in rest if c.fingerprint(hashes.SHA256()) not in roots_fp]
    crls = []
    if crl_files:
        from ocppsec.pki.revocation.check import load_crl

        crls = [load_crl(read_input_file(f, "CRL")) for f in crl_files]
    revocation = None
    try:
        if lenient:
            verified = verify_chain(leaf, intermediates, roots, at=at, max_depth=profile.max_chain_depth,
                                    expected_cn=expected_cn)
        else:
            verified = verify_issued_chain(certs, roots, at=at, max_depth=profile.max_chain_depth, expected_cn=expected_cn)
        if crls or ocsp_url is not None:
            from ocppsec.pki.revocation.path import ocsp_lookup, verify_path_revocation

            lookup = ocsp_lookup(None if ocsp_url == "aia" else ocsp_url, at=at) if ocsp_url is not None else None
            revocation = verify_path_revocation(verified, at=at, crls=crls, ocsp=lookup, require=not soft_fail)
        lint = lint_certificate(leaf, profile) if profile_name else None
    except (ChainError, InputError) as exc:
        if as_json:
            echo_json({"valid": False, "error": str(exc)})
            sys.exit(1)
        raise
    ok = lint is None or lint.ok
    if as_json:
        echo_json({"valid": ok, "chain": [c.subject.rfc4514_string() for c in verified.chain],
                   "profile": profile.name, "lint": lint.to_json() if lint else None,
                   "revocation": revocation.to_json() if revocation else None})
    else:
        click.echo(f"OK: {name_value(leaf.subject, 'CN')} chains to {name_value(verified.root.subject, 'CN')} "
                   f"({verified.depth} level(s) above the leaf)")
        if revocation is not None:
            for e in revocation.entries:
                click.echo(f"revocation: {e.subject}: {e.status}" + (f" ({e.source})" if e.source else "")
                           + (f" - {e.detail}" if e.detail and e.status != "good" else ""))
        if lint is not None:
            for v in lint.violations:
                click.echo(f"profile {profile.name}: {v}")
    if not ok:
        sys.exit(1)


@pki.command("lint")
@click.argument("cert_file", type=click.Path(dir_okay=False))
@click.option("--profile", "profile_name", help="Profile to check against (default: guessed from the certificate).")
@click.option("--cso-name", help="Check that O equals this CSO name.")
@click.option("--json", "as_json", is_flag=True)
def lint_cmd(cert_file: str, profile_name: str | None, cso_name: str | None, as_json: bool) -> None:
    """List every deviation of a certificate from its role's profile, with requirement IDs (exit 1 if any).

    CERT_FILE may hold a chain as `pki issue` writes it: the leaf (the first certificate) is linted."""
    cert, _rest = read_chain_leaf(cert_file)
    profile = get_profile(profile_name) if profile_name else guess_profile(cert)
    report = lint_certificate(cert, profile, PolicyContext(cso_name=cso_name))
    if as_json:
        echo_json(report.to_json())
    elif report.ok:
        click.echo(f"OK: {report.subject} follows profile {profile.name}")
    else:
        click.echo(f"{report.subject} deviates from profile {profile.name}:")
        for v in report.violations:
            click.echo(f"  {v}")
    if not report.ok:
        sys.exit(1)


@pki.command("hashdata")
@click.argument("cert_file", type=click.Path(dir_okay=False))
@click.option("--issuer", "issuer_file", type=click.Path(dir_okay=False),
              help="The issuing certificate (default: the next one in CERT_FILE, or the certificate itself for a root).")
@click.option("--hash", "hash_name", type=click.Choice(["sha256", "sha384", "sha512"]), default="sha256", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def hashdata_cmd(cert_file: str, issuer_file: str | None, hash_name: str, as_json: bool) -> None:
    """Print the CertificateHashData (RFC 6960 CertID in hex) of a certificate (the leaf of a chain file)."""
    cert, rest = read_chain_leaf(cert_file)
    if issuer_file:
        issuer, _ = read_chain_leaf(issuer_file, "issuer certificate")
    elif rest and rest[0].subject == cert.issuer:
        issuer = rest[0]
    elif cert.issuer == cert.subject:
        issuer = cert
    else:
        raise UsageError("the certificate is not self-signed and the file holds no issuer: pass it with --issuer")
    data = compute_hash_data(cert, issuer, hash_name.upper()).to_ocpp()
    if as_json:
        echo_json(data)
    else:
        for k, v in data.items():
            click.echo(f"{k}: {v}")


_STATUSES = ("valid", "revoked", "expired", "not-yet-valid", "superseded", "retired")


@pki.command("list")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--role", "roles", multiple=True, metavar="PROFILE", help="Only this role (repeatable), e.g. charging-station.")
@click.option("--ca", "cas", multiple=True, metavar="NAME", help="Only what this CA issued (repeatable; all its generations).")
@click.option("--status", "statuses", multiple=True, type=click.Choice(_STATUSES),
              help="Only this status at TIME (repeatable).")
@click.option("--expiring", "expiring_days", type=click.IntRange(0, 36500), metavar="DAYS",
              help="Only certificates that expire within DAYS (the expired ones included).")
@click.option("--at", "at_text", metavar="TIME", help="Status and expiry as of TIME (default now).")
@click.option("--json", "as_json", is_flag=True)
def list_cmd(directory: Path, roles: tuple[str, ...], cas: tuple[str, ...], statuses: tuple[str, ...],
             expiring_days: int | None, at_text: str | None, as_json: bool) -> None:
    """List the certificates of the ledger with their status at TIME (expired, superseded ... are not valid)
    and their full serials."""
    from ocppsec.pki.directory import PkiDirectory
    from ocppsec.pki.ledger import CertificateStatus, select_records

    for role in roles:
        if role not in PROFILES and role != "ocsp-responder":
            get_profile(role)  # the unknown-profile error, with the name probably meant
    at = parse_time(at_text)
    pki_dir = PkiDirectory.open(directory)
    try:
        records = select_records(pki_dir.ledger.all(), at=at, roles=roles, issuers=cas,
                                 statuses=[CertificateStatus(s) for s in statuses],
                                 expiring_within=timedelta(days=expiring_days) if expiring_days is not None else None)
    finally:
        pki_dir.close()
    if as_json:
        echo_json([r.to_json(at) for r in records])
    else:
        _table(records, at)


@pki.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.argument("name")
@click.option("--chain", "with_chain", is_flag=True, help="Append the issuing CAs (root last).")
@click.option("--key", "with_key", is_flag=True, help="Append the private key (encrypted as stored).")
@click.option("--pkcs12", "p12_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write certificate, chain and key as PKCS#12 (protected with the passphrase).")
def export_cmd(directory: Path, name: str, with_chain: bool, with_key: bool, p12_file: Path | None) -> None:
    """Print a named certificate (PEM) from the directory, optionally with chain and key.

    NAME is the current generation (after `pki renew`, the new certificate); NAME@SERIAL an older one."""
    from ocppsec.pki.directory import PkiDirectory

    need_key = with_key or p12_file is not None
    pki_dir = PkiDirectory.open(directory, passphrase_for_reading() if p12_file else None)
    try:
        rec = pki_dir.ledger.get_named(name)
        if rec is None:
            names = [r.name for r in pki_dir.ledger.all() if r.name]
            raise UsageError(f"no certificate named {name!r}", hint="named: " + ", ".join(str(n) for n in names))
        chain = pki_dir.chain_of(name)
        key_path = directory / rec.key_ref[5:] if rec.key_ref and rec.key_ref.startswith("file:") else None
        if need_key and key_path is None:
            raise UsageError(f"the key of {name} is not a key file in {directory}")
        if p12_file is not None:
            assert key_path is not None
            passphrase = passphrase_for_reading()
            key = load_key_file(key_path, passphrase).private_key
            enc = (serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption())
            blob = pkcs12.serialize_key_and_certificates(name.encode(), key, chain[0], chain[1:] or None, enc)  # type: ignore[arg-type]
            atomic_write(p12_file, blob, 0o600)
            click.echo(f"wrote {p12_file}", err=True)
            return
        out = certificates_to_pem(chain if with_chain else chain[:1])
        if with_key and key_path is not None:
            out += key_path.read_text()
        click.echo(out, nl=False)
    finally:
        pki_dir.close()


def _add_optional_commands() -> None:
    """Commands that other modules contribute to the ``pki`` group (revocation, lifecycle)."""
    try:
        module = importlib.import_module("ocppsec.cli.pki_lifecycle")
    except ModuleNotFoundError as exc:
        if exc.name != "ocppsec.cli.pki_lifecycle":
            raise
        return
    for command in getattr(module, "COMMANDS", []):
        pki.add_command(command)


_add_optional_commands()
