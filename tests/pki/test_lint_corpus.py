"""The negative corpus through lint_certificate / check_csr, and every good certificate through the linter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ocppsec.pki import (
    PROFILES,
    Hierarchy,
    HierarchyConfig,
    PolicyContext,
    PolicyError,
    check_csr,
    default_config_text,
    get_profile,
    guess_profile,
    lint_certificate,
    load_certificate,
    load_csr,
    verify_csr,
    verify_profile,
)

from .corpus import AT, CASES, CSO, STATION, TEMPLATES, Factory, corrupt_csr_signature, parse_filename, resign_csr_sha1, slug
from .helpers import LEAVES, issue

REPO = Path(__file__).resolve().parents[2]
CERT_CASES = [c for c in CASES if c.kind == "cert"]
CSR_CASES = [c for c in CASES if c.kind == "csr"]


def cited(violations: object) -> set[str]:
    return {slug(v.requirement) for v in violations}  # type: ignore[attr-defined]


@pytest.mark.parametrize("case", CERT_CASES, ids=[c.filename for c in CERT_CASES])
def test_certificate_breaks_exactly_the_requirement_its_name_says(corpus_dir: Path, case: object) -> None:
    name = case.filename  # type: ignore[attr-defined]
    kind, requirement, _ = parse_filename(name)
    assert kind == "cert"
    cert = load_certificate((corpus_dir / name).read_bytes())
    report = lint_certificate(cert, get_profile(case.profile), case.context())  # type: ignore[attr-defined]
    assert not report.ok
    assert cited(report.violations) == {requirement}, [str(v) for v in report.violations]
    with pytest.raises(PolicyError) as exc:
        verify_profile(cert, get_profile(case.profile), case.context())  # type: ignore[attr-defined]
    assert exc.value.violations == report.violations


@pytest.mark.parametrize("case", CSR_CASES, ids=[c.filename for c in CSR_CASES])
def test_csr_breaks_exactly_the_requirement_its_name_says(corpus_dir: Path, case: object) -> None:
    name = case.filename  # type: ignore[attr-defined]
    kind, requirement, _ = parse_filename(name)
    assert kind == "csr"
    csr = load_csr((corpus_dir / name).read_bytes())
    profile = get_profile(case.profile)  # type: ignore[attr-defined]
    report = check_csr(csr, profile, case.context())  # type: ignore[attr-defined]
    assert not report.ok
    assert cited(report.violations) == {requirement}, [str(v) for v in report.violations]
    assert report.to_json()["ok"] is False
    with pytest.raises(PolicyError) as exc:
        verify_csr(csr, profile, case.context())  # type: ignore[attr-defined]
    assert exc.value.violations == report.violations
    assert str(exc.value).count("[") >= len(report.violations)


def test_corpus_covers_the_requirements_of_the_issue() -> None:
    ids = {c.requirement for c in CASES}
    assert {"A00.FR.502", "A00.FR.503", "A00.FR.504", "A00.FR.506", "A00.FR.508", "A00.FR.510", "A00.FR.511",
            "A00.FR.512", "A00.FR.514", "A00.FR.601", "RFC2986", "V2G2-006", "V2G2-007", "V2G2-009",
            "V2G2-010", "Hubject 3.7 (DC=CPO)", "M06 remarks (responderURL)"} <= ids
    assert "A00.FR.509/A02.FR.13" in ids and "A00.FR.509" in ids
    assert len(CASES) >= 80


@pytest.mark.parametrize("profile", sorted(TEMPLATES))
def test_corpus_templates_are_clean(factory: Factory, profile: str) -> None:
    """Without a mutation the corpus builder makes correct certificates: each corpus defect is the only one."""
    cert = load_certificate(factory.cert(profile))
    report = lint_certificate(cert, get_profile(profile), PolicyContext(cso_name=CSO))
    assert report.ok, [str(v) for v in report.violations]


def test_corpus_good_csrs_are_clean(factory: Factory) -> None:
    assert check_csr(load_csr(factory.csr(STATION)), get_profile("charging-station")).ok


def test_sha1_csr_with_a_broken_signature_reports_both(factory: Factory) -> None:
    sha1 = resign_csr_sha1(factory.csr_obj(STATION), factory.key("p256"))
    report = check_csr(corrupt_csr_signature(sha1), get_profile("charging-station"))
    assert {v.requirement for v in report.violations} == {"RFC2986", "A00.FR.504"}


def test_corpus_command_writes_every_file_and_a_manifest(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "tests.pki.corpus", str(tmp_path / "out")], cwd=REPO,
                          capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    files = sorted(p.name for p in (tmp_path / "out").glob("*.pem"))
    assert files == sorted(c.filename for c in CASES)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert set(manifest) == set(files)
    assert manifest["csr_A00.FR.502_rsa1024.pem"]["profile"] == "charging-station"
    for name in ("csr_A00.FR.502_rsa1024.pem", "cert_A00.FR.514_eku_present.pem", "csr_A00.FR.511_cn_url.pem",
                 "csr_A00.FR.509+A02.FR.13_wrong_o.pem", "csr_RFC2986_bad_signature.pem", "csr_A00.FR.503_p192.pem",
                 "cert_V2G2-010_oversize.pem", "cert_V2G2-006_sha384.pem", "cert_A00.FR.512_ku_not_critical.pem"):
        assert name in files
    bad = subprocess.run([sys.executable, "-m", "tests.pki.corpus"], cwd=REPO, capture_output=True, text=True,
                         check=False, timeout=60)
    assert bad.returncode == 2 and "usage" in bad.stderr


# -- good certificates ---------------------------------------------------------------------------------------
def test_every_ca_of_every_hierarchy_lints_clean(hierarchy: Hierarchy) -> None:
    assert len(hierarchy.cas) == 24  # 13 CAs + 11 -20 twins
    for name, ca in hierarchy.cas.items():
        report = lint_certificate(ca.certificate, ca.profile)
        assert report.ok, (name, [str(v) for v in report.violations])
        assert guess_profile(ca.certificate).name == ca.profile.name, name


def test_init_certificates_lint_clean(hierarchy: Hierarchy) -> None:
    for name, issued in hierarchy.certificates.items():
        report = lint_certificate(issued.certificate, get_profile(name))
        assert report.ok, (name, [str(v) for v in report.violations])


@pytest.mark.parametrize("profile", sorted(LEAVES))
def test_every_leaf_profile_lints_clean(hierarchy: Hierarchy, profile: str) -> None:
    leaf = issue(hierarchy, profile)
    report = lint_certificate(leaf.certificate, get_profile(profile), None)
    assert report.ok, [str(v) for v in report.violations]
    assert guess_profile(leaf.certificate).name == profile


def test_cso_sub_ca_hierarchy_lints_clean() -> None:
    """The optional CSO sub-CA (A00.FR.602), commented out in the default configuration."""
    text = default_config_text().replace('# [[ca]]\n# name = "cso-sub-ca"', '[[ca]]\nname = "cso-sub-ca"')
    text = text.replace('# profile = "cso-sub-ca"\n# issuer = "csms-root"\n# subject', 'profile = "cso-sub-ca"\nissuer = "csms-root"\nsubject')
    h = Hierarchy.build(HierarchyConfig.from_toml(text), at=AT)
    sub = h.ca("cso-sub-ca")
    assert lint_certificate(sub.certificate, get_profile("cso-sub-ca")).ok
    leaf = h.issue_leaf("charging-station", ca="cso-sub-ca", subject={"O": CSO, "CN": "SN-7"}, at=AT)
    assert lint_certificate(leaf.certificate, get_profile("charging-station")).ok
    assert leaf.sub_cas == (sub.certificate,)


def test_all_profiles_are_covered_by_the_good_certificate_tests(h521: Hierarchy) -> None:
    covered = {ca.profile.name for ca in h521.cas.values()} | set(LEAVES) | {"cso-sub-ca"}
    assert covered == set(PROFILES)


def test_a_good_certificate_fails_for_the_wrong_profile_or_cso(h521: Hierarchy) -> None:
    station = issue(h521, "charging-station").certificate
    assert lint_certificate(station, get_profile("charging-station"), PolicyContext(cso_name=CSO)).ok
    assert not lint_certificate(station, get_profile("secc")).ok
    wrong_cso = lint_certificate(station, get_profile("charging-station"), PolicyContext(cso_name="Other CSO"))
    assert [v.requirement for v in wrong_cso.violations] == ["A00.FR.509/A02.FR.13"]
