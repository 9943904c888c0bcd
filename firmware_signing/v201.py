"""OCPP 2.0.1: UpdateFirmwareRequest (L01 secure update) and its statuses and events.

- ``UpdateFirmwareRequest.firmware``: ``location`` <= 512, ``retrieveDateTime``, ``installDateTime``,
  ``signingCertificate`` <= 5500, ``signature`` <= 800; the last two optional in the schema, present for a
  secure update (L01) and always present here.
- Step 1 failure -> UpdateFirmwareResponse InvalidCertificate (L01.FR.22) + event
  InvalidFirmwareSigningCertificate. A known-revoked certificate is reported as InvalidCertificate too
  (the RevokedCertificate rule L01.FR.25 is a 1.6 white-paper rule).
- Step 2 -> FirmwareStatusNotification InvalidSignature + InvalidFirmwareSignature (L01.FR.03);
  step 3 -> SignatureVerified. Both events are critical (errata 2023-12 §2.18.1).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ocppsec.firmware_signing.signing import FirmwareSignature
from ocppsec.firmware_signing.verification import FirmwareOutcome, FirmwareVerification
from ocppsec.firmware_signing.wire import FieldLimits, SecurityEvent, build_firmware_object, ocpp_datetime

__all__ = [
    "LIMITS",
    "REQUEST_ACTION",
    "STATUS_ACTION",
    "firmware_object",
    "firmware_status",
    "request",
    "response_status",
    "security_event",
    "security_event_notification",
    "status_notification",
]

VERSION = "2.0.1"
REQUEST_ACTION = "UpdateFirmware"
STATUS_ACTION = "FirmwareStatusNotification"
LIMITS = FieldLimits(location=512)
TECH_INFO_LIMIT = 255
_CRITICAL = {"InvalidFirmwareSignature": True, "InvalidFirmwareSigningCertificate": True}


def firmware_object(
    signature: FirmwareSignature, *, location: str, retrieve_at: datetime, install_at: datetime | None = None
) -> dict[str, Any]:
    return build_firmware_object(signature, location=location, retrieve_at=retrieve_at, install_at=install_at,
                                 limits=LIMITS, version=VERSION, signature_required=False)


def request(
    firmware: dict[str, Any], *, request_id: int, retries: int | None = None, retry_interval: int | None = None
) -> dict[str, Any]:
    """The UpdateFirmwareRequest payload."""
    payload: dict[str, Any] = {"requestId": request_id, "firmware": firmware}
    if retries is not None:
        payload["retries"] = retries
    if retry_interval is not None:
        payload["retryInterval"] = retry_interval
    return payload


def response_status(result: FirmwareVerification) -> str:
    """UpdateFirmwareResponse status: Accepted once step 1 passed, else InvalidCertificate."""
    if result.outcome in (FirmwareOutcome.INVALID_CERTIFICATE, FirmwareOutcome.REVOKED_CERTIFICATE):
        return "InvalidCertificate"
    return "Accepted"


def firmware_status(result: FirmwareVerification) -> str | None:
    """FirmwareStatusNotification status after download, or None when the request was refused."""
    return {FirmwareOutcome.SIGNATURE_VERIFIED: "SignatureVerified",
            FirmwareOutcome.INVALID_SIGNATURE: "InvalidSignature"}.get(result.outcome)


def status_notification(result: FirmwareVerification, *, request_id: int) -> dict[str, Any] | None:
    status = firmware_status(result)
    return None if status is None else {"status": status, "requestId": request_id}


def security_event(result: FirmwareVerification) -> SecurityEvent | None:
    name = result.security_event
    return None if name is None else SecurityEvent(name, _CRITICAL[name])


def security_event_notification(
    result: FirmwareVerification, *, at: datetime, tech_info: str | None = None
) -> dict[str, Any] | None:
    """SecurityEventNotificationRequest (``techInfo`` <= 255, defaults to the failure reason)."""
    event = security_event(result)
    if event is None:
        return None
    info = (tech_info or result.reason)[:TECH_INFO_LIMIT]
    return {"type": event.type, "timestamp": ocpp_datetime(at), "techInfo": info}
