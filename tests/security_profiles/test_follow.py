"""The pure follower of OCPP security changes: frames in, actions out; actions applied to registry records."""

from __future__ import annotations

import json
import pickle
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ocppsec.pki.versions import OcppVersion
from ocppsec.pki.wire import SlotSetting
from ocppsec.security_profiles.gateway.follow import (
    ChangeTracker,
    Direction,
    DowngradeSwitchChanged,
    ForgetSecret,
    HashSecret,
    PasswordChanged,
    PriorityChanged,
    ProfileChanged,
    ResetAccepted,
    Secret,
    SlotChanged,
    Unfollowed,
    apply,
)
from ocppsec.security_profiles.registry import NetworkProfiles, NetworkSlot, StationRecord

AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DOWN, UP = Direction.TO_STATION, Direction.FROM_STATION
SECRET = "a-new-password-of-some-length"
V16, V201, V21 = OcppVersion.V16, OcppVersion.V201, OcppVersion.V21


def call(message_id: str, action: str, payload: dict[str, Any]) -> str:
    return json.dumps([2, message_id, action, payload])


def result(message_id: str, payload: dict[str, Any]) -> str:
    return json.dumps([3, message_id, payload])


def variable(component: str, name: str, value: str, instance: str | None = None) -> dict[str, Any]:
    comp: dict[str, Any] = {"name": component} | ({"instance": instance} if instance is not None else {})
    return {"component": comp, "variable": {"name": name}, "attributeValue": value}


def status(component: str, name: str, answer: str, instance: str | None = None) -> dict[str, Any]:
    comp: dict[str, Any] = {"name": component} | ({"instance": instance} if instance is not None else {})
    return {"component": comp, "variable": {"name": name}, "attributeStatus": answer}


def set_variables(message_id: str, *items: dict[str, Any]) -> str:
    return call(message_id, "SetVariables", {"setVariableData": list(items)})


def set_variables_result(message_id: str, *items: dict[str, Any]) -> str:
    return result(message_id, {"setVariableResult": list(items)})


def test_password_rotation_201_accepted_rejected_and_error() -> None:
    t = ChangeTracker(V201)
    (hashed,) = t.feed(DOWN, set_variables("m1", variable("SecurityCtrlr", "BasicAuthPassword", SECRET)), AT)
    assert isinstance(hashed, HashSecret) and hashed.secret.reveal() == SECRET
    assert SECRET not in repr(hashed) and SECRET not in str(hashed.secret) and t.awaiting == 1
    with pytest.raises(TypeError):
        pickle.dumps(hashed.secret)
    assert t.feed(UP, '[2,"s1","Heartbeat",{}]', AT) == ()  # the station's own calls are not answers
    assert t.feed(UP, set_variables_result("m1", status("SecurityCtrlr", "BasicAuthPassword", "Accepted")), AT) == (
        PasswordChanged(hashed.ref),)
    assert t.awaiting == 0
    # Rejected, and a CALLERROR: the hash is forgotten, nothing is followed
    (h2,) = t.feed(DOWN, set_variables("m2", variable("SecurityCtrlr", "BasicAuthPassword", SECRET)), AT)
    assert t.feed(UP, set_variables_result("m2", status("SecurityCtrlr", "BasicAuthPassword", "Rejected")), AT) == (
        ForgetSecret(h2.ref),)  # type: ignore[attr-defined]
    (h3,) = t.feed(DOWN, set_variables("m3", variable("securityctrlr", "basicauthpassword", SECRET)), AT)  # case-insensitive
    assert t.feed(UP, '[4,"m3","InternalError","",{}]', AT) == (ForgetSecret(h3.ref),)  # type: ignore[attr-defined]


def test_setvariables_answers_are_matched_per_variable_not_by_position() -> None:
    t = ChangeTracker(V201)
    actions = t.feed(DOWN, set_variables(
        "m1",
        variable("SecurityCtrlr", "BasicAuthPassword", SECRET),
        variable("SecurityCtrlr", "AllowSecurityProfileDowngrade", "true"),
        variable("OCPPCommCtrlr", "NetworkConfigurationPriority", "2, 1"),
        variable("SampledDataCtrlr", "TxUpdatedInterval", "60"),  # not ours: never followed
    ), AT)
    (hashed,) = actions
    assert isinstance(hashed, HashSecret)
    answer = set_variables_result(
        "m1",
        status("OCPPCommCtrlr", "NetworkConfigurationPriority", "RebootRequired"),  # stored, effective after a reboot
        status("SampledDataCtrlr", "TxUpdatedInterval", "Accepted"),
        status("SecurityCtrlr", "BasicAuthPassword", "Rejected"),
        status("SecurityCtrlr", "AllowSecurityProfileDowngrade", "Accepted"),
    )
    assert set(t.feed(UP, answer, AT)) == {ForgetSecret(hashed.ref), DowngradeSwitchChanged(True), PriorityChanged((2, 1))}


def test_v16_change_configuration() -> None:
    t = ChangeTracker(V16)
    key = "0001020304050607FFFFFFFFFFFFFFFFFFFFFFFF"
    (hashed,) = t.feed(DOWN, call("c1", "ChangeConfiguration", {"key": "AuthorizationKey", "value": key}), AT)
    assert isinstance(hashed, HashSecret) and hashed.secret.reveal() == key
    assert t.feed(UP, result("c1", {"status": "Accepted"}), AT) == (PasswordChanged(hashed.ref),)
    assert t.feed(DOWN, call("c2", "ChangeConfiguration", {"key": "securityprofile", "value": "3"}), AT) == ()
    assert t.feed(UP, result("c2", {"status": "RebootRequired"}), AT) == (ProfileChanged(3),)
    assert t.feed(DOWN, call("c3", "ChangeConfiguration", {"key": "SecurityProfile", "value": "three"}), AT) == (
        Unfollowed("SecurityProfile: the value is not an integer"),)
    assert t.feed(DOWN, call("c4", "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "30"}), AT) == ()
    assert t.awaiting == 0
    # Reset counts only after a change in this connection
    assert t.feed(DOWN, call("c5", "Reset", {"type": "Hard"}), AT) == ()
    assert t.feed(UP, result("c5", {"status": "Accepted"}), AT) == (ResetAccepted(),)
    assert ChangeTracker(V16).feed(DOWN, call("c5", "Reset", {"type": "Hard"}), AT) == ()


def test_v21_slots_set_network_profile_and_network_configuration_variables() -> None:
    t = ChangeTracker(V21)
    profile = {"configurationSlot": 2, "connectionData": {
        "ocppCsmsUrl": "wss://csms.example/ocpp", "securityProfile": 2, "ocppInterface": "Wired0", "ocppTransport": "JSON",
        "messageTimeout": 30, "identity": "CS-2-alt", "basicAuthPassword": SECRET}}
    (hashed,) = t.feed(DOWN, call("n1", "SetNetworkProfile", profile), AT)
    assert isinstance(hashed, HashSecret)
    (slot,) = t.feed(UP, result("n1", {"status": "Accepted"}), AT)
    assert slot == SlotChanged(2, True, frozenset(SlotSetting), 2, "CS-2-alt", hashed.ref)
    actions = t.feed(DOWN, set_variables(
        "n2", variable("NetworkConfiguration", "Identity", "CS-2-other", instance="3"),
        variable("NetworkConfiguration", "BasicAuthPassword", SECRET, instance="3"),
        variable("NetworkConfiguration", "SecurityProfile", "2", instance="x")), AT)
    assert [type(a) for a in actions] == [HashSecret, Unfollowed]
    answer = set_variables_result("n2", status("NetworkConfiguration", "Identity", "Accepted", instance="3"),
                                  status("NetworkConfiguration", "BasicAuthPassword", "Accepted", instance="3"))
    assert t.feed(UP, answer, AT) == (
        SlotChanged(3, False, frozenset({SlotSetting.IDENTITY}), username="CS-2-other"),
        SlotChanged(3, False, frozenset({SlotSetting.BASIC_AUTH_PASSWORD}), password_ref=actions[0].ref))  # type: ignore[union-attr]
    # 2.0.1 has neither the per-slot credentials nor the NetworkConfiguration component
    t201 = ChangeTracker(V201)
    assert t201.feed(DOWN, call("n1", "SetNetworkProfile", profile), AT) == ()  # the password field is not 2.0.1's
    assert t201.feed(UP, result("n1", {"status": "Accepted"}), AT) == (
        SlotChanged(2, True, frozenset({SlotSetting.SECURITY_PROFILE}), 2),)
    assert t201.feed(DOWN, set_variables("n2", variable("NetworkConfiguration", "Identity", "x", "1")), AT) == ()
    assert t201.awaiting == 0


def test_the_awaited_table_is_bounded_and_entries_expire() -> None:
    t = ChangeTracker(V201, max_awaited=4, answer_timeout=timedelta(seconds=60))
    refs = []
    for i in range(5):
        (h, *_rest) = t.feed(DOWN, set_variables(f"m{i}", variable("SecurityCtrlr", "BasicAuthPassword", SECRET)), AT)
        refs.append(h.ref)  # type: ignore[union-attr]
    assert t.awaiting == 4  # the fifth pushed out the first
    assert t.feed(UP, set_variables_result("m0", status("SecurityCtrlr", "BasicAuthPassword", "Accepted")), AT) == ()
    late = t.feed(UP, '[2,"x","Heartbeat",{}]', AT + timedelta(seconds=61))
    assert set(late) >= {ForgetSecret(r) for r in refs[1:]} and t.awaiting == 0
    assert any(isinstance(a, Unfollowed) and "within 60 s" in a.reason for a in late)
    (h,) = t.feed(DOWN, set_variables("k", variable("SecurityCtrlr", "BasicAuthPassword", SECRET)), AT)
    assert t.close() == (ForgetSecret(h.ref),)  # type: ignore[attr-defined]


@pytest.mark.parametrize("frame", [
    b"[2, binary]", "[" * 50_000, "not json", '[2,"1","SetVariables",[]]', '[2,"1","SetVariables",{"setVariableData":7}]',
    '[2,"1","SetVariables",{"setVariableData":[1,{"component":"x"},{"component":{"name":1},"variable":{}}]}]',
    '[2,"1","SetNetworkProfile",{"configurationSlot":"a"}]', '[2,"1","ChangeConfiguration",{"key":7}]',
    '[2,1,"SetVariables",{}]', '{"SetVariables": 1}',
])
def test_hostile_frames_are_ignored(frame: str | bytes) -> None:
    for version in (V16, V201, V21):
        t = ChangeTracker(version)
        assert t.feed(DOWN, frame, AT) == () and t.awaiting == 0
    t = ChangeTracker(V201)
    t.feed(DOWN, set_variables("1", variable("SecurityCtrlr", "AllowSecurityProfileDowngrade", "true")), AT)
    for answer in (frame, '[3,"1",[]]', '[3,"1"]', '[3,"1",{"setVariableResult":"x"}]'):
        t.feed(UP, answer, AT)
    assert t.awaiting == 0  # unreadable answers to an awaited id: nothing stored


@pytest.mark.parametrize("answer", [{"name": "Accepted"}, ["Accepted"], 1, None])
def test_a_status_that_is_not_text_is_not_stored(answer: Any) -> None:
    """A station's answer with an object, a list or a number as its status (found by tests/fuzz/follow.py: an
    object was looked up in the set of stored statuses and raised TypeError): nothing is followed."""
    t = ChangeTracker(V201)
    (hashed,) = t.feed(DOWN, set_variables("1", variable("SecurityCtrlr", "BasicAuthPassword", SECRET)), AT)
    reply = status("SecurityCtrlr", "BasicAuthPassword", "x") | {"attributeStatus": answer}
    assert t.feed(UP, set_variables_result("1", reply), AT) == (ForgetSecret(hashed.ref),)  # type: ignore[attr-defined]
    t16 = ChangeTracker(V16)
    (h16,) = t16.feed(DOWN, call("2", "ChangeConfiguration", {"key": "AuthorizationKey", "value": "00" * 16}), AT)
    assert t16.feed(UP, result("2", {"status": answer}), AT) == (ForgetSecret(h16.ref),)  # type: ignore[attr-defined]
    assert t.awaiting == 0 and t16.awaiting == 0


@pytest.mark.parametrize("value", ["²", "1,²", "9" * 5000, "2147483648", "-1", "1,,2", " ", "3\n"])
def test_numbers_are_ascii_ocpp_integers(value: str) -> None:
    t = ChangeTracker(V201)
    out = t.feed(DOWN, set_variables("1", variable("OCPPCommCtrlr", "NetworkConfigurationPriority", value)), AT)
    if value == "3\n":  # surrounding white space is tolerated
        assert out == () and t.feed(UP, set_variables_result("1", status("OCPPCommCtrlr", "NetworkConfigurationPriority",
                                                                           "Accepted")), AT) == (PriorityChanged((3,)),)
        return
    assert len(out) == 1 and isinstance(out[0], Unfollowed) and t.awaiting == 0
    t16 = ChangeTracker(V16)
    assert [type(a) for a in t16.feed(DOWN, call("2", "ChangeConfiguration", {"key": "SecurityProfile", "value": value}),
                                      AT)] == ([Unfollowed] if value != "3\n" else [])


def test_empty_or_huge_passwords_are_not_followed() -> None:
    t = ChangeTracker(V201)
    out = t.feed(DOWN, set_variables("1", variable("SecurityCtrlr", "BasicAuthPassword", "")), AT)
    assert out == (Unfollowed("BasicAuthPassword: an empty or non-text password is not followed"),)
    out = t.feed(DOWN, set_variables("2", variable("SecurityCtrlr", "BasicAuthPassword", "x" * 257)), AT)
    assert len(out) == 1 and isinstance(out[0], Unfollowed) and "x" * 20 not in out[0].reason


def test_secret_repr() -> None:
    assert repr(Secret("hunter2-hunter2-hunter2")) == "Secret(<redacted>)"


# -- apply --------------------------------------------------------------------------------------------
REC = StationRecord("CS-1", 2, serial="SN-1", password_hash="old-hash")


def test_apply_password_and_downgrade_switch() -> None:
    done = apply(REC, PasswordChanged(1), V201, password_hash="new-hash")
    assert done.record == replace(REC, pending_password_hash="new-hash") and done.requirement == "A01.FR.03"
    assert "new-hash" not in done.note
    assert apply(REC, PasswordChanged(1), V201).record is None  # no hash: not followed
    assert apply(REC, DowngradeSwitchChanged(True), V201).record == replace(REC, allow_downgrade=True)


@pytest.mark.parametrize(("version", "registered", "target", "allow", "pending", "requirement"), [
    (V16, 2, 3, False, 3, "A05.FR.05"),
    (V16, 3, 2, True, None, "A05.FR.01"),  # 1.6: only upward
    (V201, 2, 3, False, 3, "A05.FR.06"),
    (V201, 3, 2, False, None, "A05.FR.10"),  # downgrade without AllowSecurityProfileDowngrade
    (V201, 3, 2, True, 2, "A05.FR.06"),
    (V21, 3, 1, True, None, "A05.FR.09"),  # never to 1
    (V21, 2, 1, True, None, "A05.FR.09"),
])
def test_apply_profile_rules(version: OcppVersion, registered: int, target: int, allow: bool, pending: int | None,
                             requirement: str) -> None:
    rec = replace(REC, profile=registered, allow_downgrade=allow)
    done = apply(rec, ProfileChanged(target), version)
    assert done.record is not None and done.record.pending_profile == pending
    assert done.followed is (pending is not None) and done.requirement == requirement


def test_apply_slots_and_priority_follow_the_first_slot() -> None:
    rec = replace(REC, network=NetworkProfiles((1,), (NetworkSlot(1, 2),)))
    slot = apply(rec, SlotChanged(2, True, frozenset({SlotSetting.SECURITY_PROFILE}), 3), V201)
    assert slot.record is not None and slot.record.network.slot(2) == NetworkSlot(2, 3)
    assert slot.record.pending_profile is None  # slot 1 is still tried first
    first = apply(slot.record, PriorityChanged((2, 1)), V201)
    assert first.record is not None and first.record.pending_profile == 3 and first.record.network.priority == (2, 1)
    back = apply(first.record, PriorityChanged((1, 2)), V201)  # back to the registered profile: 3 no longer pending
    assert back.record is not None and back.record.pending_profile is None
    # 2.1: per-slot credentials, replaced whole or per variable
    creds = apply(rec, SlotChanged(2, True, frozenset(SlotSetting), 2, "CS-1-alt", 7), V21, password_hash="slot-hash")
    assert creds.record is not None and creds.record.network.slot(2) == NetworkSlot(2, 2, "CS-1-alt", "slot-hash")
    renamed = apply(creds.record, SlotChanged(2, False, frozenset({SlotSetting.IDENTITY}), username="CS-1-b"), V21)
    assert renamed.record is not None and renamed.record.network.slot(2) == NetworkSlot(2, 2, "CS-1-b", "slot-hash")
    bad = apply(rec, SlotChanged(2, False, frozenset({SlotSetting.IDENTITY}), username="has:colon"), V21)
    assert bad.record is None and not bad.followed
    assert not apply(rec, SlotChanged(2, True, frozenset(), 0), V201).followed  # profile 0: not a profile
    assert apply(rec, ResetAccepted(), V201).record is None
