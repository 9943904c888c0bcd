"""Signing and the numbered verification steps, with every bad input next to the good cases."""

from __future__ import annotations

import base64
import os
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from ocppsec.firmware_signing import (
    EmptyImageError,
    FirmwareCertificateError,
    FirmwareOutcome,
    FirmwareScheme,
    FirmwareSignatureError,
    check_firmware,
    hash_chunks,
    sign_chunks,
    v16,
    v21,
    v201,
    verify_firmware,
)
from ocppsec.pki.errors import ChainError, SignatureError, UsageError

from .conftest import AT, ManufacturerPki, Signer

IMAGE = [os.urandom(1000), os.urandom(70000), b"tail"]


def _sign(signer: Signer, scheme: FirmwareScheme | None = None) -> str:
    return sign_chunks(IMAGE, signer.key, signer.certificate, scheme=scheme).b64


def _check(pki: ManufacturerPki, signature: str | bytes, cert: x509.Certificate | str | bytes,
           image: list[bytes] | None = None, **kw: object):  # type: ignore[no-untyped-def]
    return check_firmware(image if image is not None else IMAGE, signature, cert, [pki.root.certificate],
                          at=AT, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("signer_name", "scheme"),
    [("ecdsa", None), ("ecdsa", FirmwareScheme.ECDSA_SHA256), ("ecdsa384", None),
     ("rsa", FirmwareScheme.RSA_PSS_SHA256), ("rsa", FirmwareScheme.RSA_PKCS1V15_SHA256)],
)
def test_sign_then_verify_every_scheme(pki: ManufacturerPki, signer_name: str, scheme: FirmwareScheme | None) -> None:
    signer: Signer = getattr(pki, signer_name)
    signature = sign_chunks(IMAGE, signer.key, signer.certificate, scheme=scheme)
    expected = scheme or FirmwareScheme.ECDSA_SHA256
    assert signature.scheme is expected
    assert signature.digest == hash_chunks(IMAGE)
    # declared scheme and undeclared (auto) both hold, and the report names the scheme
    for declared in (scheme, None):
        report = verify_firmware(IMAGE, signature.b64, signer.pem, [pki.root.certificate], at=AT, scheme=declared)
        assert report.ok
        assert report.outcome is FirmwareOutcome.SIGNATURE_VERIFIED
        assert report.scheme is expected
        assert [s.number for s in report.steps] == [1, 2, 3]
        assert all(s.passed for s in report.steps)
        assert report.root == pki.root.certificate
        assert report.security_event is None


def test_rsa_auto_reports_which_scheme_held(pki: ManufacturerPki) -> None:
    pss = _sign(pki.rsa, FirmwareScheme.RSA_PSS_SHA256)
    v15 = _sign(pki.rsa, FirmwareScheme.RSA_PKCS1V15_SHA256)
    assert _check(pki, pss, pki.rsa.certificate).scheme is FirmwareScheme.RSA_PSS_SHA256
    assert _check(pki, v15, pki.rsa.certificate).scheme is FirmwareScheme.RSA_PKCS1V15_SHA256
    # a declared scheme is not silently swapped for the other one
    report = _check(pki, v15, pki.rsa.certificate, scheme=FirmwareScheme.RSA_PSS_SHA256)
    assert report.outcome is FirmwareOutcome.INVALID_SIGNATURE


def test_rsa_key_needs_an_explicit_scheme(pki: ManufacturerPki) -> None:
    with pytest.raises(UsageError, match="explicit firmware signature scheme"):
        sign_chunks(IMAGE, pki.rsa.key, pki.rsa.certificate)
    with pytest.raises(UsageError, match="does not fit"):
        sign_chunks(IMAGE, pki.ecdsa.key, pki.ecdsa.certificate, scheme=FirmwareScheme.RSA_PSS_SHA256)


def test_key_must_match_certificate(pki: ManufacturerPki) -> None:
    with pytest.raises(UsageError, match="does not belong to the signing certificate"):
        sign_chunks(IMAGE, pki.ecdsa.key, pki.ecdsa384.certificate)


def test_refuses_to_sign_an_empty_image(pki: ManufacturerPki) -> None:
    with pytest.raises(EmptyImageError, match="empty"):
        sign_chunks([], pki.ecdsa.key, pki.ecdsa.certificate)
    with pytest.raises(EmptyImageError):
        sign_chunks([b"", b""], pki.ecdsa.key, pki.ecdsa.certificate)


def test_digest_may_be_passed_instead_of_chunks(pki: ManufacturerPki) -> None:
    sig = _sign(pki.ecdsa)
    assert check_firmware(hash_chunks(IMAGE), sig, pki.ecdsa.certificate, [pki.root.certificate], at=AT).ok


def test_aware_time_required(pki: ManufacturerPki) -> None:
    with pytest.raises(UsageError, match="aware"):
        check_firmware(IMAGE, _sign(pki.ecdsa), pki.ecdsa.certificate, [pki.root.certificate],
                       at=AT.replace(tzinfo=None))


# --- step 2 failures: InvalidSignature + InvalidFirmwareSignature ---------------------------------

def _assert_invalid_signature(report, match: str) -> None:  # type: ignore[no-untyped-def]
    assert report.outcome is FirmwareOutcome.INVALID_SIGNATURE
    assert report.security_event == "InvalidFirmwareSignature"
    assert [s.passed for s in report.steps] == [True, False, None]
    assert match in report.steps[1].detail, report.steps[1].detail
    assert report.summary().startswith("InvalidSignature: step 2 failed")
    with pytest.raises(FirmwareSignatureError) as info:
        report.raise_for_outcome()
    assert isinstance(info.value, SignatureError)
    assert info.value.security_event == "InvalidFirmwareSignature"
    assert info.value.exit_code == 1
    assert "\n" not in str(info.value)


def test_flipped_byte_gives_invalid_signature(pki: ManufacturerPki) -> None:
    sig = _sign(pki.ecdsa)
    tampered = [IMAGE[0], bytes([IMAGE[1][0] ^ 1]) + IMAGE[1][1:], IMAGE[2]]
    _assert_invalid_signature(_check(pki, sig, pki.ecdsa.certificate, tampered), "does not match the image")


def test_signature_of_another_file(pki: ManufacturerPki) -> None:
    other = sign_chunks([b"another firmware"], pki.ecdsa.key, pki.ecdsa.certificate).b64
    _assert_invalid_signature(_check(pki, other, pki.ecdsa.certificate), "does not match the image")
    other_rsa = sign_chunks([b"x"], pki.rsa.key, pki.rsa.certificate, scheme=FirmwareScheme.RSA_PSS_SHA256).b64
    _assert_invalid_signature(_check(pki, other_rsa, pki.rsa.certificate),
                              "neither as rsa-pss-sha256 nor as rsa-pkcs1v15-sha256")


def test_signature_not_base64(pki: ManufacturerPki) -> None:
    _assert_invalid_signature(_check(pki, "not*base64!", pki.ecdsa.certificate), "not valid base64")
    _assert_invalid_signature(_check(pki, "abc", pki.ecdsa.certificate), "not valid base64")  # bad padding


def test_empty_signature(pki: ManufacturerPki) -> None:
    _assert_invalid_signature(_check(pki, "", pki.ecdsa.certificate), "empty")


def test_signature_wrong_length(pki: ManufacturerPki) -> None:
    ec_sig = base64.b64decode(_sign(pki.ecdsa))
    _assert_invalid_signature(_check(pki, base64.b64encode(ec_sig + bytes(60)).decode(), pki.ecdsa.certificate),
                              "wrong length")
    _assert_invalid_signature(_check(pki, base64.b64encode(ec_sig[:5]).decode(), pki.ecdsa.certificate),
                              "wrong length")
    rsa_sig = base64.b64decode(_sign(pki.rsa, FirmwareScheme.RSA_PKCS1V15_SHA256))
    for bad in (rsa_sig[:-1], rsa_sig + b"\x00"):
        _assert_invalid_signature(_check(pki, base64.b64encode(bad).decode(), pki.rsa.certificate), "wrong length")


def test_signature_garbage_der(pki: ManufacturerPki) -> None:
    _assert_invalid_signature(_check(pki, base64.b64encode(bytes(70)).decode(), pki.ecdsa.certificate),
                              "not a DER-encoded ECDSA signature")


def test_empty_image_at_verification(pki: ManufacturerPki) -> None:
    _assert_invalid_signature(_check(pki, _sign(pki.ecdsa), pki.ecdsa.certificate, []), "image is empty")


def test_ecdsa_signature_with_an_rsa_certificate(pki: ManufacturerPki) -> None:
    report = _check(pki, _sign(pki.ecdsa), pki.rsa.certificate)
    _assert_invalid_signature(report, "wrong length")


# --- step 1 failures: InvalidCertificate + InvalidFirmwareSigningCertificate ----------------------

def _assert_invalid_certificate(report, match: str) -> None:  # type: ignore[no-untyped-def]
    assert report.outcome is FirmwareOutcome.INVALID_CERTIFICATE
    assert report.security_event == "InvalidFirmwareSigningCertificate"
    assert [s.passed for s in report.steps] == [False, None, None]
    assert report.digest is None  # the image was not even hashed
    assert match in report.steps[0].detail, report.steps[0].detail
    with pytest.raises(FirmwareCertificateError) as info:
        report.raise_for_outcome()
    assert isinstance(info.value, ChainError)
    assert info.value.security_event == "InvalidFirmwareSigningCertificate"
    assert info.value.exit_code == 1
    assert v16.response_status(report) == "InvalidCertificate"
    assert v201.response_status(report) == v21.response_status(report) == "InvalidCertificate"
    assert v201.firmware_status(report) is None


def _never_read():  # type: ignore[no-untyped-def]
    raise AssertionError("the image must not be read when step 1 fails")
    yield b""  # pragma: no cover


def test_certificate_not_issued_by_the_given_root(pki: ManufacturerPki) -> None:
    sig = sign_chunks(IMAGE, pki.foreign.key, pki.foreign.certificate).b64
    _assert_invalid_certificate(_check(pki, sig, pki.foreign.certificate, _never_read()),  # type: ignore[arg-type]
                                "not issued directly by an installed ManufacturerRootCertificate")


def test_expired_and_not_yet_valid_certificates(pki: ManufacturerPki) -> None:
    sig = sign_chunks(IMAGE, pki.expired.key, pki.expired.certificate).b64
    _assert_invalid_certificate(_check(pki, sig, pki.expired.certificate), "has expired")
    sig = sign_chunks(IMAGE, pki.not_yet_valid.key, pki.not_yet_valid.certificate).b64
    _assert_invalid_certificate(_check(pki, sig, pki.not_yet_valid.certificate), "not yet valid")
    # the same certificate is fine at a time inside its validity
    ok = check_firmware(IMAGE, sig, pki.not_yet_valid.certificate, [pki.root.certificate], at=AT + timedelta(days=11))
    assert ok.ok


def test_root_given_as_signing_certificate(pki: ManufacturerPki) -> None:
    sig = sign_chunks(IMAGE, pki.root.key).b64
    _assert_invalid_certificate(_check(pki, sig, pki.root.certificate), "is a CA certificate (the manufacturer root itself?)")


def test_intermediate_between_root_and_signing_certificate(pki: ManufacturerPki) -> None:
    leaf = pki.via_intermediate
    sig = sign_chunks(IMAGE, leaf.key, leaf.certificate).b64
    _assert_invalid_certificate(_check(pki, sig, leaf.certificate), "without intermediates")
    # installing the sub-CA as if it were a root does not help either
    report = check_firmware(IMAGE, sig, leaf.certificate, [pki.root.certificate, pki.intermediate.certificate], at=AT)
    _assert_invalid_certificate(report, "is not a self-signed root but an intermediate CA")


def test_pem_garbage_as_signing_certificate(pki: ManufacturerPki) -> None:
    sig = _sign(pki.ecdsa)
    _assert_invalid_certificate(_check(pki, sig, "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"),
                                "signing certificate")
    _assert_invalid_certificate(_check(pki, sig, b"hello world"), "no certificate found")
    _assert_invalid_certificate(_check(pki, sig, ""), "empty")


def test_no_root_installed(pki: ManufacturerPki) -> None:
    report = check_firmware(IMAGE, _sign(pki.ecdsa), pki.ecdsa.certificate, [], at=AT)
    _assert_invalid_certificate(report, "no ManufacturerRootCertificate is installed")


def test_revoked_certificate(pki: ManufacturerPki) -> None:
    sig = _sign(pki.ecdsa)
    report = _check(pki, sig, pki.ecdsa.certificate, revoked_serials={pki.ecdsa.certificate.serial_number})
    assert report.outcome is FirmwareOutcome.REVOKED_CERTIFICATE
    assert report.security_event == "InvalidFirmwareSigningCertificate"
    assert v16.response_status(report) == "RevokedCertificate"  # WP L01.FR.25
    assert v201.response_status(report) == "InvalidCertificate"
    assert v21.response_status(report) == "InvalidCertificate"
    with pytest.raises(FirmwareCertificateError, match="RevokedCertificate"):
        report.raise_for_outcome()


def test_revoked_by_crl_of_the_root(pki: ManufacturerPki) -> None:
    serial = pki.ecdsa.certificate.serial_number
    revoked = (x509.RevokedCertificateBuilder().serial_number(serial)
               .revocation_date(AT - timedelta(days=1)).build())

    def crl(signer: Signer) -> x509.CertificateRevocationList:
        return (x509.CertificateRevocationListBuilder().issuer_name(pki.root.certificate.subject)
                .last_update(AT - timedelta(days=1)).next_update(AT + timedelta(days=7))
                .add_revoked_certificate(revoked).sign(signer.key.private_key, hashes.SHA256()))  # type: ignore[arg-type]

    sig = _sign(pki.ecdsa)
    assert _check(pki, sig, pki.ecdsa.certificate, crls=[crl(pki.root)]).outcome is FirmwareOutcome.REVOKED_CERTIFICATE
    # a CRL not signed by the root is ignored
    assert _check(pki, sig, pki.ecdsa.certificate, crls=[crl(pki.other_root)]).ok


def test_report_serialises(pki: ManufacturerPki) -> None:
    report = _check(pki, _sign(pki.ecdsa), pki.ecdsa.certificate)
    data = report.as_dict()
    assert data["status"] == "SignatureVerified"
    assert data["scheme"] == "ecdsa-sha256"
    assert [s["outcome"] for s in data["steps"]] == ["ok", "ok", "ok"]  # type: ignore[index]
