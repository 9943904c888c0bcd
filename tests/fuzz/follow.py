"""The gateway's follower of OCPP security changes: relayed frames both ways, then the registry side.

Input: four fields split at the separator: one byte of options (the OCPP version, the registered profile,
the downgrade switch), a CSMS frame, the station's frame, and a second CSMS frame. The frames go through
:class:`~ocppsec.security_profiles.gateway.follow.ChangeTracker` as the relay feeds it (CSMS, station,
CSMS, station again), then every action through :func:`~ocppsec.security_profiles.gateway.follow.apply`.
Neither may raise: the CSMS and the station are both untrusted here, and the relay must go on.
"""

from __future__ import annotations

import json
from datetime import timedelta

from ocppsec.pki.versions import OcppVersion
from ocppsec.security_profiles.gateway.follow import (
    Action,
    ChangeTracker,
    Direction,
    ForgetSecret,
    HashSecret,
    apply,
)
from ocppsec.security_profiles.registry import NetworkProfiles, NetworkSlot, StationRecord

from . import _material as m
from ._harness import fields, harness, join, text

ALLOWED: tuple[type[Exception], ...] = ()
_VERSIONS = (OcppVersion.V16, OcppVersion.V201, OcppVersion.V21)
_NETWORK = NetworkProfiles((1, 2), (NetworkSlot(1, 2), NetworkSlot(2, 3, "alt-user", "hash")))


@harness(ALLOWED)
def TestOneInput(data: bytes) -> None:
    raw_options, first, answer, second = fields(data, 4)
    options = raw_options[0] if raw_options else 0
    version = _VERSIONS[options % 3]
    record = StationRecord(m.STATION, 1 + (options >> 2) % 3, serial=m.SERIAL, password_hash="hash",
                           allow_downgrade=bool(options & 32), network=_NETWORK if options & 64 else NetworkProfiles())
    tracker = ChangeTracker(version, max_awaited=2)
    actions: list[Action] = []
    for direction, frame in ((Direction.TO_STATION, first), (Direction.FROM_STATION, answer),
                             (Direction.TO_STATION, second), (Direction.FROM_STATION, answer)):
        message: str | bytes = text(frame) if not options & 128 else frame
        actions += tracker.feed(direction, message, m.NOW)
    actions += tracker.feed(Direction.FROM_STATION, "[]", m.NOW + timedelta(hours=1))  # everything expires
    actions += tracker.close()
    assert tracker.awaiting == 0
    for action in actions:
        if isinstance(action, HashSecret | ForgetSecret):
            assert action.ref > 0
            repr(action)
            continue
        for password_hash in ("new-hash", None):
            outcome = apply(record, action, version, password_hash=password_hash)
            assert outcome.note and (outcome.record is None or outcome.record.identity == record.identity)
            if outcome.record is not None:
                record = outcome.record


def _frame(*parts: object) -> str:
    return json.dumps(list(parts))


def seeds() -> dict[str, bytes]:
    password = {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"},
                "attributeValue": "a-new-password-0001"}
    priority = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "NetworkConfigurationPriority"},
                "attributeValue": "2,1"}
    downgrade = {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "AllowSecurityProfileDowngrade"},
                 "attributeValue": "true"}
    slot_user = {"component": {"name": "NetworkConfiguration", "instance": "2"}, "variable": {"name": "Identity"},
                 "attributeValue": "alt-user"}

    def accepted(*items: dict[str, object]) -> str:
        return _frame(3, "m1", {"setVariableResult": [
            {"attributeStatus": "Accepted", "component": i["component"], "variable": i["variable"]} for i in items]})

    profile = {"configurationSlot": 2, "connectionData": {"ocppCsmsUrl": "wss://x/", "securityProfile": 2,
               "ocppInterface": "Wired0", "ocppTransport": "JSON", "messageTimeout": 30, "identity": "alt-user",
               "basicAuthPassword": "slot-password-0001"}}
    return {
        "password-201": join(bytes([1]), _frame(2, "m1", "SetVariables", {"setVariableData": [password]}),
                             accepted(password), ""),
        "priority-downgrade-21": join(bytes([2 | 8 | 32 | 64]), _frame(2, "m1", "SetVariables", {
            "setVariableData": [downgrade, priority, slot_user]}), accepted(downgrade, priority, slot_user),
            _frame(2, "m2", "Reset", {"type": "OnIdle"})),
        "network-profile-21": join(bytes([2 | 4]), _frame(2, "m1", "SetNetworkProfile", profile),
                                   _frame(3, "m1", {"status": "Accepted"}), ""),
        "change-configuration-16": join(bytes([0 | 4]), _frame(2, "m1", "ChangeConfiguration", {
            "key": "SecurityProfile", "value": "3"}), _frame(3, "m1", {"status": "RebootRequired"}),
            _frame(2, "m2", "ChangeConfiguration", {"key": "AuthorizationKey", "value": "00" * 20})),
        "call-error": join(bytes([1]), _frame(2, "m1", "SetVariables", {"setVariableData": [password]}),
                           _frame(4, "m1", "InternalError", "", {}), ""),
    }
