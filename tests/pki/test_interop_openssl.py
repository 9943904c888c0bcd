"""Interop with the openssl CLI: every chain PkiDirectory.init and issue_from_csr make passes
`openssl verify -x509_strict` (root via -CAfile, sub-CAs via -untrusted), and CSRs made by `openssl req` issue."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pytest
from cryptography import x509

from ocppsec.pki import (
    KeySpec,
    PkiDirectory,
    PolicyContext,
    PolicyError,
    certificates_to_pem,
    generate_key,
    get_profile,
    lint_certificate,
    load_certificates,
    load_csr,
    make_csr,
    verify_issued_chain,
)

from .corpus import AT, iso20_config
from .helpers import LEAVES

OPENSSL = shutil.which("openssl")


def openssl(*args: str | Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    assert OPENSSL is not None, "openssl CLI missing (apt-get install openssl)"
    return subprocess.run([OPENSSL, *map(str, args)], input=stdin, capture_output=True, check=False, timeout=30)


def openssl_verify(tmp: Path, leaf: x509.Certificate, subs: Sequence[x509.Certificate], root: x509.Certificate,
                   at: datetime, *, strict: bool = True) -> subprocess.CompletedProcess[bytes]:
    (tmp / "leaf.pem").write_text(certificates_to_pem([leaf]))
    (tmp / "root.pem").write_text(certificates_to_pem([root]))
    args: list[str | Path] = ["verify", "-attime", str(int(at.timestamp()) + 60), "-CAfile", tmp / "root.pem"]
    if strict:
        args.insert(1, "-x509_strict")
    if subs:
        (tmp / "subs.pem").write_text(certificates_to_pem(subs))
        args += ["-untrusted", tmp / "subs.pem"]
    return openssl(*args, tmp / "leaf.pem")


@pytest.fixture(scope="module", params=["p521", "ed448"])
def pki(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> PkiDirectory:
    key = str(request.param)
    d = PkiDirectory.init(tmp_path_factory.mktemp(f"pki-{key}") / "pki", iso20_config(key),
                          passphrase=b"interop" if key == "p521" else None, at=AT)
    yield d  # type: ignore[misc]
    d.close()


def test_every_init_chain_passes_openssl_verify_x509_strict(pki: PkiDirectory, tmp_path: Path) -> None:
    records = pki.ledger.all()
    assert len(records) == 27
    failures = []
    for rec in records:
        assert rec.name is not None
        chain = pki.chain_of(rec.name)
        leaf, root = chain[0], chain[-1]
        proc = openssl_verify(tmp_path, leaf, chain[1:-1], root, AT)
        if proc.returncode != 0 or b": OK" not in proc.stdout:
            failures.append((rec.name, proc.stdout + proc.stderr))
    assert not failures, failures


@pytest.mark.parametrize("profile", sorted(LEAVES))
def test_every_issued_chain_passes_openssl_verify_x509_strict(pki: PkiDirectory, tmp_path: Path, profile: str) -> None:
    ca, subject = LEAVES[profile]
    p = get_profile(profile)
    iso20_key = next(e.key for e in pki.config.plan().cas if e.name == "v2g-root-20")
    spec = iso20_key if profile.endswith("-20") else p.default_key
    csr = make_csr(generate_key(spec), subject, p)
    result = pki.issue_from_csr(csr, ca=ca, at=AT, profile=p)
    chain = load_certificates(result.chain_pem(), strict=True)
    root = pki.chain_of(ca)[-1]
    assert root not in chain  # CertificateSigned form: leaf first, sub-CAs, no root
    assert chain[0].public_key() == csr.public_key()
    proc = openssl_verify(tmp_path, chain[0], chain[1:], root, AT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    verify_issued_chain(chain, [root], at=AT, max_depth=p.max_chain_depth)


def test_openssl_rejects_a_chain_without_its_sub_cas(pki: PkiDirectory, tmp_path: Path) -> None:
    """The harness can fail: the SECC leaf alone does not verify against the V2G root."""
    ca, subject = LEAVES["secc"]
    result = pki.issue_from_csr(make_csr(generate_key(KeySpec.P256), subject, get_profile("secc")), ca=ca, at=AT)
    chain = load_certificates(result.chain_pem())
    proc = openssl_verify(tmp_path, chain[0], [], pki.chain_of(ca)[-1], AT)
    assert proc.returncode != 0


@pytest.mark.parametrize("keyopt", [["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"], ["-newkey", "rsa:2048"]],
                         ids=["p256", "rsa2048"])
def test_openssl_req_csr_issues_and_verifies(pki: PkiDirectory, tmp_path: Path, keyopt: list[str]) -> None:
    proc = openssl("req", "-new", *keyopt, "-nodes", "-keyout", tmp_path / "k.pem", "-subj", "/O=Example CSO/CN=SN-42",
                   "-out", tmp_path / "req.pem")
    assert proc.returncode == 0, proc.stderr
    csr = load_csr((tmp_path / "req.pem").read_bytes())
    result = pki.issue_from_csr(csr, ca="csms-root", at=AT, ctx=PolicyContext(cso_name="Example CSO", expected_cn="SN-42"))
    assert result.report.ok and result.record.role == "charging-station"
    chain = load_certificates(result.chain_pem())
    assert len(chain) == 1  # issued directly by the CSMS root
    root = pki.chain_of("csms-root")[0]
    assert openssl_verify(tmp_path, chain[0], [], root, AT).returncode == 0
    # the certificate belongs to the key openssl generated
    proc = openssl("x509", "-noout", "-pubkey", stdin=result.chain_pem().encode())
    key_pub = openssl("pkey", "-in", tmp_path / "k.pem", "-pubout")
    assert proc.stdout == key_pub.stdout
    assert lint_certificate(chain[0], get_profile("charging-station"), PolicyContext(cso_name="Example CSO")).ok


def test_openssl_req_csr_with_the_wrong_organisation_is_refused(pki: PkiDirectory, tmp_path: Path) -> None:
    proc = openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                   tmp_path / "k.pem", "-subj", "/O=Someone Else/CN=https:\\/\\/evil.example", "-out", tmp_path / "r.pem")
    assert proc.returncode == 0, proc.stderr
    before = len(pki.ledger.all())
    with pytest.raises(PolicyError) as exc:
        pki.issue_from_csr(load_csr((tmp_path / "r.pem").read_bytes()), ca="csms-root", at=AT)
    assert {v.requirement for v in exc.value.violations} == {"A00.FR.509/A02.FR.13", "A00.FR.511"}
    assert len(pki.ledger.all()) == before


def test_openssl_p192_csr_is_refused_with_a00_fr_503(pki: PkiDirectory, tmp_path: Path) -> None:
    assert openssl("ecparam", "-name", "prime192v1", "-genkey", "-noout", "-out", tmp_path / "k.pem").returncode == 0
    proc = openssl("req", "-new", "-key", tmp_path / "k.pem", "-subj", "/O=Example CSO/CN=SN-43", "-out", tmp_path / "r.pem")
    assert proc.returncode == 0, proc.stderr
    with pytest.raises(PolicyError) as exc:
        pki.issue_from_csr(load_csr((tmp_path / "r.pem").read_bytes()), ca="csms-root", at=AT)
    assert [v.requirement for v in exc.value.violations] == ["A00.FR.503"]
