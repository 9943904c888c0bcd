"""Real OCPP peers built with the mobilityhouse ``ocpp`` package (1.6, 2.0.1 and 2.1), for interop tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ocpp.routing import on
from ocpp.v16 import ChargePoint as Cp16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import RegistrationStatus as Reg16
from ocpp.v21 import ChargePoint as Cp21
from ocpp.v21 import call_result as result21
from ocpp.v201 import ChargePoint as Cp201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import RegistrationStatusEnumType as Reg201

SEEN: list[tuple[str, str, str]] = []  # (csms-side id, action, detail)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class Csms16(Cp16):
    @on("BootNotification")
    async def on_boot(self, charge_point_vendor: str, charge_point_model: str, **_: Any) -> Any:
        SEEN.append((self.id, "BootNotification", charge_point_model))
        return result16.BootNotification(current_time=_now(), interval=30, status=Reg16.accepted)

    @on("Heartbeat")
    async def on_heartbeat(self) -> Any:
        SEEN.append((self.id, "Heartbeat", ""))
        return result16.Heartbeat(current_time=_now())

    @on("SecurityEventNotification")
    async def on_event(self, type: str, timestamp: str, **_: Any) -> Any:
        SEEN.append((self.id, "SecurityEventNotification", type))
        return result16.SecurityEventNotification()


class Csms201(Cp201):
    @on("BootNotification")
    async def on_boot(self, charging_station: dict[str, Any], reason: str, **_: Any) -> Any:
        SEEN.append((self.id, "BootNotification", charging_station["model"]))
        return result201.BootNotification(current_time=_now(), interval=30, status=Reg201.accepted)

    @on("Heartbeat")
    async def on_heartbeat(self) -> Any:
        SEEN.append((self.id, "Heartbeat", ""))
        return result201.Heartbeat(current_time=_now())

    @on("SecurityEventNotification")
    async def on_event(self, type: str, timestamp: str, **_: Any) -> Any:
        SEEN.append((self.id, "SecurityEventNotification", type))
        return result201.SecurityEventNotification()


class Station16(Cp16):
    async def run_session(self) -> list[Any]:
        boot = await self.call(call16.BootNotification(charge_point_model="Model-16", charge_point_vendor="Vendor"))
        beat = await self.call(call16.Heartbeat())
        ev = await self.call(call16.SecurityEventNotification(type="TamperDetectionActivated", timestamp=_now(),
                                                              tech_info="lid opened"))
        return [boot, beat, ev]


class Station201(Cp201):
    async def run_session(self) -> list[Any]:
        boot = await self.call(call201.BootNotification(charging_station={"model": "Model-201", "vendor_name": "Vendor"},
                                                        reason="PowerUp"))
        beat = await self.call(call201.Heartbeat())
        ev = await self.call(call201.SecurityEventNotification(type="TamperDetectionActivated", timestamp=_now(),
                                                               tech_info="lid opened"))
        return [boot, beat, ev]


class _AnswersChanges:
    """Station side of the configuration changes a CSMS makes over OCPP: every change is answered with
    ``answer`` (``Accepted`` / ``Rejected``); what was accepted is kept in ``stored``, in order."""

    answer = "Accepted"
    results: Any = None  # the version's call_result module

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stored: list[tuple[str, Any]] = []

    def _keep(self, what: str, value: Any) -> None:
        if self.answer == "Accepted":
            self.stored.append((what, value))


class _Answers2x(_AnswersChanges):
    @on("SetVariables")
    async def on_set_variables(self, set_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        results = []
        for item in set_variable_data:
            self._keep(f"{item['component']['name']}.{item['variable']['name']}", item["attribute_value"])
            results.append({"attribute_status": self.answer, "component": item["component"], "variable": item["variable"]})
        return self.results.SetVariables(set_variable_result=results)

    @on("SetNetworkProfile")
    async def on_set_network_profile(self, configuration_slot: int, connection_data: dict[str, Any], **_: Any) -> Any:
        self._keep(f"slot {configuration_slot}", connection_data)
        return self.results.SetNetworkProfile(status=self.answer)

    @on("Reset")
    async def on_reset(self, type: str, **_: Any) -> Any:
        self._keep("Reset", type)
        return self.results.Reset(status=self.answer)


class ChangingStation16(_AnswersChanges, Cp16):
    results = result16

    @on("ChangeConfiguration")
    async def on_change_configuration(self, key: str, value: str) -> Any:
        self._keep(key, value)
        return result16.ChangeConfiguration(status=self.answer)


class ChangingStation201(_Answers2x, Cp201):
    results = result201


class ChangingStation21(_Answers2x, Cp21):
    results = result21


class Csms21(Cp21):
    """A 2.1 CSMS that only calls (the tests drive it)."""
