"""Version-neutral helpers for the OCPP ``firmware`` object; the per-version modules set the limits.

``v16`` (SignedUpdateFirmware.req), ``v201`` and ``v21`` (UpdateFirmwareRequest) call
:func:`build_firmware_object` with their own field limits; :func:`firmware_object` picks the module
for an :class:`~ocppsec.pki.versions.OcppVersion` from a table (no version ``if`` here).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

from ocppsec.firmware_signing.signing import FirmwareSignature
from ocppsec.pki.errors import InputError, UsageError
from ocppsec.pki.versions import OcppVersion

__all__ = [
    "FieldLimits",
    "SecurityEvent",
    "build_firmware_object",
    "firmware_object",
    "ocpp_datetime",
    "version_module",
]


@dataclass(frozen=True, slots=True)
class FieldLimits:
    """maxLength of the ``firmware`` fields in one OCPP version's schema."""

    location: int
    signing_certificate: int = 5500
    signature: int = 800


@dataclass(frozen=True, slots=True)
class SecurityEvent:
    """A security event as a version names and rates it."""

    type: str
    critical: bool


def ocpp_datetime(value: datetime) -> str:
    """RFC 3339 in UTC with at most 3 fractional digits (201P2 §2.1.4), ``Z`` suffix."""
    if value.tzinfo is None:
        raise UsageError("OCPP times must be aware datetimes (UTC)")
    value = value.astimezone(UTC)
    millis = value.microsecond // 1000
    base = value.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{millis:03d}Z" if millis else f"{base}Z"


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
        "retrieveDateTime": ocpp_datetime(retrieve_at),
    }
    if install_at is not None:
        obj["installDateTime"] = ocpp_datetime(install_at)
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


def version_module(version: OcppVersion) -> ModuleType:
    """The adapter module (``v16``, ``v201``, ``v21``) of a version."""
    from ocppsec.firmware_signing import v16, v21, v201

    table: dict[OcppVersion, ModuleType] = {OcppVersion.V16: v16, OcppVersion.V201: v201, OcppVersion.V21: v21}
    return table[version]


def firmware_object(
    signature: FirmwareSignature,
    *,
    location: str,
    retrieve_at: datetime,
    install_at: datetime | None = None,
    version: OcppVersion = OcppVersion.V201,
) -> dict[str, Any]:
    """The ``firmware`` object of UpdateFirmwareRequest (2.0.1/2.1) or SignedUpdateFirmware.req (1.6)."""
    result: dict[str, Any] = version_module(version).firmware_object(
        signature, location=location, retrieve_at=retrieve_at, install_at=install_at
    )
    return result
