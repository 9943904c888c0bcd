"""The gateway's reload (SIGHUP) part by part: CRLs and the registry read again at once, a bad file keeps
the last good state; the config file's keys; the JSON log lines; systemd's notify socket."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ocppsec.pki.errors import UsageError
from ocppsec.pki.hierarchy import Hierarchy, HierarchyConfig
from ocppsec.pki.revocation.crl import CrlEntry, build_crl
from ocppsec.pki.versions import OcppVersion
from ocppsec.security_profiles.gateway import Gateway
from ocppsec.security_profiles.gateway.config import normalise_key, parse_admin, read_config, to_defaults
from ocppsec.security_profiles.gateway.logs import JsonFormatter
from ocppsec.security_profiles.gateway.reload import Reloader
from ocppsec.security_profiles.gateway.revocation import StationCertificate, Status
from ocppsec.security_profiles.gateway.revocation_io import CrlFile, RevocationChecker
from ocppsec.security_profiles.handshake import ServerPolicy
from ocppsec.security_profiles.registry import MemoryRegistry, StationRecord
from ocppsec.security_profiles.registry_snapshot import RegistrySnapshot

from .conftest import Pki, free_port
from .helpers import run


@pytest.fixture(scope="module")
def h() -> Hierarchy:
    return Hierarchy.build(HierarchyConfig.default(cso_name="Example CSO"), at=datetime.now(UTC) - timedelta(days=1))


def _crl(h: Hierarchy, revoked: list[int], number: int) -> bytes:
    ca = h.ca("csms-root")
    at = datetime.now(UTC)
    crl = build_crl(ca.certificate, ca.key, [CrlEntry(s, at - timedelta(minutes=10), x509.ReasonFlags.key_compromise)
                                              for s in revoked], at=at - timedelta(minutes=5), number=number)
    return crl.public_bytes(Encoding.PEM)


def test_reload_reads_crls_and_the_registry_now_and_keeps_the_last_good(h: Hierarchy, tmp_path: Path) -> None:
    issued = h.issue_leaf("charging-station", ca="csms-root", subject={"O": "Example CSO", "CN": "SN-1"},
                          at=datetime.now(UTC) - timedelta(hours=1))
    cert = StationCertificate.from_der(issued.certificate.public_bytes(Encoding.DER))
    path = tmp_path / "root.crl"
    path.write_bytes(_crl(h, [], 1))
    root = h.ca("csms-root").certificate
    source = CrlFile(path, poll=3600)  # never polled within the test: only the reload reads it
    checker = RevocationChecker(issuers=[root], crls=[source])
    backing = MemoryRegistry([StationRecord("CS-1", 1)])
    snapshot = RegistrySnapshot(backing, interval=3600)
    snapshot.start()
    gw = Gateway(policy=ServerPolicy(frozenset({1}), (OcppVersion.V201,), None, "/"), registry=snapshot,
                 upstream="ws://127.0.0.1:1/")
    reloader = Reloader(gw, revocation=checker, registry=snapshot, roots=lambda: [root])
    changes: list[str] = []

    async def main() -> None:
        await checker.start()
        checker.add_listener(changes.append)
        try:
            assert checker.verdict_now(cert).status is Status.GOOD
            path.write_bytes(_crl(h, [cert.serial], 2))
            backing.add(StationRecord("CS-2", 1))
            result = await reloader.reload()
            assert result.ok and result.reloaded == ("revocation", "registry"), result
            assert checker.verdict_now(cert).status is Status.REVOKED
            assert changes == ["reload"]
            assert snapshot.get("CS-2") is not None
            path.write_bytes(b"garbage")
            result = await reloader.reload()
            assert not result.ok and any(f"CRL {path}" in p for p in result.problems), result
            assert checker.verdict_now(cert).status is Status.REVOKED  # the last good CRL stays in force
            path.write_bytes(_crl(h, [], 1))  # an older CRL than the one in force is refused
            result = await reloader.reload()
            assert not result.ok and any("older CRL" in p for p in result.problems), result
            assert checker.verdict_now(cert).status is Status.REVOKED
            assert reloader.stats.ok == 1 and reloader.stats.failed == 2
        finally:
            await checker.stop()
            snapshot.close()

    run(main())


def test_a_failed_tls_reload_keeps_the_context() -> None:
    gw = Gateway(policy=ServerPolicy(frozenset({1}), (OcppVersion.V201,), None, "/"), registry=MemoryRegistry([]),
                 upstream="ws://127.0.0.1:1/")

    def broken() -> object:
        raise UsageError("cannot load server certificate x.pem")

    reloader = Reloader(gw, tls=broken)  # type: ignore[arg-type]
    result = run(reloader.reload())
    assert not result.ok and "cannot load server certificate x.pem" in result.problems[0]
    assert gw.ssl_context is None


def test_config_keys(tmp_path: Path) -> None:
    options = {"listen": "listen", "server-cert": "server_certs", "server_certs": "server_certs", "workers": "workers"}
    data = {"listen": "0.0.0.0:8443", "server_cert": "a.pem", "workers": 2}
    assert to_defaults(data, options, multiple={"server_certs"}) == {"listen": "0.0.0.0:8443", "server_certs": ["a.pem"],
                                                                     "workers": 2}
    with pytest.raises(UsageError) as err:
        to_defaults({"listen": ["a"], "workerz": 1, "server-cert": {"x": 1}}, options, multiple={"server_certs"},
                    suggest=["listen", "server-cert", "workers"])
    message = err.value.message
    assert "key 'listen' takes one value" in message
    assert "unknown key 'workerz' (did you mean 'workers'?)" in message
    assert "key 'server-cert' takes a list of strings" in message
    with pytest.raises(UsageError, match="sets 'server_certs' a second time"):
        to_defaults({"server_cert": "a", "server_certs": "b"}, options, multiple={"server_certs"})
    assert normalise_key("--Server-Cert") == "server_cert"
    bad = tmp_path / "bad.toml"
    bad.write_text("listen = \n")
    with pytest.raises(UsageError, match="not valid TOML"):
        read_config(bad)
    with pytest.raises(UsageError, match="does not exist"):
        read_config(tmp_path / "missing.toml")
    assert parse_admin("off") is None
    assert str(parse_admin("127.0.0.1:9443")) == "127.0.0.1:9443"
    assert parse_admin("unix:/run/x.sock").path == "/run/x.sock"  # type: ignore[union-attr]
    with pytest.raises(UsageError):
        parse_admin("localhost")


def test_json_formatter_keeps_fields() -> None:
    record = logging.LogRecord("ocppsec.x", logging.WARNING, __file__, 1, "closing %s", ("CS-1",), None)
    record.station = "CS-1"
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "closing CS-1" and line["station"] == "CS-1" and line["level"] == "warning"
    assert line["logger"] == "ocppsec.x" and line["timestamp"].endswith("+00:00")


def test_sd_notify_ready_reloading_stopping(pki: Pki, tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(20)
    port = free_port()
    cmd = [sys.executable, "-m", "ocppsec.cli.main", "gateway", "--listen", f"127.0.0.1:{port}", "--profile", "2",
           "--upstream", "ws://127.0.0.1:1/csms", "--server-cert", str(pki.rsa.certfile), "--server-key",
           str(pki.rsa.keyfile), "--stations", str(tmp_path / "st.db"), "--admin", "off"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "NOTIFY_SOCKET": path})
    try:
        assert sock.recv(4096).decode().splitlines()[0] == "READY=1"
        proc.send_signal(signal.SIGHUP)
        assert sock.recv(4096).decode().startswith("RELOADING=1\nMONOTONIC_USEC=")
        assert sock.recv(4096).decode() == "READY=1"
        proc.send_signal(signal.SIGTERM)
        assert sock.recv(4096).decode() == "STOPPING=1"
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
        sock.close()


def test_every_gateway_option_is_a_config_key() -> None:
    import click

    from ocppsec.cli.gateway import _config_options, gateway

    options, multiple, suggest = _config_options(gateway)
    for param in gateway.params:
        if not isinstance(param, click.Option) or param.name in ("config", "help"):
            continue
        long = [o[2:] for o in param.opts if o.startswith("--")]
        assert long and all(options[name] == param.name for name in long), param.name
        assert (param.name in multiple) == param.multiple
    assert "config" not in options and "help" not in options
    assert {"listen", "server-cert", "crl", "workers", "admin", "drain-seconds", "log-format"} <= set(suggest)


def test_a_reloaded_context_is_prepared_as_serve_prepares_one(pki: Pki) -> None:
    from ocppsec.security_profiles._tls_alert import AlertingSSLObject
    from ocppsec.security_profiles.tls import server_context

    gw = Gateway(policy=ServerPolicy(frozenset({2}), (OcppVersion.V201,), None, "/"), registry=MemoryRegistry([]),
                 upstream="ws://127.0.0.1:1/", ssl_context=server_context(pki.server_chains))
    fresh = server_context(pki.server_chains)
    gw.set_ssl_context(fresh)
    assert gw.ssl_context is fresh and fresh.sslobject_class is AlertingSSLObject
    with pytest.raises(UsageError, match="between TLS and plain"):
        gw.set_ssl_context(None)
