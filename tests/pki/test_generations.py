"""Ledger generations (supersede, retire, status from time) on SQLite and PostgreSQL, the validity rules of
issuance, and the hierarchy checks, as library calls."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ocppsec.pki.builder import DEFAULT_BACKDATE
from ocppsec.pki.directory import PkiDirectory
from ocppsec.pki.errors import DuplicateError, PolicyError, UsageError
from ocppsec.pki.hierarchy import Hierarchy, HierarchyConfig, default_config_text
from ocppsec.pki.issuance import check_validity
from ocppsec.pki.ledger import CertificateStatus, generation_name, lineage, record_for, select_records
from ocppsec.pki.ledger_sql import open_ledger
from ocppsec.pki.profiles import PROFILES

AT = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def hierarchy() -> Hierarchy:
    return Hierarchy.build(HierarchyConfig.default(), at=AT)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_supersede_moves_name_children_and_crl_number(backend: str, hierarchy: Hierarchy, tmp_path: Path,
                                                      request: pytest.FixtureRequest) -> None:
    where = str(tmp_path / "ledger.db") if backend == "sqlite" else request.getfixturevalue("pg_url")
    ledger = open_ledger(where)
    try:
        sub = hierarchy.ca("cpo-sub-ca-1")
        old = record_for(sub.certificate, issuer_ca="v2g-root", role="cpo-sub-ca-1", issued_at=AT, name="cpo-sub-ca-1",
                         key_ref="file:keys/old.key.pem")
        child = record_for(hierarchy.ca("cpo-sub-ca-2").certificate, issuer_ca="cpo-sub-ca-1", role="cpo-sub-ca-2",
                           issued_at=AT, name="cpo-sub-ca-2")
        ledger.add([old, child])
        for _ in range(3):
            ledger.next_crl_number("cpo-sub-ca-1")
        other = Hierarchy.build(HierarchyConfig.default(), at=AT)  # stands in for the new generation
        new = record_for(other.ca("cpo-sub-ca-1").certificate, issuer_ca="v2g-root", role="cpo-sub-ca-1", issued_at=AT,
                         name="cpo-sub-ca-1", key_ref="file:keys/new.key.pem")
        alias = generation_name("cpo-sub-ca-1", old.serial)
        assert lineage(alias) == "cpo-sub-ca-1" and alias == f"cpo-sub-ca-1@{old.serial[:12]}"
        ledger.supersede(old, [new], alias=alias)
        current, previous = ledger.get_named("cpo-sub-ca-1"), ledger.get_named(alias)
        assert current is not None and current.fingerprint == new.fingerprint and current.superseded_by is None
        assert previous is not None and previous.superseded_by == new.fingerprint and previous.key_ref == old.key_ref
        moved = ledger.get_named("cpo-sub-ca-2")
        assert moved is not None and moved.issuer_ca == alias  # what the old generation issued follows it
        assert ledger.next_crl_number(alias) == 4  # the old generation's CRLs carry on numbering
        assert previous.status_at(AT + timedelta(days=1)) is CertificateStatus.SUPERSEDED
        # a second renewal from the same (now stale) record is refused, nothing written
        with pytest.raises(DuplicateError):
            ledger.supersede(old, [replace(new, fingerprint="00" * 32, serial="abc")], alias=alias + "x")
        assert ledger.count() == 3
        retired = ledger.retire(alias, AT + timedelta(days=2))
        assert retired.retired_at == AT + timedelta(days=2)
        again = ledger.get_named(alias)
        assert again is not None and again.status_at(AT + timedelta(days=3)) is CertificateStatus.RETIRED
        assert again.status_at(AT + timedelta(days=1)) is CertificateStatus.SUPERSEDED
    finally:
        ledger.close()


def test_status_from_time_and_selection(hierarchy: Hierarchy) -> None:
    cert = hierarchy.certificates["csms-server-rsa"].certificate
    rec = record_for(cert, issuer_ca="csms-root", role="csms-server-rsa", issued_at=AT, name="csms-server-rsa")
    assert rec.not_before == AT - DEFAULT_BACKDATE
    assert rec.status_at(AT) is CertificateStatus.VALID
    assert rec.status_at(AT - timedelta(hours=1)) is CertificateStatus.NOT_YET_VALID
    assert rec.status_at(rec.not_after) is CertificateStatus.EXPIRED
    revoked = replace(rec, status=CertificateStatus.REVOKED, revoked_at=AT + timedelta(days=1))
    assert revoked.status_at(AT) is CertificateStatus.VALID and revoked.status_at(AT + timedelta(days=2)).value == "revoked"
    assert rec.to_json(rec.not_after)["status"] == "expired" and rec.to_json()["status"] == "valid"
    records = [rec, revoked, replace(rec, role="charging-station", issuer_ca="csms-root@0123456789ab")]
    assert select_records(records, at=AT, issuers=["csms-root"], roles=["charging-station"]) == [records[2]]
    assert select_records(records, at=AT + timedelta(days=2), statuses=[CertificateStatus.REVOKED]) == [revoked]
    assert len(select_records(records, at=AT, expiring_within=timedelta(days=366))) == 3
    assert select_records(records, at=AT, expiring_within=timedelta(days=300)) == []


def test_check_validity_rules(hierarchy: Hierarchy) -> None:
    root = hierarchy.ca("csms-root").certificate
    p = PROFILES["charging-station"]
    nb = AT - DEFAULT_BACKDATE
    assert check_validity(p, nb, nb + timedelta(days=730), root, at=AT) == []
    [past] = check_validity(p, nb, nb + timedelta(days=4000), root, at=AT)
    assert past.requirement == "RFC5280-6.1.3(a)(2)" and "at most 3650 days" in past.message
    later = root.not_valid_after_utc + timedelta(days=1)
    assert "expired on" in check_validity(p, later, later + timedelta(days=1), root, at=later)[0].message
    assert [v.requirement for v in check_validity(p, nb, nb + timedelta(days=30), root, at=AT,
                                                  now=AT + timedelta(days=40))] == ["RFC5280-4.1.2.5"]
    assert [v.requirement for v in check_validity(p, nb, nb + timedelta(days=30), root, at=AT,
                                                  now=AT - timedelta(days=1))] == ["A02.FR.06"]


@pytest.mark.parametrize(("old", "new", "needle", "requirement"), [
    ('[iso15118_20]\nenabled = false', '[iso15118_20]\nenabeld = false', "did you mean 'enabled'?", None),
    ("\n[network]\n", "\n[netwrk]\n[network]\n", "did you mean 'network'?", None),
    ('name = "csms-server-rsa"\nprofile = "csms-server-rsa"\n',
     'name = "csms-server-rsa"\nprofile = "charging-station"\nsan_dns = ["x.example"]\n',
     "carries no subjectAltName", "A00.FR.511"),
    ('name = "firmware-signing"\nprofile = "firmware-signing"\nissuer = "manufacturer-root"',
     'name = "firmware-signing"\nprofile = "firmware-signing"\nissuer = "csms-root"',
     "is issued by manufacturer-root, not by csms-root", "L01.FR.02 (signed by the manufacturer root)"),
])
def test_plan_refusals(old: str, new: str, needle: str, requirement: str | None) -> None:
    text = default_config_text()
    assert old in text
    with pytest.raises(UsageError) as info:
        HierarchyConfig.from_toml(text.replace(old, new, 1)).plan()
    assert needle in info.value.diagnostics() and info.value.requirement == requirement


def test_plan_refuses_a_key_the_iso15118_20_twins_do_not_allow() -> None:
    text = default_config_text().replace("[iso15118_20]\nenabled = false", "[iso15118_20]\nenabled = true")
    assert 'key = "p521"' in text
    with pytest.raises(UsageError) as info:
        HierarchyConfig.from_toml(text.replace('key = "p521"', 'key = "p256"', 1)).plan()
    assert "key p256 is not allowed for profile v2g-root-20" in str(info.value)
    assert info.value.requirement == "ISO15118-20 (P-521/Ed448)"


def test_plan_gives_server_certificates_their_fqdn_as_subject_alt_name() -> None:
    text = default_config_text().replace('name = "csms-server-rsa"\nprofile = "csms-server-rsa"\n',
                                         'name = "csms-server-rsa"\nprofile = "csms-server-rsa"\n'
                                         'san_dns = ["csms-alt.example.com"]\n', 1)
    plan = HierarchyConfig.from_toml(text, csms_fqdn="csms.acme.test").plan()
    assert plan.get("csms-server-rsa").san_dns == ("csms.acme.test", "csms-alt.example.com")
    assert plan.get("csms-server-ecdsa").san_dns == ("csms.acme.test",)
    assert plan.get("csms-root").san_dns == () and plan.get("firmware-signing").san_dns == ()


def test_to_toml_merges_overrides_into_one_table() -> None:
    first = HierarchyConfig.from_toml(default_config_text(), cso_name="A")
    again = HierarchyConfig.from_toml(first.to_toml(), cso_name="A", csms_fqdn="f.example")
    merged = HierarchyConfig.from_toml(again.to_toml())  # valid TOML: one [network_overrides]
    assert merged.network["cso_name"] == "A" and merged.network["csms_fqdn"] == "f.example"


def test_renew_refuses_past_the_issuer_and_writes_nothing(tmp_path: Path) -> None:
    pki = PkiDirectory.init(tmp_path / "pki", HierarchyConfig.default(), passphrase=None, at=AT)
    try:
        keys = sorted((tmp_path / "pki" / "keys").iterdir())
        rows = pki.ledger.count()
        late = AT + timedelta(days=3400)  # the server certificate's 365 days would pass the root's notAfter
        with pytest.raises(PolicyError) as info:
            pki.renew("csms-server-rsa", at=late)
        assert info.value.requirement == "RFC5280-6.1.3(a)(2)"
        assert sorted((tmp_path / "pki" / "keys").iterdir()) == keys and pki.ledger.count() == rows
        done = pki.renew("csms-server-rsa", at=late, validity_days=200)
        assert done.new.not_after <= pki.ca_certificate("csms-root").not_valid_after_utc
        with pytest.raises(UsageError, match="superseded generation"):
            pki.renew(str(done.old.name), at=late)
    finally:
        pki.close()


def test_retired_generation_is_served_by_no_one_and_its_key_is_gone(tmp_path: Path) -> None:
    from ocppsec.pki.revocation.authorities import load_authorities

    pki = PkiDirectory.init(tmp_path / "pki", HierarchyConfig.default(), passphrase=None, at=AT)
    try:
        done = pki.renew("cpo-sub-ca-2", at=AT + timedelta(days=1))
        old = str(done.old.name)
        names = {a.name for a in load_authorities(pki, at=AT + timedelta(days=1), delegated=False)}
        assert {old, "cpo-sub-ca-2"} <= names  # the old generation still answers for what it issued
        key_file = tmp_path / "pki" / str(done.old.key_ref)[5:]
        assert key_file.is_file()
        pki.retire(old, at=AT + timedelta(days=2))
        assert not key_file.exists()
        names = {a.name for a in load_authorities(pki, at=AT + timedelta(days=2), delegated=False)}
        assert old not in names and "cpo-sub-ca-2" in names
        with pytest.raises(UsageError, match="retired"):
            pki.ca(old)
    finally:
        pki.close()
