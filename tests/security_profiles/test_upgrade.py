"""A05 profile changes: the station and CSMS state machines, table by table."""

from __future__ import annotations

import pytest

from ocppsec.pki.versions import OcppVersion
from ocppsec.security_profiles.upgrade import (
    Connected,
    ConnectFailed,
    CsmsProfileState,
    Initiate,
    Phase,
    Request,
    StationAnswered,
    StationConfig,
    StationProfileState,
    csms_step,
    evaluate_request,
    station_step,
)

V16, V201, V21 = OcppVersion.V16, OcppVersion.V201, OcppVersion.V21


@pytest.mark.parametrize(
    ("version", "cur", "new", "allow", "answer", "req"),
    [
        (V16, 1, 2, False, "Accepted", "A05.FR.05"),
        (V16, 2, 2, False, "Rejected", "A05.FR.01"),
        (V16, 3, 2, True, "Rejected", "A05.FR.01"),  # 1.6 never lowers
        (V201, 2, 3, False, "Accepted", "A05.FR.06"),
        (V201, 3, 2, False, "Rejected", "A05.FR.10"),
        (V201, 3, 2, True, "Accepted", "A05.FR.08"),
        (V201, 3, 1, True, "Rejected", "A05.FR.09"),
        (V21, 2, 1, True, "Rejected", "A05.FR.09"),
        (V21, 2, 1, False, "Rejected", "A05.FR.09"),
        (V21, 3, 2, True, "Accepted", "A05.FR.08"),
    ],
)
def test_request_table(version: OcppVersion, cur: int, new: int, allow: bool, answer: str, req: str) -> None:
    assert evaluate_request(cur, new, StationConfig(version, allow_downgrade=allow)) == (answer, req)


@pytest.mark.parametrize(
    ("version", "missing", "new", "req"),
    [
        (V16, "has_basic_password", 2, "A05.FR.02"),
        (V16, "has_csms_root", 2, "A05.FR.03"),
        (V16, "has_station_certificate", 3, "A05.FR.04"),
        (V201, "has_csms_root", 3, "A05.FR.02"),
        (V201, "has_station_certificate", 3, "A05.FR.03"),
    ],
)
def test_prerequisites(version: OcppVersion, missing: str, new: int, req: str) -> None:
    config = StationConfig(version, **{missing: False})  # type: ignore[arg-type]
    assert evaluate_request(1, new, config) == ("Rejected", req)


def test_station_upgrade_success_and_fallback() -> None:
    cfg = StationConfig(V201)
    s = StationProfileState(2)
    t = station_step(s, Request(3), cfg)
    assert t.response == "Accepted" and t.state == StationProfileState(2, Phase.SWITCHING, 3)
    busy = station_step(t.state, Request(3), cfg)  # type: ignore[arg-type]
    assert busy.response == "Rejected"
    ok = station_step(t.state, Connected(3), cfg)  # type: ignore[arg-type]
    assert ok.state == StationProfileState(3) and ok.requirement == "A05.FR.06"
    failed = station_step(t.state, ConnectFailed(), cfg)  # type: ignore[arg-type]
    assert failed.state == StationProfileState(2)
    # after the upgrade, going back is refused
    assert station_step(ok.state, Request(2), cfg).response == "Rejected"  # type: ignore[arg-type]


def test_csms_side_upgrade_then_lower_refused() -> None:
    cfg = StationConfig(V201)
    s = CsmsProfileState(2)
    t = csms_step(s, Initiate(3), cfg)
    assert isinstance(t.state, CsmsProfileState) and t.state.pending == 3 and t.state.accepted_profiles == {2}
    t = csms_step(t.state, StationAnswered(True), cfg)
    assert isinstance(t.state, CsmsProfileState) and t.state.accepted_profiles == {2, 3}
    t = csms_step(t.state, Connected(3), cfg)
    assert t.state == CsmsProfileState(3)
    t = csms_step(t.state, Connected(2), cfg)
    assert t.refused and t.requirement == "A05.FR.07"


def test_csms_side_rejected_answer_keeps_old() -> None:
    cfg = StationConfig(V16)
    t = csms_step(CsmsProfileState(1), Initiate(2), cfg)
    t = csms_step(t.state, StationAnswered(False), cfg)  # type: ignore[arg-type]
    assert t.state == CsmsProfileState(1)


def test_csms_side_downgrade_only_with_switch() -> None:
    assert csms_step(CsmsProfileState(3), Initiate(2), StationConfig(V201)).refused
    t = csms_step(CsmsProfileState(3), Initiate(2), StationConfig(V201, allow_downgrade=True))
    assert not t.refused
    assert csms_step(CsmsProfileState(3), Initiate(1), StationConfig(V201, allow_downgrade=True)).refused
