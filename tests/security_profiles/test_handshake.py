"""The pure handshake decision: every step, good and bad, without sockets."""

from __future__ import annotations

import _ssl
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509

from ocppsec.pki.versions import OcppVersion
from ocppsec.security_profiles.basic_auth import authorization_header, hash_password
from ocppsec.security_profiles.handshake import (
    Accept,
    HandshakeFacts,
    Reject,
    ServerPolicy,
    TlsFacts,
    decide,
    parse_profiles,
)
from ocppsec.security_profiles.profile3 import LeafIdentity
from ocppsec.security_profiles.registry import MemoryRegistry, StationRecord

from .conftest import CSO, FAST, KEY_16, PASSWORD_201, Pki

V201 = "ocpp2.0.1"
TLS12 = ("TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256")


def cert_of(pki: Pki, cn: str, **kw: object) -> x509.Certificate:
    chain = pki.station(cn, **kw)  # type: ignore[arg-type]
    return x509.load_pem_x509_certificate(open(chain.certfile, "rb").read())


def facts(path: str = "/CS-2", auth: str | None = None, protos: tuple[str, ...] = (V201,),
          tls: TlsFacts | None = None) -> HandshakeFacts:
    return HandshakeFacts(path, auth, protos, tls, "127.0.0.1:1")


def basic(identity: str, password: str = PASSWORD_201, version: OcppVersion = OcppVersion.V201) -> str:
    return authorization_header(identity, password, version)


P1 = ServerPolicy(frozenset({1}))
P2 = ServerPolicy(frozenset({2}))
P3 = ServerPolicy(frozenset({3}), cso_name=CSO)
P23 = ServerPolicy(frozenset({2, 3}), cso_name=CSO)


def test_profile1_accept(registry: MemoryRegistry, pki: Pki) -> None:
    d = decide(facts("/CS-1", basic("CS-1")), P1, registry.get, at=pki.now)
    assert d == Accept("CS-1", 1, OcppVersion.V201, V201)


def test_profile2_accept_and_version_preference(registry: MemoryRegistry, pki: Pki) -> None:
    d = decide(facts(auth=basic("CS-2"), protos=("ocpp1.6", V201), tls=TlsFacts(*TLS12)), P2, registry.get, at=pki.now)
    assert isinstance(d, Accept) and d.profile == 2 and d.version is OcppVersion.V201


def test_profile2_1_6_raw_key(registry: MemoryRegistry, pki: Pki) -> None:
    auth = basic("CS16", KEY_16, OcppVersion.V16)
    d = decide(facts("/CS16", auth, ("ocpp1.6",), TlsFacts(*TLS12)), P2, registry.get, at=pki.now)
    assert isinstance(d, Accept) and d.version is OcppVersion.V16


@pytest.mark.parametrize(
    ("f", "status", "event", "req"),
    [
        (facts("/CS-2", None, tls=TlsFacts(*TLS12)), 401, "FailedToAuthenticateAtCsms", "A00.FR.202"),
        (facts("/CS-2", "Bearer x", tls=TlsFacts(*TLS12)), 400, "FailedToAuthenticateAtCsms", "A00.FR.202"),
        (facts("/CS-2", basic("CS-2Invalid"), tls=TlsFacts(*TLS12)), 401, "FailedToAuthenticateAtCsms", "A00.FR.207"),
        (facts("/CS-2", basic("CS-2", "wrong-password-wrong"), tls=TlsFacts(*TLS12)), 401,
         "FailedToAuthenticateAtCsms", "A00.FR.207"),
        (facts("/nobody", basic("nobody"), tls=TlsFacts(*TLS12)), 401, "FailedToAuthenticateAtCsms", None),
        (facts("/a:b", basic("x"), tls=TlsFacts(*TLS12)), 400, "FailedToAuthenticateAtCsms", "201P4 3.1.1"),
        (facts("/CS-2", basic("CS-2"), tls=TlsFacts("TLSv1.1", "AES128-SHA")), 400, "InvalidTLSVersion", "A00.FR.315"),
        (facts("/CS-2", basic("CS-2"), tls=TlsFacts("TLSv1.2", "AES128-SHA")), 400, "InvalidTLSCipherSuite", "A00.FR.322"),
        (facts("/CS-2", basic("CS-2")), 400, None, "A00.FR.001"),  # plain connection on a TLS port
        (facts("/CS-3", basic("CS-3"), tls=TlsFacts(*TLS12)), 403, "FailedToAuthenticateAtCsms", "A00.FR.002"),
    ],
)
def test_profile2_refusals(registry: MemoryRegistry, pki: Pki, f: HandshakeFacts, status: int,
                           event: str | None, req: str | None) -> None:
    d = decide(f, P2, registry.get, at=pki.now)
    assert isinstance(d, Reject)
    assert (d.http_status, d.security_event, d.requirement) == (status, event, req)


def test_profile1_refuses_station_registered_higher(registry: MemoryRegistry, pki: Pki) -> None:
    d = decide(facts("/CS-2", basic("CS-2")), P1, registry.get, at=pki.now)
    assert isinstance(d, Reject) and d.requirement == "A00.FR.002" and d.http_status == 403


def test_profile3_accept_and_binding(registry: MemoryRegistry, pki: Pki) -> None:
    good = cert_of(pki, "SN-0001")
    d = decide(facts("/CS-3", tls=TlsFacts("TLSv1.3", "TLS_AES_256_GCM_SHA384", good)), P3, registry.get, at=pki.now)
    assert d == Accept("CS-3", 3, OcppVersion.V201, V201)
    # the same valid certificate presented for another identity is refused (A00.FR.405)
    d = decide(facts("/CS-4", tls=TlsFacts("TLSv1.3", "TLS_AES_256_GCM_SHA384", good)), P3, registry.get, at=pki.now)
    assert isinstance(d, Reject) and d.requirement == "A00.FR.405" and d.security_event == "InvalidChargingStationCertificate"


def test_profile3_wrong_o_and_expired(registry: MemoryRegistry, pki: Pki) -> None:
    wrong_o = cert_of(pki, "SN-0001", o="Other CSO")
    d = decide(facts("/CS-3", tls=TlsFacts(*TLS12, wrong_o)), P3, registry.get, at=pki.now)
    assert isinstance(d, Reject) and d.requirement == "A00.FR.404" and d.http_status == 403
    good = cert_of(pki, "SN-0001")
    later = pki.now + timedelta(days=3650)
    d = decide(facts("/CS-3", tls=TlsFacts(*TLS12, good)), P3, registry.get, at=later)
    assert isinstance(d, Reject) and d.requirement == "A00.FR.403"


def stdlib_decoded(pki: Pki, cn: str, **kw: object) -> LeafIdentity:
    """The leaf as serve() reads it: from the dict the stdlib's OpenSSL decoder makes (getpeercert())."""
    chain = pki.station(cn, **kw)  # type: ignore[arg-type]
    return LeafIdentity.from_peercert(_ssl._test_decode_cert(str(chain.certfile)))  # type: ignore[attr-defined]


def test_stdlib_decoded_leaf_is_the_parsed_one(registry: MemoryRegistry, pki: Pki) -> None:
    for cn, kw in (("SN-0001", {}), ("SN-0001", {"o": "Other CSO"}), ("SN-0002", {})):
        decoded = stdlib_decoded(pki, cn, **kw)
        assert decoded == LeafIdentity.from_certificate(cert_of(pki, cn, **kw))
        for at in (pki.now, pki.now + timedelta(days=3650)):  # accepted / wrong O / other CN; and expired
            assert (decide(facts("/CS-3", tls=TlsFacts(*TLS12, decoded)), P3, registry.get, at=at)
                    == decide(facts("/CS-3", tls=TlsFacts(*TLS12, cert_of(pki, cn, **kw))), P3, registry.get, at=at))


@pytest.mark.parametrize(("subject", "requirement", "message"), [
    ((), "A00.FR.404", "subject CN '(none)'"),
    (((("organizationName", "Example CSO"),), (("commonName", "SN-0001"),), (("commonName", "SN-0002"),)),
     "A00.FR.405", "subject CN 'SN-0001, SN-0002'"),
])
def test_stdlib_decoded_leaf_edge_cases(registry: MemoryRegistry, pki: Pki, subject: tuple[object, ...],
                                        requirement: str, message: str) -> None:
    leaf = LeafIdentity.from_peercert({"subject": subject, "notBefore": "Jan  2 03:04:05.5 2020 GMT",
                                       "notAfter": "Dec 31 23:59:59 2999 GMT"})
    assert leaf.not_before == datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    d = decide(facts("/CS-3", tls=TlsFacts(*TLS12, leaf)), P3, registry.get, at=pki.now)
    assert isinstance(d, Reject) and d.requirement == requirement and message in d.reason
    with pytest.raises(ValueError):
        LeafIdentity.from_peercert({"subject": (), "notBefore": "Jan  2 03:04:05 2020 PST", "notAfter": "x"})


def test_mixed_port_decides_per_station(registry: MemoryRegistry, pki: Pki) -> None:
    good = cert_of(pki, "SN-0001")
    tls_cert = TlsFacts(*TLS12, good)
    assert isinstance(decide(facts("/CS-3", tls=tls_cert), P23, registry.get, at=pki.now), Accept)
    assert isinstance(decide(facts("/CS-2", basic("CS-2"), tls=TlsFacts(*TLS12)), P23, registry.get, at=pki.now), Accept)
    # profile-3 station without a certificate, even with a correct-looking Basic header: refused
    d = decide(facts("/CS-3", basic("CS-3"), tls=TlsFacts(*TLS12)), P23, registry.get, at=pki.now)
    assert isinstance(d, Reject) and d.requirement == "A00.FR.002"
    # profile-2 station presenting only a certificate: refused
    d = decide(facts("/CS-2", tls=tls_cert), P23, registry.get, at=pki.now)
    assert isinstance(d, Reject) and d.requirement == "A00.FR.002"


def test_unknown_subprotocol_completes_then_closes(registry: MemoryRegistry, pki: Pki) -> None:
    d = decide(facts("/CS-1", basic("CS-1"), protos=("ocpp9",)), P1, registry.get, at=pki.now)
    assert isinstance(d, Reject) and d.http_status is None and d.close_code == 1002


def test_pending_password_and_profile_promotion(pki: Pki) -> None:
    reg = MemoryRegistry([StationRecord("CS-9", 2, password_hash=hash_password("old-password-0001", cost=FAST),
                                        pending_password_hash=hash_password("new-password-0002", cost=FAST),
                                        serial="SN-0001", pending_profile=3)])
    tls = TlsFacts(*TLS12)
    old = decide(facts("/CS-9", basic("CS-9", "old-password-0001"), tls=tls), P23, reg.get, at=pki.now)
    new = decide(facts("/CS-9", basic("CS-9", "new-password-0002"), tls=tls), P23, reg.get, at=pki.now)
    assert isinstance(old, Accept) and not old.promote_password
    assert isinstance(new, Accept) and new.promote_password
    upgraded = decide(facts("/CS-9", tls=TlsFacts(*TLS12, cert_of(pki, "SN-0001"))), P23, reg.get, at=pki.now)
    assert isinstance(upgraded, Accept) and upgraded.profile == 3 and upgraded.promote_profile


def test_parse_profiles() -> None:
    assert parse_profiles("2,3") == {2, 3}
    for bad in ("", "4", "1,2", "x"):
        with pytest.raises(Exception, match="profile"):
            parse_profiles(bad)


def test_facts_repr_hides_password() -> None:
    assert PASSWORD_201 not in repr(facts(auth=basic("CS-2")))


def test_v21_slot_credentials_username_differs_from_the_url_identity(pki: Pki) -> None:
    from ocppsec.security_profiles.registry import NetworkProfiles, NetworkSlot

    slots = NetworkProfiles((2, 1), (NetworkSlot(1, 2), NetworkSlot(2, 2, "CS-9-alt", hash_password("slot-password-0002", cost=FAST)),
                                     NetworkSlot(3, 2, "CS-9-own")))
    reg = MemoryRegistry([StationRecord("CS-9", 2, password_hash=hash_password("own-password-0001", cost=FAST),
                                        network=slots)])
    tls = TlsFacts(*TLS12)

    def login(username: str, password: str) -> object:
        return decide(facts("/CS-9", basic(username, password, OcppVersion.V21), ("ocpp2.1",), tls), P2, reg.get, at=pki.now)

    ok = login("CS-9-alt", "slot-password-0002")  # the slot's username and password, at the URL of CS-9
    assert isinstance(ok, Accept) and ok.identity == "CS-9" and not ok.promote_password
    assert isinstance(login("CS-9", "own-password-0001"), Accept)  # the station's own credentials still work
    assert isinstance(login("CS-9-own", "own-password-0001"), Accept)  # a slot username without its own password
    for username, password, why in (("CS-9-alt", "own-password-0001", "wrong password"),
                                    ("CS-9", "slot-password-0002", "wrong password"),
                                    ("CS-9-other", "slot-password-0002", "is not the identity")):
        refused = login(username, password)
        assert isinstance(refused, Reject) and refused.http_status == 401 and why in refused.reason
