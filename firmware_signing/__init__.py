"""Signed firmware: sign images in CI, verify them as a charging station does, as OCPP carries them.

- :mod:`~ocppsec.firmware_signing.digest`: SHA-256 over an iterable of chunks (the core never opens files).
- :mod:`~ocppsec.firmware_signing.schemes`: ECDSA-SHA256 (default, DER), RSA-PSS-SHA256 (MGF1-SHA256,
  salt 32), RSA-PKCS#1 v1.5-SHA256; RSA verification without a declared scheme tries PSS, then v1.5.
- :mod:`~ocppsec.firmware_signing.signing`: sign with any :class:`~ocppsec.pki.keys.SigningKey`.
- :mod:`~ocppsec.firmware_signing.verification`: the numbered steps and their report.
- ``v16`` / ``v201`` / ``v21``: statuses, security events and wire payloads per OCPP version.
- :mod:`~ocppsec.firmware_signing.files`: the file adapter (64 KiB chunks).
"""

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
