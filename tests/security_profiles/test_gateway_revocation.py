"""The gateway enforces revocation: real TLS on 127.0.0.1, real websockets, certificates issued by a real PKI
directory, CRL files, the ledger on SQLite and PostgreSQL, the project's OCSP responder over HTTP.

Connected stations are re-checked: a revocation, ``ocppsec stations remove`` or a changed registered profile
closes them with 1008 and their security event within 5 s. Waits are bounded and event- or poll-driven.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ocppsec.cli.main import cli
from ocppsec.pki.events.sink import MemorySink
from ocppsec.pki.ledger_sql import open_ledger
from ocppsec.security_profiles.basic_auth import hash_password
from ocppsec.security_profiles.client import connect
from ocppsec.security_profiles.gateway.revocation import FailMode
from ocppsec.security_profiles.gateway.revocation_io import (
    CrlFile,
    LedgerSource,
    OcspChecker,
    RevocationChecker,
)
from ocppsec.security_profiles.registry import StationRecord
from ocppsec.security_profiles.registry_snapshot import RegistrySnapshot
from ocppsec.security_profiles.registry_sql import open_registry

from .conftest import FAST, PASSWORD_201, Pki, free_port
from .fleet import (
    NOW,
    Fleet,
    build_template,
    closed_within,
    event_for,
    guarded,
    ocsp_responder,
    open_fleet,
    refused,
    registry_for,
    station_connects,
    until,
)
from .helpers import run, wait_event


@pytest.fixture(scope="module")
def ocsp_port() -> int:
    """The port the stations' AIA OCSP URL names (the responder of the ``auto`` test binds it)."""
    return free_port()


@pytest.fixture(scope="module")
def fleet_template(tmp_path_factory: pytest.TempPathFactory, ocsp_port: int) -> Path:
    return build_template(tmp_path_factory.mktemp("fleet") / "pki", ocsp_port)


@pytest.fixture
def fleet(fleet_template: Path, tmp_path: Path) -> Iterator[Fleet]:
    shutil.copytree(fleet_template, tmp_path / "pki")
    f = open_fleet(tmp_path / "pki", tmp_path)
    yield f
    f.pki.close()


@pytest.fixture(params=["sqlite", "postgres"])
def any_ledger_fleet(request: pytest.FixtureRequest, fleet_template: Path, tmp_path: Path) -> Iterator[Fleet]:
    """The fleet with its ledger in SQLite (``DIR/ledger.db``) or PostgreSQL (``DIR/ledger.url``)."""
    target = tmp_path / "pki"
    shutil.copytree(fleet_template, target)
    if request.param == "postgres":
        url = str(request.getfixturevalue("pg_url"))
        sqlite, pg = open_ledger(target / "ledger.db"), open_ledger(url)
        pg.add(sqlite.all())
        sqlite.close()
        pg.close()
        (target / "ledger.db").unlink()
        (target / "ledger.url").write_text(url)
    f = open_fleet(target, tmp_path)
    yield f
    f.pki.close()


# -- CRLs -----------------------------------------------------------------------------------------------------
def test_crl_file_revoked_station_is_refused_with_the_event(pki: Pki, fleet: Fleet, sink: MemorySink, port: int,
                                                             tmp_path: Path) -> None:
    bad, good = fleet.station("crl-bad"), fleet.station("crl-good")
    fleet.revoke(bad)
    crl = fleet.write_crl(tmp_path / "root.crl")
    checker = RevocationChecker(issuers=[fleet.pki.ca_certificate("csms-root")], crls=[CrlFile(crl)])

    async def main() -> None:
        async with guarded(pki, fleet, registry_for(bad, good), sink, port, free_port(), checker=checker) as (gw, guard):
            conn = await station_connects(pki, port, good)
            assert "403" in await refused(pki, port, bad)
            event = await wait_event(sink, "InvalidChargingStationCertificate")
            assert event.station_id == bad.identity
            assert f"serial {bad.serial_hex} revoked (keyCompromise) by crl {crl}" in event.tech_info
            assert "A00.FR.705" in event.tech_info
            assert guard.stats.refused == 1 and checker.checks == 2 and len(gw.sessions) == 1
            await conn.close()

    run(main())


def test_crl_file_replaced_while_running(pki: Pki, fleet: Fleet, sink: MemorySink, port: int, tmp_path: Path) -> None:
    """A new CRL file is picked up: the next handshake is refused and the connected station closed (1008)."""
    victim = fleet.station("crl-later")
    crl = fleet.write_crl(tmp_path / "root.crl")
    source = CrlFile(crl)
    checker = RevocationChecker(issuers=[fleet.pki.ca_certificate("csms-root")], crls=[source])

    async def main() -> None:
        async with guarded(pki, fleet, registry_for(victim), sink, port, free_port(), checker=checker):
            conn = await station_connects(pki, port, victim)
            fleet.revoke(victim, "superseded")
            await asyncio.to_thread(fleet.write_crl, crl)
            took = await closed_within(conn)
            event = event_for(sink, "InvalidChargingStationCertificate", victim.identity)
            assert "revoked (superseded) by crl" in event.tech_info and source.loads == 2
            assert "403" in await refused(pki, port, victim)
            print(f"closed {took:.2f} s after the CRL file was replaced")

    run(main())


@pytest.mark.parametrize("fail", [FailMode.CLOSED, FailMode.OPEN])
def test_crl_past_next_update_honours_the_fail_mode(fail: FailMode, pki: Pki, fleet: Fleet, sink: MemorySink, port: int,
                                                     tmp_path: Path) -> None:
    station = fleet.station(f"stale-{fail.value}")
    crl = fleet.write_crl(tmp_path / "stale.crl", at=NOW - timedelta(days=3), validity=timedelta(days=1))
    checker = RevocationChecker(issuers=[fleet.pki.ca_certificate("csms-root")], crls=[CrlFile(crl)], fail=fail)

    async def main() -> None:
        async with guarded(pki, fleet, registry_for(station), sink, port, free_port(), checker=checker) as (_gw, guard):
            if fail is FailMode.CLOSED:
                assert "403" in await refused(pki, port, station)
                event = await wait_event(sink, "InvalidChargingStationCertificate")
                assert "revocation status unknown" in event.tech_info and "past its nextUpdate" in event.tech_info
                assert "fail-closed" in event.tech_info
            else:
                conn = await station_connects(pki, port, station)
                assert guard.stats.admitted_unknown == 1 and not sink.events
                await conn.close()

    run(main())


# -- the ledger -----------------------------------------------------------------------------------------------
def test_ledger_revocation_refuses_and_closes(pki: Pki, any_ledger_fleet: Fleet, sink: MemorySink, port: int) -> None:
    fleet = any_ledger_fleet
    victim, bystander = fleet.station("ledger-victim"), fleet.station("ledger-bystander")
    ledger = LedgerSource.from_directory(fleet.dir, trusted=[fleet.pki.ca_certificate("csms-root")])
    assert ledger.ca_names == ("csms-root",)  # the only CA under that root: the others are not read
    checker = RevocationChecker(ledger=ledger)

    async def main() -> None:
        async with guarded(pki, fleet, registry_for(victim, bystander), sink, port, free_port(), checker=checker) as (gw, _):
            conn = await station_connects(pki, port, victim)
            other = await station_connects(pki, port, bystander)
            reads = ledger.reads
            await asyncio.to_thread(fleet.revoke, victim)  # `ocppsec pki revoke` does exactly this
            took = await closed_within(conn)
            assert ledger.reads > reads
            event = event_for(sink, "InvalidChargingStationCertificate", victim.identity)
            assert event.tech_info.startswith(f"certificate serial {victim.serial_hex} revoked (keyCompromise) by ledger")
            assert "403" in await refused(pki, port, victim)
            await other.send('[2,"2","Heartbeat",{}]')  # the other station was not touched
            assert await other.recv() == '[2,"2","Heartbeat",{}]'
            assert [s.station.identity for s in gw.sessions] == [bystander.identity]
            await other.close()
            print(f"closed {took:.2f} s after the ledger revocation")

    run(main())


# -- OCSP -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fail", [FailMode.CLOSED, FailMode.OPEN])
def test_ocsp_revoked_good_unknown(fail: FailMode, pki: Pki, fleet: Fleet, sink: MemorySink, port: int) -> None:
    good, bad, stranger = fleet.station("ocsp-good"), fleet.station("ocsp-bad"), fleet.station("ocsp-x", recorded=False)
    fleet.revoke(bad)

    async def main() -> None:
        with ocsp_responder(fleet) as (server, responder):
            checker = RevocationChecker(issuers=[fleet.pki.ca_certificate("csms-root")], ocsp=OcspChecker(server.url, timeout=30), fail=fail)
            async with guarded(pki, fleet, registry_for(good, bad, stranger), sink, port, free_port(), checker=checker):
                conn = await station_connects(pki, port, good)
                assert "403" in await refused(pki, port, bad)  # revoked: refused in both modes
                event = event_for(sink, "InvalidChargingStationCertificate", bad.identity)
                assert f"revoked (keyCompromise) by ocsp {server.url}" in event.tech_info
                if fail is FailMode.CLOSED:  # the responder does not know the certificate
                    assert "403" in await refused(pki, port, stranger)
                    event = event_for(sink, "InvalidChargingStationCertificate", stranger.identity)
                    assert "the responder does not know the certificate" in event.tech_info
                    assert "fail-closed" in event.tech_info
                else:
                    await (await station_connects(pki, port, stranger)).close()
                assert responder.stats.on_demand == 3
                await conn.close()

    run(main())


class SilentServer:
    """Accepts TCP connections and never answers (an OCSP responder that hangs)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/"

    def _run(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                self.accepted.append(self.sock.accept()[0])

    def close(self) -> None:
        self._stop.set()
        self.thread.join(5)
        for s in [*self.accepted, self.sock]:
            s.close()


@pytest.mark.parametrize("fail", [FailMode.CLOSED, FailMode.OPEN])
@pytest.mark.parametrize("failure", ["refused", "silent"])
def test_ocsp_unreachable_honours_the_fail_mode(failure: str, fail: FailMode, pki: Pki, fleet: Fleet, sink: MemorySink,
                                                 port: int) -> None:
    station, second = fleet.station(f"down-{failure}-{fail.value}"), fleet.station(f"down2-{failure}-{fail.value}")
    silent = SilentServer() if failure == "silent" else None
    url = silent.url if silent is not None else f"http://127.0.0.1:{free_port()}/"  # nothing listens there
    ocsp = OcspChecker(url, timeout=0.5, retry_after=30)
    checker = RevocationChecker(issuers=[fleet.pki.ca_certificate("csms-root")], ocsp=ocsp, fail=fail)

    async def main() -> None:
        async with guarded(pki, fleet, registry_for(station, second), sink, port, free_port(), checker=checker):
            start = time.monotonic()
            if fail is FailMode.CLOSED:
                assert "403" in await refused(pki, port, station)
                event = event_for(sink, "InvalidChargingStationCertificate", station.identity)
                assert "responder unavailable" in event.tech_info and "fail-closed" in event.tech_info
            else:
                await (await station_connects(pki, port, station)).close()
            assert time.monotonic() - start < 3  # the handshake waited at most about the OCSP timeout
            # the responder is known to be down now: the next station is not held up by another attempt
            if fail is FailMode.CLOSED:
                await refused(pki, port, second)
            else:
                await (await station_connects(pki, port, second)).close()
            assert ocsp.queries == 1

    try:
        run(main())
    finally:
        if silent is not None:
            silent.close()


def test_ocsp_auto_answers_come_from_the_cache(pki: Pki, fleet: Fleet, sink: MemorySink, port: int, ocsp_port: int) -> None:
    """``auto`` asks the responder of the certificate's AIA; a second handshake is answered from the cache."""
    station = fleet.station("ocsp-cached")
    assert f"http://127.0.0.1:{ocsp_port}/csms-root" in str(
        station.certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value)
    ocsp = OcspChecker("auto")

    async def main() -> None:
        with ocsp_responder(fleet, ocsp_port) as (_server, responder):
            checker = RevocationChecker(issuers=[fleet.pki.ca_certificate("csms-root")], ocsp=ocsp)
            async with guarded(pki, fleet, registry_for(station), sink, port, free_port(), checker=checker):
                for _ in range(3):
                    await (await station_connects(pki, port, station)).close()
                assert responder.stats.on_demand == 1  # one query at the responder for three handshakes
                assert ocsp.queries == 1 and ocsp.hits == 2

    run(main())


def test_ocsp_answer_fetched_again_closes_a_revoked_connected_station(pki: Pki, fleet: Fleet, sink: MemorySink,
                                                                      port: int) -> None:
    """A connected station's expired OCSP answer is fetched again in the background; revoked -> closed 1008."""
    station = fleet.station("ocsp-recheck")

    async def main() -> None:
        with ocsp_responder(fleet) as (server, responder):
            ocsp = OcspChecker(server.url, max_age=timedelta(seconds=1), timeout=30)
            checker = RevocationChecker(issuers=[fleet.pki.ca_certificate("csms-root")], ocsp=ocsp)
            async with guarded(pki, fleet, registry_for(station), sink, port, free_port(), checker=checker):
                conn = await station_connects(pki, port, station)
                await asyncio.to_thread(fleet.revoke, station)
                await closed_within(conn, 5)
                assert responder.stats.on_demand >= 2
                assert "revoked (keyCompromise) by ocsp" in event_for(sink, "InvalidChargingStationCertificate",
                                                                     station.identity).tech_info

    run(main())


# -- the registry ------------------------------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgres"])
def stations_spec(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return str(tmp_path / "st.db") if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))


def test_stations_remove_closes_a_connected_station(pki: Pki, fleet: Fleet, sink: MemorySink, port: int,
                                                    stations_spec: str) -> None:
    station, other = fleet.station("removed"), fleet.station("kept")
    registry = open_registry(stations_spec)
    for s in (station, other):
        registry.add(StationRecord(s.identity, 3, serial=s.serial))
    snapshot = RegistrySnapshot(registry).start()

    async def main() -> None:
        async with guarded(pki, fleet, registry, sink, port, free_port(), snapshot=snapshot) as (gw, _guard):
            conn, kept = await station_connects(pki, port, station), await station_connects(pki, port, other)
            result = await asyncio.to_thread(CliRunner().invoke, cli, ["stations", "remove", station.identity,
                                                                       "--stations", stations_spec])
            assert result.exit_code == 0, result.output
            took = await closed_within(conn)
            event = event_for(sink, "FailedToAuthenticateAtCsms", station.identity)
            assert event.tech_info == f"station {station.identity} was removed from the registry"
            await until(lambda: [s.station.identity for s in gw.sessions] == [other.identity])
            await kept.close()
            print(f"closed {took:.2f} s after `stations remove`")

    try:
        run(main())
    finally:
        snapshot.close()
        registry.close()


def test_profile_change_closes_a_connected_station(pki: Pki, fleet: Fleet, sink: MemorySink, port: int,
                                                   tmp_path: Path) -> None:
    """Profile 2 -> 3: a pending profile (A05 under way) keeps the profile-2 connection; the registered change closes it."""
    spec = str(tmp_path / "st.db")
    registry = open_registry(spec)
    registry.add(StationRecord("CS-P", 2, password_hash=hash_password(PASSWORD_201, cost=FAST)))
    snapshot = RegistrySnapshot(registry).start()
    other_node = open_registry(spec)  # the CSMS's own connection to the registry

    async def main() -> None:
        async with guarded(pki, fleet, registry, sink, port, free_port(), snapshot=snapshot,
                           profiles=frozenset({2, 3})) as (gw, guard):
            conn = await connect(f"wss://localhost:{port}/", "CS-P", profile=2, password=PASSWORD_201,
                                 csms_roots=[pki.csms_root])
            record = other_node.get("CS-P")
            assert record is not None
            version = snapshot.version
            await asyncio.to_thread(other_node.update, replace(record, pending_profile=3, serial="SN-P"))
            await until(lambda: snapshot.version > version and guard.stats.sweeps > 0)
            sweeps = guard.stats.sweeps
            await until(lambda: guard.stats.sweeps > sweeps)  # swept after the change: still connected
            await conn.send('[2,"1","Heartbeat",{}]')
            assert await conn.recv() == '[2,"1","Heartbeat",{}]'
            changed = other_node.get("CS-P")
            assert changed is not None
            await asyncio.to_thread(other_node.update, replace(changed, profile=3, pending_profile=None))
            took = await closed_within(conn)
            event = event_for(sink, "ReconfigurationOfSecurityParameters", "CS-P")
            assert "is now 3; connected at profile 2" in event.tech_info
            await until(lambda: not gw.sessions)
            print(f"closed {took:.2f} s after the profile change")

    try:
        run(main())
    finally:
        snapshot.close()
        other_node.close()
        registry.close()


# -- a CRL over HTTP ------------------------------------------------------------------------------------------------
class CrlServer:
    """Serves ``body`` at any path over HTTP on 127.0.0.1 and counts the requests."""

    def __init__(self, body: bytes) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        outer = self
        self.body = body
        self.requests = 0

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests += 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/csms-root.crl"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_crl_url_fetched_again_closes_and_refuses(pki: Pki, fleet: Fleet, sink: MemorySink, port: int, tmp_path: Path) -> None:
    from ocppsec.security_profiles.gateway.revocation_io import CrlUrl

    victim = fleet.station("crl-url")
    server = CrlServer(fleet.write_crl(tmp_path / "root.crl").read_bytes())
    source = CrlUrl(server.url, refresh=0.3)
    checker = RevocationChecker(issuers=[fleet.pki.ca_certificate("csms-root")], crls=[source])

    async def main() -> None:
        async with guarded(pki, fleet, registry_for(victim), sink, port, free_port(), checker=checker):
            conn = await station_connects(pki, port, victim)
            fleet.revoke(victim)
            server.body = fleet.write_crl(tmp_path / "root.crl").read_bytes()  # the CA publishes a new CRL
            await closed_within(conn)
            assert "403" in await refused(pki, port, victim)
            assert server.requests >= 2 and source.loads >= 2

    try:
        run(main())
    finally:
        server.close()


def test_crl_url_unreachable_at_start_counts_as_unknown(pki: Pki, fleet: Fleet, sink: MemorySink, port: int) -> None:
    from ocppsec.security_profiles.gateway.revocation_io import CrlUrl

    station = fleet.station("crl-url-down")
    checker = RevocationChecker(issuers=[fleet.pki.ca_certificate("csms-root")],
                                crls=[CrlUrl(f"http://127.0.0.1:{free_port()}/x.crl", timeout=1)])

    async def main() -> None:
        async with guarded(pki, fleet, registry_for(station), sink, port, free_port(), checker=checker):
            assert "403" in await refused(pki, port, station)
            event = await wait_event(sink, "InvalidChargingStationCertificate")
            assert "not loaded" in event.tech_info and "fail-closed" in event.tech_info

    run(main())


def test_concurrent_ocsp_misses_share_one_query(fleet: Fleet) -> None:
    from ocppsec.security_profiles.gateway.revocation import StationCertificate, Status

    station = fleet.station("ocsp-burst")
    cert = StationCertificate.from_der(station.certificate.public_bytes(Encoding.DER))
    issuer = fleet.pki.ca_certificate("csms-root")

    async def main() -> None:
        with ocsp_responder(fleet) as (server, responder):
            ocsp = OcspChecker(server.url, timeout=30)  # the test is about sharing, not about timing
            try:
                # the responder dates its answers by the clock; NOW is when the test modules were imported,
                # which a long test run leaves more than the 5 minutes of allowed skew behind
                at = datetime.now(UTC)
                answers = await asyncio.gather(*(ocsp.answer(cert, issuer, at=at) for _ in range(10)))
            finally:
                ocsp.close()
            assert {a.status for a in answers if a is not None} == {Status.GOOD} and len(answers) == 10
            assert responder.stats.on_demand == 1 and ocsp.queries == 1

    run(main())


def test_an_older_crl_does_not_replace_a_newer_one(pki: Pki, fleet: Fleet, tmp_path: Path) -> None:
    from ocppsec.security_profiles.gateway.revocation_io import Issuers

    victim = fleet.station("crl-rollback")
    old = fleet.write_crl(tmp_path / "old.crl").read_bytes()  # #1: lists nothing
    fleet.revoke(victim)
    crl = fleet.write_crl(tmp_path / "root.crl")  # #2: lists the victim
    source = CrlFile(crl)
    source.initial(Issuers([fleet.pki.ca_certificate("csms-root")]), at=NOW)
    assert source.state.index is not None and source.state.index.number == 2
    checker = RevocationChecker(issuers=[fleet.pki.ca_certificate("csms-root")], crls=[source])

    async def main() -> None:
        async with checker:
            crl.write_bytes(old)  # someone puts the old CRL back
            await until(lambda: source.state.error is not None)
            assert "older CRL (#1, the one in force is #2) was refused" in source.state.error  # type: ignore[operator]
            assert source.state.index is not None and source.state.index.number == 2

    run(main())
