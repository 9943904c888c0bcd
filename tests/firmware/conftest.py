"""Fixtures for the firmware tests: a manufacturer PKI in memory, files on disk, a SoftHSM2 token."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ocppsec.pki.builder import CertificateRequest, build_certificate
from ocppsec.pki.keys import KeySpec, LocalKey, generate_key
from ocppsec.pki.names import make_name
from ocppsec.pki.profiles import get_profile

AT = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
NOT_BEFORE = AT - timedelta(days=30)


@dataclass(frozen=True)
class Signer:
    certificate: x509.Certificate
    key: LocalKey

    @property
    def pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()


@dataclass(frozen=True)
class ManufacturerPki:
    root: Signer
    other_root: Signer
    intermediate: Signer  # a CA below the root (firmware certificates must not come from one)
    ecdsa: Signer  # P-256 firmware-signing certificate
    ecdsa384: Signer
    rsa: Signer  # RSA-2048
    expired: Signer
    not_yet_valid: Signer
    via_intermediate: Signer
    foreign: Signer  # issued by other_root


def make_root(cn: str, spec: KeySpec = KeySpec.P256) -> Signer:
    key = LocalKey(generate_key(spec), cn)
    req = CertificateRequest(get_profile("manufacturer-root"), make_name({"CN": cn, "O": "Example Manufacturer"}),
                             key.public_key(), NOT_BEFORE - timedelta(days=365), 7300)
    return Signer(build_certificate(req, issuer_certificate=None, issuer_key=key), key)


def issue(issuer: Signer, cn: str, spec: KeySpec = KeySpec.P256, *, profile: str = "firmware-signing",
          not_before: datetime = NOT_BEFORE, days: int = 365) -> Signer:
    key = LocalKey(generate_key(spec), cn)
    req = CertificateRequest(get_profile(profile), make_name({"CN": cn, "O": "Example Manufacturer"}),
                             key.public_key(), not_before, days)
    return Signer(build_certificate(req, issuer_certificate=issuer.certificate, issuer_key=issuer.key), key)


@pytest.fixture(scope="session")
def pki() -> ManufacturerPki:
    root = make_root("Example Manufacturer Root CA")
    other = make_root("Other Manufacturer Root CA")
    intermediate = issue(root, "Example Manufacturer Sub-CA", profile="manufacturer-root")
    return ManufacturerPki(
        root=root,
        other_root=other,
        intermediate=intermediate,
        ecdsa=issue(root, "Firmware Signing P-256"),
        ecdsa384=issue(root, "Firmware Signing P-384", KeySpec.P384),
        rsa=issue(root, "Firmware Signing RSA", KeySpec.RSA2048),
        expired=issue(root, "Firmware Signing expired", not_before=AT - timedelta(days=400), days=100),
        not_yet_valid=issue(root, "Firmware Signing future", not_before=AT + timedelta(days=10)),
        via_intermediate=issue(intermediate, "Firmware Signing via Sub-CA"),
        foreign=issue(other, "Firmware Signing other vendor"),
    )


@pytest.fixture
def image(tmp_path: Path) -> Path:
    """A 200 KiB + 123 byte image (more than three 64 KiB chunks, not a multiple of the chunk size)."""
    path = tmp_path / "firmware.bin"
    path.write_bytes(os.urandom(200 * 1024 + 123))
    return path


# --- SoftHSM2 ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Token:
    label: str
    pin: str
    so_pin: str
    module: str
    conf: Path

    def uri(self, obj: str) -> str:
        return f"pkcs11:token={self.label};object={obj}"

    def env(self) -> dict[str, str]:
        return {**os.environ, "SOFTHSM2_CONF": str(self.conf), "OCPPSEC_PKCS11_PIN": self.pin,
                "OCPPSEC_PKCS11_MODULE": self.module}


SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"


@pytest.fixture(scope="session")
def token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Token]:
    """A throw-away SoftHSM2 token in a temporary directory, initialised without prompts."""
    from ocppsec.pki.keys.pkcs11 import close_sessions

    if shutil.which("softhsm2-util") is None or not Path(SOFTHSM_MODULE).is_file():
        pytest.fail("SoftHSM2 is not installed (Debian package softhsm2); .ci/run installs it")
    base = tmp_path_factory.mktemp("softhsm")
    (base / "tokens").mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {base / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    tok = Token("ocppsec", "1234-test-pin", "87654321", SOFTHSM_MODULE, conf)
    saved = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    close_sessions()  # a module loaded earlier read another configuration
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", tok.label, "--so-pin", tok.so_pin, "--pin", tok.pin],
        check=True, capture_output=True, env=tok.env(),
    )
    yield tok
    close_sessions()
    if saved is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = saved
