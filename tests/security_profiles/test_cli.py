"""``ocppsec stations`` and ``ocppsec gateway`` as a user runs them."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from ocppsec.cli.main import cli
from ocppsec.eventlog.store import EventQuery
from ocppsec.eventlog.store_sql import open_store
from ocppsec.pki.versions import OcppVersion
from ocppsec.security_profiles.basic_auth import password_matches
from ocppsec.security_profiles.client import CsmsConnectionError, connect
from ocppsec.security_profiles.registry_sql import open_registry

from .conftest import PASSWORD_201, Pki, free_port
from .helpers import run
from .test_gateway import raw_upstream


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.output


def test_stations_lifecycle(tmp_path: Path) -> None:
    db = str(tmp_path / "st.db")
    code, out = invoke("stations", "add", "CS-2", "--password-from-env", "PW", "--stations", db, env={"PW": PASSWORD_201})
    assert code == 0, out
    code, out = invoke("stations", "add", "CS-3", "--profile", "3", "--serial", "SN-0001", "--stations", db)
    assert code == 0, out
    code, out = invoke("stations", "add", "CS16", "--generate", "--ocpp-version", "1.6", "--stations", db, "--json")
    assert code == 0, out
    generated = json.loads(out)["password"]
    assert len(generated) == 40 and bytes.fromhex(generated)
    code, out = invoke("stations", "list", "--stations", db, "--json")
    listed = {r["identity"]: r for r in json.loads(out)}
    assert listed["CS-3"]["serial"] == "SN-0001" and listed["CS-3"]["password"] is False
    assert listed["CS-2"]["profile"] == 2 and listed["CS-2"]["password"] is True
    assert PASSWORD_201 not in out and "scrypt" not in out
    rec = open_registry(db).get("CS16")
    assert rec is not None and rec.password_hash
    assert password_matches(rec.password_hash, bytes.fromhex(generated), OcppVersion.V16)
    # A01 rotation through the CLI
    code, out = invoke("stations", "set-password", "CS-2", "--pending", "--password-from-env", "PW", "--stations", db,
                       env={"PW": "rotated-password-0002"})
    assert code == 0, out
    rec = open_registry(db).get("CS-2")
    assert rec is not None and rec.pending_password_hash
    assert invoke("stations", "confirm-password", "CS-2", "--stations", db)[0] == 0
    rec = open_registry(db).get("CS-2")
    assert rec is not None and rec.pending_password_hash is None and rec.password_hash
    assert password_matches(rec.password_hash, b"rotated-password-0002")
    assert invoke("stations", "remove", "CS16", "--stations", db)[0] == 0
    code, out = invoke("stations", "list", "--stations", db)
    assert "CS16" not in out and "CS-2" in out


@pytest.mark.parametrize(
    ("args", "env", "code"),
    [
        (["stations", "add", "X"], {}, 2),  # profile 2 needs a password
        (["stations", "add", "X", "--password-from-env", "NOPE"], {}, 2),
        (["stations", "add", "X", "--password-from-env", "PW"], {"PW": "short"}, 1),  # breaks A00.FR.205
        (["stations", "add", "a:b", "--generate"], {}, 1),
        (["stations", "remove", "ghost"], {}, 1),
        (["stations", "add", "X", "--generate", "--profile", "4"], {}, 2),
    ],
)
def test_stations_errors(args: list[str], env: dict[str, str], code: int, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "ocppsec.cli.main", *args, "--stations", str(tmp_path / "s.db")],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr


def test_duplicate_station(tmp_path: Path) -> None:
    db = str(tmp_path / "st.db")
    assert invoke("stations", "add", "CS-1", "--generate", "--stations", db)[0] == 0
    proc = subprocess.run([sys.executable, "-m", "ocppsec.cli.main", "stations", "add", "CS-1", "--generate",
                           "--stations", db], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "registered already" in proc.stderr


BANG = "a-password-with-a-bang!"  # "!" is outside 2.0.1 Edition 2's passwordString, fine per the 2025 errata


def test_stations_password_rules(tmp_path: Path) -> None:
    """The registry takes passwords per the 2025 errata by default; --strict-password-rules keeps Edition 2's."""
    db = str(tmp_path / "st.db")
    for identity, password in (("CS-A", BANG), ("CS-B", "ü" * 16 + "!#%&'()"), ("CS-C", "z" * 64)):
        code, out = invoke("stations", "add", identity, "--password-from-env", "PW", "--stations", db, env={"PW": password})
        assert code == 0, out
        rec = open_registry(db).get(identity)
        assert rec is not None and rec.password_hash and password_matches(rec.password_hash, password.encode())
        assert password not in out
    code, out = invoke("stations", "set-password", "CS-A", "--password-from-env", "PW", "--stations", db,
                       env={"PW": "another-one-with-a-bang!"})
    assert code == 0, out
    code, out = invoke("stations", "add", "CS-S", "--generate", "--strict-password-rules", "--stations", db, "--json")
    assert code == 0, out
    generated = json.loads(out)["password"]
    assert len(generated) == 40 and generated.replace("-", "").replace("_", "").isascii()
    cmd = [sys.executable, "-m", "ocppsec.cli.main", "stations"]
    for args, password in [(["add", "CS-D", "--strict-password-rules"], BANG),  # Edition 2 refuses "!"
                           (["add", "CS-E", "--strict-password-rules"], "y" * 41),  # and more than 40
                           (["add", "CS-F"], "z" * 65),  # the errata: at most 64
                           (["set-password", "CS-A", "--strict-password-rules"], BANG)]:
        proc = subprocess.run([*cmd, *args, "--password-from-env", "PW", "--stations", db],
                              env={**os.environ, "PW": password}, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1, proc.stderr
        assert "password rules" in proc.stderr and password not in proc.stderr + proc.stdout
        assert "!" not in proc.stderr  # not even the offending character
    rec = open_registry(db).get("CS-A")
    assert rec is not None and rec.password_hash and password_matches(rec.password_hash, b"another-one-with-a-bang!")
    assert open_registry(db).get("CS-D") is None


def _wait_port(port: int, proc: subprocess.Popen[str], timeout: float = 15) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"gateway exited: {proc.stderr.read() if proc.stderr else ''}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError("gateway did not start")


@pytest.mark.parametrize(("loop", "relay", "expected"), [("auto", "auto", "uvloop loop, splice relay"),
                                                      ("asyncio", "tasks", "asyncio loop, tasks relay")])
def test_gateway_command_end_to_end(loop: str, relay: str, expected: str, pki: Pki, tmp_path: Path) -> None:
    db, events = str(tmp_path / "st.db"), str(tmp_path / "events.db")
    assert invoke("stations", "add", "CS-3", "--profile", "3", "--serial", "SN-0001", "--stations", db)[0] == 0
    assert invoke("stations", "add", "CS-2", "--password-from-env", "PW", "--stations", db, env={"PW": PASSWORD_201})[0] == 0
    port, up = free_port(), free_port()
    cmd = [sys.executable, "-m", "ocppsec.cli.main", "gateway", "--listen", f"127.0.0.1:{port}", "--profile", "2,3",
           "--upstream", f"ws://127.0.0.1:{up}/csms", "--server-cert", str(pki.rsa.certfile), "--server-key",
           str(pki.rsa.keyfile), "--server-cert", str(pki.ecdsa.certfile), "--server-key", str(pki.ecdsa.keyfile),
           "--trust", str(pki.cso_root), "--cso-name", "Example CSO", "--stations", db, "--events", events, "--loop", loop,
           "--relay", relay, "-vv"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_port(port, proc)

        async def main() -> None:
            async with raw_upstream(up) as got:
                c3 = await connect(f"wss://localhost:{port}/", "CS-3", profile=3, csms_roots=[pki.csms_root],
                                   client_chain=pki.station("SN-0001"))
                c2 = await connect(f"wss://localhost:{port}/", "CS-2", profile=2, password=PASSWORD_201,
                                   csms_roots=[pki.csms_root])
                for c in (c3, c2):
                    await c.send('[2,"1","Heartbeat",{}]')
                    assert await c.recv() == '[2,"1","Heartbeat",{}]'
                    await c.close()
                with pytest.raises(CsmsConnectionError):
                    await connect(f"wss://localhost:{port}/", "CS-2", profile=2, password="wrong-password-0000",
                                  csms_roots=[pki.csms_root])
                assert len(got) == 2
                await asyncio.sleep(0.2)

        run(main())
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "gateway listening on wss://127.0.0.1" in err
    assert expected in err
    store = open_store(events)
    stored = store.query(EventQuery(station_id="CS-2"))
    assert [s.event.type for s in stored] == ["FailedToAuthenticateAtCsms"]
    assert not Path(events + ".spool").exists()  # written through the event queue, nothing left waiting
    # -vv logs websockets' handshake headers, but never a credential
    token = base64.b64encode(f"CS-2:{PASSWORD_201}".encode()).decode()
    assert "Authorization: [redacted]" in err
    assert token not in err and PASSWORD_201 not in err and "wrong-password-0000" not in err


def test_gateway_usage_errors(pki: Pki) -> None:
    base = [sys.executable, "-m", "ocppsec.cli.main", "gateway", "--listen", "127.0.0.1:1", "--upstream", "ws://x/"]
    for extra in (["--profile", "3"], ["--profile", "4"], ["--profile", "1", "--trust", str(pki.cso_root)],
                  ["--profile", "1", "--loop", "trio"], ["--profile", "1", "--relay", "fast"]):
        proc = subprocess.run(base + extra, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr


def test_stations_profile_downgrade_switch(tmp_path: Path) -> None:
    db = str(tmp_path / "st.db")
    assert invoke("stations", "add", "CS-3", "--profile", "3", "--allow-profile-downgrade", "--stations", db)[0] == 0
    code, out = invoke("stations", "list", "--stations", db, "--json")
    (listed,) = json.loads(out)
    assert listed["allowProfileDowngrade"] is True and listed["slots"] == [] and listed["networkPriority"] == []
    code, out = invoke("stations", "list", "--stations", db)
    assert code == 0 and "downgrade" in out and "3->2" in out
    code, out = invoke("stations", "profile-downgrade", "CS-3", "--forbid", "--stations", db)
    assert code == 0 and "forbidden" in out
    assert open_registry(db).get("CS-3").allow_downgrade is False  # type: ignore[union-attr]
    proc = subprocess.run([sys.executable, "-m", "ocppsec.cli.main", "stations", "profile-downgrade", "CS-9", "--allow",
                           "--stations", db], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "not registered" in proc.stderr


def test_gateway_command_with_a_protected_upstream_hop(pki: Pki, tmp_path: Path) -> None:
    from ocppsec.security_profiles.tls import server_context

    from .test_gateway_upstream import upstream_server

    db = str(tmp_path / "st.db")
    assert invoke("stations", "add", "CS-2", "--password-from-env", "PW", "--stations", db, env={"PW": PASSWORD_201})[0] == 0
    port, up = free_port(), free_port()
    client = pki.station("GW-CLI")
    cmd = [sys.executable, "-m", "ocppsec.cli.main", "gateway", "--listen", f"127.0.0.1:{port}", "--profile", "2",
           "--upstream", f"wss://localhost:{up}/csms", "--server-cert", str(pki.rsa.certfile), "--server-key",
           str(pki.rsa.keyfile), "--server-cert", str(pki.ecdsa.certfile), "--server-key", str(pki.ecdsa.keyfile),
           "--stations", db, "--upstream-ca", str(pki.csms_root), "--upstream-cert", str(client.certfile),
           "--upstream-key", str(client.keyfile), "--upstream-basic-auth-env", "UP_AUTH", "-vv"]
    secret = "gw-cli:upstream-secret-0042"
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "UP_AUTH": secret})
    tls = server_context(pki.server_chains, client_roots=[pki.cso_root], client_cert="required")
    import base64

    try:
        _wait_port(port, proc)

        async def main() -> None:
            async with upstream_server(up, tls=tls, auth="Basic " + base64.b64encode(secret.encode()).decode()) as seen:
                c = await connect(f"wss://localhost:{port}/", "CS-2", profile=2, password=PASSWORD_201,
                                  csms_roots=[pki.csms_root])
                await c.send('[2,"1","Heartbeat",{}]')
                assert await c.recv() == '[2,"1","Heartbeat",{}]'
                await c.close()
                assert [r.path for r in seen.requests] == ["/csms/CS-2"]
                assert seen.requests[0].headers["X-OCPP-Security-Profile"] == "2"

        run(main())
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "upstream-secret" not in err and base64.b64encode(secret.encode()).decode() not in err
    assert PASSWORD_201 not in err


def test_gateway_upstream_hop_usage_errors(pki: Pki) -> None:
    base = [sys.executable, "-m", "ocppsec.cli.main", "gateway", "--listen", "127.0.0.1:1", "--profile", "1"]
    for extra, message in (
        (["--upstream", "ws://x/", "--upstream-ca", str(pki.csms_root)], "need a wss://"),
        (["--upstream", "wss://x/", "--upstream-cert", str(pki.rsa.certfile)], "go together"),
        (["--upstream", "wss://x/", "--upstream-basic-auth-env", "OCPPSEC_TEST_UNSET"], "is not set"),
        (["--upstream", "wss://x/", "--upstream-ca", "/nonexistent.pem"], "cannot load upstream CA"),
    ):
        proc = subprocess.run(base + extra, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr and "Traceback" not in proc.stderr


def test_gateway_spools_events_a_read_only_store_refuses_and_writes_them_after_a_restart(pki: Pki, tmp_path: Path) -> None:
    """The event store is read-only while the gateway runs: its events wait in the spool, which outlives the
    process; the next gateway (the store writable again) writes them first."""
    db, events = str(tmp_path / "st.db"), tmp_path / "events.db"
    assert invoke("stations", "add", "CS-2", "--password-from-env", "PW", "--stations", db, env={"PW": PASSWORD_201})[0] == 0
    open_store(events).close()

    def gateway(events_arg: str) -> tuple[int, str]:
        port = free_port()
        cmd = [sys.executable, "-m", "ocppsec.cli.main", "gateway", "--listen", f"127.0.0.1:{port}", "--profile", "2",
               "--upstream", "ws://127.0.0.1:9/csms", "--server-cert", str(pki.rsa.certfile), "--server-key",
               str(pki.rsa.keyfile), "--server-cert", str(pki.ecdsa.certfile), "--server-key", str(pki.ecdsa.keyfile),
               "--stations", db, "--events", events_arg, "--loop", "asyncio"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _wait_port(port, proc)

            async def fail_twice() -> None:
                for password in ("wrong-password-0001", "wrong-password-0002"):
                    with pytest.raises(CsmsConnectionError):
                        await connect(f"wss://localhost:{port}/", "CS-2", profile=2, password=password,
                                      csms_roots=[pki.csms_root])

            run(fail_twice())
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
        return proc.returncode, err

    code, err = gateway(f"sqlite://{events}?mode=ro")
    assert code == 0, err
    assert "2 event(s) wait in the spool" in err
    assert Path(f"{events}.spool").exists() or Path(f"{events}.spool.replay").exists()
    assert open_store(events).count(EventQuery()) == 0
    code, err = gateway(str(events))  # writable again: the spool first, then its own two
    assert code == 0, err
    assert "wait in the spool" not in err
    assert not Path(f"{events}.spool").exists() and not Path(f"{events}.spool.replay").exists()
    stored = open_store(events).query(EventQuery(station_id="CS-2"))
    assert [s.event.type for s in stored] == ["FailedToAuthenticateAtCsms"] * 4
