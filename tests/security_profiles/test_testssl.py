"""testssl.sh (a third TLS stack and scanner) against a profile-2 and a profile-3 port.

Only protocol, compression (CRIME) and per-protocol cipher checks run (``-p -E -C``); both scans run in
parallel. Asserts: only TLS 1.2 and 1.3, all four mandatory TLS 1.2 suites and no other TLS 1.2 suite,
no compression.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from ocppsec.pki.events.sink import MemorySink
from ocppsec.security_profiles.registry import MemoryRegistry
from ocppsec.security_profiles.tls import MANDATORY_TLS12_SUITES

from .conftest import Pki, free_port
from .helpers import running

pytestmark = pytest.mark.slow

TESTSSL = shutil.which("testssl") or shutil.which("testssl.sh")


def _scan(port: int, out: Path) -> list[dict[str, Any]]:
    assert TESTSSL, "testssl.sh is not installed (Debian package testssl.sh)"
    proc = subprocess.run(
        [TESTSSL, "--quiet", "--color", "0", "--warnings", "off", "--jsonfile", str(out), "-p", "-E", "-C",
         f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=240)
    assert out.exists(), proc.stdout + proc.stderr
    data: list[dict[str, Any]] = json.loads(out.read_text())
    return data


@pytest.fixture(scope="module")
def scans(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict[str, dict[str, Any]]]:
    ports = {2: free_port(), 3: free_port()}
    ready = threading.Event()
    stop: dict[str, Any] = {}

    async def serve_both() -> None:
        loop = asyncio.get_running_loop()
        stop["event"] = asyncio.Event()
        stop["loop"] = loop
        async with running({2}, MemoryRegistry(), MemorySink(), pki, ports[2]), \
                running({3}, MemoryRegistry(), MemorySink(), pki, ports[3]):
            ready.set()
            await stop["event"].wait()

    thread = threading.Thread(target=asyncio.run, args=(serve_both(),), daemon=True)
    thread.start()
    assert ready.wait(15)
    d = tmp_path_factory.mktemp("testssl")
    try:
        with ThreadPoolExecutor(2) as pool:
            futures = {p: pool.submit(_scan, port, d / f"p{p}.json") for p, port in ports.items()}
            results = {p: {f["id"]: f for f in fut.result()} for p, fut in futures.items()}
    finally:
        stop["loop"].call_soon_threadsafe(stop["event"].set)
        thread.join(10)
    return results


@pytest.mark.parametrize("profile", [2, 3])
def test_only_tls12_and_tls13(scans: dict[int, dict[str, dict[str, Any]]], profile: int) -> None:
    found = scans[profile]
    for old in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
        assert found[old]["finding"].startswith("not offered"), found[old]
    assert found["TLS1_2"]["finding"].startswith("offered")
    assert found["TLS1_3"]["finding"].startswith("offered")


@pytest.mark.parametrize("profile", [2, 3])
def test_exactly_the_four_mandatory_tls12_suites(scans: dict[int, dict[str, dict[str, Any]]], profile: int) -> None:
    found = scans[profile]
    tls12 = {f["finding"].split()[3] for k, f in found.items() if k.startswith("cipher-tls1_2_")}
    assert tls12 == set(MANDATORY_TLS12_SUITES)
    assert not [k for k in found if k.startswith(("cipher-tls1_", "cipher-ssl")) and not k.startswith(("cipher-tls1_2_",
                                                                                                      "cipher-tls1_3_"))]
    assert all(f["severity"] in ("INFO", "OK") for k, f in found.items() if k.startswith("cipher"))


@pytest.mark.parametrize("profile", [2, 3])
def test_no_tls_compression(scans: dict[int, dict[str, dict[str, Any]]], profile: int) -> None:
    assert scans[profile]["CRIME_TLS"]["finding"].startswith("not vulnerable")


def test_profile3_port_demands_client_certificates(scans: dict[int, dict[str, dict[str, Any]]]) -> None:
    # Without a client certificate testssl gets no HTTP answer from the profile-3 port. Depending on when the
    # TLS 1.3 alert for the missing certificate arrives it reports "certificate-based authentication" or
    # "Couldn't determine service"; the profile-2 port answers HTTP to the same scanner.
    assert scans[2]["service"]["finding"] == "HTTP"
    p3 = scans[3]["service"]["finding"]
    assert "certificate-based authentication" in p3 or p3.startswith("Couldn't determine service"), p3
