"""Version-neutral helpers for the OCPP firmware update; the per-version modules hold the data.

``v16`` (SignedUpdateFirmware.req), ``v201`` and ``v21`` (UpdateFirmwareRequest) each declare one
:class:`VersionRules` (field limits, status tables, retries floor; the action names are the version's
:mod:`ocppsec.pki.wire` table) and export its bound methods as their module functions; ``v21`` is
``v201`` with other limits. The security events are the kernel's (:mod:`ocppsec.pki.events`: the one
event value, the catalogue's critical flags, the one timestamp format).
:func:`ocppsec.firmware_signing.codecs.firmware_object` picks the module for an
:class:`~ocppsec.pki.versions.OcppVersion` from a table (no version ``if`` here).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ocppsec.firmware_signing.signing import FirmwareSignature
from ocppsec.firmware_signing.verification import FirmwareOutcome, FirmwareVerification
from ocppsec.pki.errors import InputError, UsageError
from ocppsec.pki.events.ingest import notification_payload
from ocppsec.pki.events.model import SecurityEvent, format_timestamp
from ocppsec.pki.events.sink import local_event
from ocppsec.pki.versions import OcppVersion
from ocppsec.pki.wire.table import WireNames

__all__ = [
    "FieldLimits",
    "VersionRules",
    "build_firmware_object",
]


@dataclass(frozen=True, slots=True)
class FieldLimits:
    """maxLength of the ``firmware`` fields in one OCPP version's schema."""

    location: int
    signing_certificate: int = 5500
    signature: int = 800


def _check(name: str, value: str, limit: int, version: str) -> str:
    if len(value) > limit:
        raise InputError(
            f"firmware.{name} is {len(value)} characters, OCPP {version} allows at most {limit}",
            hint={"signature": "use an ECDSA key or RSA up to 4096 bits",
                  "location": "use a shorter download URL"}.get(name),
        )
    return value


def build_firmware_object(
    signature: FirmwareSignature | None,
    *,
    location: str,
    retrieve_at: datetime,
    install_at: datetime | None,
    limits: FieldLimits,
    version: str,
    signature_required: bool,
) -> dict[str, Any]:
    if not location:
        raise UsageError("the firmware location (download URL) is required")
    obj: dict[str, Any] = {
        "location": _check("location", location, limits.location, version),
        "retrieveDateTime": format_timestamp(retrieve_at),
    }
    if install_at is not None:
        obj["installDateTime"] = format_timestamp(install_at)
    if signature is None:
        if signature_required:
            raise UsageError(f"OCPP {version} SignedUpdateFirmware needs a signature and a signing certificate")
        return obj
    pem = signature.certificate_pem
    if pem is None:
        raise UsageError("the firmware object needs the signing certificate (L01.FR.11)",
                         hint="sign with the firmware-signing certificate")
    obj["signingCertificate"] = _check("signingCertificate", pem, limits.signing_certificate, version)
    obj["signature"] = _check("signature", signature.b64, limits.signature, version)
    return obj


@dataclass(frozen=True, slots=True)
class VersionRules:
    """What one OCPP version says about a firmware update; its methods are that version module's functions."""

    wire: WireNames  # the version's wire names (action names)
    limits: FieldLimits
    signature_required: bool  # the request schema requires signingCertificate and signature
    response_statuses: Mapping[FirmwareOutcome, str]  # update response status for every outcome
    firmware_statuses: Mapping[FirmwareOutcome, str]  # status notification after download (absent: refused)
    min_retries: int | None = None  # lowest ``retries`` the version allows (None: not checked)

    @property
    def ocpp_version(self) -> OcppVersion:
        return self.wire.version

    @property
    def version(self) -> str:
        """As written in messages, e.g. ``2.0.1``."""
        return self.wire.version.value

    @property
    def request_action(self) -> str:
        """The update request's action name."""
        return self.wire.firmware_update_action

    @property
    def status_action(self) -> str:
        """The status notification's action name."""
        return self.wire.firmware_status_action

    def firmware_object(
        self, signature: FirmwareSignature, *, location: str, retrieve_at: datetime, install_at: datetime | None = None
    ) -> dict[str, Any]:
        """The ``firmware`` object of the update request, within this version's field limits."""
        return build_firmware_object(signature, location=location, retrieve_at=retrieve_at, install_at=install_at,
                                     limits=self.limits, version=self.version,
                                     signature_required=self.signature_required)

    def request(
        self, firmware: dict[str, Any], *, request_id: int, retries: int | None = None, retry_interval: int | None = None
    ) -> dict[str, Any]:
        """The update request payload."""
        payload: dict[str, Any] = {"requestId": request_id, "firmware": firmware}
        if retries is not None:
            if self.min_retries is not None and retries < self.min_retries:
                raise UsageError(f"retries must be {self.min_retries} or more in OCPP {self.version}")
            payload["retries"] = retries
        if retry_interval is not None:
            payload["retryInterval"] = retry_interval
        return payload

    def response_status(self, result: FirmwareVerification) -> str:
        """The update response status: accepted once step 1 passed, else the version's refusal."""
        return self.response_statuses[result.outcome]

    def firmware_status(self, result: FirmwareVerification) -> str | None:
        """The status notification's status after download, or None when the request was refused."""
        return self.firmware_statuses.get(result.outcome)

    def status_notification(self, result: FirmwareVerification, *, request_id: int) -> dict[str, Any] | None:
        status = self.firmware_status(result)
        return None if status is None else {"status": status, "requestId": request_id}

    def security_event(
        self, result: FirmwareVerification, *, station_id: str, at: datetime, tech_info: str | None = None
    ) -> SecurityEvent | None:
        """The event the station records for ``result`` (critical as this version's catalogue says), or None.

        ``techInfo`` defaults to the failure reason.
        """
        name = result.security_event
        if name is None:
            return None
        return local_event(name, station_id=station_id, tech_info=tech_info or result.reason, at=at,
                           version=self.ocpp_version)

    def security_event_notification(
        self, result: FirmwareVerification, *, at: datetime, tech_info: str | None = None
    ) -> dict[str, Any] | None:
        """SecurityEventNotification payload (``techInfo`` defaults to the failure reason)."""
        name = result.security_event
        if name is None:
            return None
        return notification_payload(name, timestamp=at, tech_info=tech_info or result.reason, version=self.ocpp_version)
