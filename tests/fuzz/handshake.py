"""The WebSocket handshake, pre-authentication: URL path, Authorization header, subprotocols, TLS facts.

Input: six fields split at the separator: one byte of options (port profiles, base path, station
profile, TLS or not; the station has 2.1 network slots with their own Basic-auth usernames), the request path, the Authorization header, the offered subprotocols
(comma-separated, as in Sec-WebSocket-Protocol), the TLS cipher, and the peer's leaf certificate (PEM
or DER, empty for none). ``identity_from_path`` and ``parse_authorization`` may refuse with our
InputError; ``decide`` must always return an Accept or a Reject.
"""

from __future__ import annotations

import base64
from functools import cache

from ocppsec.pki.errors import InputError
from ocppsec.pki.pem import load_certificate
from ocppsec.pki.versions import OcppVersion
from ocppsec.security_profiles.basic_auth import ScryptCost, hash_password, parse_authorization
from ocppsec.security_profiles.handshake import HandshakeFacts, ServerPolicy, TlsFacts, decide, select_version
from ocppsec.security_profiles.identity import identity_from_path
from ocppsec.security_profiles.registry import NetworkProfiles, NetworkSlot, StationRecord

from . import _material as m
from ._harness import fields, harness, join, never_raises, text

ALLOWED = (InputError,)
PASSWORD = "a-station-password-of-40-characters-0001"
_POLICIES = ({1}, {2}, {3}, {2, 3})


@cache
def _records() -> dict[str, StationRecord]:
    hashed = hash_password(PASSWORD, cost=ScryptCost(n=2, r=1, p=1), salt=b"0" * 16)  # cheap: the harness is about parsing
    slots = NetworkProfiles((2, 1), (NetworkSlot(1, 2, f"{m.STATION}-alt", hashed), NetworkSlot(2, 2, f"{m.STATION}-own")))
    return {p: StationRecord(m.STATION, profile=p, serial=m.SERIAL, password_hash=hashed,  # type: ignore[misc]
                             network=slots) for p in (1, 2, 3)}


@harness(ALLOWED)
def TestOneInput(data: bytes) -> None:
    raw_options, raw_path, raw_auth, raw_protocols, raw_cipher, raw_cert = fields(data, 6)
    options = raw_options[0] if raw_options else 0
    profiles = frozenset(_POLICIES[options % 4])
    policy = ServerPolicy(profiles, cso_name=m.CSO, base_path="/ocpp/" if options & 4 else "/")
    station_profile = 1 + (options >> 3) % 3
    peer = None
    if raw_cert:
        try:
            peer = load_certificate(raw_cert)
        except InputError:
            peer = None
    tls = None if (1 in profiles and not options & 64) else TlsFacts("TLSv1.3" if options & 32 else "TLSv1.2", text(raw_cipher), peer)
    protocols = tuple(p.strip() for p in text(raw_protocols).split(",") if p.strip())
    auth = text(raw_auth) if raw_auth or not options & 128 else None
    facts = HandshakeFacts(text(raw_path), auth, protocols, tls, peer="127.0.0.1:1")
    record = _records()[station_profile]
    decision = never_raises(decide, facts, policy, lambda identity: record if identity == m.STATION else None, at=m.NOW)
    assert decision.accepted in (True, False)
    repr(facts)
    select_version(protocols, policy)
    try:
        identity_from_path(facts.path, policy.base_path)
    finally:
        parse_authorization(auth)


def seeds() -> dict[str, bytes]:
    h = m.hierarchy()
    basic = "Basic " + base64.b64encode(f"{m.STATION}:{PASSWORD}".encode()).decode()
    hexed = "Basic " + base64.b64encode(f"{m.STATION}:".encode() + PASSWORD.encode().hex().encode()).decode()
    protocols = ",".join(v.subprotocol for v in OcppVersion)
    leaf = m.station_base().chains[m.CertificateUse.CHARGING_STATION]
    return {
        "profile1": join(bytes([0]), f"/{m.STATION}", basic, protocols, "", b""),
        "profile2": join(bytes([1 | 8]), f"/{m.STATION}", hexed, "ocpp2.0.1", "TLS_AES_256_GCM_SHA384", b""),
        "profile3": join(bytes([2 | 16 | 32]), f"/ocpp/{m.STATION}?x=1", "", "ocpp1.6", "TLS_AES_128_GCM_SHA256", leaf),
        "profile3-wrong-cert": join(bytes([3 | 16]), f"/{m.STATION}", "", "ocpp2.1", "ECDHE-ECDSA-AES128-GCM-SHA256",
                                    m.pem(h.certificates["csms-server-ecdsa"].certificate)),
        "percent-encoded": join(bytes([0]), "/CS%30%30%31", basic, "", "", b""),
        "slot-username": join(bytes([1 | 8]), f"/{m.STATION}", "Basic " + base64.b64encode(
            f"{m.STATION}-alt:{PASSWORD}".encode()).decode(), "ocpp2.1", "TLS_AES_256_GCM_SHA384", b""),
    }
