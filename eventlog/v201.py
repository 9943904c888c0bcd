"""OCPP 2.0.1 adapter: payloads <-> the event model, and ChargePoint classes.

2.0.1 differences, all declared here: 2.0.1 event names and critical flags (with the 2023 errata:
InvalidFirmwareSignature and InvalidFirmwareSigningCertificate are critical); LogStatusNotification can
say AcceptedCanceled (N01.FR.20); CallError FormatViolation; remoteLocation is used as given.
"""

from __future__ import annotations

from ocpp.exceptions import FormatViolationError
from ocpp.v201 import ChargePoint as _ChargePoint
from ocpp.v201 import call, call_result

from ocppsec.eventlog._ocpp import Codec, CsmsSecurityEvents, StationSecurityEvents, make_codec
from ocppsec.eventlog.getlog import GetLogPolicy
from ocppsec.pki.versions import OcppVersion

__all__ = ["CODEC", "VERSION", "CsmsChargePoint", "StationChargePoint"]

VERSION = OcppVersion.V201

CODEC: Codec = make_codec(
    VERSION,
    call=call,
    call_result=call_result,
    format_error=FormatViolationError,
    policy=GetLogPolicy(append_filename_to_directory_url=False),
)


class CsmsChargePoint(CsmsSecurityEvents, _ChargePoint):  # type: ignore[misc]
    """A 2.0.1 station as the CSMS sees it; events go to ``sink`` (optional ``clock``)."""

    codec = CODEC


class StationChargePoint(StationSecurityEvents, _ChargePoint):  # type: ignore[misc]
    """The station side (simulators, tests, embedded use) with its security log."""

    codec = CODEC
