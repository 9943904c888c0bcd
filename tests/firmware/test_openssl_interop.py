"""Interop with ``openssl dgst -sha256 -sign / -verify``, both ways, for the three schemes."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from ocppsec.firmware_signing import (
    FirmwareOutcome,
    FirmwareScheme,
    check_file,
    sign_file,
    verify_file,
)

from .conftest import AT, ManufacturerPki, Signer

PSS_OPTS = ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32", "-sigopt", "rsa_mgf1_md:sha256"]
CASES = [
    ("ecdsa", FirmwareScheme.ECDSA_SHA256, []),
    ("ecdsa384", FirmwareScheme.ECDSA_SHA256, []),
    ("rsa", FirmwareScheme.RSA_PSS_SHA256, PSS_OPTS),
    ("rsa", FirmwareScheme.RSA_PKCS1V15_SHA256, []),
]


def _write_keys(tmp: Path, signer: Signer) -> tuple[Path, Path]:
    key = tmp / "key.pem"
    key.write_bytes(signer.key.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    pub = tmp / "pub.pem"
    pub.write_bytes(signer.certificate.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return key, pub


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(("signer_name", "scheme", "opts"), CASES, ids=lambda v: getattr(v, "value", str(v)))
def test_ours_verifies_with_openssl(pki: ManufacturerPki, image: Path, tmp_path: Path,
                                    signer_name: str, scheme: FirmwareScheme, opts: list[str]) -> None:
    signer: Signer = getattr(pki, signer_name)
    _, pub = _write_keys(tmp_path, signer)
    signature = sign_file(image, signer.key, signer.certificate, scheme=scheme)
    sig = tmp_path / "sig.bin"
    sig.write_bytes(base64.b64decode(signature.b64))
    cmd = ["openssl", "dgst", "-sha256", "-verify", str(pub), *opts, "-signature", str(sig), str(image)]
    ok = subprocess.run(cmd, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "Verified OK" in ok.stdout
    _flip(image, 100_000)
    bad = subprocess.run(cmd, capture_output=True, text=True)
    assert bad.returncode == 1
    assert "Verification failure" in bad.stdout + bad.stderr


@pytest.mark.parametrize(("signer_name", "scheme", "opts"), CASES, ids=lambda v: getattr(v, "value", str(v)))
def test_openssl_signature_verifies_with_ours(pki: ManufacturerPki, image: Path, tmp_path: Path,
                                              signer_name: str, scheme: FirmwareScheme, opts: list[str]) -> None:
    signer: Signer = getattr(pki, signer_name)
    key, _ = _write_keys(tmp_path, signer)
    sig = tmp_path / "sig.bin"
    subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(key), *opts, "-out", str(sig), str(image)],
                   check=True, capture_output=True)
    b64 = base64.b64encode(sig.read_bytes()).decode()
    report = verify_file(image, b64, signer.pem, [pki.root.certificate], at=AT)
    assert report.scheme is scheme  # undeclared: ECDSA, or RSA PSS-then-v1.5 naming the one that held
    assert verify_file(image, b64, signer.pem, [pki.root.certificate], at=AT, scheme=scheme).ok
    # one flipped byte anywhere (first, middle, last) gives InvalidSignature
    size = image.stat().st_size
    for offset in (0, size // 2, size - 1):
        _flip(image, offset)
        report = check_file(image, b64, signer.pem, [pki.root.certificate], at=AT)
        assert report.outcome is FirmwareOutcome.INVALID_SIGNATURE
        assert report.security_event == "InvalidFirmwareSignature"
        _flip(image, offset)
    assert check_file(image, b64, signer.pem, [pki.root.certificate], at=AT).ok
