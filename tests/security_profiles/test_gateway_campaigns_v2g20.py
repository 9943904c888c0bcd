"""A V2G renewal campaign for ISO 15118-20 SECC certificates, end to end: a test CA with the "-20" twins of its
ISO 15118 CAs, a real gateway over real loopback TLS signing V2G20Certificate CSRs with cpo-sub-ca-2-20, and
``ocpp``-package stations holding a -20 SECC certificate in their certmgmt store. The 2.1 station is sent
TriggerMessage SignV2G20Certificate (A02.FR.22-23) and installs the certificate the gateway signs; the 2.0.1
station, whose version has no such trigger, is sent nothing and its row is skipped. The upstream CSMS sees none
of it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from ocppsec.pki.certmgmt import CertificateUse, InventoryState
from ocppsec.pki.directory import PkiDirectory
from ocppsec.pki.lifecycle.campaign import CampaignKind, CampaignOptions, RowState
from ocppsec.pki.lifecycle.campaign_sql import open_campaigns
from ocppsec.pki.pem import load_certificates
from ocppsec.pki.versions import OcppVersion

from .campaign_rig import SimStation, gateway_frames_upstream, init_ca, make_rig, recording_csms, registry_of
from .conftest import Pki
from .helpers import run

DONE = frozenset({RowState.DONE, RowState.FAILED})
V2G20 = CertificateUse.V2G20


@pytest.fixture(scope="module")
def ca20_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test CA with the ISO 15118-20 twins (v2g-root-20, cpo-sub-ca-1-20, cpo-sub-ca-2-20, ...)."""
    path = tmp_path_factory.mktemp("campaign-ca-20") / "pki"
    init_ca(path, iso15118_20=True)
    return path


def calls_to(frames: list[tuple[str, str, Any]], action: str) -> list[dict[str, Any]]:
    """Payloads of the CALLs of ``action`` a station received."""
    return [f[3] for d, _i, f in frames if d == "in" and f[0] == 2 and f[2] == action]


def calls_from(frames: list[tuple[str, str, Any]], action: str) -> list[tuple[str, dict[str, Any]]]:
    """(unique id, payload) of the CALLs of ``action`` a station sent."""
    return [(f[1], f[3]) for d, _i, f in frames if d == "out" and f[0] == 2 and f[2] == action]


def answer_to(frames: list[tuple[str, str, Any]], unique_id: str, direction: str) -> Any:
    (answer,) = [f for d, _i, f in frames if d == direction and f[0] in (3, 4) and f[1] == unique_id]
    return answer


def test_v2g20_renewal_campaign_end_to_end(pki: Pki, ca20_dir: Path, tmp_path: Path) -> None:
    rig = make_rig(pki, ca20_dir, registry_of("CS-20", "CS-201"), tmp_path, v2g20=True)
    s21 = SimStation("CS-20", OcppVersion.V21, rig.ca, pki, tmp_path, validity_days=200, secc_id="SECC-0020",
                     secc20=True, record=True)
    s201 = SimStation("CS-201", OcppVersion.V201, rig.ca, pki, tmp_path, validity_days=200, secc_id="SECC-0201",
                      secc20=True, record=True)
    old = s21.store.certificate(V2G20)
    assert old is not None
    old_fp = old.fingerprint
    ca20 = rig.ca.ca_certificate("cpo-sub-ca-2-20")
    sub1_20 = rig.ca.ca_certificate("cpo-sub-ca-1-20")
    root20 = rig.ca.ca_certificate("v2g-root-20")

    async def main() -> tuple[str, str]:
        async with recording_csms(rig.up) as upstream, rig.gw.serve("127.0.0.1", rig.port):
            await rig.engine.start()
            try:
                for s in (s21, s201):
                    await s.connect(rig.port)
                started = await rig.engine.start_campaign(CampaignKind.RENEW, CampaignOptions(
                    use=V2G20, stations=("CS-20", "CS-201"), force=True, timeout=10))
                cid = started["id"]
                assert started["progress"]["total"] == 2
                row = await rig.engine.wait_row(cid, "CS-20", DONE, timeout=20)
                assert row.state is RowState.DONE, row
                skipped = await rig.engine.wait_row(cid, "CS-201", frozenset({RowState.SKIPPED}) | DONE, timeout=20)
                assert skipped.state is RowState.SKIPPED and "sign-v2g20" in (skipped.reason or ""), skipped
                summary = await rig.engine.wait_finished(cid, timeout=20)
                assert summary["status"] == "done" and summary["progress"]["done"] == 1, summary
                # a later campaign selects the 2.1 station by its -20 certificate's expiry (the inventory's v2g20 row,
                # confirmed by the station's GetInstalledCertificateIds), not the 2.0.1 one the gateway never signed
                again = await rig.engine.start_campaign(CampaignKind.RENEW, CampaignOptions(use=V2G20, within_days=90))
                assert again["progress"]["total"] == 1
                (entry,) = [e for e in rig.inventory.for_station("CS-20") if e.kind == "v2g20"]
                assert entry.state is InventoryState.INSTALLED and entry.fingerprint == row.expected
                later = await rig.engine.wait_row(again["id"], "CS-20", DONE, timeout=20)
                assert later.state is RowState.DONE and later.expected not in (row.expected, old_fp), later
                for s in (s21, s201):
                    await s.disconnect()
            finally:
                await rig.engine.close()
            assert gateway_frames_upstream(upstream) == [], gateway_frames_upstream(upstream)
            assert not {"SignCertificate", "CertificateSigned", "TriggerMessage"} & set(upstream.actions_in())
        assert row.expected is not None and later.expected is not None
        return cid, later.expected

    try:
        cid, latest = run(main(), timeout=90)
    finally:
        rig.close()

    # the gateway asked the 2.1 station for a -20 CSR, twice (one per campaign), never for an ISO 15118-2 one
    triggers = calls_to(s21.frames, "TriggerMessage")
    assert triggers == [{"requestedMessage": "SignV2G20Certificate"}] * 2, triggers
    # the station's SignCertificate says V2G20Certificate and carries a P-521 ISO 15118-20 CSR; the gateway accepted
    signs = calls_from(s21.frames, "SignCertificate")
    assert len(signs) == 2 and all(p["certificateType"] == "V2G20Certificate" for _u, p in signs), signs
    assert all(answer_to(s21.frames, u, "in")[2]["status"] == "Accepted" for u, _p in signs)
    # CertificateSigned came (V2G20Certificate, the requestId of the CSR) and the station accepted it
    signed = [(f[1], f[3]) for d, _i, f in s21.frames if d == "in" and f[0] == 2 and f[2] == "CertificateSigned"]
    assert [p["certificateType"] for _u, p in signed] == ["V2G20Certificate"] * 2
    assert [p["requestId"] for _u, p in signed] == [p["requestId"] for _u, p in signs]
    assert all(answer_to(s21.frames, u, "out")[2]["status"] == "Accepted" for u, _p in signed)
    # the station installed the newest one: the leaf the gateway signed with cpo-sub-ca-2-20 (SHA-512, P-521),
    # the -20 sub-CAs behind it, chaining to the -20 V2G root; its ISO 15118-2 slot stays empty
    installed = s21.store.certificate(V2G20)
    assert installed is not None and installed.fingerprint == latest != old_fp
    chain = load_certificates(signed[-1][1]["certificateChain"])
    assert chain[0].fingerprint(hashes.SHA256()).hex() == latest
    leaf = installed.leaf
    leaf.verify_directly_issued_by(ca20)
    assert isinstance(leaf.signature_hash_algorithm, hashes.SHA512)
    pub = leaf.public_key()
    assert isinstance(pub, ec.EllipticCurvePublicKey) and pub.curve.name == "secp521r1"
    assert [c.subject for c in installed.chain[1:]] == [ca20.subject, sub1_20.subject]
    installed.chain[-1].verify_directly_issued_by(root20)
    assert s21.store.certificate(CertificateUse.V2G) is None
    # the 2.0.1 station was asked for nothing (2.0.1 has no SignV2G20Certificate) and keeps its certificate
    assert calls_to(s201.frames, "TriggerMessage") == []
    assert calls_from(s201.frames, "SignCertificate") == []
    # the campaign record says done: the 2.1 row done with the certificate sent, the 2.0.1 row skipped
    store = open_campaigns(str(tmp_path / "campaigns.db"))
    try:
        rows = {r.station_id: r for r in store.rows(cid)}
        assert rows["CS-20"].state is RowState.DONE and rows["CS-201"].state is RowState.SKIPPED
        assert store.get(cid).status.value == "done"
    finally:
        store.close()



def test_gateway_cli_signs_v2g20_csrs_with_its_v2g20_ca(ca20_dir: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """``ocppsec gateway --sign-csrs --v2g20-ca cpo-sub-ca-2-20``: the gateway's certificate service signs a
    V2G20Certificate CSR with that CA; without the option it refuses the CSR (no CA for v2g20 certificates)."""
    from ocppsec.cli.gateway import _csr_signing
    from ocppsec.pki.certmgmt import MemoryStationStorage, SignRequest, StationCertificateStore, StationConfig
    from ocppsec.security_profiles.registry import MemoryRegistry, StationRecord

    from .campaign_rig import PKI_PASS
    from .conftest import CSO

    monkeypatch.setenv("OCPPSEC_PASSPHRASE", PKI_PASS.decode())
    registry = MemoryRegistry([StationRecord("CS-20", 3, serial="CS-20")])
    station = StationCertificateStore(MemoryStationStorage(), StationConfig(serial="CS-20", organization=CSO,
                                                                            secc_id="SECC-0020"))
    at = datetime.now(UTC)
    for v2g20_ca in ("cpo-sub-ca-2-20", None):
        closers: list[Callable[[], None]] = []
        try:
            signing = _csr_signing(str(ca20_dir), "csms-root", "cpo-sub-ca-2", str(tmp_path / "inv.db"), registry,
                                   CSO, closers, v2g20_ca=v2g20_ca)
            ca20 = PkiDirectory.open(ca20_dir, PKI_PASS)
            closers.append(ca20.close)
            request = SignRequest(station.create_csr(V2G20, at=at, request_id=1), V2G20, 1)
            outcome, order = signing.service.handle("CS-20", request, at=at)
            if v2g20_ca is None:
                assert not outcome.accepted and order is None
                assert "no CA configured for v2g20" in (outcome.additional_info or ""), outcome
                continue
            assert outcome.accepted and order is not None, outcome
            order.chain.leaf.verify_directly_issued_by(ca20.ca_certificate("cpo-sub-ca-2-20"))
            assert order.chain.issuer == "cpo-sub-ca-2-20"
        finally:
            for close in reversed(closers):
                close()
