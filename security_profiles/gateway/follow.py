"""The OCPP security changes the gateway follows on the frames it relays, sans I/O.

A CSMS behind the gateway changes a station's credentials and security profile over OCPP; the gateway
holds the station's registry record, so it has to follow, or the station is locked out at its next
connection. A :class:`ChangeTracker` per connection is fed every relayed frame (``feed(direction, frame,
at)``) and correlates the CSMS's CALLs with the station's answer (by message id, in a bounded table whose
entries expire); what the station stored becomes an :data:`Action`:

====================================================  ======================================================
CSMS CALL (station answers Accepted / RebootRequired)  action
====================================================  ======================================================
SetVariables SecurityCtrlr.BasicAuthPassword,          :class:`HashSecret` at once (the clear value leaves the
1.6 ChangeConfiguration AuthorizationKey               tracker), :class:`PasswordChanged` on the answer (A01)
1.6 ChangeConfiguration SecurityProfile                :class:`ProfileChanged` (A05)
SetVariables SecurityCtrlr.AllowSecurityProfileDowngrade  :class:`DowngradeSwitchChanged` (A05.FR.08)
SetNetworkProfile (a whole slot; 2.1 with identity     :class:`SlotChanged` ``replace=True`` (B09)
and basicAuthPassword)
SetVariables NetworkConfiguration[slot].SecurityProfile /  :class:`SlotChanged` ``replace=False`` (2.1, B09)
Identity / BasicAuthPassword
SetVariables OCPPCommCtrlr.NetworkConfigurationPriority  :class:`PriorityChanged` (A05 in 2.x)
Reset (after one of the above in this connection)      :class:`ResetAccepted`
====================================================  ======================================================

A change the station did not store (Rejected, a CALLERROR, no answer in time) gives :class:`ForgetSecret`
for its passwords. The names come from the version's wire table (:mod:`ocppsec.pki.wire`, the
``security_config`` entry); this module has no OCPP version ``if``.

:func:`apply` is the other half: a pure function from a registry record and one action to the record to
write, with a note for the log and the security event (never a password). Profile changes go through the
CSMS side of :mod:`..upgrade` (:func:`~ocppsec.security_profiles.upgrade.csms_step`): only upward in 1.6,
3 -> 2 only where the station's AllowSecurityProfileDowngrade is true (observed or set in the registry),
never to 1; the new profile becomes the record's pending one and the handshake promotes it at the first
connection with it, after which the old one is refused (A05.FR.07). A new password becomes the pending
hash, promoted at the first login with it (A01.FR.03).

Cost on the relay: a CSMS frame is parsed only when it contains one of the action names; a station frame
only while an answer is awaited and only when its message id is one of those awaited.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum
from types import MappingProxyType
from typing import Any

from ocppsec.pki.errors import OcppsecError
from ocppsec.pki.versions import OcppVersion
from ocppsec.pki.wire import SecurityConfigNames, SecuritySetting, SlotSetting, wire_names
from ocppsec.security_profiles.registry import MAX_SLOT, NetworkProfiles, NetworkSlot, StationRecord
from ocppsec.security_profiles.upgrade import CsmsProfileState, Initiate, StationAnswered, StationConfig, csms_step

__all__ = [
    "Action",
    "Applied",
    "ChangeTracker",
    "Direction",
    "DowngradeSwitchChanged",
    "ForgetSecret",
    "HashSecret",
    "PasswordChanged",
    "PriorityChanged",
    "ProfileChanged",
    "ResetAccepted",
    "Secret",
    "SlotChanged",
    "Unfollowed",
    "apply",
]

MAX_AWAITED = 32  # CSMS calls awaiting the station's answer, per connection
ANSWER_TIMEOUT = timedelta(minutes=5)  # an unanswered call is forgotten after this
MAX_PASSWORD = 256  # characters; longer values are not followed (2.1's maximum is 64)


class Direction(Enum):
    TO_STATION = "to-station"  # frames from the CSMS: its CALLs
    FROM_STATION = "from-station"  # frames from the station: its answers


class Secret:
    """A clear password on its way to be hashed: never in ``repr`` or ``str``, never compared or pickled."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret(<redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("a Secret is not pickled")


# -- actions ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class HashSecret:
    """Hash ``secret`` (off the event loop) under ``ref``; the tracker keeps no copy."""

    ref: int
    secret: Secret


@dataclass(frozen=True, slots=True)
class ForgetSecret:
    """The change carrying password ``ref`` was not stored by the station: drop its hash."""

    ref: int


@dataclass(frozen=True, slots=True)
class PasswordChanged:
    """The station stored a new BasicAuthPassword / AuthorizationKey (hashed under ``ref``)."""

    ref: int


@dataclass(frozen=True, slots=True)
class ProfileChanged:
    """The station stored a new security profile (1.6 SecurityProfile key)."""

    profile: int


@dataclass(frozen=True, slots=True)
class DowngradeSwitchChanged:
    """The station stored SecurityCtrlr.AllowSecurityProfileDowngrade."""

    allowed: bool


@dataclass(frozen=True, slots=True)
class SlotChanged:
    """The station stored values of network connection slot ``slot``.

    ``replace``: SetNetworkProfile wrote the whole slot (what is None is absent); otherwise only the values
    in ``written`` were set (2.1 NetworkConfiguration variables). ``password_ref``: the slot's new password,
    hashed under that ref.
    """

    slot: int
    replace: bool
    written: frozenset[SlotSetting]
    profile: int | None = None
    username: str | None = None
    password_ref: int | None = None


@dataclass(frozen=True, slots=True)
class PriorityChanged:
    """The station stored a new NetworkConfigurationPriority (slot numbers, first tried first)."""

    priority: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ResetAccepted:
    """The station accepted a Reset after a change in this connection: it will reconnect with it."""


@dataclass(frozen=True, slots=True)
class Unfollowed:
    """A change the tracker saw but does not follow; ``reason`` never carries a value the CSMS sent."""

    reason: str


Action = (HashSecret | ForgetSecret | PasswordChanged | ProfileChanged | DowngradeSwitchChanged | SlotChanged
          | PriorityChanged | ResetAccepted | Unfollowed)


# -- the tracker ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Change:
    """One value of a CSMS call, with what to emit if the station stores it."""

    key: tuple[str, str | None, str]  # (component, instance, variable) lower-cased; 1.6: ("", None, key)
    stored: Action
    refs: tuple[int, ...] = ()  # password refs to forget if it is not stored


@dataclass(frozen=True, slots=True)
class _Awaited:
    action: str
    at: datetime
    changes: tuple[_Change, ...]


_ANSWER = re.compile(r'\s*\[\s*[34]\s*,\s*"((?:[^"\\]|\\.){0,64})"')


def _load(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


_DIGITS = re.compile(r"\s*\+?([0-9]{1,10})\s*")  # ASCII digits only: str.isdigit() also takes '²', int() does not


def _int(value: Any) -> int | None:
    """An OCPP integer given as a JSON number or as text (``"3"``), within 0..2**31-1; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= MAX_SLOT else None
    match = _DIGITS.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return None
    number = int(match.group(1))
    return number if number <= MAX_SLOT else None


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _lower(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) else None


def _text(value: Any) -> str | None:
    """A status as the station sent it, when it is text (an object there is no status, and not hashable)."""
    return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class _Vocabulary:
    """One version's names, prepared for the tracker (shared by every connection of that version)."""

    names: SecurityConfigNames
    actions: re.Pattern[str]  # any of the followed action names, quoted as in a frame
    settings: Mapping[tuple[str, str], SecuritySetting]  # (component, variable) lower-cased -> setting
    slot_variables: Mapping[str, SlotSetting]


@functools.cache
def _vocabulary(version: OcppVersion) -> _Vocabulary:
    n = wire_names(version).security_config
    actions = (n.change_action, n.network_profile_action, n.reset_action)
    return _Vocabulary(
        n,
        re.compile("|".join(re.escape(f'"{a}"') for a in actions if a)),
        MappingProxyType({((c.component or "").lower(), c.name.lower()): s for s, c in n.settings.items()}),
        MappingProxyType({v.lower(): s for s, v in (n.slot_variables or {}).items()}),
    )


class ChangeTracker:
    """Follows one station's connection: feed it every relayed frame, act on the actions it returns.

    Not thread-safe; the gateway feeds it from the event loop, inside the relay.
    """

    __slots__ = ("_actions", "_awaited", "_changed", "_next_ref", "_settings", "_slot_variables", "answer_timeout",
                 "max_awaited", "names", "version")

    def __init__(self, version: OcppVersion, *, max_awaited: int = MAX_AWAITED,
                 answer_timeout: timedelta = ANSWER_TIMEOUT) -> None:
        vocabulary = _vocabulary(version)
        self.version = version
        self.names = vocabulary.names
        self.max_awaited = max_awaited
        self.answer_timeout = answer_timeout
        self._awaited: dict[str, _Awaited] = {}
        self._next_ref = 0
        self._changed = False  # a change was stored in this connection (a later Reset is worth a note)
        self._actions = vocabulary.actions
        self._settings = vocabulary.settings
        self._slot_variables = vocabulary.slot_variables

    @property
    def awaiting(self) -> int:
        """How many CSMS calls await the station's answer."""
        return len(self._awaited)

    def may_act_on(self, message: str | bytes) -> bool:
        """Whether a CSMS frame names one of the calls followed (a substring test; False means feed() would
        return nothing for it, unless answers are awaited and expire)."""
        return isinstance(message, str) and self._actions.search(message) is not None

    def feed(self, direction: Direction, message: str | bytes, at: datetime) -> tuple[Action, ...]:
        """What ``message`` (relayed in ``direction`` at ``at``) asks the gateway to do; usually nothing."""
        out: list[Action] = []
        if self._awaited:
            self._expire(at, out)
        if isinstance(message, bytes):
            return tuple(out)
        if direction is Direction.TO_STATION:
            if self.may_act_on(message):
                self._call(message, at, out)
        elif self._awaited:
            self._answer(message, out)
        return tuple(out)

    def close(self) -> tuple[Action, ...]:
        """The connection ended: forget the passwords of every call still awaiting an answer."""
        out: list[Action] = []
        for awaited in self._awaited.values():
            self._forget(awaited, out)
        self._awaited.clear()
        return tuple(out)

    # -- CSMS calls --------------------------------------------------------------------------------
    def _call(self, message: str, at: datetime, out: list[Action]) -> None:
        frame = _load(message)
        if not (isinstance(frame, list) and len(frame) == 4 and frame[0] == 2 and isinstance(frame[1], str)
                and isinstance(frame[2], str) and isinstance(frame[3], dict)):
            return
        message_id, action, payload = frame[1], frame[2], frame[3]
        n = self.names
        if action == n.change_action:
            changes = self._change_configuration(payload, out) if n.key_value else self._set_variables(payload, out)
        elif action == n.network_profile_action:
            changes = self._set_network_profile(payload, out)
        elif action == n.reset_action and self._changed:
            changes = (_Change(("", None, ""), ResetAccepted()),)
        else:
            return
        if not changes:
            return
        if message_id in self._awaited:  # a CSMS reusing an id it still waits on: the older call is lost
            self._forget(self._awaited.pop(message_id), out)
        if len(self._awaited) >= self.max_awaited:
            oldest = next(iter(self._awaited))
            self._forget(self._awaited.pop(oldest), out)
            out.append(Unfollowed(f"more than {self.max_awaited} changes awaited an answer; the oldest is not followed"))
        self._awaited[message_id] = _Awaited(action, at, changes)

    def _secret(self, value: str, out: list[Action]) -> int:
        self._next_ref += 1
        out.append(HashSecret(self._next_ref, Secret(value)))
        return self._next_ref

    def _password(self, value: Any, what: str, out: list[Action]) -> str | None:
        if not isinstance(value, str) or not value:
            out.append(Unfollowed(f"{what}: an empty or non-text password is not followed"))
            return None
        if len(value) > MAX_PASSWORD:
            out.append(Unfollowed(f"{what}: a password of more than {MAX_PASSWORD} characters is not followed"))
            return None
        return value

    def _setting(self, setting: SecuritySetting, value: Any, key: tuple[str, str | None, str],
                 out: list[Action]) -> _Change | None:
        name = self.names.settings[setting].name
        if setting is SecuritySetting.BASIC_AUTH_PASSWORD:
            password = self._password(value, name, out)
            if password is None:
                return None
            ref = self._secret(password, out)
            return _Change(key, PasswordChanged(ref), (ref,))
        if setting is SecuritySetting.SECURITY_PROFILE:
            profile = _int(value)
            if profile is None:
                out.append(Unfollowed(f"{name}: the value is not an integer"))
                return None
            return _Change(key, ProfileChanged(profile))
        if setting is SecuritySetting.ALLOW_PROFILE_DOWNGRADE:
            allowed = _bool(value)
            if allowed is None:
                out.append(Unfollowed(f"{name}: the value is not true or false"))
                return None
            return _Change(key, DowngradeSwitchChanged(allowed))
        assert setting is SecuritySetting.NETWORK_PRIORITY
        priority = [_int(p) for p in value.split(",")] if isinstance(value, str) and value.strip() else [None]
        if any(p is None for p in priority):
            out.append(Unfollowed(f"{name}: the value is not a comma-separated list of slot numbers"))
            return None
        return _Change(key, PriorityChanged(tuple(p for p in priority if p is not None)))

    def _change_configuration(self, payload: dict[str, Any], out: list[Action]) -> tuple[_Change, ...]:
        key = _lower(payload.get("key"))
        setting = self._settings.get(("", key)) if key is not None else None
        if setting is None:
            return ()
        change = self._setting(setting, payload.get("value"), ("", None, ""), out)
        return (change,) if change is not None else ()

    def _set_variables(self, payload: dict[str, Any], out: list[Action]) -> tuple[_Change, ...]:
        data = payload.get("setVariableData")
        if not isinstance(data, list):
            return ()
        changes: list[_Change] = []
        for item in data:
            key = self._variable_key(item)
            if key is None:
                continue
            component, instance, variable = key
            setting = self._settings.get((component, variable))
            change: _Change | None = None
            if setting is not None and instance is None:
                change = self._setting(setting, item.get("attributeValue"), key, out)
            elif component == (self.names.slot_component or "").lower() and variable in self._slot_variables:
                change = self._slot_variable(instance, self._slot_variables[variable], item.get("attributeValue"), key, out)
            if change is not None:
                changes.append(change)
        return tuple(changes)

    @staticmethod
    def _variable_key(item: Any) -> tuple[str, str | None, str] | None:
        """(component, instance, variable), lower-cased, for an Actual value of a station-wide component."""
        if not isinstance(item, dict):
            return None
        component, variable = item.get("component"), item.get("variable")
        if not isinstance(component, dict) or not isinstance(variable, dict) or "evse" in component:
            return None
        if item.get("attributeType", "Actual") != "Actual" or variable.get("instance") is not None:
            return None
        name, var = _lower(component.get("name")), _lower(variable.get("name"))
        instance = component.get("instance")
        if name is None or var is None or (instance is not None and not isinstance(instance, str)):
            return None
        return name, instance.lower() if instance is not None else None, var

    def _slot_variable(self, instance: str | None, setting: SlotSetting, value: Any,
                       key: tuple[str, str | None, str], out: list[Action]) -> _Change | None:
        slot = _int(instance)
        what = f"{self.names.slot_component}[{instance}]"
        if slot is None:
            out.append(Unfollowed(f"{what}: the instance is not a slot number"))
            return None
        if setting is SlotSetting.BASIC_AUTH_PASSWORD:
            password = self._password(value, what, out)
            if password is None:
                return None
            ref = self._secret(password, out)
            return _Change(key, SlotChanged(slot, False, frozenset({setting}), password_ref=ref), (ref,))
        if setting is SlotSetting.IDENTITY:
            if not isinstance(value, str):
                out.append(Unfollowed(f"{what}.Identity: the value is not text"))
                return None
            return _Change(key, SlotChanged(slot, False, frozenset({setting}), username=value or None))
        profile = _int(value)
        if profile is None:
            out.append(Unfollowed(f"{what}.SecurityProfile: the value is not an integer"))
            return None
        return _Change(key, SlotChanged(slot, False, frozenset({setting}), profile=profile))

    def _set_network_profile(self, payload: dict[str, Any], out: list[Action]) -> tuple[_Change, ...]:
        slot, data = _int(payload.get("configurationSlot")), payload.get("connectionData")
        fields = self.names.profile_fields or {}
        if slot is None or not isinstance(data, dict):
            return ()
        profile = _int(data.get(fields[SlotSetting.SECURITY_PROFILE]))
        username = data.get(fields[SlotSetting.IDENTITY]) if SlotSetting.IDENTITY in fields else None
        if username is not None and not isinstance(username, str):
            username = None
        password = data.get(fields[SlotSetting.BASIC_AUTH_PASSWORD]) if SlotSetting.BASIC_AUTH_PASSWORD in fields else None
        ref = None
        if password is not None:
            checked = self._password(password, f"{self.names.network_profile_action} slot {slot}", out)
            if checked is None:
                return ()
            ref = self._secret(checked, out)
        stored = SlotChanged(slot, True, frozenset(fields), profile, username or None, ref)
        return (_Change(("", None, ""), stored, (ref,) if ref is not None else ()),)

    # -- station answers ---------------------------------------------------------------------------
    def _answer(self, message: str, out: list[Action]) -> None:
        match = _ANSWER.match(message)
        if match is None:
            return
        raw = match.group(1)
        message_id = _load(f'"{raw}"') if "\\" in raw else raw
        if not isinstance(message_id, str) or message_id not in self._awaited:
            return
        awaited = self._awaited.pop(message_id)
        frame = _load(message)
        payload = frame[2] if isinstance(frame, list) and len(frame) == 3 and frame[0] == 3 else None
        if not isinstance(payload, dict):  # a CALLERROR or an unreadable answer: nothing was stored
            self._forget(awaited, out)
            return
        stored = self._stored_keys(awaited, payload)
        for change in awaited.changes:
            if change.key in stored:
                out.append(change.stored)
                if not isinstance(change.stored, ResetAccepted):
                    self._changed = True
            else:
                out.extend(ForgetSecret(ref) for ref in change.refs)

    def _stored_keys(self, awaited: _Awaited, payload: dict[str, Any]) -> set[tuple[str, str | None, str]]:
        ok = self.names.stored_statuses
        if awaited.action == self.names.reset_action:
            return {("", None, "")} if _text(payload.get("status")) in ("Accepted", "Scheduled") else set()
        if awaited.action != self.names.change_action or self.names.key_value:
            return {("", None, "")} if _text(payload.get("status")) in ok else set()
        results = payload.get("setVariableResult")
        keys: set[tuple[str, str | None, str]] = set()
        for result in results if isinstance(results, list) else ():
            key = self._variable_key(result)
            if key is not None and isinstance(result, dict) and _text(result.get("attributeStatus")) in ok:
                keys.add(key)
        return keys

    def _forget(self, awaited: _Awaited, out: list[Action]) -> None:
        for change in awaited.changes:
            out.extend(ForgetSecret(ref) for ref in change.refs)

    def _expire(self, at: datetime, out: list[Action]) -> None:
        while self._awaited:
            message_id, oldest = next(iter(self._awaited.items()))
            if at - oldest.at < self.answer_timeout:
                return
            del self._awaited[message_id]
            self._forget(oldest, out)
            out.append(Unfollowed(f"no answer to {oldest.action} within {int(self.answer_timeout.total_seconds())} s"))


# -- applying an action to the registry record ------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Applied:
    """What one action does to a record: ``record`` to write (None: nothing to write), a ``note`` for the log
    and the security event (never a password), the requirement it follows, and whether it was ``followed``."""

    record: StationRecord | None
    note: str
    requirement: str | None = None
    followed: bool = True


def apply(record: StationRecord, action: Action, version: OcppVersion, *, password_hash: str | None = None) -> Applied:
    """The registry side of ``action`` for ``record`` (``password_hash``: the hash of the action's password)."""
    if isinstance(action, PasswordChanged):
        if password_hash is None:
            return Applied(None, "the new password could not be hashed; the change is not followed", None, False)
        return Applied(replace(record, pending_password_hash=password_hash),
                       "the station stored a new Basic-auth password: it is accepted next to the old one until the "
                       "station's first login with it, then alone", "A01.FR.03")
    if isinstance(action, ProfileChanged):
        return _profile(record, action.profile, version, "the station stored SecurityProfile")
    if isinstance(action, DowngradeSwitchChanged):
        return Applied(replace(record, allow_downgrade=action.allowed),
                       f"the station stored AllowSecurityProfileDowngrade = {str(action.allowed).lower()}", "A05.FR.08")
    if isinstance(action, SlotChanged):
        return _slot(record, action, version, password_hash)
    if isinstance(action, PriorityChanged):
        network = replace(record.network, priority=action.priority)
        return _follow_network(record, network, version,
                               f"the station stored NetworkConfigurationPriority {','.join(map(str, action.priority))}")
    if isinstance(action, ResetAccepted):
        expected = record.pending_profile or record.profile
        return Applied(None, f"the station accepted a Reset after the change: expected back at profile {expected}")
    if isinstance(action, Unfollowed):
        return Applied(None, action.reason, None, False)
    return Applied(None, "nothing to write")  # HashSecret / ForgetSecret are the adapter's


def _slot(record: StationRecord, action: SlotChanged, version: OcppVersion, password_hash: str | None) -> Applied:
    if action.password_ref is not None and password_hash is None:
        return Applied(None, f"the password of slot {action.slot} could not be hashed; the change is not followed",
                       None, False)
    if action.profile is not None and action.profile not in (1, 2, 3):
        return Applied(None, f"slot {action.slot}: security profile {action.profile} is not 1, 2 or 3; not followed",
                       "B09.FR.04", False)
    old = record.network.slot(action.slot) or NetworkSlot(action.slot)
    try:
        if action.replace:
            new = NetworkSlot(action.slot, action.profile, action.username, password_hash)
        else:
            new = NetworkSlot(
                action.slot,
                action.profile if SlotSetting.SECURITY_PROFILE in action.written else old.profile,
                action.username if SlotSetting.IDENTITY in action.written else old.username,
                password_hash if SlotSetting.BASIC_AUTH_PASSWORD in action.written else old.password_hash,
            )
        network = record.network.with_slot(new)
    except OcppsecError as exc:  # a username the registry cannot hold (over 48 characters, a ':')
        return Applied(None, f"slot {action.slot}: {exc.message}"[:200] + "; not followed", "B09", False)
    parts = [f"security profile {new.profile}" if new.profile else "no security profile",
             "its own Basic-auth username" if new.username else "", "its own password" if new.password_hash else ""]
    return _follow_network(record, network, version,
                           f"the station stored network slot {action.slot} ({', '.join(p for p in parts if p)})")


def _follow_network(record: StationRecord, network: NetworkProfiles, version: OcppVersion, what: str) -> Applied:
    """Store ``network``; if the slot the station now tries first has a known profile, follow it (A05 in 2.x)."""
    updated = replace(record, network=network)
    first = network.first_profile
    if first is None or first == record.pending_profile:
        return Applied(updated, what)
    return _profile(updated, first, version, f"{what}; slot {network.priority[0]} is tried first")


def _profile(record: StationRecord, target: int, version: OcppVersion, what: str) -> Applied:
    if target == record.profile:
        if record.pending_profile is None:
            return Applied(record, f"{what}: profile {target}, the registered one")
        return Applied(replace(record, pending_profile=None),
                       f"{what}: profile {target}, the registered one; profile {record.pending_profile} "
                       "is no longer accepted")
    config = StationConfig(version, has_basic_password=bool(record.password_hash or record.pending_password_hash),
                           allow_downgrade=record.allow_downgrade)
    state = CsmsProfileState(record.profile, record.pending_profile)
    started = csms_step(state, Initiate(target), config)
    if started.refused:
        return Applied(record, f"{what}: profile {record.profile} -> {target} is not followed (the registered "
                               f"profile stays the only one)", started.requirement, False)
    assert isinstance(started.state, CsmsProfileState)
    answered = csms_step(started.state, StationAnswered(True), config)
    assert isinstance(answered.state, CsmsProfileState)
    return Applied(replace(record, pending_profile=answered.state.pending),
                   f"{what}: profile {target} is accepted next to {record.profile} until the station's first "
                   f"connection with it, then alone", answered.requirement or started.requirement)
