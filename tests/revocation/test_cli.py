"""The CLI end to end: pki revoke / crl / expiring and ocsp serve (with openssl ocsp), bad input as one-line errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ocppsec.pki.directory import PkiDirectory
from revocation.conftest import issue_station


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OCPPSEC_DEBUG", "OCPPSEC_PASSPHRASE")}
    env["OCPPSEC_PASSPHRASE"] = ""  # the test directory's keys are not encrypted
    return subprocess.run([sys.executable, "-m", "ocppsec.cli.main", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=120, check=False)


def one_line_error(proc: subprocess.CompletedProcess[str], code: int, needle: str) -> None:
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and proc.stderr.startswith(("error:", "Error:", "Usage:")), proc.stderr
    assert needle in proc.stderr, proc.stderr


def test_revoke_crl_expiring(pki_dir: PkiDirectory, root_pem: Path, tmp_path: Path) -> None:
    a = issue_station(pki_dir, "SN-A", tmp_path)
    b = issue_station(pki_dir, "SN-B", tmp_path)
    d = pki_dir.path
    proc = run("pki", "revoke", d, a.serial, "--reason", "keyCompromise", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "revoked"
    proc = run("pki", "revoke", d, "--cert", b.path, "--reason", "superseded")
    assert proc.returncode == 0 and "superseded" in proc.stdout, proc.stderr
    one_line_error(run("pki", "revoke", d, a.serial, "--reason", "keyCompromise"), 2, "already revoked")
    one_line_error(run("pki", "revoke", d, "abc123", "--reason", "keyCompromise"), 1, "no certificate")
    one_line_error(run("pki", "revoke", d, "xyz!", "--reason", "keyCompromise"), 2, "not hexadecimal")
    one_line_error(run("pki", "revoke", d, a.serial, "--reason", "bored"), 2, "unknown revocation reason")
    one_line_error(run("pki", "revoke", d, "--reason", "superseded"), 2, "SERIAL or --cert")
    one_line_error(run("pki", "revoke", tmp_path / "nowhere", "1", "--reason", "superseded"), 2, "not an ocppsec PKI")

    crl = tmp_path / "root.crl"
    proc = run("pki", "crl", d, "--ca", "csms-root", "--out", crl)
    assert proc.returncode == 0 and "CRL #1" in proc.stderr, proc.stderr
    res = subprocess.run(["openssl", "crl", "-in", str(crl), "-CAfile", str(root_pem), "-verify", "-noout", "-text"],
                         capture_output=True, text=True, check=True)
    assert "verify OK" in res.stderr + res.stdout and "Key Compromise" in res.stdout and "Superseded" in res.stdout
    proc = run("pki", "crl", d, "--ca", "csms-root")
    assert proc.stdout.startswith("-----BEGIN X509 CRL-----")
    one_line_error(run("pki", "crl", d, "--ca", "nope"), 2, "no CA named")

    proc = run("pki", "expiring", d, "--within", "400", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert {r["role"] for r in rows} >= {"csms-server-rsa", "csms-server-ecdsa"}  # 365-day certificates
    assert a.serial not in {r["serial"] for r in rows}  # revoked
    proc = run("pki", "expiring", d, "--at", "2036-10-01T00:00:00Z", "--threshold", "csms-root=400")
    assert proc.returncode == 0 and "csms-root" in proc.stdout, proc.stderr
    one_line_error(run("pki", "expiring", d, "--threshold", "secc"), 2, "ROLE=DAYS")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_ocsp_serve(pki_dir: PkiDirectory, root_pem: Path, tmp_path: Path) -> None:
    good = issue_station(pki_dir, "SN-G", tmp_path)
    port = _free_port()
    env = {**os.environ, "OCPPSEC_PASSPHRASE": ""}
    proc = subprocess.Popen([sys.executable, "-m", "ocppsec.cli.main", "ocsp", "serve", str(pki_dir.path), "--listen",
                             f"127.0.0.1:{port}", "--ca", "csms-root"], stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "OCSP responder for csms-root" in line, line
        out = subprocess.run(["openssl", "ocsp", "-issuer", str(root_pem), "-CAfile", str(root_pem), "-cert",
                              str(good.path), "-url", f"http://127.0.0.1:{port}/csms-root"],
                             capture_output=True, text=True, timeout=30)
        assert "Response verify OK" in out.stdout + out.stderr and ": good" in out.stdout
        proc.send_signal(signal.SIGINT)  # Ctrl-C: a graceful stop, then the "interrupted" exit code
        assert proc.wait(timeout=20) == 130
        assert "interrupted" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    bad = run("ocsp", "serve", pki_dir.path, "--listen", "nonsense")
    one_line_error(bad, 2, "--listen")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        busy = s.getsockname()[1]
        s.listen()
        t = time.monotonic()
        one_line_error(run("ocsp", "serve", pki_dir.path, "--listen", f"127.0.0.1:{busy}"), 2, "cannot listen")
        assert time.monotonic() - t < 60


@pytest.mark.parametrize("args", [("pki", "revoke", "--help"), ("pki", "crl", "--help"), ("ocsp", "serve", "--help")])
def test_help(args: tuple[str, ...]) -> None:
    assert run(*args).returncode == 0


def test_help_does_not_import_aiohttp() -> None:
    """The HTTP stack is imported when a command needs it, not for ``ocppsec --help``."""
    code = ("import sys\nfrom ocppsec.cli.main import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('aiohttp', 'yarl', 'multidict')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
