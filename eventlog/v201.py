"""OCPP 2.0.1 adapter: payloads <-> the event model, and ChargePoint classes.

2.0.1 differences, all declared here: 2.0.1 event names and critical flags (with the 2023 errata:
InvalidFirmwareSignature and InvalidFirmwareSigningCertificate are critical; the catalogue's);
LogStatusNotification can say AcceptedCanceled (N01.FR.20); CallError FormatViolation; remoteLocation
is used as given.

``CsmsChargePoint(station_id, connection, sink=store)`` stores SecurityEventNotification and follows
GetLog; ``StationChargePoint(station_id, connection, station_log=log)`` answers GetLog. For one class
that also manages certificates, pass :data:`CSMS_LOG_PART` / :data:`STATION_LOG_PART` to
:func:`ocppsec.pki.chargepoint.csms_charge_point_class` / ``station_charge_point_class`` (``parts=``).
"""

from __future__ import annotations

from ocppsec.eventlog._ocpp import Codec, csms_log_part, make_codec, station_log_part
from ocppsec.eventlog.getlog import GetLogPolicy
from ocppsec.pki.chargepoint.compose import Side, compose
from ocppsec.pki.events import ocpp_handlers as event_handlers
from ocppsec.pki.versions import OcppVersion

__all__ = ["CODEC", "CSMS_LOG_PART", "STATION_LOG_PART", "VERSION", "CsmsChargePoint", "StationChargePoint"]

VERSION = OcppVersion.V201

CODEC: Codec = make_codec(
    VERSION,
    policy=GetLogPolicy(append_filename_to_directory_url=False),
)

CSMS_LOG_PART = csms_log_part(CODEC)
STATION_LOG_PART = station_log_part(CODEC)

CsmsChargePoint = compose(VERSION, Side.CSMS, [event_handlers.csms_part(VERSION), CSMS_LOG_PART], name="CsmsChargePoint",
                          module=__name__)
"""A 2.0.1 station as the CSMS sees it; events go to ``sink`` (optional ``clock``)."""

StationChargePoint = compose(VERSION, Side.STATION, [STATION_LOG_PART], name="StationChargePoint", module=__name__)
"""The station side (simulators, tests, embedded use) with its security log."""
