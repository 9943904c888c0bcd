"""The firmware adapter module of each OCPP version, in one table (no version ``if`` elsewhere)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType, ModuleType
from typing import Any

from ocppsec.firmware_signing import v16, v21, v201
from ocppsec.firmware_signing.signing import FirmwareSignature
from ocppsec.pki.versions import OcppVersion

__all__ = ["MODULES", "firmware_object", "version_module"]

MODULES: Mapping[OcppVersion, ModuleType] = MappingProxyType(
    {OcppVersion.V16: v16, OcppVersion.V201: v201, OcppVersion.V21: v21}
)


def version_module(version: OcppVersion) -> ModuleType:
    """The adapter module (``v16``, ``v201``, ``v21``) of a version."""
    return MODULES[version]


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
