"""OCPP 1.6 adapter: payloads <-> the event model, and ChargePoint classes.

1.6 differences, all declared here: event names use the 1.6 spelling (InvalidCentralSystemCertificate,
InvalidChargePointCertificate, FailedToAuthenticateAtCentralSystem, CentralSystemFailedToAuthenticate)
and the 1.6 critical flags (the catalogue's); LogStatusNotification has no AcceptedCanceled (a cancelled
upload is only visible in the GetLog response); the CallError code for a malformed payload is
FormationViolation (the 1.6 wire table's); remoteLocation is used as given (no file name appended).

``CsmsChargePoint(station_id, connection, sink=store)`` stores SecurityEventNotification and follows
GetLog; ``StationChargePoint(station_id, connection, station_log=log)`` answers GetLog. For one class
that also manages certificates, pass :data:`CSMS_LOG_PART` / :data:`STATION_LOG_PART` to
:func:`ocppsec.pki.chargepoint.csms_charge_point_class` / ``station_charge_point_class`` (``parts=``).
"""

from __future__ import annotations

from ocppsec.eventlog._ocpp import Codec, csms_log_part, make_codec, station_log_part
from ocppsec.eventlog.getlog import GetLogPolicy, LogStatus
from ocppsec.pki.chargepoint.compose import Side, compose
from ocppsec.pki.events import ocpp_handlers as event_handlers
from ocppsec.pki.versions import OcppVersion

__all__ = ["CODEC", "CSMS_LOG_PART", "STATION_LOG_PART", "VERSION", "CsmsChargePoint", "StationChargePoint"]

VERSION = OcppVersion.V16

CODEC: Codec = make_codec(
    VERSION,
    policy=GetLogPolicy(append_filename_to_directory_url=False),
    log_statuses=frozenset(LogStatus) - {LogStatus.ACCEPTED_CANCELED},
)

CSMS_LOG_PART = csms_log_part(CODEC)
STATION_LOG_PART = station_log_part(CODEC)

CsmsChargePoint = compose(VERSION, Side.CSMS, [event_handlers.csms_part(VERSION), CSMS_LOG_PART], name="CsmsChargePoint",
                          module=__name__)
"""A 1.6 station as the CSMS sees it; events go to ``sink`` (optional ``clock``)."""

StationChargePoint = compose(VERSION, Side.STATION, [STATION_LOG_PART], name="StationChargePoint", module=__name__)
"""The station side (simulators, tests, embedded use) with its security log."""
