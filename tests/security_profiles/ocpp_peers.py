"""Real OCPP peers built with the mobilityhouse ``ocpp`` package (1.6 and 2.0.1), for interop tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ocpp.routing import on
from ocpp.v16 import ChargePoint as Cp16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import RegistrationStatus as Reg16
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
