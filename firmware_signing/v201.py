"""OCPP 2.0.1: UpdateFirmwareRequest (L01 secure update) and its statuses and events.

- ``UpdateFirmwareRequest.firmware``: ``location`` <= 512, ``retrieveDateTime``, ``installDateTime``,
  ``signingCertificate`` <= 5500, ``signature`` <= 800; the last two optional in the schema, present for a
  secure update (L01) and always present here.
- Step 1 failure -> UpdateFirmwareResponse InvalidCertificate (L01.FR.22) + event
  InvalidFirmwareSigningCertificate. A known-revoked certificate is reported as InvalidCertificate too
  (the RevokedCertificate rule L01.FR.25 is a 1.6 white-paper rule).
- Step 2 -> FirmwareStatusNotification InvalidSignature + InvalidFirmwareSignature (L01.FR.03);
  step 3 -> SignatureVerified. Both events are critical (errata 2023-12 §2.18.1; the flags are the event
  catalogue's).
"""

from __future__ import annotations

from ocppsec.firmware_signing.verification import FirmwareOutcome
from ocppsec.firmware_signing.wire import FieldLimits, VersionRules
from ocppsec.pki.wire import v201 as wire_v201

__all__ = [
    "LIMITS",
    "REQUEST_ACTION",
    "RULES",
    "STATUS_ACTION",
    "firmware_object",
    "firmware_status",
    "request",
    "response_status",
    "security_event",
    "security_event_notification",
    "status_notification",
]

LIMITS = FieldLimits(location=512)

RULES = VersionRules(
    wire=wire_v201.NAMES,
    limits=LIMITS,
    signature_required=False,
    response_statuses={FirmwareOutcome.SIGNATURE_VERIFIED: "Accepted", FirmwareOutcome.INVALID_SIGNATURE: "Accepted",
                       FirmwareOutcome.INVALID_CERTIFICATE: "InvalidCertificate",  # L01.FR.22
                       FirmwareOutcome.REVOKED_CERTIFICATE: "InvalidCertificate"},
    firmware_statuses={FirmwareOutcome.SIGNATURE_VERIFIED: "SignatureVerified",
                       FirmwareOutcome.INVALID_SIGNATURE: "InvalidSignature"},
)

VERSION = RULES.version
REQUEST_ACTION = RULES.request_action
STATUS_ACTION = RULES.status_action

firmware_object = RULES.firmware_object
request = RULES.request
response_status = RULES.response_status
firmware_status = RULES.firmware_status
status_notification = RULES.status_notification
security_event = RULES.security_event
security_event_notification = RULES.security_event_notification
