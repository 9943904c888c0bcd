"""Fixtures for the security-profile tests: a real PKI written to disk, registries, event sinks."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from ocppsec.pki.events.sink import MemorySink
from ocppsec.pki.hierarchy import Hierarchy, HierarchyConfig, IssuedCertificate
from ocppsec.pki.pem import certificates_to_pem
from ocppsec.security_profiles.basic_auth import ScryptCost, hash_password
from ocppsec.security_profiles.registry import MemoryRegistry, StationRecord
from ocppsec.security_profiles.tls import CertChain

CSO = "Example CSO"
FAST = ScryptCost(n=2**10, r=8, p=1)  # cheap hashes keep the suite fast; the scheme is the same


# The modules whose tests drive real connections run on both event loops serve()/connect() support.
BOTH_LOOPS = {"test_profiles_loopback", "test_client_checks", "test_gateway", "test_gateway_splice", "test_gateway_backpressure",
              "test_gateway_csr_signing", "test_gateway_upstream", "test_gateway_follow"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.module.__name__.rsplit(".", 1)[-1] in BOTH_LOOPS:
        metafunc.parametrize("loop_kind", ["asyncio", "uvloop"], indirect=True)


@pytest.fixture(autouse=True)
def loop_kind(request: pytest.FixtureRequest) -> Iterator[str]:
    """The event loop ``helpers.run`` uses for this test (asyncio's unless the module runs on both)."""
    from .helpers import LOOP

    LOOP["name"] = getattr(request, "param", "asyncio")
    yield LOOP["name"]
    LOOP["name"] = "asyncio"


def write_issued(issued: IssuedCertificate, directory: Path, name: str) -> CertChain:
    cert = directory / f"{name}.pem"
    key = directory / f"{name}.key"
    cert.write_text(certificates_to_pem(issued.chain))
    assert issued.key is not None
    private = issued.key.private_key  # type: ignore[attr-defined]
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    key.chmod(0o600)
    return CertChain(cert, key)


@dataclass
class Pki:
    h: Hierarchy
    other: Hierarchy
    dir: Path
    now: datetime
    csms_root: Path
    cso_root: Path
    other_root: Path
    rsa: CertChain
    ecdsa: CertChain

    @property
    def server_chains(self) -> list[CertChain]:
        return [self.rsa, self.ecdsa]

    def station(self, cn: str, *, o: str = CSO, untrusted: bool = False, expired: bool = False,
                key: str | None = None) -> CertChain:
        h = self.other if untrusted else self.h
        at = self.now - timedelta(days=400) if expired else self.now - timedelta(minutes=5)
        from ocppsec.pki.keys import KeySpec

        issued = h.issue_leaf("charging-station", ca="csms-root", subject={"O": o, "CN": cn}, at=at,
                              validity_days=30 if expired else None, key=KeySpec.parse(key) if key else None)
        tag = f"{cn}-{o}-{untrusted}-{expired}-{key}".replace(" ", "_")
        return write_issued(issued, self.dir, tag)


def _write_root(h: Hierarchy, path: Path) -> Path:
    path.write_text(certificates_to_pem([h.ca("csms-root").certificate]))
    return path


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    now = datetime.now(UTC)
    h = Hierarchy.build(HierarchyConfig.default(cso_name=CSO, csms_fqdn="localhost"), at=now - timedelta(hours=1))
    other = Hierarchy.build(HierarchyConfig.default(cso_name=CSO, csms_fqdn="localhost"), at=now - timedelta(hours=1))
    root = _write_root(h, d / "csms-root.pem")
    return Pki(h, other, d, now, root, root, _write_root(other, d / "other-root.pem"),
               write_issued(h.certificates["csms-server-rsa"], d, "server-rsa"),
               write_issued(h.certificates["csms-server-ecdsa"], d, "server-ecdsa"))


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


PASSWORD_201 = "correct-horse-battery-staple-42"
KEY_16 = "0001020304050607FFFFFFFFFFFFFFFFFFFFFFFF"


@pytest.fixture
def registry() -> MemoryRegistry:
    return MemoryRegistry([
        StationRecord("CS-1", 1, password_hash=hash_password(PASSWORD_201, cost=FAST)),
        StationRecord("CS-2", 2, password_hash=hash_password(PASSWORD_201, cost=FAST)),
        StationRecord("CS16", 2, password_hash=hash_password(KEY_16, cost=FAST)),
        StationRecord("CS-3", 3, serial="SN-0001"),
        StationRecord("CS-4", 3, serial="SN-0004"),
    ])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def port() -> int:
    return free_port()


@dataclass(frozen=True)
class RelayCase:
    """A gateway ``relay`` option and the relay the gateway must then use for every station."""

    option: str
    expected: str


@pytest.fixture(params=[RelayCase("auto", "splice"), RelayCase("tasks", "tasks")], ids=["splice", "tasks"])
def relay(request: pytest.FixtureRequest) -> RelayCase:
    """Both relays of the gateway: ``auto`` must choose the splice on the websockets version installed."""
    return request.param  # type: ignore[no-any-return]
