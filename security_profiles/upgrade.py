"""Changing the security profile (A05) as pure, table-driven state machines for both sides.

Station side (:func:`station_step`): a request for a new profile is checked against
:data:`REQUEST_RULES` in order (the first rule that matches rejects it, with its requirement ID);
otherwise it is accepted and the station reconnects with the new profile. A successful connection
makes the new profile the only one (A05.FR.06, 1.6 A05.FR.09); a failed one falls back to the
previous profile (1.6 A05.FR.08). Lowering: never in 1.6 (A05.FR.01); in 2.0.1 with the 2025 errata
and in 2.1 only 3 -> 2 and only with AllowSecurityProfileDowngrade (A05.FR.08-10, B09.FR.31-32);
never to 1.

CSMS side (:func:`csms_step`): the CSMS starts a change (same rules), the station answers, and the
CSMS accepts a connection only with the registered profile or the pending one; a connection with the
pending one makes it the registered profile, and the lower one is refused from then on (A05.FR.07).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum

from ocppsec.pki.versions import OcppVersion

__all__ = [
    "REQUEST_RULES",
    "ConnectFailed",
    "Connected",
    "CsmsProfileState",
    "Initiate",
    "Phase",
    "Request",
    "StationAnswered",
    "StationConfig",
    "StationProfileState",
    "Transition",
    "csms_step",
    "evaluate_request",
    "station_step",
]


@dataclass(frozen=True, slots=True)
class StationConfig:
    """What the station has installed, and its downgrade switch (SecurityCtrlr.AllowSecurityProfileDowngrade)."""

    version: OcppVersion
    has_basic_password: bool = True
    has_csms_root: bool = True
    has_station_certificate: bool = True
    allow_downgrade: bool = False


class Phase(Enum):
    ACTIVE = "active"
    SWITCHING = "switching"  # change accepted, reconnecting with the new profile


@dataclass(frozen=True, slots=True)
class StationProfileState:
    active: int
    phase: Phase = Phase.ACTIVE
    target: int | None = None


@dataclass(frozen=True, slots=True)
class CsmsProfileState:
    registered: int
    pending: int | None = None
    awaiting_answer: bool = False

    @property
    def accepted_profiles(self) -> frozenset[int]:
        return frozenset({self.registered} | ({self.pending} if self.pending and not self.awaiting_answer else set()))


# events
@dataclass(frozen=True, slots=True)
class Request:
    profile: int


@dataclass(frozen=True, slots=True)
class Connected:
    profile: int


@dataclass(frozen=True, slots=True)
class ConnectFailed:
    pass


@dataclass(frozen=True, slots=True)
class Initiate:
    profile: int


@dataclass(frozen=True, slots=True)
class StationAnswered:
    accepted: bool


@dataclass(frozen=True, slots=True)
class Transition:
    """The new state, the answer to send (``Accepted``/``Rejected``; ``None`` when nothing is answered)
    and the requirement that decided it."""

    state: StationProfileState | CsmsProfileState
    response: str | None
    requirement: str | None
    refused: bool = False


Rule = tuple[Callable[[int, int, StationConfig], bool], str, str]


def _v16(c: StationConfig) -> bool:
    return c.version is OcppVersion.V16


# (predicate(current, new, config), requirement for 1.6, requirement for 2.0.1 / 2.1); first match rejects.
REQUEST_RULES: tuple[Rule, ...] = (
    (lambda cur, new, c: new not in (1, 2, 3), "A05.FR.01", "B09.FR.04"),
    (lambda cur, new, c: _v16(c) and new <= cur, "A05.FR.01", "A05.FR.01"),
    (lambda cur, new, c: new < cur and new == 1, "A00.FR.005", "A05.FR.09"),
    (lambda cur, new, c: new < cur and not (c.allow_downgrade and cur == 3 and new == 2), "A00.FR.005", "A05.FR.10"),
    (lambda cur, new, c: new in (1, 2) and not c.has_basic_password, "A05.FR.02", "A00.FR.205"),
    (lambda cur, new, c: new in (2, 3) and not c.has_csms_root, "A05.FR.03", "A05.FR.02"),
    (lambda cur, new, c: new == 3 and not c.has_station_certificate, "A05.FR.04", "A05.FR.03"),
)


def evaluate_request(current: int, new: int, config: StationConfig) -> tuple[str, str]:
    """(``Accepted`` or ``Rejected``, requirement ID) for a request to go from ``current`` to ``new``."""
    for predicate, req16, req2x in REQUEST_RULES:
        if predicate(current, new, config):
            return "Rejected", req16 if _v16(config) else req2x
    if new < current:
        return "Accepted", "A05.FR.08"
    return "Accepted", "A05.FR.05" if _v16(config) else "A05.FR.06"


def _st_request(s: StationProfileState, e: object, c: StationConfig) -> Transition:
    assert isinstance(e, Request)
    answer, req = evaluate_request(s.active, e.profile, c)
    if answer == "Rejected":
        return Transition(s, answer, req)
    return Transition(StationProfileState(s.active, Phase.SWITCHING, e.profile), answer, req)


def _st_busy(s: StationProfileState, e: object, c: StationConfig) -> Transition:
    return Transition(s, "Rejected", "A05 (a change is in progress)")


def _st_connected(s: StationProfileState, e: object, c: StationConfig) -> Transition:
    assert isinstance(e, Connected)
    if e.profile == s.target:
        return Transition(StationProfileState(e.profile), None, "A05.FR.09" if _v16(c) else "A05.FR.06")
    return Transition(StationProfileState(s.active), None, None)


def _st_failed(s: StationProfileState, e: object, c: StationConfig) -> Transition:
    return Transition(StationProfileState(s.active), None, "A05.FR.08" if _v16(c) else "B10")


def _st_noop(s: StationProfileState, e: object, c: StationConfig) -> Transition:
    return Transition(s, None, None)


_STATION_TABLE: dict[tuple[Phase, type], Callable[[StationProfileState, object, StationConfig], Transition]] = {
    (Phase.ACTIVE, Request): _st_request,
    (Phase.ACTIVE, Connected): _st_noop,
    (Phase.ACTIVE, ConnectFailed): _st_noop,
    (Phase.SWITCHING, Request): _st_busy,
    (Phase.SWITCHING, Connected): _st_connected,
    (Phase.SWITCHING, ConnectFailed): _st_failed,
}


def station_step(state: StationProfileState, event: Request | Connected | ConnectFailed, config: StationConfig) -> Transition:
    """One station-side transition (see the module docstring)."""
    return _STATION_TABLE[(state.phase, type(event))](state, event, config)


def _cs_initiate(s: CsmsProfileState, e: object, c: StationConfig) -> Transition:
    assert isinstance(e, Initiate)
    answer, req = evaluate_request(s.registered, e.profile, c)
    if answer == "Rejected":
        return Transition(s, None, req, refused=True)
    return Transition(CsmsProfileState(s.registered, e.profile, True), None, req)


def _cs_answer(s: CsmsProfileState, e: object, c: StationConfig) -> Transition:
    assert isinstance(e, StationAnswered)
    if not s.awaiting_answer:
        return Transition(s, None, None)
    if e.accepted:
        return Transition(replace(s, awaiting_answer=False), None, "A05.FR.05" if _v16(c) else "A05.FR.06")
    return Transition(CsmsProfileState(s.registered), None, "A05.FR.02")


def _cs_connected(s: CsmsProfileState, e: object, c: StationConfig) -> Transition:
    assert isinstance(e, Connected)
    if e.profile not in s.accepted_profiles:
        return Transition(s, None, "A00.FR.002" if e.profile > s.registered else ("A05.FR.09" if _v16(c) else "A05.FR.07"),
                          refused=True)
    if e.profile == s.pending:
        return Transition(CsmsProfileState(e.profile), None, "A05.FR.09" if _v16(c) else "A05.FR.07")
    return Transition(s, None, None)


def csms_step(state: CsmsProfileState, event: Initiate | StationAnswered | Connected, config: StationConfig) -> Transition:
    """One CSMS-side transition. ``config`` describes the station (version, downgrade switch, what it has)."""
    table: dict[type, Callable[[CsmsProfileState, object, StationConfig], Transition]] = {
        Initiate: _cs_initiate, StationAnswered: _cs_answer, Connected: _cs_connected,
    }
    return table[type(event)](state, event, config)
