"""Fixtures of the revocation tests: a PKI directory (fresh copy per test), certificates, an OCSP responder
over HTTP with a good and a revoked SECC chain, PostgreSQL."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
from ocppsec.pki.hierarchy import HierarchyConfig, IssuedCertificate
from ocppsec.pki.keys import KeySpec, generate_key
from ocppsec.pki.revocation.authorities import load_authorities
from ocppsec.pki.revocation.ocsp import OcspResponder
from ocppsec.pki.revocation.server import OcspHttpServer
from ocppsec.pki.revocation.status import ocsp_url_of

AT = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
NOW = datetime.now(UTC).replace(microsecond=0)
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


@pytest.fixture
def v2g(pki_dir: PkiDirectory) -> Iterator[tuple[OcspHttpServer, IssuedCertificate, IssuedCertificate]]:
    """A responder for the CPO sub-CAs over HTTP, a good SECC chain and a revoked one (AIA → the responder)."""
    responder = OcspResponder(load_authorities(pki_dir, ["v2g-root", "cpo-sub-ca-1", "cpo-sub-ca-2"], at=NOW), pki_dir.ledger)
    # the responder's clock is the tests' NOW (fixed at import), so a slow suite that reaches these tests
    # minutes later gets answers that are current at the time the tests check them at
    server = OcspHttpServer(("127.0.0.1", 0), responder, clock=lambda: NOW, refresh_interval=None)
    server.start()
    issued = []
    for sn in ("DEABCS1234567890", "DEABCS0000000001"):
        csr = make_csr(generate_key(KeySpec.P256), {"CN": sn, "O": "Example CSO", "C": "DE", "DC": "CPO"})
        issued.append(pki_dir.issue_from_csr(csr, ca="cpo-sub-ca-2", at=NOW - timedelta(hours=1)).issued)
    pki_dir.ledger.revoke(format(issued[1].certificate.serial_number, "x"), "cpo-sub-ca-2", NOW, "keyCompromise")
    yield server, issued[0], issued[1]
    server.stop()


def ocsp_url_for(server: OcspHttpServer, cert: IssuedCertificate | x509.Certificate) -> str:
    """The test responder's URL for a certificate's AIA OCSP URL (same path, our host and port)."""
    aia = ocsp_url_of(cert if isinstance(cert, x509.Certificate) else cert.certificate)
    assert aia is not None and aia.startswith("http://ocsp.example.com/")  # what the hierarchy file configures
    return server.url + "/" + aia.rsplit("/", 1)[1]
