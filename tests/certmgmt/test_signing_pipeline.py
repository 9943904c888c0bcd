"""The CSMS service signs through the issuance pipeline: the policy runs once, ledger row and inventory agree."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from ocppsec.pki.certmgmt import (
    AuthoritySigner,
    CertificateService,
    CertificateUse,
    LocalCaSigner,
    SigningOrder,
    SignRequest,
    StationInfo,
    inventory_location,
    open_inventory,
)
from ocppsec.pki.certmgmt.inventory import IssuedEntryFactory
from ocppsec.pki.csr import make_csr
from ocppsec.pki.directory import PkiDirectory
from ocppsec.pki.errors import PolicyError
from ocppsec.pki.hierarchy import Hierarchy, HierarchyConfig
from ocppsec.pki.issuance import IssuancePipeline
from ocppsec.pki.ledger import record_for
from ocppsec.pki.pem import certificates_to_pem
from ocppsec.pki.profiles import PROFILES

from .conftest import CSO, NOW, SECC

STATIONS = {f"CS{n}": StationInfo(f"CS{n}", serial=f"SN-{n}", secc_ids=(SECC,)) for n in range(4)}


def _pem(csr: x509.CertificateSigningRequest) -> str:
    return csr.public_bytes(Encoding.PEM).decode()


def _requests() -> list[tuple[str, SignRequest]]:
    out = [(f"CS{n}", SignRequest(_pem(make_csr(ec.generate_private_key(ec.SECP256R1()), {"O": CSO, "CN": f"SN-{n}"},
                                                PROFILES["charging-station"])))) for n in range(3)]
    v2g = make_csr(ec.generate_private_key(ec.SECP256R1()), {"C": "DE", "O": CSO, "DC": "CPO", "CN": SECC}, PROFILES["secc"])
    out.append(("CS3", SignRequest(_pem(v2g), CertificateUse.V2G)))
    return out


def test_a_mixed_batch_through_the_local_ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pki = PkiDirectory.init(tmp_path / "pki", HierarchyConfig.default(cso_name=CSO), passphrase=None, at=NOW)
    inventory = open_inventory(inventory_location(pki.path))
    service = CertificateService(LocalCaSigner(pki), cso_name=CSO, stations=STATIONS, inventory=inventory)
    validations: list[object] = []
    original = IssuancePipeline.validate
    monkeypatch.setattr(IssuancePipeline, "validate", lambda self, *a, **k: validations.append(a) or original(self, *a, **k))
    requests = _requests()
    answers = service.handle_many(requests, at=NOW)
    assert validations == []  # the service's review is the policy check; the CA does not run it again
    factory = IssuedEntryFactory()
    for (station, request), (outcome, order) in zip(requests, answers, strict=True):
        assert outcome.accepted and order is not None
        chain = order.chain
        assert chain.record is not None and chain.record.station == station
        issuer = chain.sub_cas[0] if chain.sub_cas else chain.root
        assert issuer is not None
        assert chain.record == record_for(chain.leaf, issuer_ca=chain.issuer, role=chain.record.role, issued_at=NOW,
                                          station=station)
        assert order.chain_pem == certificates_to_pem((chain.leaf, *chain.sub_cas))
        entry = inventory.find(station, order.leaf_hash_data)
        expected = factory(station, request.use.value, chain.leaf, issuer, at=NOW)
        assert entry is not None and (entry.hash_key, entry.serial, entry.fingerprint, entry.not_after, entry.state) == (
            expected.hash_key, expected.serial, expected.fingerprint, expected.not_after, "sent")
        assert pki.ledger.find_serial(chain.record.serial, chain.issuer)[0].fingerprint == chain.record.fingerprint
    assert {o.chain.issuer for _, o in answers if o} == {"csms-root", "cpo-sub-ca-2"}
    assert len(inventory.all()) == 4
    inventory.close()
    pki.close()


def test_orders_without_a_policy_result_are_checked_by_the_ca() -> None:
    h = Hierarchy.build(HierarchyConfig.default(cso_name=CSO), at=NOW)
    signer = AuthoritySigner({CertificateUse.CHARGING_STATION: h.ca("csms-root")})
    good = make_csr(ec.generate_private_key(ec.SECP256R1()), {"O": CSO, "CN": "SN-1"}, PROFILES["charging-station"])
    (chain,) = signer.sign([SigningOrder(good, CertificateUse.CHARGING_STATION, "CS1")], at=NOW)
    chain.leaf.verify_directly_issued_by(h.ca("csms-root").certificate)
    assert chain.record is not None and chain.record.station == "CS1"  # made, though kept in no ledger
    url = make_csr(ec.generate_private_key(ec.SECP256R1()), {"O": CSO, "CN": "https://x"}, PROFILES["charging-station"])
    with pytest.raises(PolicyError, match="CSR of CS2 rejected"):
        signer.sign([SigningOrder(url, CertificateUse.CHARGING_STATION, "CS2")], at=NOW)

