"""What the seeds and the harnesses are made of: one in-memory PKI, a station store, a CSMS service, an OCSP responder.

Everything is built once per process (``functools.cache``) from the toolkit itself, so the seeds are
the inputs the toolkit really produces and exchanges. Keys and serial numbers are deterministic
(EC keys derived from their names, one RSA test key kept beside this file, serials counted), so a
corpus file written by one process means the same in the next: a saved CertificateSigned chain still
matches the station's outstanding CSR, a saved OCSP request still asks about a certificate the
responder knows. (ECDSA signatures stay random; nothing depends on their bytes.)
"""

from __future__ import annotations

import atexit
import copy
import hashlib
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from unittest.mock import patch

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from ocppsec.eventlog import open_store
from ocppsec.eventlog.store_sql import SqlEventStore
from ocppsec.pki import Hierarchy, HierarchyConfig
from ocppsec.pki.certmgmt import (
    AuthoritySigner,
    CertificateService,
    CertificateUse,
    MemoryStationStorage,
    RootType,
    StationCertificateStore,
    StationConfig,
    StationInfo,
)
from ocppsec.pki.certmgmt.model import SignRequest
from ocppsec.pki.keys import PrivateKey
from ocppsec.pki.keys.base import KeySpec
from ocppsec.pki.ledger import CertificateRecord, CertificateStatus, record_for
from ocppsec.pki.revocation.ocsp import OcspAuthority, OcspResponder

NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
CSO = "Example CSO"
SERIAL = "SN-0001"
SECC = "DEABCS1234567890"
STATION = "CS001"


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(Encoding.PEM).decode("ascii")


_RSA_KEY = Path(__file__).with_name("_rsa_test_key.pem")


class _Deterministic:
    """Stand-ins for ``generate_key`` and ``new_serial`` that give the same keys and serials in every process."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.keys = 0
        self.serials = 0

    def generate_key(self, spec: KeySpec) -> PrivateKey:
        self.keys += 1
        seed = hashlib.sha512(f"{self.label}/{self.keys}/{spec.value}".encode()).digest()
        if spec.is_rsa:  # RSA keys cannot be derived cheaply: every RSA key is the one test key
            key = serialization.load_pem_private_key(_RSA_KEY.read_bytes(), None)
            assert isinstance(key, rsa.RSAPrivateKey)
            return key
        if spec is KeySpec.ED448:
            return ed448.Ed448PrivateKey.from_private_bytes(seed[:57])
        curve = {KeySpec.P256: ec.SECP256R1(), KeySpec.P384: ec.SECP384R1(), KeySpec.P521: ec.SECP521R1()}[spec]
        return ec.derive_private_key(int.from_bytes(seed, "big") % (2**(curve.key_size - 1)) + 1, curve)

    def new_serial(self) -> int:
        self.serials += 1
        return int.from_bytes(hashlib.sha256(f"{self.label}/serial/{self.serials}".encode()).digest()[:15], "big") | 1 << 119

    @contextmanager
    def installed(self) -> Iterator[None]:
        with ExitStack() as stack:
            for target in ("ocppsec.pki.hierarchy.generate_key", "ocppsec.pki.certmgmt.station.generate_key"):
                stack.enter_context(patch(target, self.generate_key))
            for target in ("ocppsec.pki.builder.new_serial", "ocppsec.pki.issuance.new_serial", "ocppsec.pki.directory.new_serial"):
                stack.enter_context(patch(target, self.new_serial))
            yield


@cache
def hierarchy() -> Hierarchy:
    with _Deterministic("hierarchy").installed():
        return Hierarchy.build(HierarchyConfig.default(cso_name=CSO), at=NOW - timedelta(days=10))


@cache
def service() -> CertificateService:
    h = hierarchy()
    cs = h.ca("csms-root")
    signer = AuthoritySigner({CertificateUse.CHARGING_STATION: cs, CertificateUse.COMBINED: cs,
                              CertificateUse.V2G: h.ca("cpo-sub-ca-2")}, ocsp_url="http://ocsp.example.com/{issuer}")
    stations = {STATION: StationInfo(STATION, serial=SERIAL, secc_ids=(SECC,))}
    return CertificateService(signer, cso_name=CSO, stations=stations)


@dataclass(frozen=True)
class StationBase:
    """A station store with every root installed and one outstanding CSR per use, and what the CSMS signed."""

    storage: MemoryStationStorage
    config: StationConfig
    csrs: dict[CertificateUse, str]
    chains: dict[CertificateUse, str]

    def fresh(self) -> StationCertificateStore:
        """A store in this state (a deep copy: what an input does to it stays with that input)."""
        return StationCertificateStore(copy.deepcopy(self.storage), self.config)


@cache
def station_base() -> StationBase:
    h = hierarchy()
    config = StationConfig(serial=SERIAL, organization=CSO, secc_id=SECC)
    storage = MemoryStationStorage(None)
    store = StationCertificateStore(storage, config)
    for root_type, name in ((RootType.CSMS, "csms-root"), (RootType.V2G, "v2g-root"),
                            (RootType.MANUFACTURER, "manufacturer-root"), (RootType.MO, "mo-root")):
        outcome = store.install_root(root_type, pem(h.ca(name).certificate), at=NOW, max_chars=5500)
        assert outcome.accepted, outcome
    csrs: dict[CertificateUse, str] = {}
    chains: dict[CertificateUse, str] = {}
    with _Deterministic("station").installed():
        for use in (CertificateUse.CHARGING_STATION, CertificateUse.V2G):
            csrs[use] = store.create_csr(use, at=NOW)
            _, order = service().handle(STATION, SignRequest(csrs[use], use), at=NOW)
            assert order is not None, use
            chains[use] = order.chain_pem
    return StationBase(storage, config, csrs, chains)


class MemoryLookup:
    """The ledger as the OCSP responder reads it: a few records in memory."""

    def __init__(self, records: list[CertificateRecord]) -> None:
        self.records = records

    def find_serial(self, serial: str, issuer_ca: str | None = None) -> list[CertificateRecord]:
        return [r for r in self.records if r.serial == serial and issuer_ca in (None, r.issuer_ca)]

    def revoked(self, issuer_ca: str) -> list[CertificateRecord]:
        return [r for r in self.records if r.issuer_ca == issuer_ca and r.status == CertificateStatus.REVOKED]

    def all(self) -> list[CertificateRecord]:
        return list(self.records)


@dataclass(frozen=True)
class OcspSetup:
    responder: OcspResponder
    root: x509.Certificate
    good: x509.Certificate
    revoked: x509.Certificate


@cache
def ocsp_setup() -> OcspSetup:
    h = hierarchy()
    ca = h.ca("csms-root")
    good = x509.load_pem_x509_certificate(station_base().chains[CertificateUse.CHARGING_STATION].encode())
    revoked = h.certificates["csms-server-ecdsa"].certificate
    records = [record_for(good, issuer_ca="csms-root", role="charging-station", issued_at=NOW),
               record_for(revoked, issuer_ca="csms-root", role="csms-server", issued_at=NOW)]
    from dataclasses import replace

    records[1] = replace(records[1], status=CertificateStatus.REVOKED, revoked_at=NOW - timedelta(days=1),
                         revocation_reason="keyCompromise")
    authority = OcspAuthority("csms-root", ca.certificate, ca.certificate, ca.key)
    return OcspSetup(OcspResponder([authority], MemoryLookup(records)), ca.certificate, good, revoked)


class _EventStores:
    """A real SQLite event store in a temporary folder, replaced by a fresh one every ``ROTATE`` writes.

    Fuzzed events are mostly distinct, so de-duplication does not bound the file; rotating does (a long
    campaign would otherwise grow it by gigabytes)."""

    ROTATE = 50_000

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="ocppsec-fuzz-"))
        atexit.register(shutil.rmtree, self.folder, True)
        self.store: SqlEventStore | None = None
        self.writes = 0

    def get(self, events: int) -> SqlEventStore:
        self.writes += events
        if self.store is not None and self.writes > self.ROTATE:
            self.store.close()
            for path in self.folder.iterdir():
                path.unlink()
            self.store, self.writes = None, events
        if self.store is None:
            self.store = open_store(self.folder / "events.db")
        return self.store


_event_stores = _EventStores()


def event_store(events: int = 1) -> SqlEventStore:
    """The event store to write ``events`` events to."""
    return _event_stores.get(events)
