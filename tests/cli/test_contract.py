"""The CLI's error contract as a shell sees it: exit codes, one line, --json, Ctrl-C, closed pipes, start-up.

Real processes (``python -m ocppsec.cli.main``) where the process matters (signals, pipes, imports), the
forked harness (tests/cli/_harness.py) elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest

from ocppsec.cli import _prefetch
from ocppsec.cli._app import SUBCOMMANDS, cli
from ocppsec.eventlog.store_sql import open_store
from ocppsec.pki.directory import PkiDirectory
from ocppsec.pki.events.model import normalize_event
from ocppsec.pki.hierarchy import HierarchyConfig
from ocppsec.pki.pem import certificates_to_pem
from tests.cli._harness import assert_one_line_error, invoke

PASS = "contract passphrase"
ENV = {"OCPPSEC_PASSPHRASE": PASS}
NOW = datetime.now(UTC)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PKI directory plus exported files: root.pem, ec.pem / ec.key (the ECDSA server pair), rsa.pem / rsa.key,
    ec-combined.pem (certificate + encrypted key in one file, as `pki export NAME --key` writes)."""
    root = tmp_path_factory.mktemp("contract")
    config = HierarchyConfig.default(cso_name="ACME CSO", csms_fqdn="csms.acme.test")
    directory = PkiDirectory.init(root / "pki", config, passphrase=PASS.encode(), at=NOW - timedelta(days=1))
    try:
        (root / "root.pem").write_text(certificates_to_pem([directory.ca_certificate("csms-root")]))
        (root / "mf-root.pem").write_text(certificates_to_pem([directory.ca_certificate("manufacturer-root")]))
        for name, short in (("csms-server-ecdsa", "ec"), ("csms-server-rsa", "rsa")):
            (root / f"{short}.pem").write_text(certificates_to_pem(directory.chain_of(name)[:1]))
            (root / f"{short}.key").write_bytes((root / "pki" / "keys" / f"{name}.key.pem").read_bytes())
    finally:
        directory.close()
    exported = invoke("pki", "export", root / "pki", "csms-server-ecdsa", "--key", env=ENV)
    assert exported.code == 0, exported
    (root / "ec-combined.pem").write_text(exported.out)
    exported = invoke("pki", "export", root / "pki", "firmware-signing", "--key", env=ENV)
    assert exported.code == 0, exported
    (root / "fw-combined.pem").write_text(exported.out)
    return root


def process(*args: str | os.PathLike[str], env: dict[str, str] | None = None, **kwargs: object) -> subprocess.Popen[str]:
    environment = {k: v for k, v in os.environ.items() if k != "OCPPSEC_DEBUG"}
    environment.update(env or {})
    return subprocess.Popen([sys.executable, "-m", "ocppsec.cli.main", *map(os.fspath, args)], env=environment,
                            text=True, **kwargs)  # type: ignore[call-overload,no-any-return]


def wait_for_line(stream: object, needle: str, timeout: float = 60) -> str:
    """Read lines until one contains ``needle`` (the server says it is ready)."""
    deadline = time.monotonic() + timeout
    seen = []
    fd = stream.fileno()  # type: ignore[attr-defined]
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        line = stream.readline()  # type: ignore[attr-defined]
        if not line:
            break
        seen.append(line)
        if needle in line:
            return str(line)
    raise AssertionError(f"{needle!r} never appeared: {''.join(seen)!r}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- Ctrl-C exits 130 everywhere ---------------------------------------------------------------------------------
def _interrupt(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


def test_ctrl_c_in_the_gateway_exits_130(pki: Path, tmp_path: Path) -> None:
    proc = process("gateway", "--listen", f"127.0.0.1:{free_port()}", "--profile", "2", "--upstream",
                   "ws://127.0.0.1:9/ocpp", "--server-cert", pki / "ec.pem", "--server-key", pki / "ec.key",
                   "--stations", tmp_path / "st.db", env=ENV, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    wait_for_line(proc.stderr, "gateway listening on")
    code, err = _interrupt(proc)
    assert code == 130, err
    assert err.strip().splitlines()[-1] == "error: interrupted" and "Traceback" not in err


def test_ctrl_c_under_workers_exits_130_with_one_line(tmp_path: Path) -> None:
    """Ctrl-C at a terminal reaches the whole process group: the supervisor and every worker drain, and the
    supervisor alone says it was interrupted."""
    proc = process("gateway", "--listen", f"127.0.0.1:{free_port()}", "--profile", "1", "--upstream",
                   "ws://127.0.0.1:9/ocpp", "--stations", tmp_path / "st.db", "--workers", "2", "--admin", "off",
                   stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_line(proc.stderr, "listening on ws://")
        wait_for_line(proc.stderr, "listening on ws://")  # both workers
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert lines[-1] == "error: interrupted" and lines.count("error: interrupted") == 1, err
    assert "Traceback" not in err


def test_ctrl_c_in_ocsp_serve_exits_130(pki: Path) -> None:
    proc = process("ocsp", "serve", pki / "pki", "--listen", f"127.0.0.1:{free_port()}", env=ENV,
                   stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    wait_for_line(proc.stderr, "OCSP responder for")
    code, err = _interrupt(proc)
    assert code == 130, err
    assert "interrupted" in err and "Traceback" not in err


def test_ctrl_c_in_events_receive_exits_130(pki: Path, tmp_path: Path) -> None:
    """With the certificate and the encrypted key in one file, the passphrase from the environment: no prompt."""
    proc = process("events", "receive", "--listen", f"127.0.0.1:{free_port()}", "--dir", tmp_path / "up", "--store",
                   tmp_path / "e.db", "--server-cert", pki / "ec-combined.pem", "--server-key", pki / "ec-combined.pem",
                   env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    wait_for_line(proc.stdout, "listening on https://")
    code, err = _interrupt(proc)
    assert code == 130, err
    assert "interrupted" in err and "Traceback" not in err


def test_ctrl_c_in_events_tail_exits_130(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "e.db"))
    store.record(normalize_event(station_id="CS-1", type="InvalidTLSVersion", timestamp="2026-11-23T12:00:00Z", at=NOW))
    store.close()
    proc = process("events", "tail", "--store", tmp_path / "e.db", "--from-start", "--interval", "0.05",
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for_line(proc.stdout, "InvalidTLSVersion")
    code, err = _interrupt(proc)
    assert code == 130, err
    assert err.strip() == "error: interrupted"


def test_ctrl_c_at_the_passphrase_prompt_of_pki_init_exits_130(tmp_path: Path) -> None:
    """On a terminal without OCPPSEC_PASSPHRASE, pki init asks; Ctrl-C there was click's "Aborted!", exit 1."""
    controller, terminal = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("OCPPSEC_PASSPHRASE", "OCPPSEC_DEBUG")}
    proc = subprocess.Popen([sys.executable, "-m", "ocppsec.cli.main", "pki", "init", str(tmp_path / "pki")],
                            stdin=terminal, stdout=terminal, stderr=terminal, env=env)
    os.close(terminal)
    try:
        seen = b""
        deadline = time.monotonic() + 60
        while b"passphrase" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 1)
            if ready:
                seen += os.read(controller, 1024)
        assert b"passphrase" in seen, seen
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 130
        rest = b""
        while select.select([controller], [], [], 0.5)[0]:
            try:
                chunk = os.read(controller, 1024)
            except OSError:
                break
            if not chunk:
                break
            rest += chunk
        assert b"interrupted" in rest and b"Traceback" not in rest and b"Aborted" not in rest, rest
    finally:
        os.close(controller)
        if proc.poll() is None:
            proc.kill()


# -- a closed stdout is not an error -----------------------------------------------------------------------------
@pytest.mark.parametrize("args", [["pki", "profiles"], ["pki", "config"], ["events", "catalogue", "--json"]])
def test_a_reader_that_went_away_is_not_an_error(args: list[str]) -> None:
    """`ocppsec pki profiles | head -1`: here the pipe is closed before the command writes, so it always meets
    EPIPE; it exits 0 without a word (no "Exception ignored ... BrokenPipeError" at interpreter exit)."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        proc = process(*args, stdout=writer, stderr=subprocess.PIPE)
    finally:
        os.close(writer)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert err == ""


def test_a_long_export_into_head_stops_quietly(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "e.db"))
    store.add_many([normalize_event(station_id=f"CS-{n}", type="InvalidTLSVersion",
                                    timestamp=f"2026-11-23T12:{n // 60 % 60:02d}:{n % 60:02d}Z", at=NOW)
                    for n in range(3000)])
    store.close()
    proc = subprocess.run(f"set -o pipefail; {sys.executable} -m ocppsec.cli.main events export --store "
                          f"{tmp_path / 'e.db'} | head -1", shell=True, executable="/bin/bash", capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" and proc.stdout.count("\n") == 1


# -- --json: one error object on stdout for every command --------------------------------------------------------
def _commands(command: click.Command = cli, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    if isinstance(command, click.Group):
        for name in command.list_commands(click.Context(command)):
            sub = command.get_command(click.Context(command), name)
            assert sub is not None
            yield from _commands(sub, (*path, name))
        if path and command.invoke_without_command:  # ``gateway`` runs without a subcommand
            yield path, command
    else:
        yield path, command


JSON_COMMANDS = [" ".join(p) for p, c in _commands() if any("--json" in o.opts for o in c.params)]


@pytest.mark.parametrize("command", JSON_COMMANDS)
def test_json_usage_error_is_one_json_object(command: str) -> None:
    result = invoke(*command.split(), "--no-such-option", "--json")
    assert result.code == 2, result
    error = result.json_error()
    assert error["type"] == "UsageError" and "--no-such-option" in error["message"]
    assert_one_line_error(result, 2, "--no-such-option")


def test_the_gateway_has_json_errors() -> None:
    assert {"gateway", "gateway status"} <= set(JSON_COMMANDS)


def test_gateway_start_failure_with_json(tmp_path: Path) -> None:
    sock, port = _taken_port()
    with sock:
        result = invoke("gateway", "--listen", f"127.0.0.1:{port}", "--profile", "1", "--upstream",
                        "ws://127.0.0.1:9/ocpp", "--stations", tmp_path / "st.db", "--admin", "off", "--json")
    assert result.code == 3, result
    error = result.json_error()
    assert error["type"] == "FileError" and f"cannot listen on 127.0.0.1:{port}" in str(error["message"])


def test_gateway_admin_port_in_use_is_an_io_error(tmp_path: Path) -> None:
    sock, port = _taken_port()
    with sock:
        result = invoke("gateway", "--listen", f"127.0.0.1:{free_port()}", "--profile", "1", "--upstream",
                        "ws://127.0.0.1:9/ocpp", "--stations", tmp_path / "st.db", "--admin", f"127.0.0.1:{port}")
    assert_one_line_error(result, 3, f"--admin: cannot listen on 127.0.0.1:{port}", "--admin off")


def test_gateway_check_config_with_json(tmp_path: Path) -> None:
    args = ["gateway", "--profile", "1", "--upstream", "ws://127.0.0.1:9/ocpp", "--stations", str(tmp_path / "st.db"),
            "--check-config", "--json"]
    good = invoke(*args, "--listen", "127.0.0.1:8080")
    assert good.code == 0, good
    report = json.loads(good.out)
    assert report["ok"] is True and report["error"] is None and "--stations " + str(tmp_path / "st.db") in report["checked"]
    bad = invoke(*args, "--listen", "127.0.0.1:notaport", "--crl", tmp_path / "missing.crl")
    assert bad.code == 2, bad
    report = json.loads(bad.out)
    assert report["ok"] is False and report["error"]["exit_code"] == 2
    assert any(p.startswith("--listen") for p in report["problems"]), report
    assert bad.err.strip().splitlines()[-2] == "error: the configuration: 2 problem(s)", bad.err
    assert "problem: --crl" not in bad.err or "missing.crl does not exist" in bad.err


def test_ctrl_c_in_gateway_status_exits_130_with_json() -> None:
    """A listener that accepts and never answers: the request waits, Ctrl-C ends it."""
    sock, port = _taken_port()
    with sock:
        proc = process("gateway", "status", "--admin", f"http://127.0.0.1:{port}", "--timeout", "60", "--json",
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        sock.settimeout(60)
        conn, _ = sock.accept()  # the request is on its way
        with conn:
            code, err = _interrupt_with_output(proc)
    assert code == 130, err
    assert err.strip().splitlines()[-1] == "error: interrupted" and "Traceback" not in err


def _interrupt_with_output(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert json.loads(out)["error"]["exit_code"] == 130, out
    return proc.returncode, err


def test_every_stations_command_answers_json(tmp_path: Path) -> None:
    db = tmp_path / "st.db"
    added = invoke("stations", "add", "CS-7", "--generate", "--profile", "3", "--stations", db, "--json")
    assert added.code == 0, added
    downgrade = invoke("stations", "profile-downgrade", "CS-7", "--allow", "--stations", db, "--json")
    assert downgrade.code == 0 and json.loads(downgrade.out) == {"identity": "CS-7", "allow_downgrade": True}, downgrade
    unknown = invoke("stations", "profile-downgrade", "CS-8", "--forbid", "--stations", db, "--json")
    assert unknown.code == 2 and "not registered" in str(unknown.json_error()["message"]), unknown
    pending = invoke("stations", "set-password", "CS-7", "--generate", "--pending", "--stations", db, "--json")
    assert pending.code == 0, pending
    confirmed = invoke("stations", "confirm-password", "CS-7", "--stations", db, "--json")
    assert confirmed.code == 0 and json.loads(confirmed.out) == {"identity": "CS-7", "confirmed": True}, confirmed
    removed = invoke("stations", "remove", "CS-7", "--stations", db, "--json")
    assert removed.code == 0 and json.loads(removed.out) == {"identity": "CS-7", "removed": True}, removed
    assert json.loads(invoke("stations", "list", "--stations", db, "--json").out) == []


def test_json_error_carries_requirement_and_hint(tmp_path: Path) -> None:
    bad = tmp_path / "c.csr"
    bad.write_text("-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n")
    result = invoke("pki", "issue", tmp_path, "--ca", "csms-root", "--csr", bad, "--json", env=ENV)
    error = result.json_error()
    assert result.code == 1 and error["type"] == "InputError" and error["requirement"] == "A02.FR.03"
    assert not error["message"].startswith("[")


# -- I/O errors are exit 3 naming the path, never "internal error" or a temporary file -------------------------
def test_a_key_into_a_missing_directory(tmp_path: Path) -> None:
    result = invoke("pki", "csr", "--cn", "CS-1", "--org", "ACME CSO", "--key-out", tmp_path / "nodir" / "x.key", env=ENV)
    assert_one_line_error(result, 3, f"cannot write {tmp_path / 'nodir' / 'x.key'}", "does not exist")
    assert ".tmp" not in result.err


def test_pki_init_where_no_directory_can_be(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("a file")
    result = invoke("pki", "init", tmp_path / "file" / "pki", env=ENV)
    assert_one_line_error(result, 3, "cannot create PKI directory", str(tmp_path / "file"))


def _taken_port() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock, int(sock.getsockname()[1])


def test_a_port_in_use(pki: Path, tmp_path: Path) -> None:
    sock, port = _taken_port()
    with sock:
        commands = [
            ["gateway", "--listen", f"127.0.0.1:{port}", "--profile", "1", "--upstream", "ws://127.0.0.1:9/ocpp",
             "--stations", str(tmp_path / "st.db")],
            ["ocsp", "serve", str(pki / "pki"), "--listen", f"127.0.0.1:{port}"],
            ["events", "receive", "--listen", f"127.0.0.1:{port}", "--dir", str(tmp_path / "up"), "--store",
             str(tmp_path / "e.db")],
        ]
        for args in commands:
            result = invoke(*args, env=ENV)
            assert_one_line_error(result, 3, f"cannot listen on 127.0.0.1:{port}")
            assert "address already in use" in result.err.lower()


def test_an_unexpected_exception_is_an_internal_error(pki: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ocppsec.cli.pki

    def boom(*_args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(ocppsec.cli.pki, "guess_profile", boom)
    result = invoke("pki", "lint", pki / "root.pem")
    assert result.code == 3
    assert result.err.startswith("error: internal error: RuntimeError: boom") and "please report it" in result.err
    assert "Traceback" not in result.err
    debug = invoke("pki", "lint", pki / "root.pem", env={"OCPPSEC_DEBUG": "1"})
    assert debug.code == 3 and "Traceback" in debug.err and "RuntimeError: boom" in debug.err


# -- errors that say what to do ------------------------------------------------------------------------------
def _gateway(pki: Path, tmp_path: Path, cert: Path, key: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return process("gateway", "--listen", f"127.0.0.1:{free_port()}", "--profile", "2", "--upstream",
                   "ws://127.0.0.1:9/ocpp", "--server-cert", cert, "--server-key", key, "--stations",
                   tmp_path / "st.db", env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                   stdin=subprocess.DEVNULL)


def test_gateway_wrong_passphrase_says_so(pki: Path, tmp_path: Path) -> None:
    proc = _gateway(pki, tmp_path, pki / "ec.pem", pki / "ec.key", {"OCPPSEC_PASSPHRASE": "not it"})
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert err.splitlines()[0] == f"error: wrong passphrase for {pki / 'ec.key'} (check OCPPSEC_PASSPHRASE)"


def test_gateway_mismatched_pair_names_both_files(pki: Path, tmp_path: Path) -> None:
    result = invoke("gateway", "--listen", "127.0.0.1:0", "--profile", "2", "--upstream", "ws://127.0.0.1:9/ocpp",
                    "--server-cert", pki / "ec.pem", "--server-key", pki / "rsa.key", "--stations", tmp_path / "st.db",
                    env=ENV)
    assert_one_line_error(result, 2, f"server certificate {pki / 'ec.pem'} and key {pki / 'rsa.key'} do not match")


def test_gateway_serves_with_the_exported_combined_pem(pki: Path, tmp_path: Path) -> None:
    proc = _gateway(pki, tmp_path, pki / "ec-combined.pem", pki / "ec-combined.pem", ENV)
    wait_for_line(proc.stderr, "gateway listening on")
    assert _interrupt(proc)[0] == 130


def test_events_receive_encrypted_key_without_passphrase_never_prompts(pki: Path, tmp_path: Path) -> None:
    result = invoke("events", "receive", "--listen", "127.0.0.1:0", "--dir", tmp_path / "up", "--store",
                    tmp_path / "e.db", "--server-cert", pki / "ec.pem", "--server-key", pki / "ec.key",
                    unset=["OCPPSEC_PASSPHRASE"])
    assert_one_line_error(result, 2, f"{pki / 'ec.key'} is encrypted and no passphrase was given", "OCPPSEC_PASSPHRASE")


def test_firmware_sign_with_the_exported_combined_pem(pki: Path, tmp_path: Path) -> None:
    image = tmp_path / "fw.bin"
    image.write_bytes(os.urandom(100_000))
    fw = tmp_path / "fw.pem"
    fw.write_text(certificates_to_pem([PkiDirectory.open(pki / "pki").chain_of("firmware-signing")[0]]))
    signed = invoke("firmware", "sign", image, "--key", pki / "fw-combined.pem", "--cert", fw, env=ENV)
    assert signed.code == 0, signed
    verified = invoke("firmware", "verify", image, "--signature", signed.out.strip(), "--cert", fw, "--root",
                      pki / "mf-root.pem")
    assert verified.code == 0, verified


def test_pki_verify_with_the_wrong_roots_names_them(pki: Path, tmp_path: Path) -> None:
    chain = tmp_path / "ec.pem"
    chain.write_text((pki / "ec.pem").read_text())
    result = invoke("pki", "verify", chain, "--trust", pki / "mf-root.pem")
    assert_one_line_error(result, 1, "no path to the given roots", "hint: the chain ends with a certificate issued by",
                          "Manufacturer")
    assert "candidates exhausted" not in result.err


# -- start-up: what --help and pki verify import -----------------------------------------------------------------
def _imported_after(args: list[str]) -> set[str]:
    code = ("import json, sys\n"
            "from ocppsec.cli.main import main\n"
            "try:\n"
            f"    main({args!r})\n"
            "except SystemExit:\n"
            "    pass\n"
            "sys.stderr.write(json.dumps(sorted(sys.modules)))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False,
                          cwd=REPO)
    return set(json.loads(proc.stderr.strip().splitlines()[-1]))


HEAVY = ("websockets", "aiohttp", "psycopg", "ocpp", "asyncio", "sqlite3")


def test_help_imports_no_command_and_no_heavy_package() -> None:
    modules = _imported_after(["--help"])
    assert not {m for m in modules if m.split(".")[0] in HEAVY}
    assert "cryptography.x509" not in modules and "cryptography" not in modules
    assert not {m for m in modules if m.startswith("ocppsec.") and m not in (
        "ocppsec.cli", "ocppsec.cli.main", "ocppsec.cli._app", "ocppsec.pki", "ocppsec.pki.errors")}


def test_pki_verify_imports_no_network_or_database_stack(pki: Path) -> None:
    modules = _imported_after(["pki", "verify", str(pki / "ec.pem"), "--trust", str(pki / "root.pem")])
    assert not {m for m in modules if m.split(".")[0] in ("websockets", "aiohttp", "psycopg", "ocpp")}
    assert "ocppsec.pki.directory" not in modules and "sqlite3" not in modules


def test_firmware_sign_imports_no_verifier(pki: Path, tmp_path: Path) -> None:
    image = tmp_path / "fw.bin"
    image.write_bytes(b"firmware")
    modules = _imported_after(["firmware", "sign", str(image), "--key", str(pki / "ec.key"), "--cert", str(pki / "ec.pem")])
    assert "cryptography.hazmat.primitives.asymmetric.ec" in modules  # it did load the key
    assert not {m for m in modules if m.split(".")[0] in HEAVY}
    assert "ocppsec.firmware_signing.verification" not in modules and "ocppsec.pki.chain" not in modules


def test_help_lists_each_command_with_its_own_first_line() -> None:
    for name, (target, short) in SUBCOMMANDS.items():
        command = cli.get_command(click.Context(cli), name)
        assert command is not None, target
        assert (command.help or "").strip().splitlines()[0] == short, name


# -- firmware sign: the image is hashed from the first moment ----------------------------------------------------
def test_the_early_start_knows_every_option_of_firmware_sign() -> None:
    sign = cli.get_command(click.Context(cli), "firmware").get_command(click.Context(cli), "sign")  # type: ignore[union-attr]
    assert sign is not None
    options = [p for p in sign.params if isinstance(p, click.Option)]
    assert {o for p in options if not p.is_flag for o in p.opts} == _prefetch.VALUE_OPTIONS
    assert {o for p in options if p.is_flag for o in p.opts} == _prefetch.FLAG_OPTIONS


@pytest.mark.parametrize(
    ("args", "image"),
    [
        (["fw.bin", "--key", "k", "--cert", "c"], "fw.bin"),
        (["--key", "k", "--cert", "c", "fw.bin"], "fw.bin"),
        (["--key=k", "--json", "--location", "https://x/fw", "fw.bin"], "fw.bin"),
        (["--", "-fw.bin"], "-fw.bin"),
        (["--help"], None),
        (["--key", "k", "--unknown", "fw.bin"], None),
        (["-h", "fw.bin"], None),
        ([], None),
    ],
)
def test_the_early_start_reads_the_image_argument(args: list[str], image: str | None) -> None:
    assert _prefetch.image_argument(args) == image


@pytest.mark.parametrize("fork", [True, False], ids=["child process", "thread (no fork)"])
def test_the_early_digest_is_used_only_for_the_same_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          fork: bool) -> None:
    if not fork:
        monkeypatch.delattr(os, "fork")
    first, second = tmp_path / "a.bin", tmp_path / "b.bin"
    first.write_bytes(b"a" * 1000)
    second.write_bytes(b"a" * 1000)
    interval = sys.getswitchinterval()
    _prefetch.start([str(first)])
    assert sys.getswitchinterval() == (interval if fork else _prefetch.SWITCH_INTERVAL)
    assert _prefetch.take(str(second)) is None  # another file: hashed by the command itself
    assert sys.getswitchinterval() == interval
    _prefetch.start([str(first)])
    pending = _prefetch.take(str(first))
    assert isinstance(pending, _prefetch.ForkedDigest) == fork
    assert pending is not None and pending.result().value == hashlib.sha256(b"a" * 1000).digest()
    _prefetch.start([str(tmp_path / "missing.bin")])  # nothing to start: the command reports it
    assert _prefetch.take(str(tmp_path / "missing.bin")) is None
    _prefetch.start([str(tmp_path)])  # a directory: the same
    assert _prefetch.take(str(tmp_path)) is None


def _no_child_left(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def test_the_forked_digest_reports_progress_and_leaves_no_child(tmp_path: Path) -> None:
    image = tmp_path / "fw.bin"
    data = os.urandom(_prefetch.SLICE * 2 + 12345)  # three slices, the last one short
    image.write_bytes(data)
    pending = _prefetch.ForkedDigest(str(image))
    pid = pending._pid
    assert pid is not None and pending.same_file(str(image))
    steps: list[int] = []
    digest = pending.result(steps.append)
    assert (digest.algorithm, digest.value, digest.size) == ("sha256", hashlib.sha256(data).digest(), len(data))
    assert len(steps) == 3 and sum(steps) == len(data) == pending.done
    assert _no_child_left(pid)
    pending.cancel()  # a no-op once the result is in


def test_the_forked_digest_falls_back_to_reading_a_file_it_cannot_map(tmp_path: Path) -> None:
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    digest = _prefetch.ForkedDigest(str(empty)).result()
    assert (digest.value, digest.size) == (hashlib.sha256(b"").digest(), 0)


@pytest.mark.parametrize("when", ["at once", "after the first slice"])
def test_an_image_truncated_while_the_child_hashes_it_is_an_io_error(tmp_path: Path, when: str) -> None:
    from ocppsec.pki.errors import FileError

    image = tmp_path / "fw.bin"
    with image.open("wb") as f:
        f.truncate(768 << 20)  # sparse: hashing it takes the child about half a second
    pending = _prefetch.ForkedDigest(str(image))
    statuses: list[int] = []
    reap = pending._reap
    pending._reap = lambda: statuses.append(reap()) or statuses[-1]  # type: ignore[method-assign]
    if when == "at once":  # before or while the child maps it, or (rarely) later: each is a changed image
        os.truncate(image, 4096)
    with pytest.raises(FileError, match="changed while it was being hashed") as info:
        pending.result(lambda _n: os.truncate(image, 4096))  # after a slice: the next one is past the end
    assert info.value.exit_code == 3
    if when != "at once":  # the child died of the fault, and the command did not
        assert os.WIFSIGNALED(statuses[0]) and os.WTERMSIG(statuses[0]) == signal.SIGBUS


def test_a_cancelled_forked_digest_stops_its_child(tmp_path: Path) -> None:
    from ocppsec.pki.errors import FileError

    image = tmp_path / "fw.bin"
    with image.open("wb") as f:
        f.truncate(768 << 20)
    pending = _prefetch.ForkedDigest(str(image))
    pid = pending._pid
    assert pid is not None
    pending.cancel()
    assert _no_child_left(pid)
    with pytest.raises(FileError, match="cancelled"):
        pending.result()


def test_a_usage_error_leaves_no_child_hashing_the_image(tmp_path: Path) -> None:
    image = tmp_path / "unclaimed-fw.bin"
    with image.open("wb") as f:
        f.truncate(2 << 30)  # sparse: a child would hash it for more than a second
    proc = process("firmware", "sign", image, "--cert", tmp_path / "fw.pem", stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE)  # no --key: click refuses it after the early start began
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "--key" in err
    left = subprocess.run(["pgrep", "-f", str(image)], capture_output=True, text=True, check=False)
    assert left.stdout == "", f"a process still has the image: {left.stdout}"


def test_firmware_sign_gives_the_same_digest_started_early_or_not(pki: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    image = tmp_path / "fw.bin"
    image.write_bytes(os.urandom(3 << 20))
    fw = tmp_path / "fw.pem"
    fw.write_text(certificates_to_pem([PkiDirectory.open(pki / "pki").chain_of("firmware-signing")[0]]))
    args = ("firmware", "sign", image, "--key", pki / "fw-combined.pem", "--cert", fw)
    early = invoke(*args, env=ENV)
    monkeypatch.setattr(_prefetch, "start", lambda _args: None)  # the forked command hashes the image itself
    late = invoke(*args, env=ENV)
    assert early.code == late.code == 0, (early, late)
    assert early.err.split()[1] == late.err.split()[1] == "sha256:" + hashlib.sha256(image.read_bytes()).hexdigest()
