"""Run a mobilityhouse ``ocpp`` ChargePoint, unchanged, on our connections.

The ``ocpp`` package needs only ``await connection.recv()`` and ``await connection.send(text)``;
:class:`~.server.StationConnection` (CSMS side) and websockets' ``ClientConnection`` (station side,
from :func:`~.client.connect`) both provide them. This module picks the ChargePoint class for the
negotiated OCPP version and names it with the authenticated identity (never the raw URL), and starts
it. No ``ocpp`` import happens here, so the package stays optional.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from ocppsec.pki.errors import UsageError
from ocppsec.pki.versions import OcppVersion
from ocppsec.security_profiles.server import StationConnection

__all__ = ["MessageConnection", "charge_point_for", "csms_handler", "station_charge_point"]


class MessageConnection(Protocol):
    async def recv(self) -> Any: ...

    async def send(self, message: Any) -> None: ...


ChargePointFactory = Callable[[str, MessageConnection], Any]


def charge_point_for(connection: StationConnection, classes: Mapping[OcppVersion, ChargePointFactory]) -> Any:
    """A CSMS-side ChargePoint object for the station's negotiated version, named by its identity."""
    try:
        factory = classes[connection.version]
    except KeyError:
        raise UsageError(f"no ChargePoint class for OCPP {connection.version.value}",
                         hint="serve only the versions you have handlers for") from None
    return factory(connection.identity, connection)


def csms_handler(
    classes: Mapping[OcppVersion, ChargePointFactory],
    on_start: Callable[[Any, StationConnection], Awaitable[None]] | None = None,
) -> Callable[[StationConnection], Awaitable[None]]:
    """A :func:`~.server.serve` handler that runs the ChargePoint class of each station's version."""

    async def handler(connection: StationConnection) -> None:
        cp = charge_point_for(connection, classes)
        if on_start is not None:
            await on_start(cp, connection)
        await cp.start()

    return handler


def station_charge_point(identity: str, connection: MessageConnection, factory: ChargePointFactory) -> Any:
    """A station-side ChargePoint over a connection from :func:`~.client.connect`."""
    return factory(identity, connection)
