"""OCPP 2.1 adapter: payloads <-> the event model, and ChargePoint classes.

2.1 differences, all declared here: 2.1 event names and critical flags (DiscardedRenewedClientCertificate,
MaintenanceLoginAccepted/Failed); LogStatusNotification can say AcceptedCanceled; CallError
FormatViolation; a remoteLocation ending in "/" gets the file name appended (N01.FR.21) and uploads
above 1 MiB use Expect: 100-continue (N01.FR.22, done by the upload client for every version).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from ocpp.exceptions import FormatViolationError
from ocpp.v21 import ChargePoint as _ChargePoint
from ocpp.v21 import call, call_result

from ocppsec.eventlog._ocpp import Codec, CsmsSecurityEvents, StationSecurityEvents, make_codec
from ocppsec.eventlog.getlog import GetLogPolicy, LogStatus
from ocppsec.eventlog.sink import EventSink
from ocppsec.eventlog.station import StationSecurityLog
from ocppsec.pki.versions import OcppVersion

__all__ = ["CODEC", "VERSION", "CsmsChargePoint", "StationChargePoint"]

VERSION = OcppVersion.V21

CODEC: Codec = make_codec(
    VERSION,
    call=call,
    call_result=call_result,
    log_statuses=frozenset(LogStatus),
    format_error=lambda message: FormatViolationError(description=message),
    policy=GetLogPolicy(append_filename_to_directory_url=True),
)


class CsmsChargePoint(CsmsSecurityEvents, _ChargePoint):  # type: ignore[misc]
    """A 2.1 station as the CSMS sees it; events go to ``sink``."""

    codec = CODEC

    def __init__(
        self, id: str, connection: Any, *, sink: EventSink, clock: Callable[[], datetime] | None = None, **kw: Any
    ) -> None:
        super().__init__(id, connection, **kw)
        self.setup_security_events(sink, **({"clock": clock} if clock else {}))


class StationChargePoint(StationSecurityEvents, _ChargePoint):  # type: ignore[misc]
    """The station side (simulators, tests, embedded use) with its security log."""

    codec = CODEC

    def __init__(self, id: str, connection: Any, *, station_log: StationSecurityLog, **options: Any) -> None:
        super().__init__(id, connection)
        self.setup_station(station_log, **options)
