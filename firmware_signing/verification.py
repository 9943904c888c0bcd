"""Verifying a signed firmware image as a charging station does, as numbered steps (sans-I/O).

1. **Signing certificate** (L01.FR.12, L01.FR.21/22, L01 remarks): the certificate is issued *directly*
   by an installed ManufacturerRootCertificate (no intermediates) and is valid at ``at``; it is not
   known to be revoked. Failure: status InvalidCertificate (1.6 also RevokedCertificate) and security
   event InvalidFirmwareSigningCertificate. The image is not even hashed then (a station rejects the
   request before downloading).
2. **Signature** (L01.FR.03/04): the signature over the SHA-256 of the whole image verifies with the
   certificate's key under the declared scheme (RSA without a declared scheme: PSS, then PKCS#1 v1.5).
   Failure: InvalidSignature and event InvalidFirmwareSignature.
3. **SignatureVerified**.

:func:`check_firmware` returns a :class:`FirmwareVerification` listing every step and its outcome;
:func:`verify_firmware` returns it on success and raises otherwise. Mapping to the FirmwareStatus
values, response statuses and security events of each OCPP version is in ``v16`` / ``v201`` / ``v21``.
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ParamSpec

from cryptography import x509

from ocppsec.firmware_signing.digest import Chunk, ImageDigest, hash_chunks
from ocppsec.firmware_signing.errors import FirmwareCertificateError, FirmwareSignatureError
from ocppsec.firmware_signing.schemes import FirmwareScheme, SignatureAlgorithm, verify_image_signature
from ocppsec.pki._untrusted import read_certificate
from ocppsec.pki.chain import verify_chain
from ocppsec.pki.errors import ChainError, InputError, UsageError
from ocppsec.pki.pem import load_certificate

__all__ = [
    "FirmwareOutcome",
    "FirmwareVerification",
    "StepOutcome",
    "check_firmware",
    "decode_signature",
    "verify_firmware",
]

_P = ParamSpec("_P")


class FirmwareOutcome(enum.Enum):
    """The result of verification, named as OCPP names it (same names in 1.6, 2.0.1 and 2.1)."""

    SIGNATURE_VERIFIED = "SignatureVerified"
    INVALID_SIGNATURE = "InvalidSignature"
    INVALID_CERTIFICATE = "InvalidCertificate"
    REVOKED_CERTIFICATE = "RevokedCertificate"

    @property
    def security_event(self) -> str | None:
        """The security event a station raises (same name in 1.6, 2.0.1, 2.1; criticality differs)."""
        return {
            FirmwareOutcome.INVALID_SIGNATURE: "InvalidFirmwareSignature",
            FirmwareOutcome.INVALID_CERTIFICATE: "InvalidFirmwareSigningCertificate",
            FirmwareOutcome.REVOKED_CERTIFICATE: "InvalidFirmwareSigningCertificate",
        }.get(self)


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """One numbered step: ``passed`` is None when the step did not run (an earlier one failed)."""

    number: int
    title: str
    passed: bool | None
    detail: str
    requirement: str

    @property
    def label(self) -> str:
        return {True: "ok", False: "FAILED", None: "skipped"}[self.passed]

    def __str__(self) -> str:
        return f"step {self.number} {self.label:7} {self.title}: {self.detail}"

    def as_dict(self) -> dict[str, object]:
        return {"step": self.number, "title": self.title, "outcome": self.label, "detail": self.detail,
                "requirement": self.requirement}


_TITLES = {
    1: ("signing certificate issued directly by an installed ManufacturerRootCertificate and valid",
        "L01.FR.12, L01.FR.22"),
    2: ("signature over the whole image", "L01.FR.03, L01.FR.04"),
    3: ("SignatureVerified", "L01.FR.04"),
}


def _step(number: int, passed: bool | None, detail: str) -> StepOutcome:
    title, requirement = _TITLES[number]
    return StepOutcome(number, title, passed, detail, requirement)


@dataclass(frozen=True, slots=True)
class FirmwareVerification:
    """Report of one verification: every step, the outcome, and what was used."""

    outcome: FirmwareOutcome
    steps: tuple[StepOutcome, ...]
    at: datetime
    scheme: FirmwareScheme | SignatureAlgorithm | None = None
    digest: ImageDigest | None = None
    signing_certificate: x509.Certificate | None = None
    root: x509.Certificate | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is FirmwareOutcome.SIGNATURE_VERIFIED

    @property
    def security_event(self) -> str | None:
        return self.outcome.security_event

    @property
    def failed_step(self) -> StepOutcome | None:
        return next((s for s in self.steps if s.passed is False), None)

    @property
    def reason(self) -> str:
        failed = self.failed_step
        return failed.detail if failed else "the firmware signature verified"

    def summary(self) -> str:
        """One line naming the status, the reason and the security event."""
        if self.ok:
            return f"{self.outcome.value}: {self.scheme} signature over {self.digest}"
        failed = self.failed_step
        assert failed is not None
        return f"{self.outcome.value}: step {failed.number} failed: {failed.detail}"

    def as_dict(self) -> dict[str, object]:
        cert = self.signing_certificate
        return {
            "status": self.outcome.value,
            "securityEvent": self.security_event,
            "scheme": str(self.scheme) if self.scheme is not None else None,
            "digest": ({"algorithm": self.digest.algorithm, "value": self.digest.hex, "size": self.digest.size}
                       if self.digest else None),
            "signingCertificate": cert.subject.rfc4514_string() if cert is not None else None,
            "root": self.root.subject.rfc4514_string() if self.root is not None else None,
            "at": self.at.isoformat(),
            "steps": [s.as_dict() for s in self.steps],
        }

    def raise_for_outcome(self) -> FirmwareVerification:
        """Return self when verified; raise the matching error otherwise (``verify_*`` semantics)."""
        if self.ok:
            return self
        if self.outcome is FirmwareOutcome.INVALID_SIGNATURE:
            raise FirmwareSignatureError(self.summary(), report=self)
        raise FirmwareCertificateError(self.summary(), report=self, requirement=None)


def _describe(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or f"serial {cert.serial_number:x}"


def _is_self_signed(cert: x509.Certificate) -> bool:
    if cert.subject != cert.issuer:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except Exception:  # InvalidSignature, ValueError, TypeError all mean "no"
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _is_revoked(
    cert: x509.Certificate, root: x509.Certificate, revoked_serials: Collection[int],
    crls: Sequence[x509.CertificateRevocationList], at: datetime,
) -> str | None:
    if cert.serial_number in revoked_serials:
        return f"serial {cert.serial_number:X} is on the revocation list given"
    for crl in crls:
        if crl.issuer != root.subject or not crl.is_signature_valid(root.public_key()):  # type: ignore[arg-type]
            continue
        entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
        if entry is not None and entry.revocation_date_utc <= at:
            return f"serial {cert.serial_number:X} was revoked by {_describe(root)} on {entry.revocation_date_utc:%Y-%m-%d}"
    return None


def _check_certificate(
    signing_certificate: x509.Certificate | str | bytes,
    roots: Sequence[x509.Certificate],
    at: datetime,
    revoked_serials: Collection[int],
    crls: Sequence[x509.CertificateRevocationList],
) -> tuple[FirmwareOutcome | None, str, x509.Certificate | None, x509.Certificate | None]:
    """Step 1; returns (failure outcome or None, detail, certificate, root)."""
    bad = FirmwareOutcome.INVALID_CERTIFICATE
    if isinstance(signing_certificate, x509.Certificate):
        try:  # parsed by the caller: its lazily parsed fields may still be unreadable
            cert = read_certificate(signing_certificate, what="signing certificate")
        except InputError as exc:
            return bad, str(exc), None, None
    else:
        try:
            cert = load_certificate(signing_certificate, what="signing certificate")
        except InputError as exc:
            return bad, str(exc), None, None
    if not roots:
        return bad, "no ManufacturerRootCertificate is installed", cert, None
    if _is_ca(cert):
        hint = " (the manufacturer root itself?)" if _is_self_signed(cert) else ""
        return bad, (f"the signing certificate {_describe(cert)} is a CA certificate{hint}; firmware is signed "
                     "with an end-entity firmware-signing certificate"), cert, None
    issuers = [r for r in roots if r.subject == cert.issuer]
    if not issuers:
        installed = "; ".join(_describe(r) for r in roots)
        return bad, (f"{_describe(cert)} is not issued directly by an installed ManufacturerRootCertificate "
                     f"(its issuer is {cert.issuer.rfc4514_string()}; installed: {installed}); firmware-signing "
                     "certificates are issued by the manufacturer root itself, without intermediates"), cert, None
    anchors = [r for r in issuers if _is_self_signed(r)]
    if not anchors:
        return bad, (f"the issuer of {_describe(cert)}, {_describe(issuers[0])}, is not a self-signed root but an "
                     "intermediate CA; firmware-signing certificates must be issued directly by the manufacturer "
                     "root"), cert, None
    try:
        verified = verify_chain(cert, (), anchors, at=at, max_depth=1)
    except ChainError as exc:
        return bad, exc.message, cert, None
    root = verified.root
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        if not ku.digital_signature:
            return bad, f"{_describe(cert)} lacks keyUsage digitalSignature", cert, root
    except x509.ExtensionNotFound:
        pass
    revoked = _is_revoked(cert, root, revoked_serials, crls, at)
    if revoked:
        return FirmwareOutcome.REVOKED_CERTIFICATE, f"{_describe(cert)} is revoked: {revoked}", cert, root
    return None, (f"{_describe(cert)} issued by {_describe(root)}, valid "
                  f"{cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d}"), cert, root


def decode_signature(signature: str | bytes) -> bytes:
    """The signature bytes: ``str`` is base64 as OCPP carries it (whitespace ignored); ``bytes`` are raw."""
    if isinstance(signature, bytes):
        return signature
    text = "".join(signature.split())
    if not text:
        raise FirmwareSignatureError("the signature is empty")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise FirmwareSignatureError(
            f"the signature is not valid base64 ({len(text)} characters starting {text[:12]!r})"
        ) from None


def check_firmware(
    image: Iterable[Chunk] | ImageDigest,
    signature: str | bytes,
    signing_certificate: x509.Certificate | str | bytes,
    roots: Sequence[x509.Certificate],
    *,
    at: datetime,
    scheme: FirmwareScheme | SignatureAlgorithm | None = None,
    revoked_serials: Collection[int] = (),
    crls: Sequence[x509.CertificateRevocationList] = (),
) -> FirmwareVerification:
    """Run the three steps and report; never raises for a bad image, signature or certificate.

    ``image``: the image as chunks (hashed here, only if step 1 passed) or its SHA-256 digest.
    ``signature``: base64 text (the OCPP field) or raw bytes. ``signing_certificate``: a certificate or
    its PEM (the OCPP field). ``roots``: the installed ManufacturerRootCertificates.
    """
    if at.tzinfo is None:
        raise UsageError("`at` must be an aware datetime (UTC)")
    failure, detail, cert, root = _check_certificate(signing_certificate, roots, at, revoked_serials, crls)
    if failure is not None:
        steps = (_step(1, False, detail), _step(2, None, "not run"), _step(3, None, "not reached"))
        return FirmwareVerification(failure, steps, at, scheme, None, cert, root)
    assert cert is not None
    step1 = _step(1, True, detail)
    digest: ImageDigest | None = None
    try:
        raw = decode_signature(signature)
        digest = image if isinstance(image, ImageDigest) else hash_chunks(image, "sha256")
        if digest.size == 0:
            raise FirmwareSignatureError("the firmware image is empty")
        used = verify_image_signature(cert.public_key(), digest, raw, scheme)
    except FirmwareSignatureError as exc:
        steps = (step1, _step(2, False, exc.message), _step(3, None, "not reached"))
        return FirmwareVerification(FirmwareOutcome.INVALID_SIGNATURE, steps, at, scheme, digest, cert, root)
    assert digest is not None
    steps = (
        step1,
        _step(2, True, f"{used} signature verified over {digest}"),
        _step(3, True, "firmware status SignatureVerified; the image may be installed"),
    )
    return FirmwareVerification(FirmwareOutcome.SIGNATURE_VERIFIED, steps, at, used, digest, cert, root)


def raising(check: Callable[_P, FirmwareVerification], name: str, doc: str) -> Callable[_P, FirmwareVerification]:
    """The ``verify_*`` twin of a ``check_*`` function: same parameters, the report back only when the
    outcome is SignatureVerified, else :meth:`FirmwareVerification.raise_for_outcome` raises."""

    def verify(*args: _P.args, **kwargs: _P.kwargs) -> FirmwareVerification:
        return check(*args, **kwargs).raise_for_outcome()

    functools.update_wrapper(verify, check)  # signature and annotations of the check
    verify.__name__ = verify.__qualname__ = name
    verify.__doc__ = doc
    return verify


verify_firmware = raising(
    check_firmware, "verify_firmware",
    """Like :func:`check_firmware`, but raise :class:`FirmwareCertificateError` (step 1) or
    :class:`FirmwareSignatureError` (step 2) unless the outcome is SignatureVerified.""",
)
