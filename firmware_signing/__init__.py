"""Signed firmware: sign images in CI, verify them as a charging station does, as OCPP carries them.

- :mod:`~ocppsec.firmware_signing.digest`: SHA-256 over an iterable of chunks (the core never opens files).
- :mod:`~ocppsec.firmware_signing.schemes`: ECDSA-SHA256 (default, DER), RSA-PSS-SHA256 (MGF1-SHA256,
  salt 32), RSA-PKCS#1 v1.5-SHA256; RSA verification without a declared scheme tries PSS, then v1.5.
- :mod:`~ocppsec.firmware_signing.signing`: sign with any :class:`~ocppsec.pki.keys.SigningKey`.
- :mod:`~ocppsec.firmware_signing.verification`: the numbered steps and their report.
- ``v16`` / ``v201`` / ``v21``: statuses, security events and wire payloads per OCPP version.
- :mod:`~ocppsec.firmware_signing.files`: the file adapter (64 KiB chunks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ocppsec.pki._lazy import lazy_exports

if TYPE_CHECKING:
    from ocppsec.firmware_signing import v16, v21, v201
    from ocppsec.firmware_signing.codecs import firmware_object, version_module
    from ocppsec.firmware_signing.digest import CHUNK_SIZE, ImageDigest, hash_chunks
    from ocppsec.firmware_signing.errors import EmptyImageError, FirmwareCertificateError, FirmwareSignatureError
    from ocppsec.firmware_signing.files import (
        check_file,
        iter_file_chunks,
        read_signature_file,
        sign_file,
        verify_file,
        write_signature_file,
    )
    from ocppsec.firmware_signing.schemes import (
        FirmwareScheme,
        SignatureAlgorithm,
        default_scheme_for,
        verify_digest_signature,
        verify_image_signature,
    )
    from ocppsec.firmware_signing.signing import DigestSigningKey, FirmwareSignature, sign_chunks, sign_digest
    from ocppsec.firmware_signing.verification import (
        FirmwareOutcome,
        FirmwareVerification,
        StepOutcome,
        check_firmware,
        decode_signature,
        verify_firmware,
    )

# Imported on first use (ocppsec.pki._lazy): importing one module of this package does not import them all.
__getattr__, __dir__ = lazy_exports(__name__, {
    "CHUNK_SIZE": "ocppsec.firmware_signing.digest",
    "DigestSigningKey": "ocppsec.firmware_signing.signing",
    "EmptyImageError": "ocppsec.firmware_signing.errors",
    "FirmwareCertificateError": "ocppsec.firmware_signing.errors",
    "FirmwareOutcome": "ocppsec.firmware_signing.verification",
    "FirmwareScheme": "ocppsec.firmware_signing.schemes",
    "FirmwareSignature": "ocppsec.firmware_signing.signing",
    "FirmwareSignatureError": "ocppsec.firmware_signing.errors",
    "FirmwareVerification": "ocppsec.firmware_signing.verification",
    "ImageDigest": "ocppsec.firmware_signing.digest",
    "SignatureAlgorithm": "ocppsec.firmware_signing.schemes",
    "StepOutcome": "ocppsec.firmware_signing.verification",
    "check_file": "ocppsec.firmware_signing.files",
    "check_firmware": "ocppsec.firmware_signing.verification",
    "decode_signature": "ocppsec.firmware_signing.verification",
    "default_scheme_for": "ocppsec.firmware_signing.schemes",
    "firmware_object": "ocppsec.firmware_signing.codecs",
    "hash_chunks": "ocppsec.firmware_signing.digest",
    "iter_file_chunks": "ocppsec.firmware_signing.files",
    "read_signature_file": "ocppsec.firmware_signing.files",
    "sign_chunks": "ocppsec.firmware_signing.signing",
    "sign_digest": "ocppsec.firmware_signing.signing",
    "sign_file": "ocppsec.firmware_signing.files",
    "v16": "ocppsec.firmware_signing.v16",
    "v201": "ocppsec.firmware_signing.v201",
    "v21": "ocppsec.firmware_signing.v21",
    "verify_digest_signature": "ocppsec.firmware_signing.schemes",
    "verify_file": "ocppsec.firmware_signing.files",
    "verify_firmware": "ocppsec.firmware_signing.verification",
    "verify_image_signature": "ocppsec.firmware_signing.schemes",
    "version_module": "ocppsec.firmware_signing.codecs",
    "write_signature_file": "ocppsec.firmware_signing.files",
}, globals())

__all__ = [
    "CHUNK_SIZE",
    "DigestSigningKey",
    "EmptyImageError",
    "FirmwareCertificateError",
    "FirmwareOutcome",
    "FirmwareScheme",
    "FirmwareSignature",
    "FirmwareSignatureError",
    "FirmwareVerification",
    "ImageDigest",
    "SignatureAlgorithm",
    "StepOutcome",
    "check_file",
    "check_firmware",
    "decode_signature",
    "default_scheme_for",
    "firmware_object",
    "hash_chunks",
    "iter_file_chunks",
    "read_signature_file",
    "sign_chunks",
    "sign_digest",
    "sign_file",
    "v16",
    "v21",
    "v201",
    "verify_digest_signature",
    "verify_file",
    "verify_firmware",
    "verify_image_signature",
    "version_module",
    "write_signature_file",
]
