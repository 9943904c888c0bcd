"""Errors of the firmware-signing package (all :class:`~ocppsec.pki.errors.OcppsecError` subclasses).

::

    VerificationError
    ├── ChainError
    │   └── FirmwareCertificateError   step 1 failed: InvalidCertificate / RevokedCertificate
    └── SignatureError
        └── FirmwareSignatureError     step 2 failed: InvalidSignature
    InputError
    └── EmptyImageError                refusing to sign an empty image

Verification errors carry the report (``.report``) and the security event to raise
(``InvalidFirmwareSigningCertificate`` / ``InvalidFirmwareSignature``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ocppsec.pki.errors import ChainError, InputError, SignatureError

if TYPE_CHECKING:
    from ocppsec.firmware_signing.verification import FirmwareVerification

__all__ = ["EmptyImageError", "FirmwareCertificateError", "FirmwareSignatureError"]


class FirmwareCertificateError(ChainError):
    """The signing certificate does not chain directly to an installed manufacturer root (step 1)."""

    def __init__(self, message: str, *, report: FirmwareVerification | None = None, **kw: str | None) -> None:
        kw.setdefault("security_event", "InvalidFirmwareSigningCertificate")
        super().__init__(message, **kw)
        self.report = report


class FirmwareSignatureError(SignatureError):
    """The signature does not verify over the whole image (step 2)."""

    def __init__(self, message: str, *, report: FirmwareVerification | None = None, **kw: str | None) -> None:
        kw.setdefault("security_event", "InvalidFirmwareSignature")
        super().__init__(message, **kw)
        self.report = report


class EmptyImageError(InputError):
    """The firmware image has no bytes."""
