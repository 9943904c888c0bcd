"""CRLs: built from the ledger, verified by `openssl crl`, checked by our chain validation, x509-limbo crl::*."""

from __future__ import annotations

import gzip
import json
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ocppsec.pki.directory import PkiDirectory
from ocppsec.pki.errors import ChainError, UsageError
from ocppsec.pki.keys import LocalKey, PublicKey, SignatureScheme
from ocppsec.pki.revocation.check import (
    CrlError,
    RevokedError,
    check_crl_status,
    check_serial_status,
    index_crl,
    load_crl,
    verify_chain_with_crls,
)
from ocppsec.pki.revocation.crl import CrlEntry, build_crl, crl_entries, parse_reason
from revocation.conftest import AT, issue_station


@dataclass(frozen=True)
class ExternalKey:
    """A signing key that is not a LocalKey, like a PKCS#11 one: only sign(data, scheme) is available."""

    inner: LocalKey
    label: str = "external"

    def public_key(self) -> PublicKey:
        return self.inner.public_key()

    def sign(self, data: bytes, scheme: SignatureScheme) -> bytes:
        return self.inner.sign(data, scheme)


def _crl_for(pki: PkiDirectory, at: datetime = AT) -> x509.CertificateRevocationList:
    ca = pki.ca("csms-root")
    return build_crl(ca.certificate, ca.key, crl_entries(pki.ledger.revoked("csms-root")), at=at,
                     number=pki.ledger.next_crl_number("csms-root"))


def test_crl_from_ledger_verifies_with_openssl(pki_dir: PkiDirectory, root_pem: Path, tmp_path: Path) -> None:
    a = issue_station(pki_dir, "SN-A", tmp_path)
    b = issue_station(pki_dir, "SN-B", tmp_path)
    pki_dir.ledger.revoke(a.serial, "csms-root", AT, parse_reason("key-compromise").value)
    pki_dir.ledger.revoke(b.serial, "csms-root", AT, "superseded")
    crl = _crl_for(pki_dir)
    path = tmp_path / "root.crl"
    path.write_bytes(crl.public_bytes(Encoding.PEM))
    out = subprocess.run(["openssl", "crl", "-in", str(path), "-CAfile", str(root_pem), "-verify", "-noout", "-text"],
                         capture_output=True, text=True, check=True)
    assert "verify OK" in out.stderr + out.stdout
    text = out.stdout
    assert "Key Compromise" in text and "Superseded" in text
    assert a.serial.upper() in text.upper().replace(":", "") or format(a.cert.serial_number, "X") in text.replace(":", "")
    assert "CRL Number" in text and "Next Update" in text
    assert crl.next_update_utc == AT + timedelta(days=1)
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 1
    assert pki_dir.ledger.next_crl_number("csms-root") == 2  # monotonic


def test_openssl_verify_crl_check_rejects_revoked_leaf(pki_dir: PkiDirectory, root_pem: Path, tmp_path: Path) -> None:
    good = issue_station(pki_dir, "SN-G", tmp_path)
    bad = issue_station(pki_dir, "SN-R", tmp_path)
    pki_dir.ledger.revoke(bad.serial, "csms-root", AT, "keyCompromise")
    crl_path = tmp_path / "root.crl"
    crl_path.write_bytes(_crl_for(pki_dir).public_bytes(Encoding.PEM))

    def verify(p: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["openssl", "verify", "-crl_check", "-CAfile", str(root_pem), "-CRLfile", str(crl_path),
                               "-attime", str(int(AT.timestamp()) + 3600), str(p)], capture_output=True, text=True)

    assert verify(good.path).returncode == 0
    res = verify(bad.path)
    assert res.returncode != 0 and "revoked" in (res.stdout + res.stderr)


def test_external_key_signs_crl(pki_dir: PkiDirectory) -> None:
    ca = pki_dir.ca("csms-root")
    assert isinstance(ca.key, LocalKey)
    crl = build_crl(ca.certificate, ExternalKey(ca.key), [CrlEntry(0x1234, AT, x509.ReasonFlags.key_compromise)],
                    at=AT, number=7)
    assert crl.is_signature_valid(ca.certificate.public_key())  # type: ignore[arg-type]
    assert crl.get_revoked_certificate_by_serial_number(0x1234) is not None


def test_chain_with_our_crl(pki_dir: PkiDirectory, tmp_path: Path) -> None:
    root = pki_dir.ca_certificate("csms-root")
    good = issue_station(pki_dir, "SN-1", tmp_path)
    bad = issue_station(pki_dir, "SN-2", tmp_path)
    pki_dir.ledger.revoke(bad.serial, "csms-root", AT, "keyCompromise")
    crl = _crl_for(pki_dir)
    later = AT + timedelta(hours=1)
    verify_chain_with_crls(good.cert, [], [root], [crl], at=later, require=True)
    with pytest.raises(RevokedError) as info:
        verify_chain_with_crls(bad.cert, [], [root], [crl], at=later)
    assert info.value.reason is x509.ReasonFlags.key_compromise
    assert check_crl_status(good.cert, root, [crl], at=later).status == "good"
    assert check_serial_status(bad.cert.serial_number, root, [crl], at=later).revoked
    # before the revocation date the certificate was still good
    assert check_crl_status(bad.cert, root, [crl], at=AT - timedelta(seconds=1)).status != "revoked"


def test_stale_or_missing_crl(pki_dir: PkiDirectory, tmp_path: Path) -> None:
    root = pki_dir.ca_certificate("csms-root")
    leaf = issue_station(pki_dir, "SN-3", tmp_path).cert
    crl = _crl_for(pki_dir)
    stale = AT + timedelta(days=3)
    assert check_crl_status(leaf, root, [crl], at=stale).status == "unknown"
    verify_chain_with_crls(leaf, [], [root], [crl], at=stale)  # not required: passes
    with pytest.raises(ChainError, match="no current CRL"):
        verify_chain_with_crls(leaf, [], [root], [crl], at=stale, require=True)
    with pytest.raises(ChainError):
        verify_chain_with_crls(leaf, [], [root], [], at=AT, require=True)
    assert check_crl_status(leaf, root, [crl], at=AT - timedelta(hours=1)).status == "unknown"  # CRL from the future


def test_crl_of_another_ca_is_ignored(pki_dir: PkiDirectory, tmp_path: Path) -> None:
    root = pki_dir.ca_certificate("csms-root")
    leaf = issue_station(pki_dir, "SN-4", tmp_path).cert
    other = pki_dir.ca("manufacturer-root")
    foreign = build_crl(other.certificate, other.key, [CrlEntry(leaf.serial_number, AT)], at=AT, number=1)
    assert check_crl_status(leaf, root, [foreign], at=AT).status == "unknown"


def test_index_answers_as_the_per_call_check(pki_dir: PkiDirectory, tmp_path: Path) -> None:
    root = pki_dir.ca_certificate("csms-root")
    good = issue_station(pki_dir, "SN-I1", tmp_path)
    bad = issue_station(pki_dir, "SN-I2", tmp_path)
    pki_dir.ledger.revoke(bad.serial, "csms-root", AT + timedelta(minutes=30), "keyCompromise")
    crl = _crl_for(pki_dir, at=AT + timedelta(hours=1))
    index = index_crl(crl, root, at=AT + timedelta(hours=1))
    assert index.number == 1 and index.issuer == root.subject and len(index.entries) == 1
    for at in (AT + timedelta(minutes=59), AT + timedelta(hours=2), AT + timedelta(days=3)):
        for cert in (good.cert, bad.cert):
            expected = check_crl_status(cert, root, [crl], at=at)
            got = index.status(cert.serial_number, at=at)
            assert (got.status, got.reason, got.revoked_at) == (expected.status, expected.reason, expected.revoked_at)
    assert index.status(bad.cert.serial_number, at=AT + timedelta(hours=2)).reason is x509.ReasonFlags.key_compromise
    assert index.current(AT + timedelta(hours=2)) and not index.current(AT + timedelta(days=3))
    assert not index.current(AT)  # issued after that moment


def test_index_refuses_a_crl_its_issuer_did_not_sign(pki_dir: PkiDirectory) -> None:
    root = pki_dir.ca("csms-root")
    other = pki_dir.ca("manufacturer-root")
    with pytest.raises(CrlError, match="not issued by"):
        index_crl(build_crl(other.certificate, other.key, [], at=AT, number=1), root.certificate, at=AT)
    # the right issuer Name, signed by another key
    forged = (x509.CertificateRevocationListBuilder().issuer_name(root.certificate.subject).last_update(AT)
              .next_update(AT + timedelta(days=1)).add_extension(x509.CRLNumber(1), critical=False))
    assert isinstance(other.key, LocalKey)
    from ocppsec.pki.builder import signature_hash_for

    signed = forged.sign(other.key.private_key, signature_hash_for(other.key.public_key()))
    with pytest.raises(CrlError, match="does not verify"):
        index_crl(signed, root.certificate, at=AT)
    no_number = (x509.CertificateRevocationListBuilder().issuer_name(root.certificate.subject).last_update(AT)
                 .next_update(AT + timedelta(days=1)))
    assert isinstance(root.key, LocalKey)
    with pytest.raises(CrlError, match="CRLNumber"):
        index_crl(no_number.sign(root.key.private_key, signature_hash_for(root.key.public_key())), root.certificate, at=AT)


def test_bad_inputs() -> None:
    with pytest.raises(UsageError, match="unknown revocation reason"):
        parse_reason("stolen")
    with pytest.raises(UsageError):
        parse_reason("removeFromCRL")  # delta CRLs only
    with pytest.raises(CrlError):
        load_crl(b"not a crl")
    with pytest.raises(CrlError):
        load_crl(b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n")


def _limbo_cases() -> list[dict[str, object]]:
    path = Path(__file__).resolve().parents[1] / "vectors" / "x509-limbo" / "limbo.json.gz"
    with gzip.open(path, "rt") as fh:
        data = json.load(fh)
    return [t for t in data["testcases"] if str(t["id"]).startswith("crl::")]


LIMBO = _limbo_cases()


def test_limbo_has_the_eight_crl_cases() -> None:
    assert len(LIMBO) == 8


@pytest.mark.parametrize("case", LIMBO, ids=[str(t["id"]) for t in LIMBO])
def test_limbo_crl(case: dict[str, object]) -> None:
    def load(p: object) -> x509.Certificate:
        return x509.load_pem_x509_certificate(str(p).encode())

    peer_name = case["expected_peer_name"]
    assert isinstance(peer_name, dict) and peer_name["kind"] == "DNS"
    args = (
        load(case["peer_certificate"]), [load(c) for c in case["untrusted_intermediates"]],  # type: ignore[attr-defined]
        [load(c) for c in case["trusted_certs"]],  # type: ignore[attr-defined]
        [load_crl(str(c).encode()) for c in case["crls"]],  # type: ignore[attr-defined]
    )
    at = datetime.fromisoformat(str(case["validation_time"]))
    if case["expected_result"] == "SUCCESS":
        verify_chain_with_crls(*args, at=at, server_name=peer_name["value"], ca_key_usage_optional=True)
    else:
        with pytest.raises(ChainError):
            verify_chain_with_crls(*args, at=at, server_name=peer_name["value"], ca_key_usage_optional=True)
