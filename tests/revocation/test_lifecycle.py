"""Fleet lifecycle: expiry windows per role, renewal in bounded batches, root rollover with openssl checks."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from ocppsec.pki.directory import PkiDirectory
from ocppsec.pki.errors import PolicyError, UsageError
from ocppsec.pki.hashdata import compute_hash_data
from ocppsec.pki.keys import KeySpec, LocalKey, generate_key
from ocppsec.pki.lifecycle import (
    Action,
    ExpiryPolicy,
    InventoryItem,
    PlanItem,
    RenewalOutcome,
    find_expiring,
    install_plan,
    plan_renewals,
    prepare_rollover,
    retire_plan,
    rollover_dry_run,
    run_renewals,
)
from ocppsec.pki.names import make_name
from ocppsec.pki.versions import OcppVersion
from revocation.conftest import AT, issue_station, validate


def test_windows_per_role() -> None:
    policy = ExpiryPolicy()
    assert policy.renew_before("charging-station") == timedelta(days=30)  # A03.FR.02 cap
    assert policy.renew_before("secc") == timedelta(days=15)  # a quarter of 60 days
    assert policy.renew_before("csms-root") == timedelta(days=365)
    assert policy.renew_before("cpo-sub-ca-2") == timedelta(days=90)
    assert policy.renew_before("ocsp-responder") == timedelta(days=7)
    custom = ExpiryPolicy.from_config({"lifecycle": {"renew_before_days": {"secc": 20}}},
                                      {"charging-station": timedelta(days=45)})
    assert custom.renew_before("secc") == timedelta(days=20)
    assert custom.renew_before("charging-station") == timedelta(days=45)
    with pytest.raises(UsageError):
        ExpiryPolicy.from_config({"lifecycle": {"renew_before_days": {"secc": "soon"}}})


def test_expiring_ledger_and_inventory(pki_dir: PkiDirectory, tmp_path: Path) -> None:
    station = issue_station(pki_dir, "SN-X", tmp_path)  # 730 days
    records = pki_dir.ledger.all()
    at = station.cert.not_valid_after_utc - timedelta(days=20)
    items = find_expiring(records, at=at)
    mine = [i for i in items if i.serial == station.serial]
    assert mine and mine[0].due and mine[0].role == "charging-station"
    assert not find_expiring(records, at=AT)  # nothing in its window at issuance
    assert find_expiring(records, at=AT, within=timedelta(days=4000))  # horizon overrides the windows
    inv = [
        InventoryItem("CS-1", "charging-station", station.serial, "CN=SN-X", station.cert.not_valid_after_utc),
        InventoryItem("CS-2", "v2g", "abc", "CN=SECC", AT + timedelta(days=10)),
        InventoryItem("CS-3", "v2g", "def", "CN=SECC", AT + timedelta(days=10), state="deleted"),
    ]
    items = find_expiring(records, inv, at=at)
    assert next(i for i in items if i.serial == station.serial).station == "CS-1"
    secc = find_expiring([], inv, at=AT)
    assert [(i.station, i.role) for i in secc] == [("CS-2", "secc")]
    pki_dir.ledger.revoke(station.serial, "csms-root", AT, "superseded")
    assert station.serial not in {i.serial for i in find_expiring(pki_dir.ledger.all(), at=at)}


def test_plan_and_batches() -> None:
    inv = [InventoryItem(f"CS-{n}", "charging-station", f"{n:x}", None, AT + timedelta(days=n % 40)) for n in range(23)]
    items = find_expiring([], inv, at=AT)
    plan = plan_renewals(items)
    assert len(plan) == len(items)
    # a station whose certificate has expired cannot open the profile-3 connection A03 renewal needs
    assert all(p.action is (Action.REPROVISION_STATION if p.item.expired else Action.TRIGGER_STATION_CSR) for p in plan)
    assert {p.station for p in plan if p.item.expired} == {"CS-0"}

    class Service:
        def __init__(self) -> None:
            self.calls: list[str | None] = []

        def renew(self, item: PlanItem) -> RenewalOutcome:
            self.calls.append(item.station)
            if item.station == "CS-3":
                raise RuntimeError("station offline")
            return RenewalOutcome(True)

    progress: list[tuple[int, int]] = []
    service = Service()
    report = run_renewals(plan, service, batch_size=5, max_batches=2,
                          progress=lambda done, total, item, outcome: progress.append((done, total)))
    assert len(service.calls) == 10 and report.batches == 2 and report.stopped_early
    assert len(report.skipped) == len(plan) - 10 and progress[-1] == (10, len(plan))
    assert [p.station for p, _ in report.failed] == ["CS-3"]
    stop = run_renewals(plan, Service(), batch_size=5, max_failures=0)
    assert stop.stopped_early and stop.batches == 1
    with pytest.raises(UsageError):
        run_renewals(plan, Service(), batch_size=0)


def test_root_rollover(pki_dir: PkiDirectory, tmp_path: Path) -> None:
    old = pki_dir.ca("csms-root")
    new_key = LocalKey(generate_key(KeySpec.P256), "new root")
    with pytest.raises(UsageError, match="different"):
        prepare_rollover(old, new_key, at=AT)
    with pytest.raises(UsageError, match="not a root"):
        prepare_rollover(pki_dir.ca("cpo-sub-ca-1"), new_key, at=AT)
    roll = prepare_rollover(old, new_key, at=AT, subject=make_name({"CN": "Example CSO CSMS Root CA G2", "O": "Example CSO"}))
    assert roll.new_by_old.public_key() == roll.new_root.public_key() and roll.new_by_old.issuer == old.certificate.subject
    roll.new_by_old.verify_directly_issued_by(old.certificate)
    roll.old_by_new.verify_directly_issued_by(roll.new_root)
    # a station certificate of the old hierarchy validates under the new root through old-by-new (openssl)
    leaf = issue_station(pki_dir, "SN-R", tmp_path)
    for name, cert in (("new.pem", roll.new_root), ("cross.pem", roll.old_by_new), ("old.pem", old.certificate),
                       ("newbyold.pem", roll.new_by_old)):
        (tmp_path / name).write_bytes(cert.public_bytes(Encoding.PEM))
    attime = str(int(AT.timestamp()) + 60)
    res = subprocess.run(["openssl", "verify", "-attime", attime, "-CAfile", str(tmp_path / "new.pem"), "-untrusted",
                          str(tmp_path / "cross.pem"), str(leaf.path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    res = subprocess.run(["openssl", "verify", "-attime", attime, "-CAfile", str(tmp_path / "old.pem"),
                          str(tmp_path / "newbyold.pem")], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    # InstallCertificate per version; AdditionalRootCertificateCheck gets the new root signed by the old one
    for version, check in ((OcppVersion.V16, True), (OcppVersion.V201, False), (OcppVersion.V21, True)):
        payload = install_plan(roll, version, additional_root_check=check)
        validate(version.value, "InstallCertificate", payload)
        sent = x509.load_pem_x509_certificate(payload["certificate"].encode())
        assert sent == (roll.new_by_old if check else roll.new_root)
    assert install_plan(roll, OcppVersion.V16, additional_root_check=False)["certificateType"] == \
        "CentralSystemRootCertificate"

    def held(station: str, cert: x509.Certificate, issuer: x509.Certificate, state: str = "installed") -> InventoryItem:
        return InventoryItem(station, "csms", format(cert.serial_number, "x"), None, cert.not_valid_after_utc, state,
                             ":".join(compute_hash_data(cert, issuer).canonical()),
                             cert.fingerprint(hashes.SHA256()).hex())

    inventory = [
        held("CS-1", old.certificate, old.certificate), held("CS-1", roll.new_by_old, old.certificate),
        held("CS-2", old.certificate, old.certificate),
        held("CS-3", old.certificate, old.certificate), held("CS-3", roll.new_root, roll.new_root, "sent"),
        held("CS-4", roll.new_root, roll.new_root),
    ]
    impacts = {i.station_id: i for i in rollover_dry_run(roll, inventory, stations=["CS-5"])}
    assert sorted(s for s, i in impacts.items() if i.would_lose_connectivity) == ["CS-2", "CS-3", "CS-5"]
    assert impacts["CS-3"].pending and not impacts["CS-1"].would_lose_connectivity
    with pytest.raises(PolicyError) as info:
        retire_plan(roll, list(impacts.values()))
    assert "CS-2" in str(info.value)
    ready = [i for s, i in impacts.items() if s in ("CS-1", "CS-4")]
    plan = retire_plan(roll, ready)
    assert plan["stations"] == ["CS-1"]
    validate("2.0.1", "DeleteCertificate", {"certificateHashData": plan["certificateHashData"]})
