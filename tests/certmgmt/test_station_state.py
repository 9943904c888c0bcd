"""The station store's state as values, and its ``state.json``: the format written before is what is
written now, and older files (without the keys added later) still load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocppsec.pki import Hierarchy
from ocppsec.pki.certmgmt import (
    CertificateService,
    CertificateUse,
    CredentialRole,
    DirectoryStationStorage,
    PendingCsr,
    RootType,
    SignRequest,
    StationCertificateStore,
    StationConfig,
    StationState,
    StoredCredential,
)
from ocppsec.pki.errors import StoreError

from .conftest import CSO, NOW, SECC, SERIAL, pem

OLD_KEYS = {"client", "counter", "csms_root_fallback", "pending", "renewed", "root_issuers", "roots"}


def _store(path: Path) -> StationCertificateStore:
    return StationCertificateStore(DirectoryStationStorage(path, b"pass"), StationConfig(serial=SERIAL, organization=CSO,
                                                                                       secc_id=SECC))


def test_state_json_keeps_its_format(hierarchy: Hierarchy, service: CertificateService, tmp_path: Path) -> None:
    store = _store(tmp_path / "st")
    assert store.install_root(RootType.CSMS, pem(hierarchy.ca("csms-root").certificate), at=NOW, max_chars=5500).accepted
    _, order = service.handle("CS001", SignRequest(store.create_csr(CertificateUse.CHARGING_STATION, at=NOW)), at=NOW)
    assert order is not None
    assert store.certificate_signed(order.chain_pem, CertificateUse.CHARGING_STATION, at=NOW).accepted
    store.create_csr(CertificateUse.V2G, at=NOW, request_id=7)
    data = json.loads((tmp_path / "st" / "state.json").read_text())
    assert set(data) == OLD_KEYS and set(data["roots"]) == {t.value for t in RootType}
    assert set(data["client"]["charging-station"]) == {"chain", "key"} and data["renewed"] == {}
    (pending,) = data["pending"]
    assert pending == {"use": "v2g", "key": pending["key"], "spki": pending["spki"], "request_id": 7,
                       "created": NOW.isoformat()}
    assert data["counter"] == 2 and len(data["roots"]["csms"]) == 1
    again = _store(tmp_path / "st")  # a second process reads what the first wrote
    assert again.state == store.state and again.snapshot() == store.snapshot()
    assert again.pending_request_ids() == [7]
    assert [c.role for c in again.client_credentials()] == [CredentialRole.ACTIVE]


def test_an_older_state_file_loads(hierarchy: Hierarchy, tmp_path: Path) -> None:
    root = pem(hierarchy.ca("csms-root").certificate)
    leaf = hierarchy.issue_leaf("charging-station", ca="csms-root", subject={"O": CSO, "CN": SERIAL}, at=NOW)
    folder = tmp_path / "old"
    folder.mkdir()
    # no root_issuers, renewed, counter or csms_root_fallback yet; roots only for the types it had; a key
    # this version does not know
    (folder / "state.json").write_text(json.dumps({
        "roots": {"csms": [root], "manufacturer": []},
        "client": {"charging-station": {"chain": leaf.chain_pem(), "key": "keys/factory.key.pem"}},
        "pending": [{"use": "charging-station", "key": "keys/p.key.pem", "spki": "ab" * 32, "request_id": None,
                     "created": "2026-11-01T10:00:00+00:00"}],
        "comment": "written by an older ocppsec",
    }, indent=1))
    store = _store(folder)
    assert store.state.counter == 0 and store.state.root_issuers == {} and store.state.csms_root_fallback is None
    assert [c.subject for c in store.roots(RootType.CSMS)] == [hierarchy.ca("csms-root").certificate.subject]
    assert store.roots(RootType.OEM) == []
    (credential,) = store.client_credentials()
    assert credential.role is CredentialRole.ACTIVE and credential.leaf.serial_number == leaf.certificate.serial_number
    assert store.state.pending[0].created.isoformat() == "2026-11-01T10:00:00+00:00"
    assert store.pending_request_ids() == []


@pytest.mark.parametrize("broken", [
    {"pending": [{"use": "toaster", "key": "k", "spki": "ab", "request_id": None, "created": "2026-11-01T10:00:00+00:00"}]},
    {"pending": [{"use": "v2g", "key": "k", "spki": "ab", "request_id": None, "created": "yesterday"}]},
    {"client": {"charging-station": {"chain": 5, "key": "k"}}},
    {"roots": {"csms": "not a list"}},
    {"counter": "many"},
])
def test_an_unreadable_state_is_a_store_error(broken: dict[str, object]) -> None:
    with pytest.raises(StoreError, match="station state is not readable"):
        StationState.from_json(broken)


def test_state_values_are_immutable_steps() -> None:
    empty = StationState()
    one = empty.with_credential(CredentialRole.RENEWED, CertificateUse.V2G, StoredCredential("pem", "k"))
    assert empty.renewed == {} and one.credential(CredentialRole.RENEWED, CertificateUse.V2G) == StoredCredential("pem", "k")
    assert one.with_credential(CredentialRole.RENEWED, CertificateUse.V2G, None).renewed == {}
    assert empty.with_roots(RootType.MO, ("a", "b")).root_count == 2 and empty.root_count == 0
    pending = PendingCsr(CertificateUse.V2G, "k", "ab", 3, NOW)
    state = StationState(pending=(pending,), counter=4)
    assert StationState.from_json(json.loads(json.dumps(state.to_json()))) == state
