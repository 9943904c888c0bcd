"""Inventory reconciliation with the ledger (LocalCaSigner over a PKI directory), back-off and renewal timing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ocppsec.pki import HierarchyConfig, PkiDirectory
from ocppsec.pki.certmgmt import (
    CertificateService,
    CertificateUse,
    InstalledCertificate,
    InstalledType,
    LocalCaSigner,
    RetrySchedule,
    RootType,
    SignRequest,
    StationInfo,
    Status,
    inventory_location,
    open_inventory,
    renewal_due,
    signing_retry_delays,
)
from ocppsec.pki.certmgmt.codecs import CODECS
from ocppsec.pki.errors import UsageError
from ocppsec.pki.hashdata import CertificateHashData, compute_hash_data
from ocppsec.pki.versions import OcppVersion

from .conftest import CSO, NOW, SERIAL, make_store, pem


def test_retry_delays_double_and_stop() -> None:
    assert signing_retry_delays(300, 3) == (300, 600, 1200)
    assert signing_retry_delays(0, 5) == () and signing_retry_delays(60, 0) == ()
    with pytest.raises(UsageError):
        signing_retry_delays(-1, 2)
    schedule = RetrySchedule.start(NOW, 100, 2)
    assert schedule.resend_times() == (NOW + timedelta(seconds=100), NOW + timedelta(seconds=300))
    assert not schedule.due(0, NOW + timedelta(seconds=99)) and schedule.due(0, NOW + timedelta(seconds=100))
    assert not schedule.due(2, NOW + timedelta(days=1))  # all resends used: wait for a trigger
    assert renewal_due(NOW + timedelta(days=30), NOW) and not renewal_due(NOW + timedelta(days=31), NOW)


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> PkiDirectory:
    path = tmp_path_factory.mktemp("pki")
    return PkiDirectory.init(path, HierarchyConfig.default(cso_name=CSO), passphrase=None, at=NOW - timedelta(days=1))


def test_local_ca_signer_records_ledger_and_inventory_and_reconciles(pki_dir: PkiDirectory, hierarchy, tmp_path: Path) -> None:
    signer = LocalCaSigner(pki_dir)
    inventory = open_inventory(inventory_location(pki_dir.path))
    assert inventory.database.url.path == Path(pki_dir.path) / "inventory.db"
    service = CertificateService(signer, cso_name=CSO, stations={"CS001": StationInfo("CS001", serial=SERIAL, secc_ids=())},
                                 inventory=inventory, ledger=pki_dir.ledger)
    store = make_store(hierarchy)
    # the station trusts this directory's roots
    for root_type, name in ((RootType.CSMS, "csms-root"), (RootType.V2G, "v2g-root")):
        assert store.install_root(root_type, pem(pki_dir.ca_certificate(name)), at=NOW, max_chars=5500).accepted
    outcome, order = service.handle("CS001", SignRequest(store.create_csr(CertificateUse.V2G, at=NOW), CertificateUse.V2G), at=NOW)
    assert outcome.accepted and order is not None
    records = pki_dir.ledger.find_serial(format(order.chain.leaf.serial_number, "x"))
    assert len(records) == 1 and records[0].station == "CS001" and records[0].role == "secc"
    answer = store.certificate_signed(order.chain_pem, CertificateUse.V2G, at=NOW)
    assert answer.accepted, answer
    service.certificate_signed_result(order, answer, at=NOW)
    mo = hierarchy.ca("mo-root").certificate
    service.install_result("CS001", RootType.MO, mo, answer, at=NOW)

    codec = CODECS[OcppVersion.V201]
    response = codec.get_installed_ids_response(store.installed([InstalledType.V2G_CHAIN]))
    # report the hash data upper-case with leading zeros: still the same certificates
    for item in response["certificateHashDataChain"]:
        hd = item["certificateHashData"]
        hd["issuerNameHash"] = hd["issuerNameHash"].upper()
        hd["serialNumber"] = "00" + hd["serialNumber"].upper()
    status, reported = codec.parse_get_installed_ids_response(response)
    report = service.installed_ids_result("CS001", reported, at=NOW, kinds=["v2g-chain"])
    assert status is Status.ACCEPTED and report.clean, report.to_json()
    assert [e.kind for e in report.confirmed] == ["v2g"]

    # the station lost its MO root and reports a certificate we never gave it
    stranger = CertificateHashData("SHA256", "aa" * 32, "bb" * 32, "0abc")
    report = service.installed_ids_result("CS001", [InstalledCertificate(InstalledType.MANUFACTURER_ROOT, stranger)],
                                          at=NOW, kinds=["mo", "manufacturer"])
    assert [e.kind for e in report.missing] == ["mo"] and len(report.unknown) == 1 and not report.clean

    # a revoked certificate still reported by the station is flagged
    pki_dir.ledger.revoke(format(order.chain.leaf.serial_number, "x"), "cpo-sub-ca-2", NOW, "keyCompromise")
    report = service.installed_ids_result("CS001", reported, at=NOW, kinds=["v2g-chain"])
    assert len(report.revoked) == 1

    service.delete_result("CS001", compute_hash_data(mo, mo), answer, at=NOW)
    assert inventory.find("CS001", compute_hash_data(mo, mo)).state == "deleted"
    inventory.close()
