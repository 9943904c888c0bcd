"""The on-disk PKI (PkiDirectory + its SQLite ledger): durability under SIGKILL, passphrases, key files, serials,
atomic batches. Key files only; the PKCS#11 path is tested elsewhere."""

from __future__ import annotations

import itertools
import os
import random
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ocppsec.pki import (
    DuplicateError,
    Hierarchy,
    KeySpec,
    NotFoundError,
    PkiDirectory,
    PolicyContext,
    PolicyError,
    UsageError,
    WrongPassphraseError,
    generate_key,
    get_profile,
    lint_certificate,
    load_certificate,
    load_certificates,
    load_key_file,
    make_csr,
    verify_issued_chain,
)
from ocppsec.pki.ledger import record_for
from ocppsec.pki.ledger_sql import open_ledger

from .corpus import AT, CSO, iso20_config
from .helpers import issue

REPO = Path(__file__).resolve().parents[2]
PASS = b"directory test passphrase"
ALL_NAMES = {"csms-root", "manufacturer-root", "v2g-root", "cpo-sub-ca-1", "cpo-sub-ca-2", "cps-sub-ca-1", "cps-sub-ca-2",
             "mo-root", "mo-sub-ca-1", "mo-sub-ca-2", "oem-root", "oem-sub-ca-1", "oem-sub-ca-2",
             "csms-server-rsa", "csms-server-ecdsa", "firmware-signing"}
ALL_NAMES_20 = ALL_NAMES | {f"{n}-20" for n in ALL_NAMES if n.split("-")[0] in ("v2g", "cpo", "cps", "mo", "oem")}


def station_csr(cn: str = "SN-0001", o: str = CSO, spec: KeySpec = KeySpec.P256) -> x509.CertificateSigningRequest:
    return make_csr(generate_key(spec), {"O": o, "CN": cn}, get_profile("charging-station"))


def pub_der(obj: object) -> bytes:
    return obj.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)  # type: ignore[attr-defined]


def ledger_rows(path: Path) -> list[tuple[str, str, str | None, str | None]]:
    """(serial, issuer_ca, name, key_ref) of every row, read with plain sqlite3 (not through the code under test)."""
    db = sqlite3.connect(path / "ledger.db")
    try:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'ledger_certificates'").fetchone():
            return []  # killed before the schema migration committed: an empty ledger
        return db.execute("SELECT serial, issuer_ca, name, key_ref FROM ledger_certificates ORDER BY id").fetchall()
    finally:
        db.close()


def check_invariants(path: Path, passphrase: bytes | None) -> list[tuple[str, str, str | None, str | None]]:
    """What a kill at any moment must leave: every row complete (cert file, key file), no duplicates."""
    rows = ledger_rows(path)
    assert len({(s, i) for s, i, _, _ in rows}) == len(rows), "duplicate serial per issuer"
    names = [n for _, _, n, _ in rows if n is not None]
    assert len(names) == len(set(names)), Counter(names).most_common(3)
    for serial, issuer, name, key_ref in rows:
        assert name is not None
        cert_file = path / "certs" / f"{name}.pem"
        assert cert_file.is_file(), f"ledger row {name} without its certificate file"
        cert = load_certificate(cert_file.read_bytes())
        assert format(cert.serial_number, "x") == serial
        assert key_ref is not None and key_ref.startswith("file:")
        key_file = path / key_ref[5:]
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert pub_der(load_key_file(key_file, passphrase)) == pub_der(cert), f"{name}: key and certificate differ"
        assert issuer in names[: names.index(name) + 1], f"{name} recorded before its issuer {issuer}"
    return rows


INIT_SCRIPT = """
import sys
from ocppsec.pki import PkiDirectory
from tests.pki.corpus import AT, iso20_config
config = iso20_config("p521")
print("ready", flush=True)
PkiDirectory.init(sys.argv[1], config, passphrase=sys.argv[2].encode(), at=AT)
print("done", flush=True)
"""


def test_init_survives_sigkill_at_random_moments(tmp_path: Path) -> None:
    target = tmp_path / "pki"
    rng = random.Random(0x0CC9)
    killed_with_rows = []
    for _ in range(5):
        proc = subprocess.Popen([sys.executable, "-c", INIT_SCRIPT, str(target), PASS.decode()], cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
        time.sleep(rng.uniform(0.0, 0.12))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        rest = proc.stdout.read()
        if "done" in rest:  # finished before the kill; start again elsewhere
            break
        assert proc.returncode == -signal.SIGKILL
        killed_with_rows.append(len(check_invariants(target, PASS)))
    assert killed_with_rows, "no kill landed during init"
    # resume to completion
    pki = PkiDirectory.init(target, iso20_config("p521"), passphrase=PASS, at=AT)
    try:
        rows = check_invariants(target, PASS)
        assert {n for _, _, n, _ in rows} == ALL_NAMES_20
        assert len(rows) == len(ALL_NAMES_20)
        roots = pki.trust_roots()
        assert {r.subject.rfc4514_string() for r in roots} >= {pki.ca_certificate("v2g-root-20").subject.rfc4514_string()}
        for name in ("cpo-sub-ca-2", "cpo-sub-ca-2-20", "csms-server-rsa", "firmware-signing"):
            chain = pki.chain_of(name)
            assert chain[-1] in roots
            for child, parent in itertools.pairwise(chain):
                child.verify_directly_issued_by(parent)
        # a second resume is a no-op
        before = ledger_rows(target)
        PkiDirectory.init(target, iso20_config("p521"), passphrase=PASS, at=AT).close()
        assert ledger_rows(target) == before
    finally:
        pki.close()
    print(f"rows after each kill: {killed_with_rows}")


ISSUE_SCRIPT = """
import sys
from ocppsec.pki import PkiDirectory, KeySpec, generate_key, make_csr, get_profile
from tests.pki.corpus import AT
pki = PkiDirectory.open(sys.argv[1], sys.argv[2].encode())
key = generate_key(KeySpec.P256)
csrs = [make_csr(key, {"O": "Example CSO", "CN": f"SN-{n}"}) for n in range(25)]
pki.ca("csms-root")
print("ready", flush=True)
while True:
    pki.issue_many(csrs, ca="csms-root", at=AT)
"""


def test_issue_many_commits_whole_batches_under_sigkill(pki_dir: Path) -> None:
    rng = random.Random(7)
    base = len(ledger_rows(pki_dir))
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", ISSUE_SCRIPT, str(pki_dir), PASS.decode()], cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.2))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        rows = ledger_rows(pki_dir)
        assert (len(rows) - base) % 25 == 0, "a batch was half recorded"
        assert len({(s, i) for s, i, _, _ in rows}) == len(rows)
    assert len(ledger_rows(pki_dir)) > base


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dir") / "pki"
    PkiDirectory.init(path, iso20_config("ed448"), passphrase=PASS, at=AT).close()
    return path


@pytest.fixture
def pki(pki_dir: Path) -> PkiDirectory:
    d = PkiDirectory.open(pki_dir, PASS)
    yield d  # type: ignore[misc]
    d.close()


def test_keys_are_0600_and_encrypted(pki_dir: Path) -> None:
    keys = sorted((pki_dir / "keys").glob("*.key.pem"))
    assert {k.name.removesuffix(".key.pem") for k in keys} == ALL_NAMES_20
    assert stat.S_IMODE((pki_dir / "keys").stat().st_mode) == 0o700
    for k in keys:
        assert stat.S_IMODE(k.stat().st_mode) == 0o600, k
        text = k.read_text()
        assert text.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----"), k
        assert "BEGIN PRIVATE KEY" not in text
    assert not list(pki_dir.glob("**/*.tmp"))


def test_keys_are_plain_only_without_a_passphrase(tmp_path: Path) -> None:
    PkiDirectory.init(tmp_path / "plain", iso20_config("p521"), passphrase=None, at=AT).close()
    for k in (tmp_path / "plain" / "keys").glob("*.key.pem"):
        assert stat.S_IMODE(k.stat().st_mode) == 0o600
        assert k.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    # an empty passphrase is no passphrase, not a weak one: the keys are written plain
    PkiDirectory.init(tmp_path / "empty", iso20_config("p521"), passphrase=b"", at=AT).close()
    assert (tmp_path / "empty" / "keys" / "csms-root.key.pem").read_text().startswith("-----BEGIN PRIVATE KEY-----")


def test_wrong_passphrase_writes_nothing(pki_dir: Path) -> None:
    before = ledger_rows(pki_dir)
    wrong = PkiDirectory.open(pki_dir, b"not the passphrase")
    try:
        with pytest.raises(WrongPassphraseError) as exc:
            wrong.issue_from_csr(station_csr(), ca="csms-root", at=AT)
        assert exc.value.exit_code == 1 and "wrong passphrase" in str(exc.value)
        with pytest.raises(WrongPassphraseError):
            wrong.ca("cpo-sub-ca-2-20")
    finally:
        wrong.close()
    assert ledger_rows(pki_dir) == before
    with pytest.raises(UsageError, match="no passphrase"):
        PkiDirectory.open(pki_dir, None).ca("csms-root")


def test_resuming_init_with_a_wrong_passphrase_writes_nothing(tmp_path: Path) -> None:
    """A kill left only the first root; resuming with another passphrase must not add roots keyed with it."""
    path = tmp_path / "pki"
    PkiDirectory.init(path, iso20_config("p521"), passphrase=PASS, at=AT).close()
    db = sqlite3.connect(path / "ledger.db")
    db.execute("DELETE FROM ledger_certificates WHERE name != 'csms-root'")
    db.commit()
    db.close()
    with pytest.raises(WrongPassphraseError):
        PkiDirectory.init(path, iso20_config("p521"), passphrase=b"another passphrase", at=AT)
    assert [n for _, _, n, _ in ledger_rows(path)] == ["csms-root"]
    PkiDirectory.init(path, iso20_config("p521"), passphrase=PASS, at=AT).close()
    assert {n for _, _, n, _ in check_invariants(path, PASS)} == ALL_NAMES_20


def test_policy_failure_writes_nothing(pki: PkiDirectory, pki_dir: Path) -> None:
    before = ledger_rows(pki_dir)
    files = sorted(pki_dir.rglob("*"))
    with pytest.raises(PolicyError) as exc:
        pki.issue_from_csr(station_csr(cn="https://x.example", o="Other CSO"), ca="csms-root", at=AT)
    assert {v.requirement for v in exc.value.violations} == {"A00.FR.509/A02.FR.13", "A00.FR.511"}
    with pytest.raises(PolicyError):
        pki.issue_from_csr(station_csr(), ca="csms-root", at=AT, ctx=PolicyContext(cso_name=CSO, serial_registry={"SN-9"}))
    assert ledger_rows(pki_dir) == before
    assert sorted(pki_dir.rglob("*")) == files


def test_issue_many_is_all_or_nothing(pki: PkiDirectory, pki_dir: Path) -> None:
    before = ledger_rows(pki_dir)
    batch = [station_csr(f"SN-{n}") for n in range(5)] + [station_csr("SN-5", spec=KeySpec.RSA2048), station_csr("10.0.0.1")]
    with pytest.raises(PolicyError, match=r"request 7"):
        pki.issue_many(batch, ca="csms-root", at=AT)
    assert ledger_rows(pki_dir) == before
    results = pki.issue_many(batch[:-1], ca="csms-root", at=AT, station="batch-test")
    assert len(ledger_rows(pki_dir)) == len(before) + 6
    assert [r.record.station for r in results] == ["batch-test"] * 6
    assert [r.issued.certificate.subject for r in results] == [c.subject for c in batch[:-1]]


def test_ledger_add_is_atomic_and_refuses_duplicates(tmp_path: Path) -> None:
    h = Hierarchy.build(iso20_config("p521"), at=AT)
    a, b = (issue(h, "charging-station").certificate for _ in range(2))
    ledger = open_ledger(tmp_path / "l.db")
    try:
        ra = record_for(a, issuer_ca="csms-root", role="charging-station", issued_at=AT)
        rb = record_for(b, issuer_ca="csms-root", role="charging-station", issued_at=AT)
        ledger.add([ra])
        clash = replace(rb, serial=ra.serial)  # same serial, same issuer
        with pytest.raises(DuplicateError):
            ledger.add([replace(rb, serial="1" + ra.serial), clash])
        assert [r.serial for r in ledger.all()] == [ra.serial]  # the first record of the failed batch is gone too
        ledger.add([replace(clash, issuer_ca="other-ca")])  # unique per issuer, not globally
        with pytest.raises(DuplicateError):
            ledger.add([replace(rb, name="x"), replace(ra, serial="abc", fingerprint="00", name="x")])
        assert len(ledger.all()) == 2
        assert ledger.find_serial("0X00" + ra.serial.upper(), "csms-root")[0].fingerprint == ra.fingerprint
        revoked = ledger.revoke(ra.serial, "csms-root", AT + timedelta(days=1), "keyCompromise")
        assert revoked.status == "revoked" and [r.serial for r in ledger.revoked("csms-root")] == [ra.serial]
        with pytest.raises(NotFoundError):
            ledger.revoke("dead", "csms-root", AT, "x")
    finally:
        ledger.close()


def test_serials_are_random_64_bit_and_unique(pki: PkiDirectory, pki_dir: Path) -> None:
    key = generate_key(KeySpec.P256)
    csrs = [make_csr(key, {"O": CSO, "CN": f"SN-{n:04}"}) for n in range(150)]
    results = pki.issue_many(csrs, ca="csms-root", at=AT)
    serials = [r.issued.certificate.serial_number for r in results]
    assert len(set(serials)) == len(serials)
    assert all(64 <= s.bit_length() <= 159 for s in serials)
    assert max(s.bit_length() for s in serials) > 100  # random, not a counter
    for r in results[:10]:
        assert r.record.serial == format(r.issued.certificate.serial_number, "x")
    rows = ledger_rows(pki_dir)
    assert len({(s, i) for s, i, _, _ in rows}) == len(rows)


def test_issue_from_csr_takes_extensions_from_the_profile_only(pki: PkiDirectory) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    key = generate_key(KeySpec.P256)
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, CSO),
                                    x509.NameAttribute(x509.NameOID.COMMON_NAME, "SN-77")]))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName("evil.example")]), critical=False)
           .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
           .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
           .sign(key, hashes.SHA256()))  # type: ignore[arg-type]
    result = pki.issue_from_csr(csr, ca="csms-root", at=AT, station="SN-77")
    cert = result.issued.certificate
    assert lint_certificate(cert, get_profile("charging-station"), PolicyContext(cso_name=CSO)).ok
    for cls in (x509.SubjectAlternativeName, x509.ExtendedKeyUsage):
        with pytest.raises(x509.ExtensionNotFound):
            cert.extensions.get_extension_for_class(cls)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert pki.ledger.find_serial(result.record.serial, "csms-root")[0].station == "SN-77"


def test_issue_for_every_leaf_ca_with_the_default_profile(pki: PkiDirectory) -> None:
    secc = make_csr(generate_key(KeySpec.ED448), {"C": "DE", "O": CSO, "DC": "CPO", "CN": "DE*EXA*E1"})
    result = pki.issue_from_csr(secc, ca="cpo-sub-ca-2-20", at=AT)
    assert result.record.role == "secc-20"
    chain = load_certificates(result.chain_pem(), strict=True)
    assert len(chain) == 3
    verify_issued_chain(chain, [pki.ca_certificate("v2g-root-20")], at=AT, max_depth=3)
    with pytest.raises(PolicyError):  # P-256 is not an ISO 15118-20 key
        pki.issue_from_csr(make_csr(generate_key(KeySpec.P256), {"C": "DE", "O": CSO, "DC": "CPO", "CN": "DE*EXA*E2"}),
                           ca="cpo-sub-ca-2-20", at=AT)
    with pytest.raises(UsageError):
        pki.issue_from_csr(station_csr(), ca="no-such-ca", at=AT)
    with pytest.raises(UsageError):
        pki.issue_from_csr(station_csr(), ca="cpo-sub-ca-1", at=AT)  # issues only CAs


def test_open_refuses_a_non_pki_directory(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not an ocppsec PKI directory"):
        PkiDirectory.open(tmp_path)
    assert os.listdir(tmp_path) == []
