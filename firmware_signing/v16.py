"""OCPP 1.6 (security white paper, edition 2/3): SignedUpdateFirmware and its statuses and events.

- Request ``SignedUpdateFirmware.req``: ``requestId``, ``retries``, ``retryInterval``, ``firmware`` with
  ``location`` <= 512, ``retrieveDateTime``, ``installDateTime``, ``signingCertificate`` <= 5500 and
  ``signature`` <= 800, the last two required.
- Step 1 failure -> ``SignedUpdateFirmware.conf`` status InvalidCertificate, or RevokedCertificate when the
  certificate is known revoked (WP L01.FR.25); event InvalidFirmwareSigningCertificate.
- Step 2 -> ``SignedFirmwareStatusNotification`` InvalidSignature + event InvalidFirmwareSignature;
  step 3 -> SignatureVerified. Both firmware events are *not* critical in the 1.6 table (WP16e2 §8; the
  flags are the event catalogue's).
"""

from __future__ import annotations

from ocppsec.firmware_signing.verification import FirmwareOutcome
from ocppsec.firmware_signing.wire import FieldLimits, VersionRules
from ocppsec.pki.wire import v16 as wire_v16

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
    wire=wire_v16.NAMES,
    limits=LIMITS,
    signature_required=True,
    response_statuses={FirmwareOutcome.SIGNATURE_VERIFIED: "Accepted", FirmwareOutcome.INVALID_SIGNATURE: "Accepted",
                       FirmwareOutcome.INVALID_CERTIFICATE: "InvalidCertificate",
                       FirmwareOutcome.REVOKED_CERTIFICATE: "RevokedCertificate"},  # WP L01.FR.25
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
