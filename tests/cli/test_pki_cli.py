"""The `ocppsec pki` commands end to end, as an operator runs them: real files, real processes, openssl."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ocppsec.pki import KeySpec, PkiDirectory, generate_key, load_certificates

PASS = "cli test passphrase"


def run(*args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "OCPPSEC_PASSPHRASE": PASS, **(env or {})}
    full_env.pop("OCPPSEC_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "ocppsec.cli.main", *map(str, args)],
        capture_output=True, text=True, env=full_env, cwd=cwd, check=False, timeout=120,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith(("error:", "Error:", "Usage:")), proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cli") / "pki"
    proc = run("pki", "init", d, "--cso-name", "ACME CSO", "--csms-fqdn", "csms.acme.test", "--json")
    assert proc.returncode == 0, proc.stderr
    records = json.loads(proc.stdout)
    names = {r["name"] for r in records}
    assert {"csms-root", "manufacturer-root", "v2g-root", "cpo-sub-ca-1", "cpo-sub-ca-2", "cps-sub-ca-1",
            "cps-sub-ca-2", "mo-root", "mo-sub-ca-1", "mo-sub-ca-2", "oem-root", "oem-sub-ca-1", "oem-sub-ca-2",
            "csms-server-rsa", "csms-server-ecdsa", "firmware-signing"} <= names
    return d


def export(pki_dir: Path, name: str, tmp: Path) -> Path:
    out = tmp / f"{name}.pem"
    proc = run("pki", "export", pki_dir, name)
    assert proc.returncode == 0, proc.stderr
    out.write_text(proc.stdout)
    return out


def test_init_writes_encrypted_0600_keys_and_a_ledger(pki_dir: Path) -> None:
    keys = list((pki_dir / "keys").glob("*.key.pem"))
    assert len(keys) == 16
    for k in keys:
        assert stat.S_IMODE(k.stat().st_mode) == 0o600
        assert b"BEGIN ENCRYPTED PRIVATE KEY" in k.read_bytes()
    assert (pki_dir / "ledger.db").is_file()


def test_every_ca_and_named_cert_passes_openssl_verify(pki_dir: Path, tmp_path: Path) -> None:
    pki = PkiDirectory.open(pki_dir)
    try:
        named = [r.name for r in pki.ledger.all() if r.name]
        for name in named:
            assert name is not None
            chain = pki.chain_of(name)
            root, subs = chain[-1], chain[1:-1]
            (tmp_path / "root.pem").write_bytes(root.public_bytes(serialization.Encoding.PEM))
            (tmp_path / "subs.pem").write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in subs))
            (tmp_path / "leaf.pem").write_bytes(chain[0].public_bytes(serialization.Encoding.PEM))
            args = ["openssl", "verify", "-x509_strict", "-CAfile", str(tmp_path / "root.pem")]
            if subs:
                args += ["-untrusted", str(tmp_path / "subs.pem")]
            proc = subprocess.run([*args, str(tmp_path / "leaf.pem")], capture_output=True, text=True, check=False)
            assert proc.returncode == 0, (name, proc.stdout, proc.stderr)
    finally:
        pki.close()


def test_station_csr_issue_verify_lint_hashdata(pki_dir: Path, tmp_path: Path) -> None:
    key, csr, chain = tmp_path / "cs.key", tmp_path / "cs.csr", tmp_path / "cs-chain.pem"
    proc = run("pki", "csr", "--org", "ACME CSO", "--cn", "CS-0001", "--key-out", key, "--out", csr)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    proc = run("pki", "issue", pki_dir, "--ca", "csms-root", "--csr", csr, "--expected-cn", "CS-0001", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    chain.write_text(out["certificateChain"])
    certs = load_certificates(chain.read_bytes())
    assert len(certs) == 1  # issued by the root directly: leaf only, root excluded
    root = export(pki_dir, "csms-root", tmp_path)
    assert subprocess.run(["openssl", "verify", "-CAfile", str(root), str(chain)], capture_output=True, check=False).returncode == 0
    proc = run("pki", "verify", chain, "--trust", root, "--profile", "charging-station", "--expected-cn", "CS-0001", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["valid"] is True
    proc = run("pki", "lint", chain, "--cso-name", "ACME CSO")
    assert proc.returncode == 0 and "follows profile charging-station" in proc.stdout
    proc = run("pki", "hashdata", chain, "--issuer", root, "--json")
    data = json.loads(proc.stdout)
    assert data["serialNumber"] == out["serial"] and data["hashAlgorithm"] == "SHA256"
    # an openssl-made request issues too, and the chain through the CPO sub-CAs excludes the root
    osl_key, osl_csr = tmp_path / "o.key", tmp_path / "o.csr"
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(osl_key), "-out", str(osl_csr), "-subj", "/C=DE/O=ACME CSO/DC=CPO/CN=DE*ACM*E42"],
                   check=True, capture_output=True)
    proc = run("pki", "issue", pki_dir, "--ca", "cpo-sub-ca-2", "--csr", osl_csr, "--json")
    assert proc.returncode == 0, proc.stderr
    secc_chain = load_certificates(json.loads(proc.stdout)["certificateChain"].encode())
    assert len(secc_chain) == 3 and secc_chain[-1].subject != secc_chain[-1].issuer


def test_policy_violations_are_all_listed_and_nothing_is_recorded(pki_dir: Path, tmp_path: Path) -> None:
    before = len(PkiDirectory.open(pki_dir).ledger.all())
    key = generate_key(KeySpec.P256)
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name.from_rfc4514_string("CN=https://cs.example/ocpp,O=Wrong Org"))
           .sign(key, __import__("cryptography.hazmat.primitives.hashes", fromlist=["SHA256"]).SHA256()))
    f = tmp_path / "bad.csr"
    f.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    proc = run("pki", "issue", pki_dir, "--ca", "csms-root", "--csr", f)
    assert_one_line_error(proc, 1, "A00.FR.509", "A00.FR.511")
    assert len(PkiDirectory.open(pki_dir).ledger.all()) == before


def test_serial_registry_limits_station_cns(pki_dir: Path, tmp_path: Path) -> None:
    key, csr, reg = tmp_path / "k", tmp_path / "c.csr", tmp_path / "serials.txt"
    assert run("pki", "csr", "--org", "ACME CSO", "--cn", "CS-777", "--key-out", key, "--out", csr).returncode == 0
    reg.write_text("# known stations\nCS-001\nCS-002\n")
    assert_one_line_error(run("pki", "issue", pki_dir, "--ca", "csms-root", "--csr", csr, "--serial-registry", reg), 1,
                          "not a registered station serial")
    reg.write_text("CS-777\n")
    assert run("pki", "issue", pki_dir, "--ca", "csms-root", "--csr", csr, "--serial-registry", reg).returncode == 0


def test_rsa_1024_csr_is_refused_with_requirement_id(pki_dir: Path, tmp_path: Path) -> None:
    key, csr = tmp_path / "k", tmp_path / "r.csr"
    subprocess.run(["openssl", "req", "-new", "-newkey", "rsa:1024", "-nodes", "-keyout", str(key), "-out", str(csr),
                    "-subj", "/O=ACME CSO/CN=CS-9"], check=True, capture_output=True)
    assert_one_line_error(run("pki", "issue", pki_dir, "--ca", "csms-root", "--csr", csr), 1, "A00.FR.502")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "empty"),
        (b"garbage\x00\x01", "no certificate request"),
        (b"-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n", "not a valid PKCS#10"),
        (b"0\x82\x01\x00truncated", "not a valid PKCS#10"),
    ],
)
def test_garbage_csr_inputs_give_one_line_errors(pki_dir: Path, tmp_path: Path, content: bytes, needle: str) -> None:
    f = tmp_path / "in.csr"
    f.write_bytes(content)
    assert_one_line_error(run("pki", "issue", pki_dir, "--ca", "csms-root", "--csr", f), 1, needle)


def test_wrong_passphrase_missing_file_unknown_ca(pki_dir: Path, tmp_path: Path) -> None:
    key, csr = tmp_path / "k", tmp_path / "c.csr"
    assert run("pki", "csr", "--org", "ACME CSO", "--cn", "CS-2", "--key-out", key, "--out", csr).returncode == 0
    assert_one_line_error(run("pki", "issue", pki_dir, "--ca", "csms-root", "--csr", csr,
                              env={"OCPPSEC_PASSPHRASE": "wrong"}), 1, "wrong passphrase")
    assert_one_line_error(run("pki", "issue", pki_dir, "--ca", "csms-root", "--csr", tmp_path / "missing.csr"), 2,
                          "does not exist")
    assert_one_line_error(run("pki", "issue", pki_dir, "--ca", "no-such-ca", "--csr", csr), 2, "no CA named")
    assert_one_line_error(run("pki", "issue", tmp_path, "--ca", "csms-root", "--csr", csr), 2, "not an ocppsec PKI")
    assert_one_line_error(run("pki", "init", tmp_path / "x", "--bogus"), 2)


def test_chain_problems_are_reported(pki_dir: Path, tmp_path: Path) -> None:
    # SECC chain: leaf, Sub-CA 2, Sub-CA 1
    key, csr = tmp_path / "k", tmp_path / "c.csr"
    assert run("pki", "csr", "--profile", "secc", "--org", "ACME CSO", "--cn", "DE*ACM*E7", "--country", "DE",
               "--dc", "CPO", "--key-out", key, "--out", csr).returncode == 0
    proc = run("pki", "issue", pki_dir, "--ca", "cpo-sub-ca-2", "--csr", csr, "--json")
    certs = load_certificates(json.loads(proc.stdout)["certificateChain"].encode())
    v2g_root = export(pki_dir, "v2g-root", tmp_path)
    csms_root = export(pki_dir, "csms-root", tmp_path)
    pem = [c.public_bytes(serialization.Encoding.PEM) for c in certs]
    good = tmp_path / "good.pem"
    good.write_bytes(b"".join(pem))
    assert run("pki", "verify", good, "--trust", v2g_root, "--profile", "secc").returncode == 0
    # untrusted root
    assert_one_line_error(run("pki", "verify", good, "--trust", csms_root), 1, "does not chain")
    # expired / not yet valid
    later = (datetime.now(UTC) + timedelta(days=400)).isoformat()
    assert_one_line_error(run("pki", "verify", good, "--trust", v2g_root, "--at", later), 1, "expired")
    earlier = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    assert_one_line_error(run("pki", "verify", good, "--trust", v2g_root, "--at", earlier), 1, "not yet valid")
    # wrong order, and a root inside the chain, are refused unless --lenient
    swapped = tmp_path / "swapped.pem"
    swapped.write_bytes(pem[0] + pem[2] + pem[1])
    assert_one_line_error(run("pki", "verify", swapped, "--trust", v2g_root), 1, "out of order")
    assert run("pki", "verify", swapped, "--trust", v2g_root, "--lenient").returncode == 0
    with_root = tmp_path / "with-root.pem"
    with_root.write_bytes(b"".join(pem) + v2g_root.read_bytes())
    assert_one_line_error(run("pki", "verify", with_root, "--trust", v2g_root), 1, "includes the self-signed root")
    # DER where PEM is expected is read; garbage is not
    der = tmp_path / "leaf.der"
    der.write_bytes(certs[0].public_bytes(serialization.Encoding.DER))
    assert run("pki", "lint", der, "--profile", "secc").returncode == 0
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    assert_one_line_error(run("pki", "verify", junk, "--trust", v2g_root), 1, "not a valid X.509")


def test_lint_reports_deviation_with_requirement(pki_dir: Path, tmp_path: Path) -> None:
    signing = export(pki_dir, "firmware-signing", tmp_path)
    proc = run("pki", "lint", signing, "--profile", "charging-station", "--json")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert not report["ok"]
    assert {v["requirement"] for v in report["violations"]} == {"A00.FR.512"}  # keyUsage lacks keyAgreement


def test_list_json_and_expiring_and_export_pkcs12(pki_dir: Path, tmp_path: Path) -> None:
    proc = run("pki", "list", pki_dir, "--json")
    assert proc.returncode == 0 and len(json.loads(proc.stdout)) >= 16
    proc = run("pki", "list", pki_dir, "--expiring", "400", "--json")
    roles = {r["role"] for r in json.loads(proc.stdout)}
    assert "csms-server-rsa" in roles and "csms-root" not in roles
    p12 = tmp_path / "server.p12"
    proc = run("pki", "export", pki_dir, "csms-server-rsa", "--pkcs12", p12)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(p12.stat().st_mode) == 0o600
    check = subprocess.run(["openssl", "pkcs12", "-in", str(p12), "-nokeys", "-passin", f"pass:{PASS}"],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0 and "BEGIN CERTIFICATE" in check.stdout


def test_no_passphrase_and_no_terminal_is_a_usage_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OCPPSEC_PASSPHRASE"}
    proc = subprocess.run([sys.executable, "-m", "ocppsec.cli.main", "pki", "init", str(tmp_path / "p")],
                          capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, check=False)
    assert_one_line_error(proc, 2, "--no-encrypt")
    assert not (tmp_path / "p").exists()
    proc = subprocess.run([sys.executable, "-m", "ocppsec.cli.main", "pki", "init", str(tmp_path / "p"), "--no-encrypt"],
                          capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode == 0, proc.stderr
    assert b"BEGIN PRIVATE KEY" in (tmp_path / "p" / "keys" / "csms-root.key.pem").read_bytes()

