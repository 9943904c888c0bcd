"""Station side: the CSMS certificate must chain to the CSMS root and carry CN = FQDN."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocppsec.pki.errors import UsageError
from ocppsec.pki.events.sink import MemorySink
from ocppsec.security_profiles.client import CsmsConnectionError, connect
from ocppsec.security_profiles.handshake import ServerPolicy
from ocppsec.security_profiles.registry import MemoryRegistry
from ocppsec.security_profiles.server import serve
from ocppsec.security_profiles.tls import server_context

from .conftest import CSO, PASSWORD_201, Pki, write_issued
from .helpers import echo, run


def _server_with_cn(pki: Pki, cn: str, tmp: Path) -> list[object]:
    issued = pki.h.issue_leaf("csms-server-ecdsa", ca="csms-root", subject={"O": CSO, "CN": cn}, at=pki.now)
    return [write_issued(issued, tmp, f"srv-{cn.replace('*', 'star')}")]


@pytest.mark.parametrize(
    ("cn", "fqdn", "wildcards", "ok"),
    [
        ("csms.example.test", "csms.example.test", False, True),
        ("CSMS.Example.Test", "csms.example.test", False, True),
        ("other.example.test", "csms.example.test", False, False),
        ("*.example.test", "csms.example.test", False, False),
        ("*.example.test", "csms.example.test", True, True),
        ("*.example.test", "a.b.example.test", True, False),
    ],
)
def test_csms_cn_must_be_fqdn(cn: str, fqdn: str, wildcards: bool, ok: bool, registry: MemoryRegistry, pki: Pki,
                              port: int, tmp_path: Path) -> None:
    server_sink, station_sink = MemorySink(), MemorySink()

    async def main() -> None:
        ctx = server_context(_server_with_cn(pki, cn, tmp_path))  # type: ignore[arg-type]
        async with serve(echo, "127.0.0.1", port, policy=ServerPolicy(frozenset({2})), registry=registry,
                         ssl_context=ctx, sink=server_sink) as server:
            kwargs = dict(profile=2, password=PASSWORD_201, csms_roots=[pki.csms_root], fqdn=fqdn,
                          allow_wildcards=wildcards, sink=station_sink)
            if ok:
                c = await connect(f"wss://127.0.0.1:{port}/", "CS-2", **kwargs)  # type: ignore[arg-type]
                await c.close()
            else:
                with pytest.raises(CsmsConnectionError) as err:
                    await connect(f"wss://127.0.0.1:{port}/", "CS-2", **kwargs)  # type: ignore[arg-type]
                assert err.value.security_event == "InvalidCsmsCertificate"
                assert station_sink.events[0].type == "InvalidCsmsCertificate"
                # the upgrade request (with the password) was never sent to the impostor
                assert server.profile_state.accepted == 0 and server.profile_state.refused == 0  # type: ignore[attr-defined]

    run(main())


def test_untrusted_csms_root(registry: MemoryRegistry, pki: Pki, port: int) -> None:
    station_sink = MemorySink()

    async def main() -> None:
        ctx = server_context(pki.server_chains)
        async with serve(echo, "127.0.0.1", port, policy=ServerPolicy(frozenset({2})), registry=registry,
                         ssl_context=ctx):
            with pytest.raises(CsmsConnectionError) as err:
                await connect(f"wss://localhost:{port}/", "CS-2", profile=2, password=PASSWORD_201,
                              csms_roots=[pki.other_root], sink=station_sink)
            assert err.value.security_event == "InvalidCsmsCertificate"
            assert [e.type for e in station_sink.events] == ["InvalidCsmsCertificate"]

    run(main())


def test_scheme_must_match_profile(pki: Pki) -> None:
    async def main() -> None:
        with pytest.raises(UsageError):
            await connect("ws://localhost:1/", "CS-2", profile=2, password=PASSWORD_201, csms_roots=[pki.csms_root])
        with pytest.raises(UsageError):
            await connect("wss://localhost:1/", "CS-1", profile=1, password=PASSWORD_201)

    run(main())


def test_a_csms_certificate_seen_before_is_not_parsed_again_and_still_checked(
        registry: MemoryRegistry, pki: Pki, port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ocppsec.security_profiles import tls

    parsed: list[bytes] = []
    real = tls.peer_certificate

    def counting(ssl_object):  # type: ignore[no-untyped-def]
        parsed.append(ssl_object.getpeercert(binary_form=True))
        return real(ssl_object)

    monkeypatch.setattr(tls, "peer_certificate", counting)
    monkeypatch.setattr(tls, "_SERVER_CERTIFICATES", {})

    async def main() -> None:
        ctx = server_context(_server_with_cn(pki, "csms.example.test", tmp_path))  # type: ignore[arg-type]
        async with serve(echo, "127.0.0.1", port, policy=ServerPolicy(frozenset({2})), registry=registry,
                         ssl_context=ctx):
            kwargs = dict(profile=2, password=PASSWORD_201, csms_roots=[pki.csms_root])
            for _ in range(3):
                c = await connect(f"wss://127.0.0.1:{port}/", "CS-2", fqdn="csms.example.test", **kwargs)  # type: ignore[arg-type]
                await c.close()
            assert len(parsed) == 1  # three connections, one parse
            with pytest.raises(CsmsConnectionError) as err:  # the remembered certificate is checked against this fqdn
                await connect(f"wss://127.0.0.1:{port}/", "CS-2", fqdn="other.example.test", **kwargs)  # type: ignore[arg-type]
            assert err.value.security_event == "InvalidCsmsCertificate" and len(parsed) == 1

    run(main())
