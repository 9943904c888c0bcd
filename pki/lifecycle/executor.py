"""Adapter: the renewal executor that sends station triggers on an asyncio loop.

:func:`ocppsec.pki.lifecycle.renewal.run_renewals` walks a renewal plan in bounded batches; for station and SECC
certificates each item becomes a TriggerMessage (1.6: ExtendedTriggerMessage) to the station, after which
the station's SignCertificate comes through the :class:`~ocppsec.pki.certmgmt.service.CertificateService`
like any other. The executor only needs a way to reach a connected station: ``send_trigger(station,
trigger) -> status``, e.g. the ``trigger`` method of the CSMS ChargePoint from
:func:`ocppsec.pki.chargepoint.csms_charge_point_class` for that station.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Coroutine
from typing import Any

from ocppsec.pki.certmgmt.model import Trigger, TriggerStatus
from ocppsec.pki.lifecycle.renewal import Action, PlanItem, RenewalOutcome

__all__ = ["TriggerRenewalExecutor", "trigger_for"]

SendTrigger = Callable[[str, Trigger], Coroutine[Any, Any, TriggerStatus]]


def trigger_for(item: PlanItem) -> Trigger | None:
    """The trigger that renews a plan item's certificate, or None when no station trigger applies."""
    if item.action is Action.TRIGGER_STATION_CSR:
        return Trigger.SIGN_CHARGING_STATION
    if item.action is Action.TRIGGER_V2G_CSR:
        return Trigger.SIGN_V2G20 if item.item.role.endswith("-20") else Trigger.SIGN_V2G
    return None


class TriggerRenewalExecutor:
    """A :class:`~ocppsec.pki.lifecycle.RenewalExecutor` that triggers stations on an asyncio loop.

    ``run_renewals`` is synchronous (it may run in a worker thread); the triggers go out on ``loop``,
    where the stations' WebSocket connections live. Each trigger waits at most ``timeout`` seconds.
    """

    def __init__(self, send_trigger: SendTrigger, loop: asyncio.AbstractEventLoop, timeout: float = 30.0) -> None:
        self._send = send_trigger
        self._loop = loop
        self._timeout = timeout

    def renew(self, item: PlanItem) -> RenewalOutcome:
        trigger = trigger_for(item)
        if trigger is None:
            return RenewalOutcome(False, f"{item.action.value}: not renewed by a station trigger")
        if item.station is None:
            return RenewalOutcome(False, f"serial {item.item.serial}: no station is known for this certificate")
        future: concurrent.futures.Future[TriggerStatus] = asyncio.run_coroutine_threadsafe(
            self._send(item.station, trigger), self._loop)
        try:
            status = future.result(self._timeout)
        except TimeoutError:
            future.cancel()
            return RenewalOutcome(False, f"{item.station}: no answer to the trigger within {self._timeout:g} s")
        except Exception as exc:  # the station is offline, the call errored: report, keep going
            return RenewalOutcome(False, f"{item.station}: trigger failed ({exc})")
        return RenewalOutcome(status is TriggerStatus.ACCEPTED, f"{item.station}: trigger {trigger.value} {status.value}")
