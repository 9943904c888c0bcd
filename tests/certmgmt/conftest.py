"""Fixtures of the certificate-management tests: one in-memory hierarchy, a CSMS service, a station store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from ocpp.messages import MessageType, get_validator

from ocppsec.pki import Hierarchy, HierarchyConfig
from ocppsec.pki.certmgmt import (
    AuthoritySigner,
    CertificateService,
    CertificateUse,
    MemoryStationStorage,
    RootType,
    SqlInventory,
    StationCertificateStore,
    StationConfig,
    StationInfo,
    open_inventory,
)
from ocppsec.pki.certmgmt.codec import Codec

NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
SERIAL = "SN-0001"
SECC = "DEABCS1234567890"
CSO = "Example CSO"


def pem(cert: Any) -> str:
    return cert.public_bytes(Encoding.PEM).decode()


def assert_schema(codec: Codec, action: str, payload: dict[str, Any], *, response: bool) -> None:
    """Validate against the official JSON schema shipped in the ocpp package (raises on any error)."""
    kind = MessageType.CallResult if response else MessageType.Call
    get_validator(kind, action, codec.version.value).validate(payload)


@pytest.fixture(scope="session")
def hierarchy() -> Hierarchy:
    config = HierarchyConfig.default(cso_name=CSO)
    return Hierarchy.build(config, at=NOW - timedelta(days=10))


@pytest.fixture
def signer(hierarchy: Hierarchy) -> AuthoritySigner:
    cs = hierarchy.ca("csms-root")
    return AuthoritySigner({CertificateUse.CHARGING_STATION: cs, CertificateUse.COMBINED: cs,
                            CertificateUse.V2G: hierarchy.ca("cpo-sub-ca-2")},
                           ocsp_url="http://ocsp.example.com/{issuer}")


@pytest.fixture
def inventory(tmp_path: Path) -> SqlInventory:
    inv = open_inventory(tmp_path / "inventory.db")
    yield inv
    inv.close()


@pytest.fixture
def service(signer: AuthoritySigner, inventory: SqlInventory) -> CertificateService:
    stations = {"CS001": StationInfo("CS001", serial=SERIAL, secc_ids=(SECC,)),
                "CS002": StationInfo("CS002", serial="SN-0002", max_chain_size=500)}
    return CertificateService(signer, cso_name=CSO, stations=stations, inventory=inventory)


def make_store(hierarchy: Hierarchy, **config: Any) -> StationCertificateStore:
    store = StationCertificateStore(MemoryStationStorage(b"station-pass"),
                                    StationConfig(serial=SERIAL, organization=CSO, secc_id=SECC, **config))
    for root_type, name in ((RootType.CSMS, "csms-root"), (RootType.V2G, "v2g-root"),
                            (RootType.MANUFACTURER, "manufacturer-root"), (RootType.MO, "mo-root")):
        outcome = store.install_root(root_type, pem(hierarchy.ca(name).certificate), at=NOW, max_chars=5500)
        assert outcome.accepted, outcome
    return store


@pytest.fixture
def store(hierarchy: Hierarchy) -> StationCertificateStore:
    return make_store(hierarchy)
