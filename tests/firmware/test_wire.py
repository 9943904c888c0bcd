"""Wire payloads validated against the official JSON schemas shipped in the ``ocpp`` package."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import ocpp
import pytest

from ocppsec.firmware_signing import (
    FirmwareScheme,
    FirmwareSignature,
    check_firmware,
    firmware_object,
    sign_chunks,
    v16,
    v21,
    v201,
)
from ocppsec.pki.errors import InputError, UsageError
from ocppsec.pki.events.model import Source, format_timestamp
from ocppsec.pki.keys import KeySpec
from ocppsec.pki.versions import OcppVersion

from .conftest import AT, ManufacturerPki, issue

SCHEMAS = Path(ocpp.__file__).parent


def _validate(version: str, name: str, payload: dict[str, Any]) -> None:
    schema = json.loads((SCHEMAS / version / "schemas" / f"{name}.json").read_text())
    validator = jsonschema.Draft6Validator(schema, format_checker=jsonschema.Draft6Validator.FORMAT_CHECKER)
    validator.validate(payload)


def _times(obj: dict[str, Any]) -> None:
    for k in ("retrieveDateTime", "installDateTime"):
        if k in obj:
            assert obj[k].endswith("Z")
            datetime.fromisoformat(obj[k].replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def signatures(pki: ManufacturerPki) -> dict[str, FirmwareSignature]:
    rsa4096 = issue(pki.root, "Firmware Signing RSA-4096", KeySpec.RSA4096)
    return {
        "ecdsa": sign_chunks([b"image"], pki.ecdsa.key, pki.ecdsa.certificate),
        "ecdsa384": sign_chunks([b"image"], pki.ecdsa384.key, pki.ecdsa384.certificate),
        "rsa-pss": sign_chunks([b"image"], pki.rsa.key, pki.rsa.certificate, scheme=FirmwareScheme.RSA_PSS_SHA256),
        "rsa4096": sign_chunks([b"image"], rsa4096.key, rsa4096.certificate,
                               scheme=FirmwareScheme.RSA_PKCS1V15_SHA256),
    }


@pytest.mark.parametrize("which", ["ecdsa", "ecdsa384", "rsa-pss", "rsa4096"])
def test_request_payloads_validate(signatures: dict[str, FirmwareSignature], which: str) -> None:
    sig = signatures[which]
    location = "https://firmware.example.com/station/v1.2.3.bin"
    for module, version, name in ((v16, "v16", "SignedUpdateFirmware"), (v201, "v201", "UpdateFirmwareRequest"),
                                  (v21, "v21", "UpdateFirmwareRequest")):
        obj = module.firmware_object(sig, location=location, retrieve_at=AT, install_at=AT)
        assert obj["signature"] == sig.b64
        assert obj["signingCertificate"].startswith("-----BEGIN CERTIFICATE-----")
        assert len(obj["signature"]) <= 800
        _times(obj)
        _validate(version, name, module.request(obj, request_id=7, retries=3, retry_interval=60))
        _validate(version, name, module.request(obj, request_id=8))


def test_firmware_object_dispatches_on_version(signatures: dict[str, FirmwareSignature]) -> None:
    sig = signatures["ecdsa"]
    for version, module in ((OcppVersion.V16, v16), (OcppVersion.V201, v201), (OcppVersion.V21, v21)):
        obj = firmware_object(sig, location="https://x.example/fw", retrieve_at=AT, version=version)
        assert obj == module.firmware_object(sig, location="https://x.example/fw", retrieve_at=AT)
        assert "installDateTime" not in obj
    assert firmware_object(sig, location="https://x.example/fw", retrieve_at=AT)["retrieveDateTime"] == \
        "2026-11-23T12:00:00.000Z"  # the one OCPP format: always three fractional digits


def test_location_limits_per_version(signatures: dict[str, FirmwareSignature]) -> None:
    sig = signatures["ecdsa"]
    long_url = "https://firmware.example.com/" + "a" * 1000
    for module in (v16, v201):
        with pytest.raises(InputError, match="at most 512"):
            module.firmware_object(sig, location=long_url, retrieve_at=AT)
    obj = v21.firmware_object(sig, location=long_url, retrieve_at=AT)
    _validate("v21", "UpdateFirmwareRequest", v21.request(obj, request_id=1, retries=0))
    with pytest.raises(InputError, match="at most 2000"):
        v21.firmware_object(sig, location=long_url * 3, retrieve_at=AT)
    with pytest.raises(UsageError, match="retries"):
        v21.request(obj, request_id=1, retries=-1)
    with pytest.raises(UsageError, match="location"):
        v201.firmware_object(sig, location="", retrieve_at=AT)


def test_oversized_signature_and_certificate_refused(signatures: dict[str, FirmwareSignature]) -> None:
    sig = signatures["ecdsa"]
    huge = FirmwareSignature(b"\x01" * 601, sig.scheme, sig.digest, sig.signing_certificate)  # 804 base64 chars
    with pytest.raises(InputError, match=r"firmware\.signature is 804 characters, OCPP 2\.0\.1 allows at most 800"):
        v201.firmware_object(huge, location="https://x.example/fw", retrieve_at=AT)
    no_cert = FirmwareSignature(sig.signature, sig.scheme, sig.digest, None)
    with pytest.raises(UsageError, match=r"L01\.FR\.11"):
        v16.firmware_object(no_cert, location="https://x.example/fw", retrieve_at=AT)


def test_firmware_times_use_the_one_ocpp_format(signatures: dict[str, FirmwareSignature]) -> None:
    at = AT.replace(microsecond=123999)
    obj = v16.firmware_object(signatures["ecdsa"], location="https://x.example/fw", retrieve_at=at, install_at=at)
    assert obj["retrieveDateTime"] == obj["installDateTime"] == format_timestamp(at) == "2026-11-23T12:00:00.123Z"
    with pytest.raises(UsageError, match="aware"):
        v201.firmware_object(signatures["ecdsa"], location="https://x.example/fw", retrieve_at=AT.replace(tzinfo=None))


def test_statuses_and_events_validate(pki: ManufacturerPki, signatures: dict[str, FirmwareSignature]) -> None:
    good = signatures["ecdsa"]
    roots = [pki.root.certificate]
    verified = check_firmware([b"image"], good.b64, pki.ecdsa.certificate, roots, at=AT)
    bad_sig = check_firmware([b"imagX"], good.b64, pki.ecdsa.certificate, roots, at=AT)
    bad_cert = check_firmware([b"image"], good.b64, pki.foreign.certificate, roots, at=AT)
    revoked = check_firmware([b"image"], good.b64, pki.ecdsa.certificate, roots, at=AT,
                             revoked_serials={pki.ecdsa.certificate.serial_number})

    cases = (
        (v16, "v16", "SignedUpdateFirmwareResponse", "SignedFirmwareStatusNotification", "SecurityEventNotification", False),
        (v201, "v201", "UpdateFirmwareResponse", "FirmwareStatusNotificationRequest", "SecurityEventNotificationRequest", True),
        (v21, "v21", "UpdateFirmwareResponse", "FirmwareStatusNotificationRequest", "SecurityEventNotificationRequest", True),
    )
    for module, version, response, status, event_name, critical in cases:
        for report in (verified, bad_sig, bad_cert, revoked):
            _validate(version, response, {"status": module.response_status(report)})
            note = module.status_notification(report, request_id=7)
            if note is not None:
                _validate(version, status, note)
            ev = module.security_event_notification(report, at=AT)
            if ev is not None:
                _validate(version, event_name, ev)
        assert module.response_status(verified) == "Accepted"
        assert module.status_notification(verified, request_id=7) == {"status": "SignatureVerified", "requestId": 7}
        assert module.status_notification(bad_sig, request_id=7) == {"status": "InvalidSignature", "requestId": 7}
        assert module.status_notification(bad_cert, request_id=7) is None  # refused before download
        assert module.security_event(verified, station_id="CS-1", at=AT) is None
        ev_sig = module.security_event(bad_sig, station_id="CS-1", at=AT)
        ev_cert = module.security_event(bad_cert, station_id="CS-1", at=AT)
        assert ev_sig is not None
        assert ev_cert is not None
        assert (ev_sig.type, ev_sig.critical) == ("InvalidFirmwareSignature", critical)  # the catalogue's flag
        assert (ev_cert.type, ev_cert.critical) == ("InvalidFirmwareSigningCertificate", critical)
        assert ev_sig.ocpp_version is module.RULES.ocpp_version and ev_sig.source == Source.LOCAL
        assert ev_sig.tech_info == bad_sig.reason[:255] and ev_sig.timestamp == AT
        payload = module.security_event_notification(bad_sig, at=AT)
        assert payload is not None
        assert payload["type"] == "InvalidFirmwareSignature"
        assert len(payload["techInfo"]) <= 255
