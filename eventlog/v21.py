"""OCPP 2.1 adapter: payloads <-> the event model, and ChargePoint classes.

2.1 differences, all declared here: 2.1 event names and critical flags (DiscardedRenewedClientCertificate,
MaintenanceLoginAccepted/Failed); LogStatusNotification can say AcceptedCanceled; CallError
FormatViolation; a remoteLocation ending in "/" gets the file name appended (N01.FR.21) and uploads
above 1 MiB use Expect: 100-continue (N01.FR.22, done by the upload client for every version).
"""

from __future__ import annotations

from ocpp.exceptions import FormatViolationError
from ocpp.v21 import ChargePoint as _ChargePoint
from ocpp.v21 import call, call_result

from ocppsec.eventlog._ocpp import Codec, CsmsSecurityEvents, StationSecurityEvents, make_codec
from ocppsec.eventlog.getlog import GetLogPolicy
from ocppsec.pki.versions import OcppVersion

__all__ = ["CODEC", "VERSION", "CsmsChargePoint", "StationChargePoint"]

VERSION = OcppVersion.V21

CODEC: Codec = make_codec(
    VERSION,
    call=call,
    call_result=call_result,
    format_error=FormatViolationError,
    policy=GetLogPolicy(append_filename_to_directory_url=True),
)


class CsmsChargePoint(CsmsSecurityEvents, _ChargePoint):  # type: ignore[misc]
    """A 2.1 station as the CSMS sees it; events go to ``sink`` (optional ``clock``)."""

    codec = CODEC


class StationChargePoint(StationSecurityEvents, _ChargePoint):  # type: ignore[misc]
    """The station side (simulators, tests, embedded use) with its security log."""

    codec = CODEC
