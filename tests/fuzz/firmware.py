"""Signed firmware updates on the station: the ``firmware`` object's fields, ``decode_signature``, ``check_firmware``.

Input: one byte of options (OCPP version, signature scheme, how the image is given), then the
``firmware`` object as JSON (what UpdateFirmware / SignedUpdateFirmware carries), then the image bytes.
``check_firmware`` reports every bad image, signature or certificate as a FirmwareVerification (and
the version's status and security event), never by raising.
"""

from __future__ import annotations

import json
from datetime import timedelta

from ocppsec.firmware_signing import (
    FirmwareScheme,
    FirmwareSignatureError,
    ImageDigest,
    check_firmware,
    decode_signature,
    firmware_object,
    hash_chunks,
    sign_chunks,
)
from ocppsec.firmware_signing.codecs import version_module
from ocppsec.pki.versions import OcppVersion

from . import _material as m
from ._harness import fields, harness, join, never_raises, text

ALLOWED = (FirmwareSignatureError,)
_VERSIONS = tuple(OcppVersion)
_SCHEMES = (None, *FirmwareScheme)


@harness(ALLOWED)
def TestOneInput(data: bytes) -> None:
    raw_options, raw_object, image = fields(data, 3)
    options = raw_options[0] if raw_options else 0
    version = _VERSIONS[options % len(_VERSIONS)]
    scheme = _SCHEMES[(options >> 2) % len(_SCHEMES)]
    try:
        obj = json.loads(text(raw_object))
    except (ValueError, RecursionError):
        return
    if not isinstance(obj, dict):
        return
    signature, certificate = obj.get("signature"), obj.get("signingCertificate")
    if not isinstance(signature, str) or not isinstance(certificate, str):
        return  # the schema requires both strings; the codec refuses anything else
    roots = [m.hierarchy().ca("manufacturer-root").certificate]
    chunks = [image[i:i + 4096] for i in range(0, len(image), 4096)]
    given = hash_chunks(chunks, "sha256") if options & 16 else chunks
    at = m.NOW + timedelta(days=365 * (options >> 5))
    result = never_raises(check_firmware, given, signature, certificate, roots, at=at, scheme=scheme,
                          revoked_serials=(1,) if options & 32 else ())
    never_raises(result.as_dict)
    never_raises(lambda: (result.summary(), result.reason, result.security_event))
    rules = version_module(version)
    never_raises(rules.response_status, result)
    never_raises(rules.firmware_status, result)
    never_raises(rules.status_notification, result, request_id=1)
    never_raises(rules.security_event_notification, result, at=m.NOW)
    raw = decode_signature(signature)
    assert isinstance(raw, bytes)
    assert isinstance(given, list | ImageDigest)


def seeds() -> dict[str, bytes]:
    h = m.hierarchy()
    signing = h.certificates["firmware-signing"]
    image = bytes(range(256)) * 40
    signed = sign_chunks([image], signing.key, signing.certificate)
    out = {}
    for n, version in enumerate(_VERSIONS):
        obj = firmware_object(signed, location="https://fw.example.com/fw.bin", retrieve_at=m.NOW, version=version)
        out[f"signed-{version.value}"] = join(bytes([n]), json.dumps(obj), image)
    obj = firmware_object(signed, location="https://fw.example.com/fw.bin", retrieve_at=m.NOW)
    out["digest-given"] = join(bytes([1 | 16 | 4]), json.dumps(obj), image)
    out["wrong-image"] = join(bytes([1]), json.dumps(obj), image[:-1] + b"x")
    out["root-as-signer"] = join(bytes([1]), json.dumps({**obj, "signingCertificate": m.pem(h.ca("manufacturer-root").certificate)}),
                                 image)
    out["empty-image"] = join(bytes([2]), json.dumps(obj), b"")
    return out
