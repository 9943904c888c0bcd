"""The gateway's revocation decision core, sans I/O: CRL indexes, the ledger's set and OCSP answers in, a verdict out."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ocppsec.pki.hierarchy import Hierarchy, HierarchyConfig
from ocppsec.pki.revocation.check import index_crl
from ocppsec.pki.revocation.crl import CrlEntry, build_crl
from ocppsec.security_profiles.gateway.revocation import (
    CrlState,
    FailMode,
    LedgerRevocation,
    LedgerState,
    OcspAnswer,
    RevocationState,
    StationCertificate,
    Status,
    admission_refusal,
    evaluate,
    issuer_keys,
    revocation_close,
)
from ocppsec.security_profiles.gateway.revocation_io import Issuers, check_crl

AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def h() -> Hierarchy:
    return Hierarchy.build(HierarchyConfig.default(cso_name="Example CSO"), at=AT - timedelta(days=1))


def station(h: Hierarchy, cn: str) -> StationCertificate:
    issued = h.issue_leaf("charging-station", ca="csms-root", subject={"O": "Example CSO", "CN": cn}, at=AT - timedelta(hours=1),
                          ocsp_url="http://ocsp.test/csms-root")
    return StationCertificate.from_der(issued.certificate.public_bytes(Encoding.DER))


def crl_state(h: Hierarchy, revoked: list[StationCertificate], *, at: datetime = AT, days: int = 1) -> CrlState:
    ca = h.ca("csms-root")
    crl = build_crl(ca.certificate, ca.key, [CrlEntry(c.serial, at - timedelta(minutes=10), x509.ReasonFlags.key_compromise)
                                              for c in revoked], at=at - timedelta(minutes=5), number=3,
                    validity=timedelta(days=days))
    return CrlState.loaded("root.crl", index_crl(crl, ca.certificate, at=at), ca.certificate)


def test_station_certificate_facts(h: Hierarchy) -> None:
    cert = station(h, "SN-1")
    der = cert.certificate.public_bytes(Encoding.DER)
    assert cert.fingerprint == hashlib.sha256(der).hexdigest()
    assert cert.issuer == h.ca("csms-root").certificate.subject.public_bytes()
    assert cert.issuer_key in issuer_keys(h.ca("csms-root").certificate)
    assert cert.ocsp_url == "http://ocsp.test/csms-root" and cert.serial_hex == format(cert.serial, "x")


def test_crl_revoked_good_stale_and_not_loaded(h: Hierarchy) -> None:
    bad, good = station(h, "SN-R"), station(h, "SN-G")
    state = RevocationState(crls=(crl_state(h, [bad]),))
    verdict = evaluate(bad, state, at=AT)
    assert verdict.status is Status.REVOKED
    refusal = admission_refusal(bad, verdict, FailMode.OPEN, identity="CS-R")  # a revocation is refused in both modes
    assert refusal is not None and refusal.http_status == 403
    assert refusal.security_event == "InvalidChargingStationCertificate" and refusal.identity == "CS-R"
    assert f"serial {bad.serial_hex} revoked (keyCompromise) by crl root.crl" in refusal.reason
    assert revocation_close(bad, verdict) is not None
    assert evaluate(good, state, at=AT).status is Status.GOOD
    assert admission_refusal(good, evaluate(good, state, at=AT), FailMode.CLOSED, identity="CS-G") is None

    stale = evaluate(good, state, at=AT + timedelta(days=2))
    assert stale.status is Status.UNKNOWN and "past its nextUpdate" in stale.unknowns[0].detail
    assert admission_refusal(good, stale, FailMode.OPEN, identity="CS-G") is None
    closed = admission_refusal(good, stale, FailMode.CLOSED, identity="CS-G")
    assert closed is not None and "revocation status unknown" in closed.reason and "fail-closed" in closed.reason
    assert revocation_close(good, stale) is None  # an unknown status closes no connection
    assert evaluate(bad, state, at=AT + timedelta(days=2)).status is Status.REVOKED  # a revocation stays one

    never = RevocationState(crls=(CrlState("http://crl.test/x.crl", error="unreachable"),))
    assert evaluate(good, never, at=AT).status is Status.UNKNOWN
    other = Hierarchy.build(HierarchyConfig.default(cso_name="Example CSO"), at=AT - timedelta(days=1))
    foreign = RevocationState(crls=(crl_state(other, []),))  # another CA's CRL (same Name) says nothing about ours
    assert evaluate(good, foreign, at=AT).findings == ()


def test_ledger_fingerprint_revoked_ca_and_staleness(h: Hierarchy) -> None:
    bad, good = station(h, "SN-L1"), station(h, "SN-L2")
    root = issuer_keys(h.ca("csms-root").certificate)
    ledger = LedgerState({bad.fingerprint: LedgerRevocation(bad.serial_hex, "csms-root", "keyCompromise", AT)}, {},
                         root, AT)
    state = RevocationState(ledger=ledger, ledger_max_age=timedelta(seconds=30))
    assert revocation_close(bad, evaluate(bad, state, at=AT)) == \
        f"certificate serial {bad.serial_hex} revoked (keyCompromise) by ledger"
    assert evaluate(good, state, at=AT + timedelta(seconds=29)).status is Status.GOOD
    old = evaluate(good, state, at=AT + timedelta(seconds=31))
    assert old.status is Status.UNKNOWN and "not read since" in old.unknowns[0].detail
    ca_revoked = LedgerState({}, dict.fromkeys(root, LedgerRevocation("1", "csms-root", "cACompromise", AT)), root, AT)
    verdict = evaluate(good, RevocationState(ledger=ca_revoked), at=AT)
    assert verdict.status is Status.REVOKED and "issuing CA csms-root revoked (cACompromise)" in verdict.findings[0].detail
    elsewhere = LedgerState({}, {}, frozenset({b"another CA"}), AT)
    assert evaluate(good, RevocationState(ledger=elsewhere), at=AT + timedelta(days=1)).findings == ()


def test_ocsp_answer_joins_the_verdict(h: Hierarchy) -> None:
    cert = station(h, "SN-O")
    state = RevocationState(crls=(crl_state(h, []),))
    revoked = OcspAnswer(Status.REVOKED, "ocsp http://ocsp.test/csms-root", "keyCompromise")
    verdict = evaluate(cert, state, at=AT, ocsp=revoked)
    assert verdict.status is Status.REVOKED and verdict.revocation is not None and verdict.revocation.source.startswith("ocsp")
    down = OcspAnswer(Status.UNKNOWN, "ocsp http://ocsp.test/csms-root", "responder unavailable (refused)")
    refusal = admission_refusal(cert, evaluate(cert, state, at=AT, ocsp=down), FailMode.CLOSED, identity="CS-O")
    assert refusal is not None and "responder unavailable (refused)" in refusal.reason
    assert admission_refusal(cert, evaluate(cert, state, at=AT, ocsp=down), FailMode.OPEN, identity="CS-O") is None


def test_check_crl_picks_the_signing_issuer(h: Hierarchy) -> None:
    ca = h.ca("csms-root")
    crl = build_crl(ca.certificate, ca.key, [], at=AT, number=1)
    data = crl.public_bytes(Encoding.DER)
    other = Hierarchy.build(HierarchyConfig.default(cso_name="Example CSO"), at=AT - timedelta(days=1))
    # same issuer Name, different key first: the one whose key verifies is used
    index, issuer = check_crl(data, Issuers([other.ca("csms-root").certificate, ca.certificate]), at=AT)
    assert index.number == 1 and issuer == ca.certificate
    from ocppsec.pki.revocation.check import CrlError

    with pytest.raises(CrlError, match="of no CA the gateway holds"):
        check_crl(data, Issuers([h.ca("manufacturer-root").certificate]), at=AT)
    with pytest.raises(CrlError, match="does not verify"):
        check_crl(data, Issuers([other.ca("csms-root").certificate]), at=AT)
    with pytest.raises(CrlError, match="not a CRL"):
        check_crl(b"garbage", Issuers([ca.certificate]), at=AT)


def test_a_crl_for_ca_certificates_only_says_nothing_about_stations(h: Hierarchy) -> None:
    from ocppsec.pki.revocation.crl import sign_crl_builder

    cert = station(h, "SN-IDP")
    ca = h.ca("csms-root")
    idp = x509.IssuingDistributionPoint(None, None, only_contains_user_certs=False, only_contains_ca_certs=True,
                                        only_some_reasons=None, indirect_crl=False, only_contains_attribute_certs=False)
    builder = (x509.CertificateRevocationListBuilder().issuer_name(ca.certificate.subject).last_update(AT - timedelta(hours=1))
               .next_update(AT + timedelta(days=1)).add_extension(x509.CRLNumber(1), critical=False)
               .add_extension(idp, critical=True))
    crl = sign_crl_builder(builder, ca.key)
    state = RevocationState(crls=(CrlState.loaded("ca-only.crl", index_crl(crl, ca.certificate, at=AT), ca.certificate),))
    assert evaluate(cert, state, at=AT).findings == ()


def test_auto_ocsp_skips_certificates_without_an_aia(h: Hierarchy) -> None:
    from ocppsec.security_profiles.gateway.revocation_io import OcspChecker

    with_aia = station(h, "SN-AIA")
    issued = h.issue_leaf("charging-station", ca="csms-root", subject={"O": "Example CSO", "CN": "SN-NOAIA"},
                          at=AT - timedelta(hours=1))
    without = StationCertificate.from_der(issued.certificate.public_bytes(Encoding.DER))
    auto, fixed = OcspChecker("auto"), OcspChecker("http://ocsp.local/")
    assert auto.url_for(with_aia) == "http://ocsp.test/csms-root" and auto.url_for(without) is None
    assert fixed.url_for(without) == "http://ocsp.local/"
