"""examples/csms.py and examples/station.py talk to each other at profile 3 (1.6 and 2.0.1) and profile 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import PASSWORD_201, Pki, free_port
from .test_cli import _wait_port, invoke

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_example_csms_and_station(pki: Pki, tmp_path: Path) -> None:
    db = str(tmp_path / "st.db")
    assert invoke("stations", "add", "CS-3", "--profile", "3", "--serial", "SN-0001", "--stations", db)[0] == 0
    assert invoke("stations", "add", "CS-2", "--password-from-env", "PW", "--stations", db, env={"PW": PASSWORD_201})[0] == 0
    port = free_port()
    csms = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "csms.py"), "--listen", f"127.0.0.1:{port}", "--profile", "2,3",
         "--cert", str(pki.rsa.certfile), "--key", str(pki.rsa.keyfile), "--cert", str(pki.ecdsa.certfile),
         "--key", str(pki.ecdsa.keyfile), "--trust", str(pki.cso_root), "--cso-name", "Example CSO", "--stations", db],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_port(port, csms)
        chain = pki.station("SN-0001")
        for version in ("1.6", "2.0.1"):
            out = subprocess.run(
                [sys.executable, str(EXAMPLES / "station.py"), "--url", f"wss://localhost:{port}/", "--identity", "CS-3",
                 "--profile", "3", "--ocpp-version", version, "--csms-root", str(pki.csms_root),
                 "--cert", str(chain.certfile), "--key", str(chain.keyfile)],
                capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, out.stderr
            assert "status='Accepted'" in out.stdout and "Heartbeat(current_time=" in out.stdout
        out = subprocess.run(
            [sys.executable, str(EXAMPLES / "station.py"), "--url", f"wss://localhost:{port}/", "--identity", "CS-2",
             "--profile", "2", "--csms-root", str(pki.csms_root)],
            capture_output=True, text=True, timeout=60, env={**os.environ, "STATION_PASSWORD": "wrong-password-0000"})
        assert out.returncode != 0 and "401" in out.stderr
    finally:
        csms.terminate()
        _, err = csms.communicate(timeout=10)
    assert "station CS-3 reports StartupOfTheDevice" in err


@pytest.mark.parametrize("script", ["csms.py", "station.py"])
def test_examples_have_help(script: str) -> None:
    assert subprocess.run([sys.executable, str(EXAMPLES / script), "--help"], capture_output=True, timeout=30).returncode == 0
