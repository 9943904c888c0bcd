"""OCPP 1.6 (security white paper, edition 2/3): SignedUpdateFirmware and its statuses and events.

- Request ``SignedUpdateFirmware.req``: ``requestId``, ``retries``, ``retryInterval``, ``firmware`` with
  ``location`` <= 512, ``retrieveDateTime``, ``installDateTime``, ``signingCertificate`` <= 5500 and
  ``signature`` <= 800, the last two required.
- Step 1 failure -> ``SignedUpdateFirmware.conf`` status InvalidCertificate, or RevokedCertificate when the
  certificate is known revoked (WP L01.FR.25); event InvalidFirmwareSigningCertificate.
- Step 2 -> ``SignedFirmwareStatusNotification`` InvalidSignature + event InvalidFirmwareSignature;
  step 3 -> SignatureVerified. Both firmware events are *not* critical in the 1.6 table (WP16e2 §8).
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

VERSION = "1.6"
REQUEST_ACTION = "SignedUpdateFirmware"
STATUS_ACTION = "SignedFirmwareStatusNotification"
LIMITS = FieldLimits(location=512)
_CRITICAL = {"InvalidFirmwareSignature": False, "InvalidFirmwareSigningCertificate": False}


def firmware_object(
    signature: FirmwareSignature, *, location: str, retrieve_at: datetime, install_at: datetime | None = None
) -> dict[str, Any]:
    return build_firmware_object(signature, location=location, retrieve_at=retrieve_at, install_at=install_at,
                                 limits=LIMITS, version=VERSION, signature_required=True)


def request(
    firmware: dict[str, Any], *, request_id: int, retries: int | None = None, retry_interval: int | None = None
) -> dict[str, Any]:
    """The SignedUpdateFirmware.req payload."""
    payload: dict[str, Any] = {"requestId": request_id, "firmware": firmware}
    if retries is not None:
        payload["retries"] = retries
    if retry_interval is not None:
        payload["retryInterval"] = retry_interval
    return payload


def response_status(result: FirmwareVerification) -> str:
    """SignedUpdateFirmware.conf status: Accepted once step 1 passed, else InvalidCertificate/RevokedCertificate."""
    if result.outcome is FirmwareOutcome.REVOKED_CERTIFICATE:
        return "RevokedCertificate"
    if result.outcome is FirmwareOutcome.INVALID_CERTIFICATE:
        return "InvalidCertificate"
    return "Accepted"


def firmware_status(result: FirmwareVerification) -> str | None:
    """SignedFirmwareStatusNotification status after download, or None when the request was refused."""
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
    """SecurityEventNotification.req (``techInfo`` <= 255, defaults to the failure reason)."""
    event = security_event(result)
    if event is None:
        return None
    return {"type": event.type, "timestamp": ocpp_datetime(at), "techInfo": (tech_info or result.reason)[:255]}
