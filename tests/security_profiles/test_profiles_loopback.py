"""Every positive and negative case per profile over real loopback TLS / WebSockets."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import replace
from typing import Any

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosedError, InvalidStatus

from ocppsec.pki.errors import PolicyError
from ocppsec.pki.events.sink import MemorySink
from ocppsec.pki.versions import OcppVersion
from ocppsec.security_profiles.basic_auth import authorization_header, hash_password
from ocppsec.security_profiles.client import CsmsConnectionError, connect
from ocppsec.security_profiles.registry import MemoryRegistry, StationRecord, set_pending_password
from ocppsec.security_profiles.tls import MANDATORY_TLS12_SUITES, client_context

from .conftest import FAST, KEY_16, PASSWORD_201, Pki
from .helpers import run, running, wait_event

V16, V201 = OcppVersion.V16, OcppVersion.V201


def basic_header(identity: str, password: str) -> str:
    return authorization_header(identity, password, V201)


async def roundtrip(conn: object, text: str = "hello") -> str:
    await conn.send(text)  # type: ignore[attr-defined]
    reply = await conn.recv()  # type: ignore[attr-defined]
    await conn.close()  # type: ignore[attr-defined]
    return str(reply)


# -- profile 1 --------------------------------------------------------------------------------------
def test_profile1_accept_and_refusals(registry: MemoryRegistry, sink: MemorySink, pki: Pki, port: int) -> None:
    url = f"ws://127.0.0.1:{port}/"

    async def main() -> None:
        async with running({1}, registry, sink, pki, port):
            c = await connect(url, "CS-1", profile=1, password=PASSWORD_201)
            assert await roundtrip(c) == "CS-1|1|2.0.1|hello"
            with pytest.raises(CsmsConnectionError, match="401") as err:
                await connect(url, "CS-1", profile=1, password="wrong-password-000")
            assert err.value.security_event == "FailedToAuthenticateAtCsms"
            # no header at all, wrong scheme, malformed
            for headers, status in [({}, 401), ({"Authorization": "Bearer abc"}, 400),
                                    ({"Authorization": "Basic %%%"}, 400)]:
                with pytest.raises(InvalidStatus) as st:
                    await ws_connect(url + "CS-1", subprotocols=["ocpp2.0.1"], additional_headers=headers)  # type: ignore[list-item]
                assert st.value.response.status_code == status
                assert "Server" not in st.value.response.headers  # no software/version banner
            ws = await ws_connect(url + "CS-1", subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
                                  additional_headers={"Authorization": basic_header("CS-1", PASSWORD_201)})
            assert ws.response is not None and "Server" not in ws.response.headers
            assert ws.response.headers["Sec-WebSocket-Protocol"] == "ocpp2.0.1"
            await ws.close()
            # a profile-2 station on the plain port is refused (A00.FR.002)
            with pytest.raises(CsmsConnectionError, match="403"):
                await connect(url, "CS-2", profile=1, password=PASSWORD_201)
        ev = await wait_event(sink, "FailedToAuthenticateAtCsms")
        assert ev.station_id == "CS-1" and ev.source == "local"

    run(main())


def test_unknown_subprotocol_is_closed_1002(registry: MemoryRegistry, sink: MemorySink, pki: Pki, port: int) -> None:
    async def main() -> None:
        async with running({1}, registry, sink, pki, port):
            from ocppsec.security_profiles.basic_auth import authorization_header

            ws = await ws_connect(f"ws://127.0.0.1:{port}/CS-1", subprotocols=["ocpp9.9"],  # type: ignore[list-item]
                                  additional_headers={"Authorization": authorization_header("CS-1", PASSWORD_201, V201)})
            assert ws.subprotocol is None
            with pytest.raises(ConnectionClosedError):
                await ws.recv()
            assert ws.close_code == 1002

    run(main())


def test_oversized_frame_closes_1009_and_server_keeps_serving(registry: MemoryRegistry, sink: MemorySink, pki: Pki,
                                                             port: int) -> None:
    async def main() -> None:
        async with running({1}, registry, sink, pki, port, max_size=1024):
            url = f"ws://127.0.0.1:{port}/"
            c = await connect(url, "CS-1", profile=1, password=PASSWORD_201)
            await c.send("x" * 2048)
            with pytest.raises(ConnectionClosedError):
                await c.recv()
            assert c.close_code == 1009
            c = await connect(url, "CS-1", profile=1, password=PASSWORD_201)
            assert (await roundtrip(c)).endswith("hello")

    run(main())


# -- profile 2 --------------------------------------------------------------------------------------
@pytest.mark.parametrize("suite", MANDATORY_TLS12_SUITES)
def test_profile2_each_mandatory_tls12_suite(suite: str, registry: MemoryRegistry, sink: MemorySink, pki: Pki,
                                             port: int) -> None:
    async def main() -> None:
        async with running({2}, registry, sink, pki, port):
            ctx = client_context([pki.csms_root], suites=[suite])
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            c = await connect(f"wss://localhost:{port}/", "CS-2", profile=2, password=PASSWORD_201, ssl_context=ctx)
            tls = c.transport.get_extra_info("ssl_object")
            assert tls.version() == "TLSv1.2" and tls.cipher()[0] == suite and tls.compression() is None
            assert await roundtrip(c) == "CS-2|2|2.0.1|hello"

    run(main())


def test_profile2_tls13_and_1_6_key_forms(registry: MemoryRegistry, sink: MemorySink, pki: Pki, port: int) -> None:
    async def main() -> None:
        async with running({2}, registry, sink, pki, port):
            url = f"wss://localhost:{port}/"
            c = await connect(url, "CS-2", profile=2, password=PASSWORD_201, csms_roots=[pki.csms_root])
            assert c.transport.get_extra_info("ssl_object").version() == "TLSv1.3"
            await c.close()
            for form in ("hex", "string"):
                c = await connect(url, "CS16", profile=2, password=KEY_16, key_form=form, versions=[V16],
                                  csms_roots=[pki.csms_root])
                assert await roundtrip(c) == "CS16|2|1.6|hello"
            with pytest.raises(CsmsConnectionError, match="401"):
                await connect(url, "CS-2", profile=2, password="x" * 20, csms_roots=[pki.csms_root])
            # a profile-3 station cannot fall back to Basic auth on a profile-2 port
            with pytest.raises(CsmsConnectionError, match="403"):
                await connect(url, "CS-3", profile=2, password=PASSWORD_201, csms_roots=[pki.csms_root])

    run(main())


async def _openssl_client(port: int, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        "openssl", "s_client", "-connect", f"127.0.0.1:{port}", *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 20)
    return out.decode(errors="replace")


def test_passwords_per_the_2025_errata_end_to_end(registry: MemoryRegistry, sink: MemorySink, pki: Pki,
                                                   port: int) -> None:
    """The errata rules are the default on both sides: a station sends, and the CSMS accepts, "!" and other
    printable characters and 64 characters. A station held to Edition 2's rules (or a 65-character
    password) is refused before anything is sent."""
    bang, longest = "p@ss!word#with%odd&chars'", "L" * 63 + "!"
    registry.add(StationRecord("CS-5", 2, password_hash=hash_password(bang, cost=FAST)))
    registry.add(StationRecord("CS-6", 2, password_hash=hash_password(longest, cost=FAST)))

    async def main() -> None:
        async with running({2}, registry, sink, pki, port) as server:
            url = f"wss://localhost:{port}/"
            for identity, password in (("CS-5", bang), ("CS-6", longest)):
                c = await connect(url, identity, profile=2, password=password, csms_roots=[pki.csms_root])
                assert await roundtrip(c) == f"{identity}|2|2.0.1|hello"
                with pytest.raises(PolicyError, match="password rules") as err:
                    await connect(url, identity, profile=2, password=password, csms_roots=[pki.csms_root],
                                  password_rules="edition2")
                assert password not in str(err.value)
            with pytest.raises(PolicyError, match="16 to 64"):
                await connect(url, "CS-6", profile=2, password=longest + "x", csms_roots=[pki.csms_root])
            state = server.profile_state
            assert (state.accepted, state.refused) == (2, 0)  # the refused attempts never reached the CSMS

    run(main())



@pytest.mark.parametrize("profiles", [{2}, {3}])
@pytest.mark.parametrize("version_flag", ["-tls1", "-tls1_1"])
def test_old_tls_versions_refused(profiles: set[int], version_flag: str, registry: MemoryRegistry, sink: MemorySink,
                                  pki: Pki, port: int) -> None:
    async def main() -> None:
        async with running(profiles, registry, sink, pki, port):
            out = await _openssl_client(port, version_flag, "-cipher", "DEFAULT:@SECLEVEL=0")
            assert "Cipher is (NONE)" in out or "alert protocol version" in out or "no protocols available" in out
            ev = await wait_event(sink, "InvalidTLSVersion")
            assert ev.station_id.startswith("peer:127.0.0.1:")

    run(main())


def test_weak_suite_only_client_refused(registry: MemoryRegistry, sink: MemorySink, pki: Pki, port: int) -> None:
    async def main() -> None:
        async with running({2}, registry, sink, pki, port):
            ctx = client_context([pki.csms_root], suites=["ECDHE-RSA-AES128-SHA", "AES128-SHA", "DES-CBC3-SHA"])
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            with pytest.raises(CsmsConnectionError):
                await connect(f"wss://localhost:{port}/", "CS-2", profile=2, password=PASSWORD_201, ssl_context=ctx)
            await wait_event(sink, "InvalidTLSCipherSuite")
            # openssl as a second TLS stack: a CBC/SHA1 suite only
            out = await _openssl_client(port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA:AES256-SHA")
            assert "Cipher is (NONE)" in out or "handshake failure" in out

    run(main())


def test_password_rotation_a01_end_to_end(registry: MemoryRegistry, sink: MemorySink, pki: Pki, port: int) -> None:
    new = "brand-new-password-0002"

    async def main() -> None:
        async with running({2}, registry, sink, pki, port):
            url = f"wss://localhost:{port}/"
            set_pending_password(registry, "CS-2", hash_password(new, cost=FAST))
            old = await connect(url, "CS-2", profile=2, password=PASSWORD_201, csms_roots=[pki.csms_root])
            await old.close()  # still accepted while the change is not confirmed
            c = await connect(url, "CS-2", profile=2, password=new, csms_roots=[pki.csms_root])
            await c.close()  # the new one works, and using it confirms the change
            with pytest.raises(CsmsConnectionError, match="401"):
                await connect(url, "CS-2", profile=2, password=PASSWORD_201, csms_roots=[pki.csms_root])

    run(main())


# -- profile 3 --------------------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["p256", "rsa2048"])
def test_profile3_accept(key: str, registry: MemoryRegistry, sink: MemorySink, pki: Pki, port: int) -> None:
    async def main() -> None:
        async with running({3}, registry, sink, pki, port):
            c = await connect(f"wss://localhost:{port}/", "CS-3", profile=3, csms_roots=[pki.csms_root],
                              client_chain=pki.station("SN-0001", key=key), versions=[V16])
            assert await roundtrip(c) == "CS-3|3|1.6|hello"
        assert sink.events == ()

    run(main())


@pytest.mark.parametrize(
    ("case", "status", "event"),
    [
        ("wrong-o", "403", "InvalidChargingStationCertificate"),
        ("other-station", "403", "InvalidChargingStationCertificate"),
        ("expired", None, "InvalidChargingStationCertificate"),
        ("untrusted", None, "InvalidChargingStationCertificate"),
        ("no-cert", None, "FailedToAuthenticateAtCsms"),
        ("unregistered", "403", "FailedToAuthenticateAtCsms"),
    ],
)
def test_profile3_refusals(case: str, status: str | None, event: str, registry: MemoryRegistry, sink: MemorySink,
                           pki: Pki, port: int) -> None:
    chain = {
        "wrong-o": lambda: pki.station("SN-0001", o="Other CSO"),
        "other-station": lambda: pki.station("SN-0004"),  # valid, but CS-4's certificate
        "expired": lambda: pki.station("SN-0001", expired=True),
        "untrusted": lambda: pki.station("SN-0001", untrusted=True),
        "no-cert": lambda: None,
        "unregistered": lambda: pki.station("SN-0099"),
    }[case]()
    identity = "CS-99" if case == "unregistered" else "CS-3"

    async def main() -> None:
        async with running({3}, registry, sink, pki, port):
            ctx = client_context([pki.csms_root], client_chain=chain)
            with pytest.raises(CsmsConnectionError) as err:
                await connect(f"wss://localhost:{port}/", identity, profile=3, ssl_context=ctx)
            if status:
                assert status in str(err.value)
            ev = await wait_event(sink, event)
            assert ev.station_id in (identity,) or ev.station_id.startswith("peer:")
            # the server keeps serving good stations
            good = await connect(f"wss://localhost:{port}/", "CS-3", profile=3, csms_roots=[pki.csms_root],
                                 client_chain=pki.station("SN-0001"))
            assert (await roundtrip(good)).startswith("CS-3|3|")

    run(main())


def test_mixed_port_profile_2_and_3(registry: MemoryRegistry, sink: MemorySink, pki: Pki, port: int) -> None:
    async def main() -> None:
        async with running({2, 3}, registry, sink, pki, port):
            url = f"wss://localhost:{port}/"
            c3 = await connect(url, "CS-3", profile=3, csms_roots=[pki.csms_root], client_chain=pki.station("SN-0001"))
            c2 = await connect(url, "CS-2", profile=2, password=PASSWORD_201, csms_roots=[pki.csms_root])
            assert (await roundtrip(c3)).startswith("CS-3|3|")
            assert (await roundtrip(c2)).startswith("CS-2|2|")
            with pytest.raises(CsmsConnectionError, match="403"):  # profile-3 station trying Basic auth
                await connect(url, "CS-3", profile=2, password=PASSWORD_201, csms_roots=[pki.csms_root])
            with pytest.raises(CsmsConnectionError, match="403"):  # profile-2 station with only a certificate
                await connect(url, "CS-2", profile=3, csms_roots=[pki.csms_root], client_chain=pki.station("CS-2"))
            # A05: after the CSMS set profile 3 as pending, the first profile-3 connection makes it the only one
            rec = registry.get("CS-2")
            assert rec is not None
            registry.update(replace(rec, pending_profile=3, serial="SN-0002"))
            c = await connect(url, "CS-2", profile=3, csms_roots=[pki.csms_root], client_chain=pki.station("SN-0002"))
            await c.close()
            rec = registry.get("CS-2")
            assert rec is not None and rec.profile == 3 and rec.pending_profile is None
            with pytest.raises(CsmsConnectionError, match="403"):
                await connect(url, "CS-2", profile=2, password=PASSWORD_201, csms_roots=[pki.csms_root])

    run(main())


def test_slow_client_is_dropped_without_blocking_others(registry: MemoryRegistry, sink: MemorySink, pki: Pki,
                                                        port: int) -> None:
    async def main() -> None:
        async with running({3}, registry, sink, pki, port, tls_handshake_timeout=0.5, open_timeout=0.5):
            idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)  # sends nothing
            good = await connect(f"wss://localhost:{port}/", "CS-3", profile=3, csms_roots=[pki.csms_root],
                                 client_chain=pki.station("SN-0001"))
            assert (await roundtrip(good)).startswith("CS-3")
            assert await asyncio.wait_for(idle_reader.read(), 3) == b""  # closed by the server
            idle_writer.close()

    run(main())


def test_tls_read_buffer_of_a_live_connection(loop_kind: str, registry: MemoryRegistry, sink: MemorySink, pki: Pki,
                                             port: int) -> None:
    """serve() runs the handshake with the running loop's own TLS protocol (ADR 6, 9), seen through a live
    connection: the TCP transport under the TLS transport feeds that protocol. On asyncio's loop it reads
    into the protocol's 4 KiB buffer (a 60 kB message arrives in socket reads of at most 4 KiB); on uvloop
    into the compiled protocol's malloc'ed 256 KiB buffer."""
    from ocppsec.security_profiles.server import _SmallBufferSSLProtocol

    live: dict[str, object] = {}

    async def handler(station: object) -> None:
        live["ws"] = station.websocket  # type: ignore[attr-defined]
        async for message in station:  # type: ignore[attr-defined]
            await station.send(str(len(message)))  # type: ignore[attr-defined]

    async def main() -> None:
        async with running({3}, registry, sink, pki, port, handler=handler):
            c = await connect(f"wss://localhost:{port}/", "CS-3", profile=3, csms_roots=[pki.csms_root],
                              client_chain=pki.station("SN-0001"))
            await c.send("hi")
            assert await c.recv() == "2"
            ws: Any = live["ws"]
            tls = ws._tcp_transport.get_protocol()  # what the socket's transport hands its bytes to
            if loop_kind == "uvloop":
                assert (type(tls).__module__, type(tls).__name__) == ("uvloop.loop", "SSLProtocol")
                # libuv asks for 64 KiB per read; uvloop's protocol hands it its whole 256 KiB buffer
                assert len(tls.get_buffer(64 * 1024)) == 256 * 1024
            else:
                assert type(tls) is _SmallBufferSSLProtocol
                assert ws.transport._ssl_protocol is tls  # the live TLS transport is this protocol's
                assert len(tls.get_buffer(-1)) == 4 * 1024  # the buffer the socket transport reads into
                reads: list[int] = []
                received = tls.buffer_updated

                def counted(nbytes: int) -> None:
                    reads.append(nbytes)
                    received(nbytes)

                tls.buffer_updated = counted
                await c.send("z" * 60_000)
                assert await c.recv() == "60000"
                assert sum(reads) > 60_000 and max(reads) <= 4 * 1024 and len(reads) >= 15
            await c.close()

    run(main())
