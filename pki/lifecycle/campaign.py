"""Fleet campaigns (renewal, root rollover, root retirement) as a pure per-station state machine.

A :class:`Campaign` is a kind, its options and a status; each station it covers has a
:class:`StationProgress` row. What happens to a row is a table (:data:`TRANSITIONS`): a state and a
:class:`Signal` give the next state; a signal the table does not list for that state changes nothing
(:func:`apply` returns the row unchanged, so a late or duplicated answer is harmless).

Renewal (A02/A03)::

    pending -> triggered -> csr-received -> signed -> awaiting-reconnect -> done
                                                     (V2G certificates: signed -> done)

the trigger is TriggerMessage SignChargingStationCertificate / SignV2GCertificate / 2.1
SignV2G20Certificate (1.6: ExtendedTriggerMessage); the CSR and CertificateSigned go through the
CSR-signing path; a charging-station certificate is done only when the station reconnects presenting
the new certificate, and failed when it reports DiscardedRenewedClientCertificate (A02.FR.28-29).

Rollover (M05, AdditionalRootCertificateCheck): ``pending -> installing -> confirming -> done``
(InstallCertificate, then GetInstalledCertificateIds must list the new root). Retirement (M04):
``pending -> deleting -> done`` (DeleteCertificate of the old root).

Time is an argument everywhere. :func:`next_commands` gives what to send now: at most
``options.max_in_flight`` stations between a call and its answer, only connected stations, none before
its ``next_at``. ``next_at`` carries the retry delay after a timeout and the station's own signing
back-off (A02/A03.FR.17-19, :class:`~ocppsec.pki.certmgmt.schedule.RetrySchedule`): while the station
itself will still resend its SignCertificate, it is not triggered again. Timeouts and refusals are retried
at most ``options.max_attempts`` times; then the row is ``failed`` with the reason.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from ocppsec.pki.certmgmt.model import CertificateUse, RootType
from ocppsec.pki.certmgmt.schedule import RetrySchedule
from ocppsec.pki.errors import InputError, UsageError

__all__ = [
    "IN_FLIGHT",
    "TERMINAL",
    "TRANSITIONS",
    "Campaign",
    "CampaignKind",
    "CampaignOptions",
    "CampaignStatus",
    "Command",
    "CommandAction",
    "Progress",
    "RowState",
    "Signal",
    "StationProgress",
    "apply",
    "expire",
    "new_campaign",
    "next_commands",
    "progress",
    "resume_rows",
    "skip",
]


class CampaignKind(enum.StrEnum):
    RENEW = "renew"  # trigger, CSR, CertificateSigned, reconnect with the new certificate
    ROLLOVER = "rollover"  # InstallCertificate of a new root, confirmed with GetInstalledCertificateIds
    RETIRE = "retire"  # DeleteCertificate of the old root once every station holds the new one


class CampaignStatus(enum.StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"  # by the operator; resume continues where it stopped
    DONE = "done"  # every row is done, failed or skipped


class RowState(enum.StrEnum):
    PENDING = "pending"
    TRIGGERED = "triggered"
    CSR_RECEIVED = "csr-received"
    SIGNED = "signed"
    AWAITING_RECONNECT = "awaiting-reconnect"
    INSTALLING = "installing"
    CONFIRMING = "confirming"
    DELETING = "deleting"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


TERMINAL = frozenset({RowState.DONE, RowState.FAILED, RowState.SKIPPED})
IN_FLIGHT = frozenset({RowState.TRIGGERED, RowState.CSR_RECEIVED, RowState.SIGNED, RowState.INSTALLING,
                       RowState.CONFIRMING, RowState.DELETING})
"""States that count against ``max_in_flight`` (a call is out, or its follow-up is on its way)."""


class Signal(enum.StrEnum):
    """What happened to a station (an answer, a frame, a timeout)."""

    SENT = "sent"  # the gateway sent the row's call
    TRIGGER_ACCEPTED = "trigger-accepted"
    TRIGGER_REFUSED = "trigger-refused"  # Rejected / CALLERROR (retried: the station may be busy)
    TRIGGER_UNSUPPORTED = "trigger-unsupported"  # NotImplemented: not retried
    CSR = "csr"  # the station's SignCertificate was accepted (CertificateSigned follows)
    CSR_REJECTED = "csr-rejected"  # the CSR failed the policy
    CERT_SENT = "cert-sent"
    CERT_ACCEPTED = "cert-accepted"  # CertificateSignedResponse Accepted
    CERT_REFUSED = "cert-refused"
    RECONNECTED_NEW = "reconnected-new"  # the station connected presenting the new certificate
    DISCARDED = "discarded"  # DiscardedRenewedClientCertificate (A02.FR.28-29)
    INSTALL_ACCEPTED = "install-accepted"
    INSTALL_REFUSED = "install-refused"  # Rejected / Failed / CALLERROR: reported, not retried
    CONFIRMED = "confirmed"  # GetInstalledCertificateIds lists the new root
    NOT_CONFIRMED = "not-confirmed"
    DELETE_ACCEPTED = "delete-accepted"
    DELETE_REFUSED = "delete-refused"
    TIMEOUT = "timeout"  # no answer in time, or the station went away in between


S, G = RowState, Signal
TRANSITIONS: Mapping[tuple[RowState, Signal], RowState] = {
    # renewal
    (S.PENDING, G.SENT): S.TRIGGERED,
    (S.TRIGGERED, G.TRIGGER_ACCEPTED): S.TRIGGERED,
    (S.TRIGGERED, G.TRIGGER_REFUSED): S.FAILED,
    (S.TRIGGERED, G.TRIGGER_UNSUPPORTED): S.FAILED,
    (S.PENDING, G.CSR): S.CSR_RECEIVED,  # the station's own resend (its back-off) counts too
    (S.TRIGGERED, G.CSR): S.CSR_RECEIVED,
    (S.CSR_RECEIVED, G.CSR): S.CSR_RECEIVED,
    (S.SIGNED, G.CSR): S.CSR_RECEIVED,
    (S.TRIGGERED, G.CSR_REJECTED): S.FAILED,
    (S.CSR_RECEIVED, G.CSR_REJECTED): S.FAILED,
    (S.CSR_RECEIVED, G.CERT_SENT): S.SIGNED,
    (S.SIGNED, G.CERT_ACCEPTED): S.AWAITING_RECONNECT,
    (S.SIGNED, G.CERT_REFUSED): S.FAILED,
    (S.AWAITING_RECONNECT, G.RECONNECTED_NEW): S.DONE,
    (S.SIGNED, G.RECONNECTED_NEW): S.DONE,  # back with the new certificate before its answer was counted
    (S.PENDING, G.RECONNECTED_NEW): S.DONE,  # ... or after a retry was planned: presenting it is the proof
    (S.TRIGGERED, G.RECONNECTED_NEW): S.DONE,
    (S.AWAITING_RECONNECT, G.DISCARDED): S.FAILED,
    (S.SIGNED, G.DISCARDED): S.FAILED,
    # rollover
    (S.INSTALLING, G.INSTALL_ACCEPTED): S.CONFIRMING,
    (S.INSTALLING, G.INSTALL_REFUSED): S.FAILED,
    (S.CONFIRMING, G.CONFIRMED): S.DONE,
    (S.CONFIRMING, G.NOT_CONFIRMED): S.FAILED,
    # retirement
    (S.DELETING, G.DELETE_ACCEPTED): S.DONE,
    (S.DELETING, G.DELETE_REFUSED): S.FAILED,
}
"""(state, signal) -> next state. SENT's target depends on the kind (see :func:`apply`); TIMEOUT is
handled by :func:`apply` (back to pending for a retry, or failed once the attempts are used)."""
del S, G

_SENT_STATE = {CampaignKind.RENEW: RowState.TRIGGERED, CampaignKind.ROLLOVER: RowState.INSTALLING,
               CampaignKind.RETIRE: RowState.DELETING}
_RETRIED = frozenset({Signal.TIMEOUT, Signal.TRIGGER_REFUSED, Signal.NOT_CONFIRMED, Signal.CERT_REFUSED})
"""Signals retried while attempts remain (a refused trigger may be a busy station); the rest fail at once."""


class CommandAction(enum.StrEnum):
    TRIGGER = "trigger"  # TriggerMessage / ExtendedTriggerMessage
    INSTALL = "install"  # InstallCertificate
    CONFIRM = "confirm"  # GetInstalledCertificateIds
    DELETE = "delete"  # DeleteCertificate


@dataclass(frozen=True, slots=True)
class CampaignOptions:
    """What a campaign does and how fast. Unknown keys in :meth:`from_json` are refused."""

    max_in_flight: int = 50
    timeout: float = 60.0  # seconds a station has to answer a call / to send its CSR / to reconnect
    reconnect_timeout: float = 300.0
    max_attempts: int = 3
    retry_delay: float = 30.0
    use: CertificateUse = CertificateUse.CHARGING_STATION  # renewal: which certificate
    within_days: float = 30.0  # renewal: certificates expiring within this many days (A03.FR.02: one month)
    force: bool = False  # renewal: every listed or known station, whatever its expiry
    stations: tuple[str, ...] = ()  # only these stations (empty: every station the selection finds)
    root_type: RootType = RootType.CSMS  # rollover / retirement
    station_wait_minimum: int = 0  # the stations' CertSigningWaitMinimum (s) the campaign respects
    station_repeat_times: int = 0  # the stations' CertSigningRepeatTimes
    dry_run: bool = False

    def __post_init__(self) -> None:
        if self.max_in_flight < 1:
            raise UsageError("max_in_flight must be at least 1")
        if self.max_attempts < 1:
            raise UsageError("max_attempts must be at least 1")
        if self.timeout <= 0 or self.reconnect_timeout <= 0 or self.retry_delay < 0:
            raise UsageError("timeouts must be positive and the retry delay not negative")
        if self.station_wait_minimum < 0 or self.station_repeat_times < 0:
            raise UsageError("CertSigningWaitMinimum and CertSigningRepeatTimes must not be negative")

    def to_json(self) -> dict[str, Any]:
        return {"max_in_flight": self.max_in_flight, "timeout": self.timeout, "reconnect_timeout": self.reconnect_timeout,
                "max_attempts": self.max_attempts, "retry_delay": self.retry_delay, "use": self.use.value,
                "within_days": self.within_days, "force": self.force, "stations": list(self.stations),
                "root_type": self.root_type.value, "station_wait_minimum": self.station_wait_minimum,
                "station_repeat_times": self.station_repeat_times, "dry_run": self.dry_run}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CampaignOptions:
        """From JSON (the admin API, the store); every error is an :class:`InputError` naming the key."""
        if not isinstance(data, Mapping):
            raise InputError("campaign options must be a JSON object")
        known = set(cls().to_json())
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"unknown campaign option(s): {', '.join(unknown)}", hint=f"known: {', '.join(sorted(known))}")
        kwargs: dict[str, Any] = {}
        try:
            for key, value in data.items():
                if key == "use":
                    kwargs[key] = CertificateUse(value)
                elif key == "root_type":
                    kwargs[key] = RootType(value)
                elif key == "stations":
                    if not isinstance(value, list | tuple) or not all(isinstance(s, str) for s in value):
                        raise InputError("stations must be a list of identities")
                    kwargs[key] = tuple(value)
                elif key in ("force", "dry_run"):
                    if not isinstance(value, bool):
                        raise InputError(f"{key} must be true or false")
                    kwargs[key] = value
                elif key in ("max_in_flight", "max_attempts", "station_wait_minimum", "station_repeat_times"):
                    if isinstance(value, bool) or not isinstance(value, int):
                        raise InputError(f"{key} must be an integer")
                    kwargs[key] = value
                else:
                    if isinstance(value, bool) or not isinstance(value, int | float):
                        raise InputError(f"{key} must be a number")
                    kwargs[key] = float(value)
            return cls(**kwargs)
        except ValueError as exc:
            raise InputError(f"bad campaign option: {exc}") from None
        except UsageError as exc:
            raise InputError(exc.message) from None


@dataclass(frozen=True, slots=True)
class Campaign:
    id: str
    kind: CampaignKind
    options: CampaignOptions
    status: CampaignStatus
    created_at: datetime
    updated_at: datetime
    detail: Mapping[str, Any] = field(default_factory=dict)  # what the driver keeps (e.g. the new root's PEM)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind.value, "status": self.status.value, "options": self.options.to_json(),
                "created_at": self.created_at.isoformat(), "updated_at": self.updated_at.isoformat()}


def new_campaign(kind: CampaignKind, options: CampaignOptions, *, at: datetime,
                 detail: Mapping[str, Any] | None = None) -> Campaign:
    """A running campaign with a fresh id (``renew-20261123-1200-3f2a``)."""
    cid = f"{kind.value}-{at:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
    return Campaign(cid, kind, options, CampaignStatus.RUNNING, at, at, dict(detail or {}))


@dataclass(frozen=True, slots=True)
class StationProgress:
    """One station in one campaign."""

    station_id: str
    state: RowState = RowState.PENDING
    attempts: int = 0  # calls sent so far
    updated_at: datetime | None = None
    next_at: datetime | None = None  # not before (retry delay, the station's own back-off)
    deadline: datetime | None = None  # the answer or follow-up is due by then
    reason: str | None = None  # why failed / skipped, or the last refusal
    expected: str | None = None  # renewal: SHA-256 fingerprint of the certificate sent
    csr_at: datetime | None = None  # renewal: when the station's last SignCertificate was accepted

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def to_json(self) -> dict[str, Any]:
        def ts(d: datetime | None) -> str | None:
            return d.isoformat() if d else None

        return {"station": self.station_id, "state": self.state.value, "attempts": self.attempts,
                "updated_at": ts(self.updated_at), "next_at": ts(self.next_at), "deadline": ts(self.deadline),
                "reason": self.reason, "expected": self.expected}


def _station_backoff_end(row: StationProgress, options: CampaignOptions) -> datetime | None:
    """When the station's own SignCertificate resends (A02/A03.FR.17-19) are over, after its last CSR."""
    if row.csr_at is None:
        return None
    times = RetrySchedule.start(row.csr_at, options.station_wait_minimum, options.station_repeat_times).resend_times()
    return times[-1] if times else None


def apply(row: StationProgress, signal: Signal, *, kind: CampaignKind, options: CampaignOptions, at: datetime,
          reason: str | None = None, expected: str | None = None) -> StationProgress:
    """The row after ``signal`` at ``at`` (unchanged when the table has no such transition)."""
    if row.terminal:
        return row
    if signal is Signal.SENT:
        if row.state is not RowState.PENDING:
            return row
        return replace(row, state=_SENT_STATE[kind], attempts=row.attempts + 1, updated_at=at, next_at=None,
                       deadline=at + timedelta(seconds=options.timeout))
    if signal is Signal.TIMEOUT and row.state not in IN_FLIGHT | {RowState.AWAITING_RECONNECT}:
        return row
    target = TRANSITIONS.get((row.state, signal))
    if target is None and signal is not Signal.TIMEOUT:
        return row
    if signal in _RETRIED:
        if row.attempts < options.max_attempts:
            wait = at + timedelta(seconds=options.retry_delay)
            backoff = _station_backoff_end(row, options)
            return replace(row, state=RowState.PENDING, updated_at=at, deadline=None, reason=reason or signal.value,
                           next_at=max(wait, backoff) if backoff else wait)
        target = RowState.FAILED
        reason = f"{reason or signal.value} (after {row.attempts} attempt{'s' if row.attempts != 1 else ''})"
    assert target is not None
    deadline: datetime | None = None
    if target is RowState.AWAITING_RECONNECT:
        deadline = at + timedelta(seconds=options.reconnect_timeout)
    elif target in IN_FLIGHT:
        deadline = at + timedelta(seconds=options.timeout)
    if target is RowState.AWAITING_RECONNECT and options.use not in (CertificateUse.CHARGING_STATION,
                                                                     CertificateUse.COMBINED):
        target, deadline = RowState.DONE, None  # a V2G certificate needs no reconnect
    return replace(row, state=target, updated_at=at, deadline=deadline,
                   reason=reason if target is RowState.FAILED or reason else row.reason,
                   expected=expected or row.expected, csr_at=at if signal is Signal.CSR else row.csr_at)


def skip(row: StationProgress, reason: str, *, at: datetime) -> StationProgress:
    """The row marked ``skipped`` (nothing to do for this station: no such trigger in its version, ...)."""
    if row.terminal:
        return row
    return replace(row, state=RowState.SKIPPED, updated_at=at, deadline=None, next_at=None, reason=reason)


def expire(rows: Iterable[StationProgress], *, at: datetime) -> list[str]:
    """Stations whose answer or follow-up is overdue at ``at`` (feed them :attr:`Signal.TIMEOUT`)."""
    return [r.station_id for r in rows
            if r.deadline is not None and at >= r.deadline and (r.state in IN_FLIGHT or r.state is RowState.AWAITING_RECONNECT)]


@dataclass(frozen=True, slots=True)
class Command:
    station_id: str
    action: CommandAction


_ACTIONS = {CampaignKind.RENEW: CommandAction.TRIGGER, CampaignKind.ROLLOVER: CommandAction.INSTALL,
            CampaignKind.RETIRE: CommandAction.DELETE}


def next_commands(kind: CampaignKind, rows: Iterable[StationProgress], options: CampaignOptions, *,
                  connected: Iterable[str] | set[str], at: datetime) -> list[Command]:
    """The calls to send now: pending, connected, due rows, while fewer than ``max_in_flight`` are out."""
    online = connected if isinstance(connected, set | frozenset) else set(connected)
    todo: list[StationProgress] = []
    in_flight = 0
    for row in rows:
        if row.state in IN_FLIGHT:
            in_flight += 1
        elif row.state is RowState.PENDING and row.station_id in online and (row.next_at is None or at >= row.next_at):
            todo.append(row)
    room = max(0, options.max_in_flight - in_flight)
    return [Command(r.station_id, _ACTIONS[kind]) for r in todo[:room]]


def resume_rows(rows: Iterable[StationProgress], *, at: datetime,
                options: CampaignOptions | None = None) -> list[StationProgress]:
    """Rows as a restarted gateway takes them up: a call whose answer died with the old process is pending
    again (its attempt counted); a station awaiting its reconnect keeps waiting for the certificate it got,
    and so does one whose CertificateSigned went out but whose answer was lost (``signed``): it may have
    stored the certificate, and presenting it is what counts (``options.reconnect_timeout`` from ``at``)."""
    reconnect = timedelta(seconds=(options or CampaignOptions()).reconnect_timeout)
    out = []
    for r in rows:
        if r.state is RowState.SIGNED and r.expected is not None:
            out.append(replace(r, state=RowState.AWAITING_RECONNECT, deadline=at + reconnect, updated_at=at,
                               reason="interrupted by a gateway restart after CertificateSigned"))
        elif r.state in IN_FLIGHT:
            out.append(replace(r, state=RowState.PENDING, deadline=None, updated_at=at,
                               reason="interrupted by a gateway restart"))
        else:
            out.append(r)
    return out


@dataclass(frozen=True, slots=True)
class Progress:
    total: int
    per_state: Mapping[RowState, int]

    @property
    def finished(self) -> int:
        return sum(n for s, n in self.per_state.items() if s in TERMINAL)

    @property
    def done(self) -> int:
        return self.per_state.get(RowState.DONE, 0)

    @property
    def failed(self) -> int:
        return self.per_state.get(RowState.FAILED, 0)

    @property
    def complete(self) -> bool:
        return self.finished == self.total

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "finished": self.finished, "done": self.done, "failed": self.failed,
                "states": {s.value: n for s, n in sorted(self.per_state.items()) if n}}


def progress(rows: Sequence[StationProgress] | Iterable[StationProgress]) -> Progress:
    counts: dict[RowState, int] = {}
    total = 0
    for r in rows:
        counts[r.state] = counts.get(r.state, 0) + 1
        total += 1
    return Progress(total, counts)
