"""OCPP 1.6 (security white paper) adapter: payloads <-> the event model, and ChargePoint classes.

1.6 differences, all declared here: event names use the 1.6 spelling (InvalidCentralSystemCertificate,
InvalidChargePointCertificate, FailedToAuthenticateAtCentralSystem, CentralSystemFailedToAuthenticate)
and the 1.6 critical flags; LogStatusNotification has no AcceptedCanceled (a cancelled upload is only
visible in the GetLog response); the CallError code for a malformed payload is FormationViolation;
remoteLocation is used as given (no file name appended).
"""

from __future__ import annotations

from ocpp.exceptions import FormationViolationError
from ocpp.v16 import ChargePoint as _ChargePoint
from ocpp.v16 import call, call_result

from ocppsec.eventlog._ocpp import Codec, CsmsSecurityEvents, StationSecurityEvents, make_codec
from ocppsec.eventlog.getlog import GetLogPolicy, LogStatus
from ocppsec.pki.versions import OcppVersion

__all__ = ["CODEC", "VERSION", "CsmsChargePoint", "StationChargePoint"]

VERSION = OcppVersion.V16

CODEC: Codec = make_codec(
    VERSION,
    call=call,
    call_result=call_result,
    format_error=FormationViolationError,
    policy=GetLogPolicy(append_filename_to_directory_url=False),
    log_statuses=frozenset(LogStatus) - {LogStatus.ACCEPTED_CANCELED},
)


class CsmsChargePoint(CsmsSecurityEvents, _ChargePoint):  # type: ignore[misc]
    """A 1.6 station as the CSMS sees it; events go to ``sink`` (optional ``clock``)."""

    codec = CODEC


class StationChargePoint(StationSecurityEvents, _ChargePoint):  # type: ignore[misc]
    """The station side (simulators, tests, embedded use) with its security log."""

    codec = CODEC
