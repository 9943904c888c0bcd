"""The handshake decision, sans I/O: facts in, :class:`Accept` or :class:`Reject` out.

Facts are what the adapter saw: the URL path, the ``Authorization`` header, the offered
subprotocols, the TLS version, cipher and peer leaf certificate. The decision walks numbered steps;
the first that fails gives the rejection (HTTP status, a reason for the log and the security event to
record):

1. identity from the URL path (percent-decoded, <= 48 characters, no ``:``)           -> 400
2. TLS version 1.2/1.3 (A00.FR.313-315) and a permitted cipher suite (A00.FR.320-322) -> 400 + event
3. the station is registered (the registry says which profile(s) it may use)          -> 401 / 403
4. the profile the station uses is its registered one (A00.FR.002; A05.FR.07 / .09-10) -> 403
5a. profiles 1/2: Basic username = identity (A00.FR.204/303) and password matches       -> 401
    (2.1: or a network slot's own username and password, B09; the URL identity stays the station's)
5b. profile 3: client certificate O contains the CSO name, CN = registered serial      -> 403
    (with ``ServerPolicy.onboarding``, a station whose record allows onboarding and whose certificate
    fails only the validity period or O is accepted as an onboarding *candidate*, ``Accept.onboarding``:
    an admission step must then classify it, or ``serve()`` refuses it)
6. an OCPP subprotocol both sides speak; otherwise the handshake completes without one and the
   connection is closed at once with 1002 (OCPP-J §3.1.2/§4.1.2)

Password hashing is deliberately slow (scrypt): adapters run :func:`decide` in a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from ocppsec.pki.errors import InputError
from ocppsec.pki.versions import OcppVersion
from ocppsec.security_profiles import events as ev
from ocppsec.security_profiles.basic_auth import parse_authorization, password_matches
from ocppsec.security_profiles.identity import identity_from_path
from ocppsec.security_profiles.profile3 import LeafIdentity, check_station_certificate
from ocppsec.security_profiles.registry import StationRecord
from ocppsec.security_profiles.tls import ALLOWED_TLS_VERSIONS, MANDATORY_TLS12_SUITES, TLS13_SUITES

__all__ = [
    "Accept",
    "Decision",
    "HandshakeFacts",
    "Reject",
    "ServerPolicy",
    "TlsFacts",
    "decide",
    "parse_profiles",
]


@dataclass(frozen=True, slots=True)
class TlsFacts:
    version: str
    cipher: str
    peer_certificate: x509.Certificate | LeafIdentity | None = None  # the leaf, as parsed or as the stdlib decoded it


@dataclass(frozen=True, slots=True)
class HandshakeFacts:
    path: str
    authorization: str | None
    subprotocols: tuple[str, ...]
    tls: TlsFacts | None
    peer: str = "unknown"

    def __repr__(self) -> str:  # the Authorization header holds a password
        auth = "<redacted>" if self.authorization else None
        return (f"HandshakeFacts(path={self.path!r}, authorization={auth}, subprotocols={self.subprotocols!r}, "
                f"tls={self.tls!r}, peer={self.peer!r})")


def parse_profiles(text: str) -> frozenset[int]:
    """``"1"``, ``"2"``, ``"3"`` or ``"2,3"`` (a TLS port where the registry decides per station)."""
    from ocppsec.pki.errors import UsageError

    try:
        profiles = frozenset(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise UsageError(f"cannot read security profile(s) {text!r}", hint="use 1, 2, 3 or 2,3") from None
    if not profiles or not profiles <= {1, 2, 3} or (1 in profiles and len(profiles) > 1):
        raise UsageError(f"security profile(s) {text!r} are not 1, 2, 3 or 2,3",
                         hint="profile 1 is plain ws:// and cannot share a port with TLS profiles")
    return profiles


@dataclass(frozen=True, slots=True)
class ServerPolicy:
    """What a listening port accepts."""

    profiles: frozenset[int]
    versions: tuple[OcppVersion, ...] = (OcppVersion.V21, OcppVersion.V201, OcppVersion.V16)
    cso_name: str | None = None
    base_path: str = "/"
    allowed_ciphers: frozenset[str] = frozenset(MANDATORY_TLS12_SUITES + TLS13_SUITES)
    onboarding: bool = False  # accept onboarding candidates (step 5b) for an admission step to classify

    @property
    def tls(self) -> bool:
        return 1 not in self.profiles

    @property
    def subprotocols(self) -> tuple[str, ...]:
        return tuple(v.subprotocol for v in self.versions)


@dataclass(frozen=True, slots=True)
class Accept:
    identity: str
    profile: int
    version: OcppVersion | None
    subprotocol: str | None
    promote_password: bool = False  # the pending (A01) password was used: make it the only one
    promote_profile: bool = False  # the pending (A05) profile was used: make it the registered one
    onboarding: bool = False  # a candidate for onboarding (step 5b): an admission step must classify it

    @property
    def accepted(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class Reject:
    """A refusal: either an HTTP status, or (``close_code``) complete the handshake and close at once."""

    reason: str
    http_status: int | None = 401
    security_event: str | None = None
    requirement: str | None = None
    identity: str | None = None
    close_code: int | None = None

    @property
    def accepted(self) -> bool:
        return False


Decision = Accept | Reject
Lookup = Callable[[str], StationRecord | None]


def _used_profile(facts: HandshakeFacts, record: StationRecord, policy: ServerPolicy, identity: str) -> int | Reject:
    """Which profile the station is using, given the transport and what it sent (step 4)."""
    allowed = record.accepted_profiles & policy.profiles
    if facts.tls is None:
        if 1 in allowed:
            return 1
        return Reject(f"station {identity} is registered for profile {record.profile}, not 1 (plain ws://)",
                      403, ev.FAILED_TO_AUTHENTICATE, "A00.FR.002", identity)
    has_cert = facts.tls.peer_certificate is not None
    if 3 in allowed and has_cert:
        return 3
    if 2 in allowed and facts.authorization is not None:
        return 2
    if not allowed:
        return Reject(f"station {identity} is registered for profile {record.profile}, which this port "
                      f"(profile {','.join(map(str, sorted(policy.profiles)))}) does not serve",
                      403, ev.FAILED_TO_AUTHENTICATE, "A00.FR.002", identity)
    if allowed == {3}:
        return Reject(f"station {identity} is registered for profile 3 but sent no client certificate",
                      403, ev.FAILED_TO_AUTHENTICATE, "A00.FR.002", identity)
    if has_cert:
        return Reject(f"station {identity} is registered for profile 2 but used a client certificate without Basic auth",
                      403, ev.FAILED_TO_AUTHENTICATE, "A00.FR.002", identity)
    return Reject(f"station {identity} sent no Authorization header", 401, ev.FAILED_TO_AUTHENTICATE, "A00.FR.202", identity)


def _check_basic(facts: HandshakeFacts, record: StationRecord, identity: str, version: OcppVersion | None) -> bool | Reject:
    if facts.authorization is None:
        return Reject(f"station {identity} sent no Authorization header", 401, ev.FAILED_TO_AUTHENTICATE, "A00.FR.202",
                      identity)
    try:
        creds = parse_authorization(facts.authorization)
    except InputError as exc:
        return Reject(f"malformed Authorization header: {exc.message}", 400, ev.FAILED_TO_AUTHENTICATE,
                      exc.requirement or "A00.FR.202", identity)
    own, slot_hashes = _credentials_for(record, creds.username, identity)
    if not own and not slot_hashes:
        return Reject(f"Basic username {creds.username[:48]!r} is not the identity {identity!r}", 401,
                      ev.FAILED_TO_AUTHENTICATE, "A00.FR.207", identity)
    if own and record.password_hash and password_matches(record.password_hash, creds.password, version):
        return False
    if own and record.pending_password_hash and password_matches(record.pending_password_hash, creds.password, version):
        return True
    if any(password_matches(h, creds.password, version) for h in slot_hashes):
        return False
    return Reject(f"wrong password for station {identity}", 401, ev.FAILED_TO_AUTHENTICATE, "A00.FR.207", identity)


def _credentials_for(record: StationRecord, username: str, identity: str) -> tuple[bool, tuple[str, ...]]:
    """Which passwords ``username`` may log in with for ``identity``: the station's own (True when the username is
    the identity, or a 2.1 network slot's username without a password of its own) and the slots' own hashes."""
    own = username == identity
    hashes: list[str] = []
    for slot in record.network.slots:
        if (slot.username or identity) != username:
            continue
        if slot.password_hash:
            hashes.append(slot.password_hash)
        else:
            own = True
    return own, tuple(hashes)
_ONBOARDING_VIOLATIONS = frozenset({"A00.FR.403", "A00.FR.404"})  # validity period, O: what onboarding may excuse


def select_version(offered: tuple[str, ...], policy: ServerPolicy) -> OcppVersion | None:
    for version in policy.versions:
        if version.subprotocol in offered:
            return version
    return None


def decide(facts: HandshakeFacts, policy: ServerPolicy, lookup: Lookup, *, at: datetime) -> Decision:
    """Run the numbered steps of the module docstring; the first failure is the decision."""
    # 1. identity
    try:
        identity = identity_from_path(facts.path, policy.base_path)
    except InputError as exc:
        return Reject(f"bad station identity in URL: {exc.message}", 400, ev.FAILED_TO_AUTHENTICATE, exc.requirement)
    # 2. transport
    if policy.tls and facts.tls is None:
        return Reject("plain connection on a TLS port", 400, None, "A00.FR.001", identity)
    if facts.tls is not None:
        if facts.tls.version not in ALLOWED_TLS_VERSIONS:
            return Reject(f"TLS version {facts.tls.version} is below 1.2", 400, ev.INVALID_TLS_VERSION, "A00.FR.315", identity)
        if facts.tls.cipher not in policy.allowed_ciphers:
            return Reject(f"cipher suite {facts.tls.cipher} is not permitted", 400, ev.INVALID_TLS_CIPHER_SUITE,
                          "A00.FR.322", identity)
    # 3. registration
    record = lookup(identity)
    if record is None:
        return Reject(f"station {identity} is not registered", 401 if policy.profiles & {1, 2} else 403,
                      ev.FAILED_TO_AUTHENTICATE, None, identity)
    # 4. profile
    used = _used_profile(facts, record, policy, identity)
    if isinstance(used, Reject):
        return used
    version = select_version(facts.subprotocols, policy)
    # 5. credentials
    promote_password = False
    if used in (1, 2):
        checked = _check_basic(facts, record, identity, version)
        if isinstance(checked, Reject):
            return checked
        promote_password = checked
    else:
        assert facts.tls is not None
        assert facts.tls.peer_certificate is not None
        violations = check_station_certificate(facts.tls.peer_certificate, cso_name=policy.cso_name,
                                               serial=record.expected_serial, at=at)
        if violations and policy.onboarding and record.onboarding and \
                all(v.requirement in _ONBOARDING_VIOLATIONS for v in violations):
            if version is None:
                return Reject("no common OCPP subprotocol", None, None, "OCPP-J 3.1.2", identity, close_code=1002)
            return Accept(identity, 3, version, version.subprotocol, onboarding=True)
        if violations:
            return Reject("; ".join(v.message for v in violations), 403, ev.INVALID_CS_CERTIFICATE,
                          violations[0].requirement, identity)
    # 6. subprotocol
    if version is None:
        offered = ", ".join(facts.subprotocols) or "none"
        return Reject(f"no common OCPP subprotocol (offered: {offered[:100]}; served: {', '.join(policy.subprotocols)})",
                      None, None, "OCPP-J 3.1.2", identity, close_code=1002)
    return Accept(identity, used, version, version.subprotocol, promote_password,
                  promote_profile=record.pending_profile == used and record.profile != used)
