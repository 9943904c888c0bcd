"""The `ocppsec pki` guard rails, each found by trying it as an operator would: configurations that break the
profiles, re-running init, issuance validity, batches, renewal / rollover / cross-signing, revocation checks,
chains where one certificate is expected, listing, server certificates with a subjectAltName."""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ocppsec.pki import KeySpec, PkiDirectory, generate_key, load_certificates
from ocppsec.pki.certmgmt.inventory import EntrySource, InventoryState, entry_for
from ocppsec.pki.certmgmt.inventory_sql import open_inventory
from ocppsec.pki.csr import make_csr
from ocppsec.pki.hierarchy import default_config_text

PASS = "guard rails passphrase"
CSO = "ACME CSO"
FQDN = "csms.acme.test"


def run(*args: str | Path, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "OCPPSEC_PASSPHRASE": PASS, **(env or {})}
    full_env.pop("OCPPSEC_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "ocppsec.cli.main", *map(str, args)], capture_output=True, text=True,
                          env=full_env, check=False, timeout=timeout)


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    return proc.stdout


def one_line_error(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and proc.stderr.startswith(("error:", "Error:", "Usage:")), proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 2, proc.stderr  # the error line and its hint
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("guard") / "pki"
    ok(run("pki", "init", d, "--cso-name", CSO, "--csms-fqdn", FQDN))
    return d


@pytest.fixture
def pki_dir(template: Path, tmp_path: Path) -> Path:
    target = tmp_path / "pki"
    shutil.copytree(template, target)
    return target


def csr_file(path: Path, cn: str, o: str = CSO) -> Path:
    csr = make_csr(generate_key(KeySpec.P256), {"O": o, "CN": cn})
    path.write_bytes(csr.public_bytes(Encoding.PEM))
    return path


def export(pki_dir: Path, name: str, out: Path, *extra: str) -> Path:
    out.write_text(ok(run("pki", "export", pki_dir, name, *extra)))
    return out


def ledger_rows(pki_dir: Path) -> int:
    pki = PkiDirectory.open(pki_dir)
    try:
        return pki.ledger.count()
    finally:
        pki.close()


def openssl_verify(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", "verify", *map(str, args)], capture_output=True, text=True, check=False)


# -- pki init -------------------------------------------------------------------------------------------------
def _config(tmp_path: Path, old: str, new: str) -> Path:
    text = default_config_text()
    assert old in text
    path = tmp_path / "h.toml"
    path.write_text(text.replace(old, new, 1))
    return path


ROOT_ENTRY = 'name = "csms-root"\nprofile = "csms-root"\n'
SUB_CA = ('# [[ca]]\n# name = "cso-sub-ca"\n# profile = "cso-sub-ca"\n# issuer = "csms-root"\n'
          '# subject = { CN = "{cso_name} Station Sub-CA", O = "{cso_name}", C = "{country}" }')


@pytest.mark.parametrize(("old", "new", "needles"), [
    (ROOT_ENTRY, ROOT_ENTRY + 'key = "ed448"\n', ["[A00.FR.501-503]", "ed448 is not allowed for profile csms-root"]),
    (ROOT_ENTRY, ROOT_ENTRY + "valdity_days = 1825\n", ["unknown key 'valdity_days'", "did you mean 'validity_days'?"]),
    (SUB_CA, SUB_CA.replace("# ", "").replace('issuer = "csms-root"', 'issuer = "csms-rot"'),
     ["issuer 'csms-rot' is not defined", "did you mean 'csms-root'?"]),
    (SUB_CA, SUB_CA.replace("# ", "").replace('profile = "cso-sub-ca"', 'profile = "cso-subca"'),
     ["unknown certificate profile 'cso-subca'", "did you mean 'cso-sub-ca'?"]),
    ('subject = { CN = "{cso_name} CSMS Root CA"', 'subject = { cn = "{cso_name} CSMS Root CA"', ["did you mean 'CN'?"]),
])
def test_init_refuses_configurations_that_break_the_profiles(tmp_path: Path, old: str, new: str,
                                                             needles: list[str]) -> None:
    proc = run("pki", "init", tmp_path / "pki", "--config", _config(tmp_path, old, new))
    one_line_error(proc, 2, *needles)
    assert not (tmp_path / "pki").exists()


def test_init_refuses_a_sub_ca_that_outlives_its_root(tmp_path: Path) -> None:
    # the root ends after 1825 days (2031), the sub-CA would end after 30000 (2108)
    text = default_config_text().replace(ROOT_ENTRY, ROOT_ENTRY + "validity_days = 1825\n", 1)
    text = text.replace(SUB_CA, SUB_CA.replace("# ", "").replace('issuer = "csms-root"',
                                                                  'issuer = "csms-root"\nvalidity_days = 30000'))
    config = tmp_path / "h.toml"
    config.write_text(text)
    proc = run("pki", "init", tmp_path / "pki", "--config", config)
    one_line_error(proc, 2, "[RFC5280-6.1.3(a)(2)]", "cso-sub-ca", "outlives its issuer csms-root", "at most 1825 days")
    assert not (tmp_path / "pki").exists()


def test_init_again_keeps_what_is_there_and_refuses_what_conflicts(pki_dir: Path) -> None:
    rows = ledger_rows(pki_dir)
    config_before = (pki_dir / "hierarchy.toml").read_bytes()
    out = ok(run("pki", "init", pki_dir, "--cso-name", CSO, "--csms-fqdn", FQDN))
    assert "kept 16 entities as they were (nothing to build)" in out
    assert "kept 16" in ok(run("pki", "init", pki_dir))  # no options: complete what the directory was built from
    one_line_error(run("pki", "init", pki_dir, "--cso-name", "Other CSO"), 2,
                   "network.cso_name is 'ACME CSO' in the directory, 'Other CSO' given", "nothing was changed")
    one_line_error(run("pki", "init", pki_dir, "--csms-fqdn", "other.example"), 2, "network.csms_fqdn")
    one_line_error(run("pki", "init", pki_dir, env={"OCPPSEC_PASSPHRASE": "wrong"}), 1, "wrong passphrase")
    one_line_error(run("pki", "init", pki_dir, "--no-encrypt"), 2, "encrypted")
    assert ledger_rows(pki_dir) == rows and (pki_dir / "hierarchy.toml").read_bytes() == config_before
    # what the configuration adds is built on top, and the directory's configuration records it
    out = ok(run("pki", "init", pki_dir, "--iso15118-20"))
    assert "kept 16 entities" in out and "built 11: v2g-root-20" in out
    assert ledger_rows(pki_dir) == rows + 11
    assert "enabled = true" in (pki_dir / "hierarchy.toml").read_text()
    assert "kept 27" in ok(run("pki", "init", pki_dir))


# -- pki issue ------------------------------------------------------------------------------------------------
def test_issue_validity_rules_and_backdating(pki_dir: Path, tmp_path: Path) -> None:
    csr = csr_file(tmp_path / "cs.csr", "CS-0001")
    rows = ledger_rows(pki_dir)
    # past the CA's notAfter (csms-root: 3650 days)
    proc = run("pki", "issue", pki_dir, "--ca", "csms-root", "--csr", csr, "--validity-days", "5000")
    one_line_error(proc, 1, "[RFC5280-6.1.3(a)(2)]", "after the notAfter of CA csms-root", "at most 36")
    # issued as of a time long gone: expired on arrival
    one_line_error(run("pki", "issue", pki_dir, "--ca", "csms-root", "--csr", csr, "--at", "2020-01-01T00:00:00Z"), 1,
                   "would have expired already")
    # future-dated: stations refuse it (2025 errata)
    later = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    one_line_error(run("pki", "issue", pki_dir, "--ca", "csms-root", "--csr", csr, "--at", later), 1,
                   "[A02.FR.06]", "in the future")
    assert ledger_rows(pki_dir) == rows  # nothing recorded
    before = datetime.now(UTC)
    out = json.loads(ok(proc := run("pki", "issue", pki_dir, "--ca", "csms-root", "--csr", csr, "--json")))
    cert = load_certificates(out["certificateChain"].encode())[0]
    skew = before - cert.not_valid_before_utc
    assert timedelta(minutes=4, seconds=50) <= skew <= timedelta(minutes=5, seconds=10), skew
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == timedelta(days=730)
    # no --expected-cn: the CN was not checked, and it says so
    assert "the CN was not checked" in proc.stderr and "[A00.FR.511]" in proc.stderr
    assert out["warnings"][0]["requirement"] == "A00.FR.511"
    proc = run("pki", "issue", pki_dir, "--ca", "csms-root", "--csr", csr, "--expected-cn", "CS-0001", "--json")
    assert "not checked" not in ok(proc) + proc.stderr and json.loads(proc.stdout)["warnings"] == []


def test_issue_batch_of_5000_csrs(pki_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "csrs"
    folder.mkdir()
    key = generate_key(KeySpec.P256)  # one key for all: the batch checks the requests, not key reuse
    for n in range(5000):
        cn, o = f"CS-{n:05d}", ("Wrong Org" if n % 1000 == 7 else CSO)
        (folder / f"{cn}.csr").write_bytes(make_csr(key, {"O": o, "CN": cn}).public_bytes(Encoding.PEM))
    (folder / "garbage.csr").write_bytes(b"not a request")
    rows = ledger_rows(pki_dir)
    proc = run("pki", "issue", pki_dir, "--ca", "csms-root", "--batch", folder, "--out-dir", tmp_path / "out")
    assert proc.returncode == 1, proc.stderr  # some were refused
    report = json.loads(proc.stdout)
    assert (report["total"], report["issued"], report["refused"]) == (5001, 4995, 6)
    refused = {i["csr"]: i for i in report["items"] if not i["issued"]}
    assert set(refused) == {f"CS-{n:05d}.csr" for n in range(7, 5000, 1000)} | {"garbage.csr"}
    assert refused["CS-00007.csr"]["violations"][0]["requirement"] == "A00.FR.509/A02.FR.13"
    assert "no certificate request" in refused["garbage.csr"]["violations"][0]["message"]
    assert ledger_rows(pki_dir) == rows + 4995
    chains = sorted((tmp_path / "out").glob("*.chain.pem"))
    assert len(chains) == 4995
    item = next(i for i in report["items"] if i["csr"] == "CS-04321.csr")
    cert = load_certificates(Path(str(item["chain_file"])).read_bytes())[0]
    assert format(cert.serial_number, "x") == item["serial"] and item["subject"] == "CN=CS-04321,O=ACME CSO"
    # a CSV names each request's expected CN and station
    csv = tmp_path / "batch.csv"
    csv.write_text("csr,expected_cn,station\ncsrs/CS-00001.csr,CS-00001,ST-1\ncsrs/CS-00002.csr,CS-99999,ST-2\n")
    proc = run("pki", "issue", pki_dir, "--ca", "csms-root", "--batch", csv, "--json")
    report = json.loads(proc.stdout)
    assert proc.returncode == 1 and (report["issued"], report["refused"]) == (1, 1)
    assert report["items"][0]["warnings"] == [] and "BEGIN CERTIFICATE" in report["items"][0]["certificateChain"]
    assert "does not match the requester's 'CS-99999'" in report["items"][1]["violations"][0]["message"]
    pki = PkiDirectory.open(pki_dir)
    try:
        assert pki.ledger.find_serial(report["items"][0]["serial"])[0].station == "ST-1"
    finally:
        pki.close()


# -- renew, rollover, cross-sign, retire -----------------------------------------------------------------------
def test_renewed_ca_issues_what_verifies_and_list_export_show_the_current_one(pki_dir: Path, tmp_path: Path) -> None:
    old_sub1 = export(pki_dir, "cpo-sub-ca-1", tmp_path / "old-sub1.pem")
    out = ok(run("pki", "renew", pki_dir, "cpo-sub-ca-1", "--json"))
    renewed = json.loads(out)
    old_name = renewed["old"]["name"]
    assert old_name.startswith("cpo-sub-ca-1@") and renewed["new"]["name"] == "cpo-sub-ca-1"
    key_file = pki_dir / renewed["key"][5:]
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and b"ENCRYPTED PRIVATE KEY" in key_file.read_bytes()
    ok(run("pki", "renew", pki_dir, "cpo-sub-ca-2"))  # now issued by the new Sub-CA 1
    sub1 = load_certificates(ok(run("pki", "export", pki_dir, "cpo-sub-ca-1")).encode())[0]
    sub2 = load_certificates(ok(run("pki", "export", pki_dir, "cpo-sub-ca-2")).encode())[0]
    assert format(sub1.serial_number, "x") == renewed["new"]["serial"] != format(
        load_certificates(old_sub1.read_bytes())[0].serial_number, "x")
    sub2.verify_directly_issued_by(sub1)
    # a SECC certificate issued now chains through both new Sub-CAs, and openssl agrees
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(tmp_path / "secc.key"), "-out", str(tmp_path / "secc.csr"),
                    "-subj", "/C=DE/O=ACME CSO/DC=CPO/CN=DEACME0001"], check=True, capture_output=True)
    chain = tmp_path / "secc-chain.pem"
    ok(run("pki", "issue", pki_dir, "--ca", "cpo-sub-ca-2", "--csr", tmp_path / "secc.csr", "--expected-cn",
           "DEACME0001", "--out", chain))
    certs = load_certificates(chain.read_bytes())
    assert [c.serial_number for c in certs[1:]] == [sub2.serial_number, sub1.serial_number]
    v2g_root = export(pki_dir, "v2g-root", tmp_path / "v2g-root.pem")
    (tmp_path / "subs.pem").write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in certs[1:]))
    (tmp_path / "leaf.pem").write_bytes(certs[0].public_bytes(Encoding.PEM))
    assert openssl_verify("-x509_strict", "-CAfile", v2g_root, "-untrusted", tmp_path / "subs.pem",
                          tmp_path / "leaf.pem").returncode == 0
    assert ok(run("pki", "verify", chain, "--trust", v2g_root, "--profile", "secc")).startswith("OK")
    # the ledger keeps both generations durably: the old one superseded, with its key, until retired
    listed = {r["name"]: r for r in json.loads(ok(run("pki", "list", pki_dir, "--role", "cpo-sub-ca-1", "--json")))}
    assert listed["cpo-sub-ca-1"]["status"] == "valid" and listed[old_name]["status"] == "superseded"
    pki = PkiDirectory.open(pki_dir, PASS.encode())
    try:
        assert pki.ca(old_name).certificate.serial_number == load_certificates(old_sub1.read_bytes())[0].serial_number
    finally:
        pki.close()
    # retiring the old Sub-CA 1 waits for what it issued (the old Sub-CA 2); then its key goes
    one_line_error(run("pki", "retire", pki_dir, old_name), 1, "still valid", "cpo-sub-ca-2@")
    assert "retired" in ok(run("pki", "retire", pki_dir, old_name, "--force"))
    assert json.loads(ok(run("pki", "list", pki_dir, "--status", "retired", "--json")))[0]["name"] == old_name
    # a root is not renewed but rolled over
    one_line_error(run("pki", "renew", pki_dir, "csms-root"), 2, "[M05.FR.09]", "pki rollover")


def test_renewed_csms_server_certificate_is_what_export_serves(pki_dir: Path) -> None:
    before = load_certificates(ok(run("pki", "export", pki_dir, "csms-server-ecdsa")).encode())[0]
    renewed = json.loads(ok(run("pki", "renew", pki_dir, "csms-server-ecdsa", "--json")))
    exported = ok(run("pki", "export", pki_dir, "csms-server-ecdsa", "--chain", "--key"))
    cert = load_certificates(exported.encode())[0]
    assert format(cert.serial_number, "x") == renewed["new"]["serial"] and cert.public_key() != before.public_key()
    assert cert.subject == before.subject
    assert x509.DNSName(FQDN) in cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert (pki_dir / renewed["key"][5:]).read_text() in exported  # the new key, not the old one
    assert (pki_dir / "certs" / "csms-server-ecdsa.pem").read_bytes() == cert.public_bytes(Encoding.PEM)


def _inventory_with(pki_dir: Path, root: x509.Certificate, stations: dict[str, bool]) -> None:
    """Stations of the directory's inventory; True: it holds ``root`` (reported by GetInstalledCertificateIds)."""
    store = open_inventory(pki_dir / "inventory.db")
    now = datetime.now(UTC)
    try:
        store.upsert([entry_for(sid, "csms", root, None, state=InventoryState.INSTALLED, at=now,
                                source=EntrySource.REPORTED) for sid, holds in stations.items() if holds])
    finally:
        store.close()


def test_rollover_dry_run_lists_the_stations_and_writes_nothing(pki_dir: Path, tmp_path: Path) -> None:
    root = load_certificates(ok(run("pki", "export", pki_dir, "csms-root")).encode())[0]
    _inventory_with(pki_dir, root, {"CS-1": True, "CS-2": True})
    ok(run("stations", "add", "CS-3", "--profile", "3", "--stations", tmp_path / "st.db"))
    rows, files = ledger_rows(pki_dir), sorted(p.name for p in (pki_dir / "keys").iterdir())
    out = json.loads(ok(run("pki", "rollover", pki_dir, "csms-root", "--dry-run", "--stations", tmp_path / "st.db",
                            "--json")))
    assert out["dry_run"] and out["new_subject"] == "CN=ACME CSO CSMS Root CA G2,O=ACME CSO,C=DE"
    assert set(out["renew_after"]) == {"csms-server-rsa", "csms-server-ecdsa"}
    stations = {s["station"]: s for s in out["stations"]}
    assert set(stations) == {"CS-1", "CS-2", "CS-3"}
    assert stations["CS-1"]["has_old_root"] and not stations["CS-3"]["has_old_root"]
    assert all(s["would_lose_connectivity"] for s in stations.values())
    text = ok(run("pki", "rollover", pki_dir, "csms-root", "--dry-run"))
    assert "2 station(s) must install the new root" in text and "CS-2" in text
    assert ledger_rows(pki_dir) == rows and sorted(p.name for p in (pki_dir / "keys").iterdir()) == files


def test_rollover_cross_certificates_verify_both_ways_and_retire_waits_for_stations(pki_dir: Path,
                                                                                   tmp_path: Path) -> None:
    old_root = export(pki_dir, "csms-root", tmp_path / "old-root.pem")
    old_server = export(pki_dir, "csms-server-ecdsa", tmp_path / "old-server.pem")
    done = json.loads(ok(run("pki", "rollover", pki_dir, "csms-root", "--json")))
    old_name = done["old"]["name"]
    assert done["install_certificate"]["with_additional_root_check"]["certificateType"] == "CSMSRootCertificate"
    new_root = export(pki_dir, "csms-root", tmp_path / "new-root.pem")
    assert load_certificates(new_root.read_bytes())[0].subject.rfc4514_string() == done["new"]["subject"]
    new_by_old = pki_dir / "certs" / f"csms-root.cross-signed-by-{old_name}.pem"
    old_by_new = pki_dir / "certs" / f"{old_name}.cross-signed-by-csms-root.pem"
    # a station certificate of the new root validates for a station that trusts only the old root ...
    chain = tmp_path / "cs-chain.pem"
    ok(run("pki", "issue", pki_dir, "--ca", "csms-root", "--csr", csr_file(tmp_path / "cs.csr", "CS-0009"),
           "--expected-cn", "CS-0009", "--out", chain))
    assert openssl_verify("-CAfile", old_root, "-untrusted", new_by_old, chain).returncode == 0
    assert openssl_verify("-CAfile", old_root, chain).returncode != 0  # not without the cross-certificate
    # ... and the old root's certificates for a party that trusts only the new one
    assert openssl_verify("-CAfile", new_root, "-untrusted", old_by_new, old_server).returncode == 0
    assert openssl_verify("-CAfile", new_root, old_server).returncode != 0
    # the InstallCertificate of AdditionalRootCertificateCheck stations carries the new root signed by the old one
    sent = load_certificates(done["install_certificate"]["with_additional_root_check"]["certificate"].encode())[0]
    assert sent == load_certificates(new_by_old.read_bytes())[0]
    sent.verify_directly_issued_by(load_certificates(old_root.read_bytes())[0])
    # the old root stays trusted (it signs CRLs of what it issued) until retired; retiring waits for the stations
    assert len(PkiDirectory.open(pki_dir).trust_roots()) >= 6
    ok(run("pki", "renew", pki_dir, "csms-server-ecdsa"))
    ok(run("pki", "renew", pki_dir, "csms-server-rsa"))
    renewed = load_certificates(ok(run("pki", "export", pki_dir, "csms-server-ecdsa")).encode())[0]
    renewed.verify_directly_issued_by(load_certificates(new_root.read_bytes())[0])
    _inventory_with(pki_dir, load_certificates(new_root.read_bytes())[0], {"CS-1": True, "CS-2": False})
    _inventory_with(pki_dir, load_certificates(old_root.read_bytes())[0], {"CS-2": True})
    one_line_error(run("pki", "retire", pki_dir, old_name), 1, "[M05.FR.09]", "station CS-2 lacks the new CSMS root")
    preview = json.loads(ok(run("pki", "retire", pki_dir, old_name, "--dry-run", "--json")))
    assert "would be refused" in preview["result"] and preview["delete_certificate"]["stations"] == ["CS-2"]
    _inventory_with(pki_dir, load_certificates(new_root.read_bytes())[0], {"CS-2": True})
    out = json.loads(ok(run("pki", "retire", pki_dir, old_name, "--json")))
    assert out["result"] == "retired" and out["delete_certificate"]["certificateHashData"]["hashAlgorithm"] == "SHA256"
    pki = PkiDirectory.open(pki_dir)
    try:
        assert load_certificates(old_root.read_bytes())[0] not in pki.trust_roots()
    finally:
        pki.close()


def test_cross_sign_command(pki_dir: Path, tmp_path: Path) -> None:
    cross = tmp_path / "mo-by-v2g.pem"
    proc = run("pki", "cross-sign", pki_dir, "mo-root", "--by", "v2g-root", "--out", cross)
    assert proc.returncode == 0 and "cross-certified mo-root by v2g-root" in proc.stderr, proc.stderr
    cert = load_certificates(cross.read_bytes())[0]
    v2g_root = load_certificates(export(pki_dir, "v2g-root", tmp_path / "v2g.pem").read_bytes())[0]
    mo_root = load_certificates(export(pki_dir, "mo-root", tmp_path / "mo.pem").read_bytes())[0]
    cert.verify_directly_issued_by(v2g_root)
    assert cert.subject == mo_root.subject and cert.public_key() == mo_root.public_key()
    assert cert.not_valid_after_utc <= min(v2g_root.not_valid_after_utc, mo_root.not_valid_after_utc)
    # the MO Sub-CA 1 validates under the V2G root through the cross-certificate, with openssl
    sub1 = export(pki_dir, "mo-sub-ca-1", tmp_path / "mo-sub1.pem")
    assert openssl_verify("-CAfile", tmp_path / "v2g.pem", "-untrusted", cross, sub1).returncode == 0
    one_line_error(run("pki", "cross-sign", pki_dir, "mo-root", "--by", "v2g-root", "--validity-days", "9000"), 1,
                   "[RFC5280-6.1.3(a)(2)]", "nothing was written")
    one_line_error(run("pki", "cross-sign", pki_dir, "csms-server-rsa", "--by", "v2g-root"), 2, "not a CA")


# -- revocation ---------------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def responder(pki_dir: Path) -> Iterator[str]:
    """`ocppsec ocsp serve` for csms-root, as an operator runs it; its URL."""
    port = _free_port()
    env = {**os.environ, "OCPPSEC_PASSPHRASE": PASS}
    proc = subprocess.Popen([sys.executable, "-m", "ocppsec.cli.main", "ocsp", "serve", str(pki_dir), "--listen",
                             f"127.0.0.1:{port}", "--ca", "csms-root"], stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stderr is not None
        assert "OCSP responder" in proc.stderr.readline()
        yield f"http://127.0.0.1:{port}/csms-root"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_verify_checks_revocation_by_crl_and_ocsp_root_included(pki_dir: Path, tmp_path: Path, responder: str) -> None:
    root = export(pki_dir, "csms-root", tmp_path / "root.pem")
    good, bad = tmp_path / "good.pem", tmp_path / "bad.pem"
    for cn, path in (("CS-G", good), ("CS-B", bad)):
        ok(run("pki", "issue", pki_dir, "--ca", "csms-root", "--csr", csr_file(tmp_path / f"{cn}.csr", cn),
               "--expected-cn", cn, "--out", path))
    ok(run("pki", "revoke", pki_dir, "--cert", bad, "--reason", "keyCompromise"))
    crl = tmp_path / "root.crl"
    ok(run("pki", "crl", pki_dir, "--ca", "csms-root", "--out", crl))
    assert ok(run("pki", "verify", bad, "--trust", root)).startswith("OK")  # without revocation checking
    one_line_error(run("pki", "verify", bad, "--trust", root, "--crl", crl), 1, "CN=CS-B", "was revoked", "keyCompromise")
    assert "good (crl)" in ok(run("pki", "verify", good, "--trust", root, "--crl", crl))
    # a real OCSP responder
    one_line_error(run("pki", "verify", bad, "--trust", root, "--ocsp", responder), 1, "was revoked", "(by OCSP)")
    out = json.loads(ok(run("pki", "verify", good, "--trust", root, "--ocsp", responder, "--json")))
    assert [e["status"] for e in out["revocation"]] == ["good", "good"] and out["revocation"][0]["source"] == "ocsp"
    # no source answers: refused unless --soft-fail
    one_line_error(run("pki", "verify", good, "--trust", root, "--ocsp", "http://127.0.0.1:9/"), 1, "unknown")
    assert "unknown" in ok(run("pki", "verify", good, "--trust", root, "--ocsp", "http://127.0.0.1:9/", "--soft-fail"))
    # the root: revoking it asks for --force; then its own CRL and the responder say so
    serial = json.loads(ok(run("pki", "list", pki_dir, "--role", "csms-root", "--json")))[0]["serial"]
    one_line_error(run("pki", "revoke", pki_dir, serial, "--reason", "keyCompromise"), 2, "is a root", "--force")
    ok(run("pki", "revoke", pki_dir, serial, "--reason", "keyCompromise", "--force"))
    ok(run("pki", "crl", pki_dir, "--ca", "csms-root", "--out", crl))
    one_line_error(run("pki", "verify", good, "--trust", root, "--crl", crl), 1, "the trust anchor", "was revoked")
    one_line_error(run("pki", "verify", good, "--trust", root, "--ocsp", responder), 1, "the trust anchor")


def test_lint_hashdata_revoke_take_the_chain_issue_wrote(pki_dir: Path, tmp_path: Path) -> None:
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(tmp_path / "k"), "-out", str(tmp_path / "secc.csr"),
                    "-subj", "/C=DE/O=ACME CSO/DC=CPO/CN=DEACME0002"], check=True, capture_output=True)
    chain = tmp_path / "chain.pem"
    ok(run("pki", "issue", pki_dir, "--ca", "cpo-sub-ca-2", "--csr", tmp_path / "secc.csr", "--out", chain))
    assert len(load_certificates(chain.read_bytes())) == 3
    assert "follows profile secc" in ok(run("pki", "lint", chain))
    sub2 = export(pki_dir, "cpo-sub-ca-2", tmp_path / "sub2.pem")
    assert json.loads(ok(run("pki", "hashdata", chain, "--json"))) == json.loads(
        ok(run("pki", "hashdata", chain, "--issuer", sub2, "--json")))
    assert "revoked serial" in ok(run("pki", "revoke", pki_dir, "--cert", chain, "--reason", "superseded"))


# -- pki list and expiring -----------------------------------------------------------------------------------------
def test_list_status_from_time_full_serials_and_filters(pki_dir: Path, tmp_path: Path) -> None:
    out = json.loads(ok(run("pki", "issue", pki_dir, "--ca", "csms-root", "--csr", csr_file(tmp_path / "c.csr", "CS-L"),
                            "--expected-cn", "CS-L", "--json")))
    table = ok(run("pki", "list", pki_dir))
    assert out["serial"] in table and len(out["serial"]) >= 31  # the whole serial, as `pki revoke` takes it
    later = (datetime.now(UTC) + timedelta(days=800)).isoformat()
    rows = json.loads(ok(run("pki", "list", pki_dir, "--at", later, "--json")))
    by_role = {r["role"]: r["status"] for r in rows}
    assert by_role["csms-server-rsa"] == "expired" and by_role["charging-station"] == "expired"
    assert by_role["csms-root"] == "valid"
    stations = json.loads(ok(run("pki", "list", pki_dir, "--role", "charging-station", "--ca", "csms-root", "--json")))
    assert [r["serial"] for r in stations] == [out["serial"]]
    assert json.loads(ok(run("pki", "list", pki_dir, "--status", "expired", "--json"))) == []
    assert {r["role"] for r in json.loads(ok(run("pki", "list", pki_dir, "--at", later, "--status", "expired",
                                                 "--json")))} == {"csms-server-rsa", "csms-server-ecdsa",
                                                                  "charging-station", "cpo-sub-ca-2", "cps-sub-ca-2"}
    expiring = {r["role"] for r in json.loads(ok(run("pki", "list", pki_dir, "--expiring", "400", "--json")))}
    assert expiring == {"csms-server-rsa", "csms-server-ecdsa", "cpo-sub-ca-2"}
    assert ok(run("pki", "revoke", pki_dir, out["serial"], "--reason", "superseded"))
    assert [r["status"] for r in json.loads(ok(run("pki", "list", pki_dir, "--status", "revoked", "--json")))] == ["revoked"]
    one_line_error(run("pki", "list", pki_dir, "--role", "charging-statoin"), 2, "did you mean 'charging-station'?")


def test_expiring_shows_the_action_and_handles_the_expired(pki_dir: Path) -> None:
    at = (datetime.now(UTC) + timedelta(days=3700)).isoformat()  # past the CSMS root's notAfter
    rows = json.loads(ok(run("pki", "expiring", pki_dir, "--at", at, "--json")))
    by_name = {r["name"]: r for r in rows}
    assert by_name["csms-root"]["expired"] and by_name["csms-root"]["action"] == "replace-expired-root"
    assert by_name["csms-server-rsa"]["action"] == "reissue-csms-server"
    assert by_name["csms-server-rsa"]["next_step"].startswith("ocppsec pki renew DIR csms-server-rsa")
    soon = (datetime.now(UTC) + timedelta(days=3500)).isoformat()  # inside the root's renewal window, not expired
    rows = {r["name"]: r for r in json.loads(ok(run("pki", "expiring", pki_dir, "--at", soon, "--json")))}
    assert rows["csms-root"]["action"] == "rollover-root" and not rows["csms-root"]["expired"]
    table = ok(run("pki", "expiring", pki_dir, "--at", at))
    assert "EXPIRED" in table and "replace-expired-root" in table


# -- the CSMS server certificates -----------------------------------------------------------------------------------
def test_csms_server_certificate_names_the_fqdn_for_hostname_checking_clients(template: Path, tmp_path: Path) -> None:
    root = export(template, "csms-root", tmp_path / "root.pem")
    chain = export(template, "csms-server-ecdsa", tmp_path / "server.pem", "--chain")
    cert = load_certificates(chain.read_bytes())[0]
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == FQDN  # the CN stays (A00.FR.510)
    proc = openssl_verify("-CAfile", root, "-verify_hostname", FQDN, tmp_path / "server.pem")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert openssl_verify("-CAfile", root, "-verify_hostname", "other.acme.test", tmp_path / "server.pem").returncode != 0
    assert "follows profile csms-server-ecdsa" in ok(run("pki", "lint", chain))
    # a Python TLS client that checks host names (it ignores the CN) accepts it
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(chain, template / "keys" / "csms-server-ecdsa.key.pem", password=PASS)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    done = threading.Event()

    def serve_one() -> None:
        conn, _ = listener.accept()
        try:
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"hello")
        except (ssl.SSLError, OSError):
            pass
        finally:
            done.set()

    thread = threading.Thread(target=serve_one, daemon=True)
    thread.start()
    client_ctx = ssl.create_default_context(cafile=str(root))
    assert client_ctx.check_hostname
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            client_ctx.wrap_socket(raw, server_hostname=FQDN) as tls:
        assert tls.recv(5) == b"hello"
    assert done.wait(10)
    listener.close()


def test_lint_says_a_server_certificate_without_subject_alt_name_is_refused_by_clients(tmp_path: Path) -> None:
    from ocppsec.pki import Hierarchy, HierarchyConfig

    h = Hierarchy.build(HierarchyConfig.default(cso_name=CSO, csms_fqdn=FQDN), at=datetime.now(UTC))
    bare = h.issue_leaf("csms-server-ecdsa", ca="csms-root", subject={"O": CSO, "CN": FQDN}, at=datetime.now(UTC),
                        san_dns=())
    path = tmp_path / "bare.pem"
    path.write_bytes(bare.certificate.public_bytes(Encoding.PEM))
    proc = run("pki", "lint", path, "--json")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert [v["requirement"] for v in report["violations"]] == ["RFC6125-6.4.4"]
    assert "clients that ignore the CN refuse it" in report["violations"][0]["message"]


@pytest.mark.parametrize("args", [("pki", "renew", "--help"), ("pki", "rollover", "--help"), ("pki", "cross-sign", "--help"),
                                  ("pki", "retire", "--help"), ("stations", "set-profile", "--help")])
def test_help(args: tuple[str, ...]) -> None:
    t = time.monotonic()
    assert run(*args).returncode == 0
    assert time.monotonic() - t < 60
