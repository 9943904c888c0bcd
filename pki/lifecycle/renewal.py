"""Renewal planning: due certificates become actions, run in bounded batches through an executor (sans-I/O).

:func:`plan_renewals` turns due items into actions (trigger a station to send a new CSR, re-issue a CSMS
server certificate, renew a sub-CA, roll a root over; for what has expired already, what still works: a
station without a valid certificate is provisioned by other means, an expired root replaced); :func:`run_renewals` hands them to a
:class:`RenewalExecutor` (for station certificates, :class:`~ocppsec.pki.lifecycle.executor.TriggerRenewalExecutor`)
in batches of at most ``batch_size``, reporting progress after each item through a :class:`ProgressReporter`
and stopping when a batch fails more than ``max_failures``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ocppsec.pki.errors import UsageError
from ocppsec.pki.lifecycle.expiry import ExpiringItem
from ocppsec.pki.profiles import PROFILES

__all__ = ["Action", "PlanItem", "ProgressReporter", "RenewalExecutor", "RenewalOutcome", "RenewalReport",
           "plan_renewals", "run_renewals"]

class Action(enum.Enum):
    TRIGGER_STATION_CSR = "trigger-station-csr"  # TriggerMessage SignChargingStationCertificate (A03)
    TRIGGER_V2G_CSR = "trigger-v2g-csr"  # TriggerMessage SignV2GCertificate / SignV2G20Certificate
    REISSUE_SERVER = "reissue-csms-server"  # the CSMS's own TLS certificate
    REISSUE_SIGNING = "reissue-firmware-signing"
    RENEW_SUB_CA = "renew-sub-ca"
    ROLLOVER_ROOT = "rollover-root"
    RENEW_RESPONDER = "renew-ocsp-responder"
    REVIEW = "review"  # nothing automatic: a person decides (contract, OEM ... certificates we do not renew)
    # expired already: the station cannot open a profile-3 connection to ask for a new one (A03 needs it)
    REPROVISION_STATION = "reprovision-station"
    # expired already: it cannot sign its successor, so stations checking new roots against it refuse any (M05.FR.09)
    REPLACE_ROOT = "replace-expired-root"


_ROLE_ACTIONS: Mapping[str, Action] = {
    "charging-station": Action.TRIGGER_STATION_CSR, "secc": Action.TRIGGER_V2G_CSR,
    "secc-20": Action.TRIGGER_V2G_CSR, "csms-server-rsa": Action.REISSUE_SERVER,
    "csms-server-ecdsa": Action.REISSUE_SERVER, "firmware-signing": Action.REISSUE_SIGNING,
    "ocsp-responder": Action.RENEW_RESPONDER,
}


@dataclass(frozen=True, slots=True)
class PlanItem:
    action: Action
    item: ExpiringItem

    @property
    def station(self) -> str | None:
        return self.item.station

    def to_json(self) -> dict[str, object]:
        return {"action": self.action.value, **self.item.to_json()}


def plan_renewals(items: Iterable[ExpiringItem]) -> list[PlanItem]:
    """One action per due certificate: expired and soonest first; roots and sub-CAs before what they issue."""
    plan: list[PlanItem] = []
    for item in items:
        if not item.due:
            continue
        profile = PROFILES.get(item.role)
        if profile is not None and profile.is_root:
            action = Action.ROLLOVER_ROOT
        elif item.is_ca or (profile is not None and profile.is_ca):
            action = Action.RENEW_SUB_CA
        else:
            action = _ROLE_ACTIONS.get(item.role, Action.REVIEW)
        if action in (Action.TRIGGER_STATION_CSR, Action.TRIGGER_V2G_CSR) and item.station is None:
            action = Action.REVIEW  # a station certificate we cannot attribute to a station
        if item.expired and action is Action.TRIGGER_STATION_CSR:
            action = Action.REPROVISION_STATION
        elif item.expired and action is Action.ROLLOVER_ROOT:
            action = Action.REPLACE_ROOT
        plan.append(PlanItem(action, item))
    order = {Action.REPLACE_ROOT: 0, Action.ROLLOVER_ROOT: 0, Action.RENEW_SUB_CA: 1}
    return sorted(plan, key=lambda p: (order.get(p.action, 2), p.item.not_after))


@dataclass(frozen=True, slots=True)
class RenewalOutcome:
    ok: bool
    detail: str = ""


class RenewalExecutor(Protocol):
    """Carries out one plan item (the certificate service triggers the station, the CA re-issues ...)."""

    def renew(self, item: PlanItem) -> RenewalOutcome: ...


class ProgressReporter(Protocol):
    def __call__(self, done: int, total: int, item: PlanItem, outcome: RenewalOutcome) -> None: ...


@dataclass(frozen=True, slots=True)
class RenewalReport:
    done: tuple[tuple[PlanItem, RenewalOutcome], ...]
    skipped: tuple[PlanItem, ...]
    batches: int
    stopped_early: bool

    @property
    def failed(self) -> tuple[tuple[PlanItem, RenewalOutcome], ...]:
        return tuple(d for d in self.done if not d[1].ok)

    def to_json(self) -> dict[str, object]:
        return {
            "done": len(self.done), "failed": len(self.failed), "skipped": len(self.skipped), "batches": self.batches,
            "stopped_early": self.stopped_early,
            "failures": [{"serial": p.item.serial, "station": p.station, "detail": o.detail} for p, o in self.failed],
        }


def run_renewals(
    plan: Sequence[PlanItem], executor: RenewalExecutor, *, batch_size: int = 50, max_batches: int | None = None,
    max_failures: int | None = None, progress: ProgressReporter | None = None,
    actions: Iterable[Action] | None = None, between_batches: Callable[[int], None] | None = None,
) -> RenewalReport:
    """Run ``plan`` through ``executor`` in batches of at most ``batch_size``.

    ``max_batches`` bounds one run (the rest is ``skipped``, for the next run); after a batch with more
    than ``max_failures`` failures the run stops. ``actions`` restricts which actions run (e.g. only
    station triggers); ``between_batches(n)`` is called after batch ``n`` (an adapter may pause there).
    An exception from the executor counts as a failure of that item.
    """
    if batch_size < 1:
        raise UsageError("batch size must be at least 1")
    allowed = set(actions) if actions is not None else None
    todo = [p for p in plan if allowed is None or p.action in allowed]
    skipped = [p for p in plan if allowed is not None and p.action not in allowed]
    done: list[tuple[PlanItem, RenewalOutcome]] = []
    batches = 0
    stopped = False
    total = len(todo)
    for start in range(0, total, batch_size):
        if max_batches is not None and batches >= max_batches:
            skipped += todo[start:]
            stopped = True
            break
        failures = 0
        for item in todo[start:start + batch_size]:
            try:
                outcome = executor.renew(item)
            except Exception as exc:  # one station's failure must not end the fleet run
                outcome = RenewalOutcome(False, f"{type(exc).__name__}: {exc}")
            failures += not outcome.ok
            done.append((item, outcome))
            if progress is not None:
                progress(len(done), total, item, outcome)
        batches += 1
        if between_batches is not None:
            between_batches(batches)
        if max_failures is not None and failures > max_failures:
            skipped += todo[start + batch_size:]
            stopped = bool(todo[start + batch_size:])
            break
    return RenewalReport(tuple(done), tuple(skipped), batches, stopped)


