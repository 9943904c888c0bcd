"""``ocppsec gateway`` operated: the config file, --check-config, SIGHUP reloads, SIGTERM drains, --workers,
the admin listener, ``gateway status`` and JSON logs; real processes, real TLS, real stations."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from websockets.exceptions import ConnectionClosed

from ocppsec.security_profiles.client import connect
from ocppsec.security_profiles.registry import StationRecord
from ocppsec.security_profiles.registry_sql import open_registry

from .conftest import Pki, free_port, write_issued
from .helpers import run
from .test_gateway import raw_upstream

GATEWAY = [sys.executable, "-m", "ocppsec.cli.main", "gateway"]


def _registry(tmp_path: Path) -> str:
    db = str(tmp_path / "st.db")
    reg = open_registry(db)
    reg.add(StationRecord("CS-3", 3, serial="SN-0001"))
    reg.close()
    return db


def _config(pki: Pki, tmp_path: Path, port: int, up: int, admin: int, **extra: Any) -> Path:
    lines = [
        f'listen = "127.0.0.1:{port}"',
        'profile = "2,3"',
        f'upstream = "ws://127.0.0.1:{up}/csms"',
        f'server_cert = ["{pki.rsa.certfile}", "{pki.ecdsa.certfile}"]',
        f'server_key = ["{pki.rsa.keyfile}", "{pki.ecdsa.keyfile}"]',
        f'trust = ["{pki.cso_root}"]',
        'cso_name = "Example CSO"',
        f'stations = "{_registry(tmp_path)}"',
        f'admin = "127.0.0.1:{admin}"',
    ]
    extra.setdefault("drain_seconds", 3)
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    path = tmp_path / "gateway.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _http(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _json(url: str) -> Any:
    return json.loads(_http(url)[1])


def _wait_for(predicate: Any, timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            value = predicate()
            if value:
                return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.contextmanager
def gateway(*args: str, admin: int | None = None, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    """``ocppsec gateway ARGS`` until the block ends (then SIGTERM, and its exit is waited for)."""
    proc = subprocess.Popen([*GATEWAY, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    try:
        if admin is not None:
            def up() -> bool:
                if proc.poll() is not None:
                    raise AssertionError(f"gateway exited {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
                return _http(f"http://127.0.0.1:{admin}/healthz", timeout=1)[0] == 200

            _wait_for(up, what="the admin listener")
            _wait_for(lambda: _json(f"http://127.0.0.1:{admin}/readyz")["checks"]["listening"], what="listening")
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _server_serial(port: int, root: Path) -> int:
    """The serial of the certificate the gateway presents to a new TLS handshake."""
    ctx = ssl.create_default_context(cafile=str(root))
    ctx.check_hostname = False
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, ctx.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def _new_server_certs(pki: Pki, directory: Path) -> tuple[set[int], list[Path]]:
    """Fresh RSA and ECDSA server certificates (new serials) written to new files."""
    serials: set[int] = set()
    paths: list[Path] = []
    for name in ("csms-server-rsa", "csms-server-ecdsa"):
        issued = pki.h.issue_leaf(name, ca="csms-root", subject={"CN": "localhost", "O": "Example CSO"},
                                  at=pki.now - timedelta(minutes=5))
        chain = write_issued(issued, directory, f"{name}-new")
        serials.add(issued.certificate.serial_number)
        paths += [Path(chain.certfile), Path(chain.keyfile)]
    return serials, paths


def _copy_server_files(pki: Pki, directory: Path) -> list[Path]:
    """The server chain files copied to ``directory`` (the test replaces them there)."""
    out = []
    for chain in (pki.rsa, pki.ecdsa):
        for src in (Path(chain.certfile), Path(chain.keyfile)):
            dst = directory / src.name
            dst.write_bytes(src.read_bytes())
            dst.chmod(0o600)
            out.append(dst)
    return out


# -- the configuration file ---------------------------------------------------------------------------------------
def test_config_file_and_flags_override(pki: Pki, tmp_path: Path) -> None:
    port, other, up, admin = free_port(), free_port(), free_port(), free_port()
    config = _config(pki, tmp_path, port, up, admin)
    checked = subprocess.run([*GATEWAY, "--config", str(config), "--check-config"], capture_output=True, text=True,
                             timeout=60)
    assert checked.returncode == 0, checked.stderr
    assert "ok" in checked.stdout and "TLS server context" in checked.stdout
    # the command line wins over the file: --listen moves the gateway to another port
    with gateway("--config", str(config), "--listen", f"127.0.0.1:{other}", admin=admin) as proc:
        assert proc.poll() is None
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", other)) == 0
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0
    _, err = proc.communicate()
    assert proc.returncode == 0, err
    assert f"listening on wss://127.0.0.1:{other}/" in err


def test_config_unknown_key_is_refused_with_a_suggestion(pki: Pki, tmp_path: Path) -> None:
    config = _config(pki, tmp_path, 1, 2, 3, server_certs_x="a.pem", listne="x")
    proc = subprocess.run([*GATEWAY, "--config", str(config), "--check-config"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "unknown key 'listne' (did you mean 'listen'?)" in proc.stderr
    assert "unknown key 'server_certs_x'" in proc.stderr and "'server_cert'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_check_config_lists_every_problem(pki: Pki, tmp_path: Path) -> None:
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    config = tmp_path / "bad.toml"
    config.write_text("\n".join([
        'listen = "127.0.0.1:notaport"',
        'profile = "3"',
        'upstream = "http://csms.example/ocpp"',
        # an RSA certificate with the ECDSA key: the pair does not match
        f'server_cert = ["{pki.rsa.certfile}", "{broken}"]',
        f'server_key = ["{pki.ecdsa.keyfile}", "{pki.ecdsa.keyfile}"]',
        f'trust = ["{pki.cso_root}"]',
        'cso_name = "Example CSO"',
        f'crl = ["{tmp_path / "missing.crl"}"]',
        f'stations = "{_registry(tmp_path)}"',
    ]) + "\n")
    proc = subprocess.run([*GATEWAY, "--config", str(config), "--check-config"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    problems = [line for line in proc.stderr.splitlines() if line.startswith("problem: ")]
    text = "\n".join(problems)
    assert "--listen" in text and "--upstream" in text
    assert f"--server-cert {pki.rsa.certfile}" in text and f"--server-cert {broken}" in text
    assert "missing.crl: no such file" in text
    assert len(problems) >= 5, proc.stderr
    assert "Traceback" not in proc.stderr


# -- reload --------------------------------------------------------------------------------------------------------------
def test_sighup_swaps_the_server_certificate_and_keeps_stations(pki: Pki, tmp_path: Path) -> None:
    port, up, admin = free_port(), free_port(), free_port()
    files = _copy_server_files(pki, tmp_path)  # rsa cert, rsa key, ecdsa cert, ecdsa key
    config = _config(pki, tmp_path, port, up, admin)
    config.write_text(config.read_text().replace(str(pki.rsa.certfile), str(files[0]))
                      .replace(str(pki.rsa.keyfile), str(files[1])).replace(str(pki.ecdsa.certfile), str(files[2]))
                      .replace(str(pki.ecdsa.keyfile), str(files[3])))
    old = {c.certificate.serial_number for c in (pki.h.certificates["csms-server-rsa"], pki.h.certificates["csms-server-ecdsa"])}
    new, new_files = _new_server_certs(pki, tmp_path)

    async def main(proc: subprocess.Popen[str]) -> None:
        async with raw_upstream(up) as got:
            station = await connect(f"wss://localhost:{port}/", "CS-3", profile=3, csms_roots=[pki.csms_root],
                                    client_chain=pki.station("SN-0001"))
            await station.send('[2,"1","Heartbeat",{}]')
            assert await station.recv() == '[2,"1","Heartbeat",{}]'
            assert await asyncio.to_thread(_server_serial, port, pki.csms_root) in old
            for src, dst in zip(new_files, files, strict=True):
                dst.write_bytes(src.read_bytes())
            proc.send_signal(signal.SIGHUP)

            def reloaded() -> bool:
                checks = _json(f"http://127.0.0.1:{admin}/readyz")["checks"]
                return bool(checks.get("reload", {}).get("ok"))

            await asyncio.to_thread(_wait_for, reloaded, 10, "the reload")
            assert await asyncio.to_thread(_server_serial, port, pki.csms_root) in new
            # the station connected before the reload is still relayed
            await station.send('[2,"2","Heartbeat",{}]')
            assert await station.recv() == '[2,"2","Heartbeat",{}]'
            await station.close()
            assert len(got) == 2

    with gateway("--config", str(config), admin=admin) as proc:
        run(main(proc))
        metrics = _http(f"http://127.0.0.1:{admin}/metrics")[1].decode()
        assert 'ocppsec_gateway_reloads_total{outcome="ok"} 1.0' in metrics
    assert proc.returncode == 0


def test_sighup_with_a_broken_file_keeps_serving(pki: Pki, tmp_path: Path) -> None:
    port, up, admin = free_port(), free_port(), free_port()
    files = _copy_server_files(pki, tmp_path)
    config = _config(pki, tmp_path, port, up, admin)
    config.write_text(config.read_text().replace(str(pki.rsa.certfile), str(files[0]))
                      .replace(str(pki.rsa.keyfile), str(files[1])).replace(str(pki.ecdsa.certfile), str(files[2]))
                      .replace(str(pki.ecdsa.keyfile), str(files[3])))
    old = {c.certificate.serial_number for c in (pki.h.certificates["csms-server-rsa"], pki.h.certificates["csms-server-ecdsa"])}
    with gateway("--config", str(config), admin=admin) as proc:
        files[2].write_text("garbage\n")  # the ECDSA certificate
        proc.send_signal(signal.SIGHUP)

        def failed() -> Any:
            return _json(f"http://127.0.0.1:{admin}/readyz")["checks"].get("reload")

        reload = _wait_for(failed, 10, "the failed reload")
        assert reload["ok"] is False and any("TLS" in p for p in reload["problems"])
        assert proc.poll() is None
        assert _server_serial(port, pki.csms_root) in old  # the old certificates still serve
        assert _json(f"http://127.0.0.1:{admin}/readyz")["checks"]["listening"] is True  # serving with what it had

        async def station() -> None:
            async with raw_upstream(up):
                ws = await connect(f"wss://localhost:{port}/", "CS-3", profile=3, csms_roots=[pki.csms_root],
                                   client_chain=pki.station("SN-0001"))
                await ws.send("x")
                assert await ws.recv() == "x"
                await ws.close()

        run(station())
        metrics = _http(f"http://127.0.0.1:{admin}/metrics")[1].decode()
        assert 'ocppsec_gateway_reloads_total{outcome="failed"} 1.0' in metrics
    _, err = proc.communicate()
    assert proc.returncode == 0
    assert "reload: TLS:" in err


# -- drain ---------------------------------------------------------------------------------------------------------------
def test_sigterm_closes_stations_with_1001_and_exits_in_bounded_time(pki: Pki, tmp_path: Path) -> None:
    port, up, admin = free_port(), free_port(), free_port()
    config = _config(pki, tmp_path, port, up, admin)

    async def main(proc: subprocess.Popen[str]) -> None:
        closes: asyncio.Queue[tuple[str, int | None]] = asyncio.Queue()
        async with raw_upstream(up, closes):
            stations = [await connect(f"wss://localhost:{port}/", "CS-3", profile=3, csms_roots=[pki.csms_root],
                                      client_chain=pki.station("SN-0001")) for _ in range(3)]
            for ws in stations:
                await ws.send("hello")
                assert await ws.recv() == "hello"
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            for ws in stations:
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 10)
                assert ws.close_code == 1001
            for _ in stations:
                path, code = await asyncio.wait_for(closes.get(), 10)
                assert path == "/csms/CS-3" and code == 1001
            code = await asyncio.to_thread(proc.wait, 15)
            assert code == 0
            assert time.monotonic() - started < 3 + 5  # --drain-seconds 3, plus start-up of nothing

    with gateway("--config", str(config), admin=admin) as proc:
        run(main(proc))
    _, err = proc.communicate()
    assert "draining: closing 3 station(s) with 1001" in err


def test_sigterm_cuts_a_station_that_does_not_close(pki: Pki, tmp_path: Path) -> None:
    port, up, admin = free_port(), free_port(), free_port()
    config = _config(pki, tmp_path, port, up, admin, drain_seconds=1)

    async def main(proc: subprocess.Popen[str]) -> None:
        async with raw_upstream(up):
            ws = await connect(f"wss://localhost:{port}/", "CS-3", profile=3, csms_roots=[pki.csms_root],
                               client_chain=pki.station("SN-0001"))
            await ws.send("hello")
            assert await ws.recv() == "hello"
            ws.transport.pause_reading()  # never reads the close frame, never answers it
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(proc.wait, 15) == 0
            assert time.monotonic() - started < 1 + 4
            ws.transport.abort()

    with gateway("--config", str(config), admin=admin) as proc:
        run(main(proc))
    _, err = proc.communicate()
    assert "still open after 1 s; cutting them" in err


def test_sigint_exits_130(pki: Pki, tmp_path: Path) -> None:
    port, up, admin = free_port(), free_port(), free_port()
    config = _config(pki, tmp_path, port, up, admin)
    with gateway("--config", str(config), admin=admin) as proc:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 130


# -- the admin listener and `gateway status` ---------------------------------------------------------------------------
def test_admin_endpoints_and_status(pki: Pki, tmp_path: Path) -> None:
    port, up, admin = free_port(), free_port(), free_port()
    config = _config(pki, tmp_path, port, up, admin)
    base = f"http://127.0.0.1:{admin}"
    chain = pki.station("SN-0001")
    station_cert = x509.load_pem_x509_certificate(Path(chain.certfile).read_bytes())

    async def main() -> None:
        async with raw_upstream(up):
            await asyncio.to_thread(_wait_for, lambda: _http(f"{base}/readyz")[0] == 200, 15, "readiness")
            ws = await connect(f"wss://localhost:{port}/", "CS-3", profile=3, csms_roots=[pki.csms_root],
                               client_chain=chain)
            for i in range(5):
                await ws.send(f"m{i}")
                assert await ws.recv() == f"m{i}"
            stations = await asyncio.to_thread(_json, f"{base}/stations")
            assert len(stations) == 1
            row = stations[0]
            assert row["identity"] == "CS-3" and row["profile"] == 3 and row["version"] == "2.0.1"
            assert row["peer"].startswith("127.0.0.1:") and row["since"]
            assert row["certificate_serial"] == format(station_cert.serial_number, "x")
            assert row["certificate_not_after"] == station_cert.not_valid_after_utc.isoformat()
            status, body = await asyncio.to_thread(_http, f"{base}/metrics")
            text = body.decode()
            assert status == 200
            assert 'ocppsec_gateway_connections{profile="3",version="2.0.1"} 1.0' in text
            assert 'ocppsec_gateway_handshakes_total{outcome="accepted",reason=""} 1.0' in text
            assert 'ocppsec_gateway_frames_relayed_total{direction="up"} 5.0' in text
            assert 'ocppsec_gateway_frames_relayed_total{direction="down"} 5.0' in text
            assert 'ocppsec_gateway_station_certificates{expires_in="90-365d"} 1.0' in text \
                or 'ocppsec_gateway_station_certificates{expires_in="365d+"} 1.0' in text
            shown = subprocess.run([*GATEWAY, "status", "--admin", base], capture_output=True, text=True, timeout=60)
            assert shown.returncode == 0, shown.stderr
            assert "ready" in shown.stdout and "1 station(s) connected" in shown.stdout
            assert "CS-3" in shown.stdout and format(station_cert.serial_number, "x") in shown.stdout
            as_json = subprocess.run([*GATEWAY, "status", "--admin", base, "--json"], capture_output=True, text=True,
                                     timeout=60)
            data = json.loads(as_json.stdout)
            assert data["ready"] is True and data["stations"][0]["identity"] == "CS-3"
            assert data["metrics"]["connections"] == 1
            await ws.close()
        # the upstream is gone: not ready (the probe runs every 5 s)
        await asyncio.to_thread(_wait_for, lambda: _http(f"{base}/readyz")[0] == 503, 15, "unreadiness")
        body = await asyncio.to_thread(_json, f"{base}/readyz")
        assert body["ready"] is False and body["checks"]["upstream"] is False
        shown = await asyncio.to_thread(subprocess.run, [*GATEWAY, "status", "--admin", base], capture_output=True,
                                        text=True, timeout=60)
        assert shown.returncode == 1 and "NOT READY" in shown.stdout

    with gateway("--config", str(config)) as proc:
        _wait_for(lambda: _http(f"{base}/healthz", timeout=1)[0] == 200, what="the admin listener")
        health = _json(f"{base}/healthz")
        assert health["status"] == "ok" and health["pid"] == proc.pid
        run(main(), timeout=60)
    gone = subprocess.run([*GATEWAY, "status", "--admin", base], capture_output=True, text=True, timeout=60)
    assert gone.returncode == 3 and "no gateway admin listener" in gone.stderr


def test_json_logs_parse_as_json(pki: Pki, tmp_path: Path) -> None:
    port, up, admin = free_port(), free_port(), free_port()
    config = _config(pki, tmp_path, port, up, admin, log_format="json", verbose=1)

    async def main() -> None:
        async with raw_upstream(up):
            ws = await connect(f"wss://localhost:{port}/", "CS-3", profile=3, csms_roots=[pki.csms_root],
                               client_chain=pki.station("SN-0001"))
            await ws.close()

    with gateway("--config", str(config), admin=admin) as proc:
        run(main())
        proc.send_signal(signal.SIGHUP)
        _wait_for(lambda: _json(f"http://127.0.0.1:{admin}/readyz")["checks"].get("reload"), 10, "the reload")
    _, err = proc.communicate()
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert lines, err
    for line in lines:
        assert {"timestamp", "level", "logger", "message"} <= line.keys()
    messages = [line["message"] for line in lines]
    assert any("listening on wss://" in m for m in messages)
    assert any(line.get("event") == "reload" for line in lines)
    assert any(line.get("event") == "drain" for line in lines)


# -- workers -------------------------------------------------------------------------------------------------------------
def test_workers_share_the_port_and_a_dead_worker_is_restarted(pki: Pki, tmp_path: Path) -> None:
    port, up, admin = free_port(), free_port(), free_port()
    config = _config(pki, tmp_path, port, up, admin, workers=2, events=str(tmp_path / "events.db"))
    base = f"http://127.0.0.1:{admin}"

    async def connect_many(n: int) -> None:
        async with raw_upstream(up):
            chain = pki.station("SN-0001")
            stations = [await connect(f"wss://localhost:{port}/", "CS-3", profile=3, csms_roots=[pki.csms_root],
                                      client_chain=chain) for _ in range(n)]
            for ws in stations:
                await ws.send("ping")
                assert await ws.recv() == "ping"
            rows = await asyncio.to_thread(_json, f"{base}/stations")
            assert len(rows) == n
            assert {r["worker"] for r in rows} == {0, 1}, rows  # both workers accepted stations

            def counted() -> bool:
                text = _http(f"{base}/metrics")[1].decode()
                return f'ocppsec_gateway_connections{{profile="3",version="2.0.1"}} {float(n)}' in text

            await asyncio.to_thread(_wait_for, counted, 15, "the summed connection gauge")
            for ws in stations:
                await ws.close()

    with gateway("--config", str(config), admin=admin) as proc:
        health = _json(f"{base}/healthz")
        assert health["pid"] == proc.pid
        pids = [w["pid"] for w in health["workers"]]
        assert len(set(pids)) == 2 and proc.pid not in pids
        run(connect_many(16), timeout=60)
        os.kill(pids[0], signal.SIGKILL)

        def restarted() -> Any:
            workers = _json(f"{base}/healthz")["workers"]
            w0 = workers[0]
            return w0 if w0["restarts"] == 1 and w0["pid"] not in pids and w0["running"] else None

        w0 = _wait_for(restarted, 20, "the restart of worker 0")
        assert w0["worker"] == 0
        _wait_for(lambda: _json(f"{base}/readyz")["checks"]["listening"], 20, "worker 0 listening again")
        metrics = _http(f"{base}/metrics")[1].decode()
        assert "ocppsec_gateway_workers 2.0" in metrics
        assert 'ocppsec_gateway_worker_restarts_total{worker="0"} 1.0' in metrics
        run(connect_many(16), timeout=60)
        proc.send_signal(signal.SIGHUP)  # forwarded: each worker reloads

        def both_reloaded() -> bool:
            checks = _json(f"{base}/readyz")["checks"]
            return all(checks[f"worker {i}"]["checks"].get("reload", {}).get("ok") for i in (0, 1))

        _wait_for(both_reloaded, 15, "both workers' reload")
        checks = _json(f"{base}/readyz")["checks"]
        assert all(checks[f"worker {i}"]["checks"]["event_sink"]["ok"] for i in (0, 1))  # a queued sink each
    assert proc.returncode == 0
    for pid in [*pids[1:], w0["pid"]]:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # every worker exited with the supervisor


# -- systemd -----------------------------------------------------------------------------------------------------------
def test_systemd_unit_verifies(tmp_path: Path) -> None:
    import shutil

    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze is needed (Debian package systemd; scripts/test.sh installs it)"
    unit = (Path(__file__).parents[2] / "docs" / "gateway.service").read_text()
    exe = Path(sys.executable).parent / "ocppsec"
    assert exe.exists()
    exec_lines = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    assert exec_lines and exec_lines[0].startswith("ExecStart=/usr/local/bin/ocppsec gateway --config ")
    unit = unit.replace("/usr/local/bin/ocppsec", str(exe))
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit and "KillSignal=SIGTERM" in unit
    path = tmp_path / "ocppsec-gateway.service"
    path.write_text(unit)
    proc = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"})
    problems = [line for line in (proc.stdout + proc.stderr).splitlines()
                if str(path.name) in line or "gateway" in line.lower()]
    assert proc.returncode == 0 and not problems, proc.stdout + proc.stderr
    stop = next(int(line.split("=")[1]) for line in unit.splitlines() if line.startswith("TimeoutStopSec="))
    drain = float(exec_lines[0].split("--drain-seconds ")[1].split()[0])
    assert stop > drain


def test_cert_expiry_buckets() -> None:
    from datetime import UTC, datetime

    from ocppsec.security_profiles.gateway.metrics import expiry_bucket

    at = datetime(2026, 1, 1, tzinfo=UTC)
    assert expiry_bucket(at - timedelta(seconds=1), at) == "expired"
    assert expiry_bucket(at + timedelta(days=3), at) == "0-7d"
    assert expiry_bucket(at + timedelta(days=29), at) == "7-30d"
    assert expiry_bucket(at + timedelta(days=31), at) == "30-90d"
    assert expiry_bucket(at + timedelta(days=200), at) == "90-365d"
    assert expiry_bucket(at + timedelta(days=400), at) == "365d+"
