"""Fixtures of the revocation tests: a PKI directory (fresh copy per test), certificates, PostgreSQL."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import ocpp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from ocppsec.pki.csr import make_csr
from ocppsec.pki.directory import PkiDirectory
from ocppsec.pki.hierarchy import HierarchyConfig
from ocppsec.pki.keys import KeySpec, generate_key

AT = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
SCHEMA_DIRS = {
    "1.6": Path(ocpp.__file__).parent / "v16" / "schemas",
    "2.0.1": Path(ocpp.__file__).parent / "v201" / "schemas",
    "2.1": Path(ocpp.__file__).parent / "v21" / "schemas",
}


def validate(version: str, action: str, payload: dict[str, Any], response: bool = False) -> None:
    """Validate against the official JSON schema shipped in the ocpp package."""
    suffix = ("Response" if response else "Request") if version != "1.6" else ("Response" if response else "")
    schema = json.loads((SCHEMA_DIRS[version] / f"{action}{suffix}.json").read_text(encoding="utf-8-sig"))
    jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker()).validate(payload)


@dataclass
class Issued:
    cert: x509.Certificate
    path: Path

    @property
    def serial(self) -> str:
        return format(self.cert.serial_number, "x")


def issue_station(pki: PkiDirectory, sn: str, out: Path, at: datetime = AT) -> Issued:
    csr = make_csr(generate_key(KeySpec.P256), {"O": "Example CSO", "CN": sn})
    cert = pki.issue_from_csr(csr, ca="csms-root", at=at).issued.certificate
    path = out / f"{sn}.pem"
    path.write_bytes(cert.public_bytes(Encoding.PEM))
    return Issued(cert, path)


@pytest.fixture(scope="session")
def pki_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory built once (unencrypted keys for speed); tests get copies."""
    base = tmp_path_factory.mktemp("pki-template") / "pki"
    PkiDirectory.init(base, HierarchyConfig.default(), passphrase=None, at=AT).close()
    return base


@pytest.fixture
def pki_dir(pki_template: Path, tmp_path: Path) -> Iterator[PkiDirectory]:
    target = tmp_path / "pki"
    shutil.copytree(pki_template, target)
    pki = PkiDirectory.open(target)
    yield pki
    pki.close()


@pytest.fixture
def root_pem(pki_dir: PkiDirectory, tmp_path: Path) -> Path:
    path = tmp_path / "csms-root.pem"
    path.write_bytes(pki_dir.ca_certificate("csms-root").public_bytes(Encoding.PEM))
    return path



