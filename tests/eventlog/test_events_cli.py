"""`ocppsec events ...`: the CLI over a real store, in-process (CliRunner via main) and as a subprocess."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ocppsec.cli.main import main
from ocppsec.eventlog.store import EventQuery
from ocppsec.eventlog.store_sql import open_store
from ocppsec.pki.events.model import normalize_event
from ocppsec.pki.versions import OcppVersion

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(["events", *args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = tmp_path / "events.db"
    store = open_store(path)
    events = [
        normalize_event(station_id=f"CS{i % 3}", type=t, timestamp=T0 + timedelta(minutes=i), tech_info=f"n{i}",
                        at=T0, ocpp_version=OcppVersion.V201)
        for i, t in enumerate(["StartupOfTheDevice", "InvalidMessages", "InvalidCsmsCertificate", "=cmd|' /C calc'!A0",
                               "ResetOrReboot", "InvalidMessages"])
    ]
    events.append(normalize_event(station_id="CS1", type="Evil", timestamp=T0, tech_info="\x1b[2J", at=T0))
    store.add_many(events)
    store.close()
    return str(path)


def test_query_table_json_csv(capsys: pytest.CaptureFixture[str], db: str) -> None:
    code, out, _ = run(capsys, "query", "--store", db, "--station", "CS0")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["id", "timestamp", "station", "type", "critical", "techInfo", "flags"]
    assert len(lines) == 4 and "StartupOfTheDevice" in lines[2]

    code, out, _ = run(capsys, "query", "--store", db, "--critical", "--json")
    data = json.loads(out)
    assert code == 0 and {d["type"] for d in data} == {"StartupOfTheDevice", "InvalidCsmsCertificate", "ResetOrReboot"}

    code, out, _ = run(capsys, "query", "--store", db, "--csv", "--since", "2026-11-01T00:03:00Z",
                       "--until", "2026-11-01T00:05:00Z")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["type"] for r in rows] == ["'=cmd|' /C calc'!A0", "ResetOrReboot"]  # no formula injection


def test_terminal_escapes_are_shown_escaped(capsys: pytest.CaptureFixture[str], db: str) -> None:
    _, out, _ = run(capsys, "query", "--store", db, "--type", "Evil")
    assert "\x1b" not in out and "\\x1b[2J" in out


def test_type_filter_accepts_16_names(capsys: pytest.CaptureFixture[str], db: str) -> None:
    _, out, _ = run(capsys, "query", "--store", db, "--type", "InvalidCentralSystemCertificate", "--json")
    assert [d["type"] for d in json.loads(out)] == ["InvalidCsmsCertificate"]


def test_stats(capsys: pytest.CaptureFixture[str], db: str) -> None:
    code, out, _ = run(capsys, "stats", "--store", db)
    assert code == 0
    assert out.splitlines()[0].split() == ["station", "type", "count", "critical", "first", "last"]
    assert out.splitlines()[-1] == "7 events, 3 stations"
    _, out, _ = run(capsys, "stats", "--store", db, "--json")
    assert sum(r["count"] for r in json.loads(out)) == 7


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_export(capsys: pytest.CaptureFixture[str], db: str, tmp_path: Path, fmt: str) -> None:
    target = tmp_path / f"out.{fmt}"
    code, _, err = run(capsys, "export", "--store", db, "--format", fmt, "-o", str(target))
    assert code == 0 and "exported 7 events" in err
    text = target.read_text()
    if fmt == "jsonl":
        records = [json.loads(line) for line in text.splitlines()]
        assert len(records) == 7 and records[0]["timestamp"] == "2026-11-01T00:00:00.000Z"
    else:
        assert len(list(csv.DictReader(io.StringIO(text)))) == 7
    code, out, _ = run(capsys, "export", "--store", db, "--station", "CS2")
    assert code == 0 and len(out.splitlines()) == 2


def test_tail_follows_new_events(capsys: pytest.CaptureFixture[str], db: str) -> None:
    def writer() -> None:
        time.sleep(0.4)
        store = open_store(db)
        store.record(normalize_event(station_id="CS9", type="TamperDetectionActivated", timestamp=T0, at=T0))
        store.close()

    thread = threading.Thread(target=writer)
    thread.start()
    code, out, _ = run(capsys, "tail", "--store", db, "--interval", "0.1", "--count", "1", "--timeout", "10", "--json")
    thread.join()
    assert code == 0
    (line,) = out.splitlines()
    assert json.loads(line)["stationId"] == "CS9"
    code, out, _ = run(capsys, "tail", "--store", db, "--from-start", "--count", "2")
    assert code == 0 and len(out.splitlines()) == 2


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["query", "--store", "/nonexistent/dir/e.db"], 3, "does not exist"),
        (["query", "--json", "--csv"], 2, "exclude each other"),
        (["query", "--since", "last tuesday"], 2, "cannot read time"),
        (["query", "--store", "mysql://h/db"], 2, "unsupported event store"),
        (["receive", "--listen", "nonsense", "--dir", "x"], 2, "HOST:PORT"),
        (["receive", "--listen", "127.0.0.1:0", "--dir", "x", "--basic-auth-from-env", "OCPPSEC_TEST_UNSET"], 2,
         "user:password"),
        (["catalogue", "--version", "3.0"], 2, "unknown OCPP version"),
    ],
)
def test_errors_are_one_line_with_exit_codes(capsys: pytest.CaptureFixture[str], db: str, args: list[str], code: int,
                                             message: str) -> None:
    if "--store" not in args and args[0] == "query":
        args = [*args, "--store", db]
    got, _, err = run(capsys, *args)
    assert got == code
    assert message in err and "Traceback" not in err
    assert err.startswith("error:")


def test_postgres_url_store(capsys: pytest.CaptureFixture[str], pg_url: str) -> None:
    store = open_store(pg_url)
    store.record(normalize_event(station_id="PG1", type="FirmwareUpdated", timestamp=T0, at=T0))
    store.close()
    code, out, _ = run(capsys, "query", "--store", pg_url, "--json")
    assert code == 0 and json.loads(out)[0]["stationId"] == "PG1"


def test_catalogue(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "catalogue", "--version", "1.6", "--json")
    names = {d["name"]: d["critical"] for d in json.loads(out)}
    assert names["InvalidCentralSystemCertificate"] is False and "MaintenanceLoginFailed" not in names


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_receive_as_a_subprocess(tmp_path: Path, tls: bool) -> None:
    """The console command end to end: start, upload a station log with Basic auth, query, stop."""
    import ssl

    import trustme

    from ocppsec.eventlog.logfile import render_log
    from ocppsec.eventlog.upload import http_upload

    db = tmp_path / "events.db"
    env = {**os.environ, "LOGS_AUTH": "logs:pw"}
    command = [sys.executable, "-m", "ocppsec.cli.main", "events", "receive", "--listen", "127.0.0.1:0",
               "--dir", str(tmp_path / "up"), "--store", str(db), "--basic-auth-from-env", "LOGS_AUTH"]
    context = None
    if tls:
        ca = trustme.CA()
        leaf = ca.issue_cert("127.0.0.1")
        leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
        for pem in leaf.cert_chain_pems[1:]:
            pem.write_to_path(str(tmp_path / "cert.pem"), append=True)
        leaf.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
        command += ["--server-cert", str(tmp_path / "cert.pem"), "--server-key", str(tmp_path / "key.pem")]
        context = ssl.create_default_context()
        ca.configure_trust(context)
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    scheme = "https" if tls else "http"
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith(f"listening on {scheme}://127.0.0.1:"), line + (proc.stderr.read() if proc.stderr else "")
        base = line.split()[2]
        events = [normalize_event(station_id="CS5", type="StartupOfTheDevice", timestamp=T0, at=T0)]
        data = render_log(events, station_id="CS5", at=T0)
        url = base.replace(f"{scheme}://", f"{scheme}://logs:pw@") + "logs/CS5/3/"
        result = http_upload(url, data, "CS5.log", method="POST", ssl_context=context)
        assert result.status_code == 200, result
        assert http_upload(base + "logs/CS5/3/", data, "CS5.log", ssl_context=context).status_code == 401
        if tls:
            proc.terminate()  # SIGTERM: a graceful stop, exit 0
            assert proc.wait(20) == 0
        else:
            proc.send_signal(signal.SIGINT)  # Ctrl-C: a graceful stop, then the "interrupted" exit code
            assert proc.wait(20) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (tmp_path / "up" / "CS5" / "3-CS5.log").exists()
    store = open_store(db)
    assert store.count(EventQuery(station_id="CS5")) == 1
    store.close()
