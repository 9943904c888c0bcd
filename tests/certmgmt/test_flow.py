"""Sans-I/O: SignCertificate → CertificateSigned through the service and the station store, per version."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from ocppsec.pki.certmgmt import (
    EVENT_DISCARDED_RENEWED,
    CertificateService,
    CertificateUse,
    CredentialRole,
    InstalledType,
    SignRequest,
    StationCertificateStore,
    Status,
)
from ocppsec.pki.certmgmt.codecs import CODECS
from ocppsec.pki.chain import verify_issued_chain
from ocppsec.pki.pem import load_certificates
from ocppsec.pki.versions import OcppVersion

from .conftest import NOW, SERIAL, assert_schema

ALL = list(CODECS.values())


@pytest.mark.parametrize("codec", ALL, ids=lambda c: c.version.value)
def test_charging_station_certificate_round_trip(codec, service: CertificateService, store: StationCertificateStore) -> None:
    request_id = 7 if codec.has_request_id else None
    csr = store.create_csr(CertificateUse.CHARGING_STATION, at=NOW, request_id=request_id)
    sign_payload = codec.sign_certificate_request(SignRequest(csr, CertificateUse.CHARGING_STATION, request_id))
    assert_schema(codec, "SignCertificate", sign_payload, response=False)

    request = codec.parse_sign_certificate_request(sign_payload)
    outcome, order = service.handle("CS001", request, at=NOW)
    assert outcome.status is Status.ACCEPTED, outcome
    assert_schema(codec, "SignCertificate", codec.sign_certificate_response(outcome), response=True)
    assert order is not None and order.request_id == request_id

    signed = codec.certificate_signed_request(order.chain_pem, order.use, order.request_id)
    assert_schema(codec, "CertificateSigned", signed, response=False)
    if codec.has_request_id:
        assert signed["requestId"] == 7  # echoed (A02.FR.25)
    certs = load_certificates(signed["certificateChain"], strict=True)
    assert certs[0].subject.rfc4514_string() == f"CN={SERIAL},O=Example CSO"
    assert all(c.issuer != c.subject for c in certs)  # no root inside

    chain, use, rid = codec.parse_certificate_signed_request(signed)
    answer = store.certificate_signed(chain, use, at=NOW, request_id=rid, require_request_id=codec.has_request_id)
    assert answer.accepted, answer
    assert_schema(codec, "CertificateSigned", codec.certificate_signed_response(answer), response=True)
    active = store.certificate(CertificateUse.CHARGING_STATION)
    assert active is not None and active.leaf == certs[0]
    service.certificate_signed_result(order, answer, at=NOW)
    entry = service.inventory.find("CS001", order.leaf_hash_data)
    assert entry is not None and entry.state == "installed" and entry.kind == "charging-station"


@pytest.mark.parametrize("codec", [CODECS[OcppVersion.V201], CODECS[OcppVersion.V21]], ids=lambda c: c.version.value)
def test_v2g_certificate_is_listed_as_chain_with_children(codec, service, store, hierarchy) -> None:
    csr = store.create_csr(CertificateUse.V2G, at=NOW, request_id=3 if codec.has_request_id else None)
    payload = codec.sign_certificate_request(SignRequest(csr, CertificateUse.V2G, 3 if codec.has_request_id else None))
    assert payload["certificateType"] == "V2GCertificate"
    outcome, order = service.handle("CS001", codec.parse_sign_certificate_request(payload), at=NOW)
    assert outcome.accepted, outcome
    assert order is not None and len(load_certificates(order.chain_pem)) == 3  # SECC, Sub-CA 2, Sub-CA 1
    chain, use, rid = codec.parse_certificate_signed_request(
        codec.certificate_signed_request(order.chain_pem, order.use, order.request_id))
    assert use is CertificateUse.V2G
    assert store.certificate_signed(chain, use, at=NOW, request_id=rid).accepted
    entries = store.installed([InstalledType.V2G_CHAIN])
    assert len(entries) == 1 and len(entries[0].children) == 2
    response = codec.get_installed_ids_response(entries)
    assert_schema(codec, "GetInstalledCertificateIds", response, response=True)
    assert response["certificateHashDataChain"][0]["certificateType"] == "V2GCertificateChain"
    # the chain verifies to the V2G root with our path validation as well
    verify_issued_chain(load_certificates(chain), [hierarchy.ca("v2g-root").certificate], at=NOW)
    all_entries = codec.get_installed_ids_response(store.installed(None))
    assert_schema(codec, "GetInstalledCertificateIds", all_entries, response=True)


def test_v21_hash_root_certificate_selects_the_v2g_root(service, store, hierarchy) -> None:
    from ocppsec.pki.hashdata import compute_hash_data

    codec = CODECS[OcppVersion.V21]
    root = hierarchy.ca("v2g-root").certificate
    good = compute_hash_data(root, root)
    csr = store.create_csr(CertificateUse.V2G, at=NOW, request_id=11)
    payload = codec.sign_certificate_request(SignRequest(csr, CertificateUse.V2G, 11, good))
    assert_schema(codec, "SignCertificate", payload, response=False)
    outcome, order = service.handle("CS001", codec.parse_sign_certificate_request(payload), at=NOW)
    assert outcome.accepted and order is not None
    other = hierarchy.ca("mo-root").certificate
    bad = codec.sign_certificate_request(SignRequest(csr, CertificateUse.V2G, 12, compute_hash_data(other, other)))
    outcome, order = service.handle("CS001", codec.parse_sign_certificate_request(bad), at=NOW)
    assert outcome.status is Status.REJECTED and outcome.reason_code == "InvalidCSR" and order is None
    response = codec.sign_certificate_response(outcome)
    assert_schema(codec, "SignCertificate", response, response=True)
    assert response["statusInfo"]["reasonCode"] == "InvalidCSR"


def test_renewal_reconnect_with_new_certificate_discards_old(service, store) -> None:
    first = store.create_csr(CertificateUse.CHARGING_STATION, at=NOW)
    _, order = service.handle("CS001", SignRequest(first), at=NOW)
    assert order is not None and store.certificate_signed(order.chain_pem, CertificateUse.CHARGING_STATION, at=NOW).accepted
    old = store.client_credentials()[0]
    assert old.role is CredentialRole.ACTIVE
    second = store.create_csr(CertificateUse.CHARGING_STATION, at=NOW + timedelta(hours=1))
    _, order2 = service.handle("CS001", SignRequest(second), at=NOW + timedelta(hours=1))
    assert order2 is not None
    assert store.certificate_signed(order2.chain_pem, None, at=NOW + timedelta(hours=1)).accepted
    creds = store.client_credentials()
    assert [c.role for c in creds] == [CredentialRole.RENEWED, CredentialRole.ACTIVE]  # reconnect with the new one first (A02.FR.08)
    assert store.connected(creds[0]) is None  # new one worked: old discarded (A02.FR.10)
    assert [c.role for c in store.client_credentials()] == [CredentialRole.ACTIVE]
    assert store.client_credentials()[0].leaf == order2.chain.leaf
    with pytest.raises(Exception):
        store.storage.open_key(old.key_ref)  # the old key is gone


def _signed_then_counting_parses(service: CertificateService, store: StationCertificateStore,
                                 monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[str]]:
    """A CertificateSigned accepted, then every chain the store's module parses from here on recorded."""
    from ocppsec.pki.certmgmt import station

    first = store.create_csr(CertificateUse.CHARGING_STATION, at=NOW)
    _, order = service.handle("CS001", SignRequest(first), at=NOW)
    assert order is not None and store.certificate_signed(order.chain_pem, CertificateUse.CHARGING_STATION, at=NOW).accepted
    parses: list[str] = []
    real = station.load_certificates
    monkeypatch.setattr(station, "load_certificates", lambda pem, **k: parses.append(pem) or real(pem, **k))
    return order, parses


def test_a_credential_parses_its_chain_once(service, store, monkeypatch: pytest.MonkeyPatch) -> None:
    from ocppsec.pki.certmgmt import station

    order, parses = _signed_then_counting_parses(service, store, monkeypatch)
    entry = store.state.credential(CredentialRole.ACTIVE, CertificateUse.CHARGING_STATION)
    assert entry is not None
    credential = station.ClientCredential(CertificateUse.CHARGING_STATION, entry.chain_pem, entry.key_ref,
                                          CredentialRole.ACTIVE)
    fingerprint = credential.leaf.fingerprint(hashes.SHA256()).hex()
    assert credential.fingerprint == fingerprint and credential.fingerprint == fingerprint
    chain = credential.chain
    chain.clear()  # the caller's copy: the credential keeps its own
    assert credential.chain == [order.chain.leaf, *order.chain.sub_cas] and credential.leaf == order.chain.leaf
    assert parses == [order.chain_pem]
    assert credential == store.client_credentials()[0]  # the caches take no part in equality


def test_the_store_hands_out_its_parsed_credential_until_the_stored_one_changes(service, store, monkeypatch) -> None:
    order, parses = _signed_then_counting_parses(service, store, monkeypatch)
    for _ in range(3):  # every connection attempt asks again (A02.FR.08): the chain accepted is not parsed again
        assert store.client_credentials()[0].fingerprint == order.chain.leaf.fingerprint(hashes.SHA256()).hex()
    assert parses == []
    later = NOW + timedelta(hours=1)
    _, order2 = service.handle("CS001", SignRequest(store.create_csr(CertificateUse.CHARGING_STATION, at=later)), at=later)
    assert order2 is not None and store.certificate_signed(order2.chain_pem, None, at=later).accepted
    renewed, active = store.client_credentials()
    assert renewed.leaf == order2.chain.leaf and active.leaf == order.chain.leaf
    assert store.connected(renewed) is None
    (now_active,) = store.client_credentials()  # the renewed entry is now the active one: not the old object
    assert now_active.role is CredentialRole.ACTIVE and now_active.leaf == order2.chain.leaf
    # only the CertificateSigned check: the renewed credential and the active one it became carry that parse
    assert now_active.fingerprint == order2.chain.leaf.fingerprint(hashes.SHA256()).hex()
    assert parses == [order2.chain_pem]
    reopened = type(store)(store.storage, store.config)  # a store opened again parses what it reads
    assert reopened.client_credentials()[0].leaf == order2.chain.leaf
    assert parses == [order2.chain_pem, order2.chain_pem]


def test_renewed_certificate_that_cannot_connect_is_discarded_with_event(service, store) -> None:
    for hour in (0, 1):
        t = NOW + timedelta(hours=hour)
        csr = store.create_csr(CertificateUse.CHARGING_STATION, at=t)
        _, order = service.handle("CS001", SignRequest(csr), at=t)
        assert order is not None and store.certificate_signed(order.chain_pem, None, at=t).accepted
    _renewed, active = store.client_credentials()
    outcome = store.connected(active)  # fell back to the old certificate (A02.FR.28)
    assert outcome is not None and outcome.event == EVENT_DISCARDED_RENEWED
    assert [c.role for c in store.client_credentials()] == [CredentialRole.ACTIVE]
    v16, v201 = CODECS[OcppVersion.V16], CODECS[OcppVersion.V201]
    note = v201.security_event_notification(outcome.event, at=NOW, tech_info=outcome.tech_info())
    assert note is not None and note["type"] == "DiscardedRenewedClientCertificate"
    assert_schema(v201, "SecurityEventNotification", note, response=False)
    assert v16.security_event_notification(outcome.event, at=NOW) is None  # no such event in 1.6


def test_renewal_threshold(service, store) -> None:
    csr = store.create_csr(CertificateUse.CHARGING_STATION, at=NOW)
    _, order = service.handle("CS001", SignRequest(csr), at=NOW)
    assert order is not None and store.certificate_signed(order.chain_pem, None, at=NOW).accepted
    not_after = order.chain.leaf.not_valid_after_utc
    assert store.renewals_due(at=not_after - timedelta(days=31)) == []
    assert store.renewals_due(at=not_after - timedelta(days=29)) == [CertificateUse.CHARGING_STATION]


def test_batch_through_the_service_records_inventory(service: CertificateService, store, hierarchy) -> None:
    csrs = [store.create_csr(CertificateUse.CHARGING_STATION, at=NOW) for _ in range(3)]
    results = service.handle_many([("CS001", SignRequest(c)) for c in csrs] + [("nobody", SignRequest(csrs[0]))], at=NOW)
    assert [o.status for o, _ in results] == [Status.ACCEPTED] * 3 + [Status.REJECTED]
    assert sum(1 for e in service.inventory.for_station("CS001") if e.state == "sent") == 3
    serials = {order.chain.leaf.serial_number for _, order in results if order is not None}
    assert len(serials) == 3
    assert isinstance(results[0][1].chain.leaf, x509.Certificate)
