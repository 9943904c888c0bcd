"""The station registry: who may connect, with which profile, serial number and password hash.

:class:`StationRegistry` is the narrow interface the handshake needs; :class:`MemoryRegistry` keeps
records in a dict (tests, embedding); :class:`ocppsec.security_profiles.registry_sql.SqlRegistry` keeps
them in a SQLite file that several gateway processes on one host can share, or in PostgreSQL, shared by
gateways and CSMS nodes on several hosts; :func:`~ocppsec.security_profiles.registry_sql.open_registry`
opens it from a path or URL.

A record holds at most two password hashes: the active one and, during an A01 rotation, the pending
one. Both are accepted until the station confirms the change (:meth:`confirm_password`); from then on
only the new one works (A01.FR.03). A rejected change drops the pending one and keeps the old
(A01.FR.04). The same two-slot scheme carries an A05 profile change (``pending_profile``):
:func:`set_profile` changes the registered profile, or with ``pending`` accepts the new one next to it
until the station's first connection with it; the password stays either way (a station going to
profile 3 keeps it for a fall-back, and one coming back to 2 needs it).

``onboarding`` says which profile-3 stations the gateway may admit into a renewal-only session with a
certificate it would otherwise refuse (:class:`Onboarding`): ``expired`` (our CA's, expired; A00.FR.429-430)
and/or ``factory`` (issued under a configured manufacturer root; A00.FR.806-807). Empty by default.

A record also holds what the station's own configuration says about later profile changes:
``allow_downgrade`` (SecurityCtrlr.AllowSecurityProfileDowngrade: 3 -> 2 may be followed, A05.FR.08) and
``network`` (:class:`NetworkProfiles`: the network connection slots the CSMS configured, with their
security profiles, and their priority order, B09). In 2.1 a slot may carry its own Basic-auth username and
password (:class:`NetworkSlot`); the station still connects to the URL of its own identity, and the
handshake accepts the slot's username with the slot's password for that identity. :func:`set_profile`
and the gateway's follower apply the same A05 rules to the same record.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass, field, replace
from typing import Protocol, runtime_checkable

from ocppsec.pki.errors import DuplicateError, NotFoundError, PolicyError, UsageError, Violation
from ocppsec.pki.versions import OcppVersion
from ocppsec.security_profiles.identity import validate_identity

__all__ = [
    "DEFAULT_REGISTRY",
    "MemoryRegistry",
    "NetworkProfiles",
    "NetworkSlot",
    "Onboarding",
    "StationRecord",
    "StationRegistry",
    "confirm_password",
    "discard_pending_password",
    "set_pending_password",
    "set_profile",
    "update_station",
]

DEFAULT_REGISTRY = "./ocppsec-stations.db"


class Onboarding(enum.StrEnum):
    """Certificates a station may be onboarded with (renewal-only session, then a normal reconnect)."""

    EXPIRED = "expired"  # an expired certificate of our CA (A00.FR.429-430)
    FACTORY = "factory"  # a certificate issued under a configured manufacturer root (A00.FR.806-807)

    @classmethod
    def parse(cls, text: str | None) -> frozenset[Onboarding]:
        """``"expired,factory"``, ``"expired"``, ``""`` / ``None`` / ``"none"`` (nothing)."""
        if not text or text.strip().lower() == "none":
            return frozenset()
        try:
            return frozenset(cls(p.strip().lower()) for p in text.split(",") if p.strip())
        except ValueError:
            raise UsageError(f"onboarding {text!r} is not expired, factory, both (comma-separated) or none") from None

    @staticmethod
    def text(kinds: frozenset[Onboarding]) -> str | None:
        return ",".join(sorted(k.value for k in kinds)) or None
MAX_SLOT = 2**31 - 1  # configurationSlot is an OCPP integer


@dataclass(frozen=True, slots=True)
class NetworkSlot:
    """One network connection slot of a station, as the CSMS configured it (SetNetworkProfile; 2.1's
    NetworkConfiguration component). ``username`` and ``password_hash`` are 2.1's per-slot Basic-auth
    credentials; ``None`` means the station's own (the URL identity, the record's password). The hash never
    appears in ``repr``."""

    slot: int
    profile: int | None = None
    username: str | None = None
    password_hash: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.slot, bool) or not isinstance(self.slot, int) or not 0 <= self.slot <= MAX_SLOT:
            raise UsageError(f"network configuration slot {self.slot!r} is not an integer from 0 to {MAX_SLOT}")
        if self.profile is not None and self.profile not in (1, 2, 3):
            raise UsageError(f"security profile {self.profile} of slot {self.slot} is not 1, 2 or 3")
        if self.username is not None:
            validate_identity(self.username)  # at most 48 characters, no ':' (it is a Basic-auth username)


@dataclass(frozen=True, slots=True)
class NetworkProfiles:
    """A station's network connection slots (by slot number) and their priority (NetworkConfigurationPriority)."""

    priority: tuple[int, ...] = ()
    slots: tuple[NetworkSlot, ...] = ()

    def __post_init__(self) -> None:
        numbers = [s.slot for s in self.slots]
        if numbers != sorted(set(numbers)):
            raise UsageError("network configuration slots must be unique and sorted by slot number")
        for n in self.priority:
            if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_SLOT:
                raise UsageError(f"network configuration priority entry {n!r} is not a slot number")

    def slot(self, number: int) -> NetworkSlot | None:
        return next((s for s in self.slots if s.slot == number), None)

    def with_slot(self, slot: NetworkSlot) -> NetworkProfiles:
        """These profiles with ``slot`` put in (replacing the slot of the same number)."""
        others = [s for s in self.slots if s.slot != slot.slot]
        return replace(self, slots=tuple(sorted((*others, slot), key=lambda s: s.slot)))

    @property
    def first_profile(self) -> int | None:
        """The security profile of the slot the station tries first, when known."""
        if not self.priority:
            return None
        first = self.slot(self.priority[0])
        return first.profile if first is not None else None

    @property
    def empty(self) -> bool:
        return not (self.priority or self.slots)


NO_NETWORK = NetworkProfiles()


@dataclass(frozen=True, slots=True)
class StationRecord:
    """One registered station. Hashes never appear in ``repr``."""

    identity: str
    profile: int
    serial: str | None = None
    password_hash: str | None = field(default=None, repr=False)
    pending_password_hash: str | None = field(default=None, repr=False)
    pending_profile: int | None = None
    allow_downgrade: bool = False  # SecurityCtrlr.AllowSecurityProfileDowngrade: 3 -> 2 may be followed
    network: NetworkProfiles = NO_NETWORK
    onboarding: frozenset[Onboarding] = frozenset()

    def __post_init__(self) -> None:
        validate_identity(self.identity)
        if self.profile not in (1, 2, 3):
            raise UsageError(f"security profile {self.profile} is not 1, 2 or 3")
        if self.pending_profile is not None and self.pending_profile not in (1, 2, 3):
            raise UsageError(f"pending security profile {self.pending_profile} is not 1, 2 or 3")

    @property
    def expected_serial(self) -> str:
        """The serial number the profile-3 certificate CN must carry (the identity if none is set)."""
        return self.serial or self.identity

    @property
    def accepted_profiles(self) -> frozenset[int]:
        return frozenset({self.profile} | ({self.pending_profile} if self.pending_profile else set()))

    @property
    def password_hashes(self) -> tuple[str, ...]:
        return tuple(h for h in (self.password_hash, self.pending_password_hash) if h)


@runtime_checkable
class StationRegistry(Protocol):
    """What the handshake and the CLI need from a registry.

    ``serve()`` calls :meth:`get` in a worker thread, since a SQLite or PostgreSQL registry may wait; a
    registry whose ``get`` never waits (an in-memory snapshot) may say so with a class or instance
    attribute ``nonblocking = True``, and ``serve()`` then looks up on the event loop."""

    def get(self, identity: str) -> StationRecord | None: ...

    def add(self, record: StationRecord) -> None: ...

    def update(self, record: StationRecord) -> None: ...

    def remove(self, identity: str) -> None: ...

    def list(self) -> list[StationRecord]: ...


def _require(record: StationRecord | None, identity: str) -> StationRecord:
    if record is None:
        raise NotFoundError(f"station {identity!r} is not registered", hint="add it with `ocppsec stations add`")
    return record


def set_pending_password(registry: StationRegistry, identity: str, password_hash: str) -> StationRecord:
    """Start an A01 rotation: the new hash is accepted next to the old one until confirmed."""
    record = replace(_require(registry.get(identity), identity), pending_password_hash=password_hash)
    registry.update(record)
    return record


def confirm_password(registry: StationRegistry, identity: str) -> StationRecord:
    """The station accepted the new password: only the new one works from now on (A01.FR.03)."""
    record = _require(registry.get(identity), identity)
    if record.pending_password_hash is None:
        return record
    record = replace(record, password_hash=record.pending_password_hash, pending_password_hash=None)
    registry.update(record)
    return record


def discard_pending_password(registry: StationRegistry, identity: str) -> StationRecord:
    """The station rejected the change: keep accepting the old password (A01.FR.04)."""
    record = replace(_require(registry.get(identity), identity), pending_password_hash=None)
    registry.update(record)
    return record


def set_profile(
    registry: StationRegistry, identity: str, profile: int, *, pending: bool = False,
    version: OcppVersion = OcppVersion.V201, allow_downgrade: bool | None = None,
) -> StationRecord:
    """Change the security profile of ``identity`` under the A05 rules of ``version``, keeping its password.

    ``pending``: accept ``profile`` next to the registered one until the station connects with it (then it
    becomes the only one, A05.FR.06/07), for the A05 sequence (SetNetworkProfile, reset, reconnect);
    otherwise the station must connect with ``profile`` from now on. Refused (:class:`PolicyError` with the
    requirement): any lowering in 1.6 (A05.FR.01); 3 -> 2 unless the station's AllowSecurityProfileDowngrade
    is true (A05.FR.10) and any -> 1 (A05.FR.09) in 2.0.1 / 2.1; profile 1 or 2 for a station with no
    password (A05.FR.02 / A00.FR.205). These are the rules the gateway's follower applies to a change it
    relays, on the same record.

    ``allow_downgrade``: the station's AllowSecurityProfileDowngrade as the caller knows it, recorded with
    the change (``None``: the record's ``allow_downgrade``, what ``stations add --allow-profile-downgrade``,
    ``stations profile-downgrade`` or the follower wrote)."""
    from ocppsec.security_profiles.upgrade import StationConfig, evaluate_request

    record = _require(registry.get(identity), identity)
    if profile not in (1, 2, 3):
        raise UsageError(f"security profile {profile} is not 1, 2 or 3")
    if allow_downgrade is not None:
        record = replace(record, allow_downgrade=allow_downgrade)
    if profile == record.profile:
        if record.pending_profile is None:
            raise UsageError(f"{identity} is registered with profile {profile} already")
        updated = replace(record, pending_profile=None)  # back to the registered profile alone
    else:
        config = StationConfig(version, has_basic_password=bool(record.password_hash or record.pending_password_hash),
                               allow_downgrade=record.allow_downgrade)
        answer, requirement = evaluate_request(record.profile, profile, config)
        if answer != "Accepted":
            raise PolicyError(f"{identity} cannot go from profile {record.profile} to {profile}",
                              [Violation(requirement, _PROFILE_REFUSALS.get(requirement, "refused by the A05 rules"))],
                              hint="nothing was changed")
        updated = replace(record, pending_profile=profile) if pending else replace(record, profile=profile,
                                                                                   pending_profile=None)
    registry.update(updated)
    return updated


_PROFILE_REFUSALS = {
    "A05.FR.01": "OCPP 1.6 only raises the security profile",
    "A05.FR.09": "no station goes back to profile 1",
    "A05.FR.10": "lowering needs the station's AllowSecurityProfileDowngrade (3 -> 2 only); pass --allow-downgrade "
                 "(or record it: `stations profile-downgrade ID --allow`)",
    "A00.FR.005": "lowering the security profile is not allowed",
    "A05.FR.02": "profiles 1 and 2 need a Basic-auth password: set one first (`stations set-password`)",
    "A00.FR.205": "profiles 1 and 2 need a Basic-auth password: set one first (`stations set-password`)",
}


def update_station(
    registry: StationRegistry, identity: str, *, serial: str | None = None, clear_serial: bool = False,
    discard_pending_profile: bool = False, discard_pending_password: bool = False,
) -> StationRecord:
    """Change what else the registry holds of ``identity``: the serial its profile-3 certificate CN carries
    (``clear_serial``: the identity itself again), and drop a pending profile change or password rotation."""
    record = _require(registry.get(identity), identity)
    if serial is not None and clear_serial:
        raise UsageError("give a serial or clear it, not both")
    if serial is not None:
        if not serial.strip():
            raise UsageError("a serial number is a non-empty string")
        record = replace(record, serial=serial)
    if clear_serial:
        record = replace(record, serial=None)
    if discard_pending_profile:
        record = replace(record, pending_profile=None)
    if discard_pending_password:
        record = replace(record, pending_password_hash=None)
    registry.update(record)
    return record


class MemoryRegistry:
    """A registry in a dict; thread-safe."""

    def __init__(self, records: list[StationRecord] | None = None) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, StationRecord] = {r.identity: r for r in records or ()}

    def get(self, identity: str) -> StationRecord | None:
        with self._lock:
            return self._records.get(identity)

    def add(self, record: StationRecord) -> None:
        with self._lock:
            if record.identity in self._records:
                raise DuplicateError(f"station {record.identity!r} is registered already")
            self._records[record.identity] = record

    def update(self, record: StationRecord) -> None:
        with self._lock:
            _require(self._records.get(record.identity), record.identity)
            self._records[record.identity] = record

    def remove(self, identity: str) -> None:
        with self._lock:
            _require(self._records.pop(identity, None), identity)

    def list(self) -> list[StationRecord]:
        with self._lock:
            return sorted(self._records.values(), key=lambda r: r.identity)
