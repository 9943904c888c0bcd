"""``ocppsec firmware``: sign images in CI pipelines, verify them as a charging station would.

Parses, builds adapters (key file or PKCS#11 token, image file), calls
:mod:`ocppsec.firmware_signing`, renders text or ``--json``. A progress bar appears only when stderr is a
terminal, the image is large and ``--json`` is not given.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from ocppsec.cli._common import echo_json, parse_time, passphrase_for_reading, read_input_file
from ocppsec.firmware_signing.files import BackgroundDigest, image_size
from ocppsec.firmware_signing.schemes import FirmwareScheme
from ocppsec.pki.errors import InputError, OcppsecError, UsageError
from ocppsec.pki.versions import OcppVersion

if TYPE_CHECKING:
    from cryptography import x509

    from ocppsec.firmware_signing.verification import FirmwareVerification
    from ocppsec.pki.keys import SigningKey

# `firmware sign` imports what signing needs and nothing else: verification (path validation, the event
# catalogue, the OCPP wire names) is imported by `firmware verify` (ADR 20).

__all__ = ["firmware"]

PROGRESS_THRESHOLD = 8 * 1024 * 1024  # images smaller than this hash in well under a second


def _show_progress(size: int, enabled: bool) -> bool:
    return enabled and size >= PROGRESS_THRESHOLD and sys.stderr.isatty()


@contextmanager
def _progress(path: str, enabled: bool, label: str) -> Iterator[Callable[[int], None] | None]:
    size = image_size(path)
    if not _show_progress(size, enabled):
        yield None
        return
    with click.progressbar(length=size, label=label, file=sys.stderr, show_eta=True) as bar:
        yield bar.update


def _load_key(spec: str) -> SigningKey:
    if spec.strip().lower().startswith("pkcs11:"):
        from ocppsec.pki.keys.pkcs11 import open_pkcs11_key

        return open_pkcs11_key(spec)
    from ocppsec.pki.keys.files import KEY_FILE_LIMIT, is_encrypted_key, load_key_pem

    data = read_input_file(spec, "key file", limit=KEY_FILE_LIMIT)  # a key, or certificate(s) + key in one PEM
    passphrase = passphrase_for_reading() if is_encrypted_key(data) else None
    return load_key_pem(data, passphrase, label=spec)


@click.group("firmware")
def firmware() -> None:
    """Sign firmware images and verify signed firmware (OCPP L01, 1.6 SignedUpdateFirmware)."""


@firmware.command("sign")
@click.argument("image", type=click.Path())
@click.option("--key", "key_spec", required=True, metavar="KEY",
              help="Key file (passphrase from OCPPSEC_PASSPHRASE) or PKCS#11 URI pkcs11:token=...;object=...")
@click.option("--cert", "cert_path", required=True, type=click.Path(),
              help="Firmware-signing certificate (PEM) issued by the manufacturer root.")
@click.option("--scheme", type=click.Choice([s.value for s in FirmwareScheme]), default=None,
              help="Signature scheme; default ecdsa-sha256 for EC keys (RSA keys must choose).")
@click.option("--location", default=None, metavar="URL", help="Download URL for the firmware object.")
@click.option("--ocpp", "ocpp_version", type=click.Choice(["1.6", "2.0.1", "2.1"]), default="2.0.1",
              show_default=True, help="OCPP version of the --json firmware object.")
@click.option("--retrieve-at", default=None, metavar="TIME", help="retrieveDateTime (default: now).")
@click.option("--install-at", default=None, metavar="TIME", help="installDateTime (default: omitted).")
@click.option("--out", "out_path", default=None, type=click.Path(),
              help="Write the detached base64 signature to this file.")
@click.option("--json", "as_json", is_flag=True, help="Print the ready OCPP firmware object.")
def sign(image: str, key_spec: str, cert_path: str, scheme: str | None, location: str | None,
         ocpp_version: str, retrieve_at: str | None, install_at: str | None, out_path: str | None,
         as_json: bool) -> None:
    """Sign IMAGE; print the base64 signature (or, with --json, the OCPP firmware object)."""
    from ocppsec.cli import _prefetch

    pending = _prefetch.take(image)  # started before click was imported, when the arguments allowed it
    try:
        if as_json and not location:
            raise UsageError("--json prints the OCPP firmware object, whose location is required: add --location",
                             hint="pass --location URL (where stations download the image)")
        version = OcppVersion.parse(ocpp_version)
        if pending is None:
            pending = BackgroundDigest(image)  # hashing starts now, while the certificate and key load
        from ocppsec.firmware_signing.signing import sign_image_digest, signing_scheme
        from ocppsec.pki.pem import load_certificate

        certificate = load_certificate(read_input_file(cert_path, "signing certificate"),
                                       what=f"certificate {cert_path}")
        key = _load_key(key_spec)
        chosen = signing_scheme(key, certificate, FirmwareScheme.parse(scheme) if scheme else None)
        if _show_progress(pending.size, not as_json):
            with click.progressbar(length=pending.size, label="signing", file=sys.stderr, show_eta=True) as bar:
                digest = pending.result(bar.update)
        else:
            digest = pending.result()
    finally:
        if pending is not None:
            pending.cancel()  # a no-op once hashed; stops reading after an error
    signature = sign_image_digest(digest, key, certificate, chosen)
    obj = None
    if location:
        from ocppsec.firmware_signing.codecs import firmware_object

        obj = firmware_object(signature, location=location, retrieve_at=parse_time(retrieve_at),
                              install_at=parse_time(install_at) if install_at else None, version=version)
    if out_path:
        from ocppsec.firmware_signing.files import write_signature_file

        write_signature_file(out_path, signature)
    if as_json:
        echo_json(obj)
    else:
        click.echo(signature.b64)
        click.echo(f"signed {signature.digest} with {signature.scheme.value} ({key.label})", err=True)


def _render(report: FirmwareVerification, version: OcppVersion) -> dict[str, object]:
    from ocppsec.firmware_signing.codecs import version_module
    from ocppsec.pki.events.catalogue import is_critical

    mod = version_module(version)
    data = report.as_dict()
    event = report.security_event
    data["ocpp"] = {
        "version": version.value,
        "updateFirmwareResponseStatus": mod.response_status(report),
        "firmwareStatus": mod.firmware_status(report),
        "securityEvent": {"type": event, "critical": is_critical(event, version)} if event else None,
    }
    return data


@firmware.command("verify")
@click.argument("image", type=click.Path())
@click.option("--signature", "signature_b64", default=None, metavar="B64", help="The base64 signature.")
@click.option("--signature-file", default=None, type=click.Path(),
              help="File holding the base64 signature.")
@click.option("--cert", "cert_path", required=True, type=click.Path(),
              help="Signing certificate (PEM), as carried in firmware.signingCertificate.")
@click.option("--root", "root_paths", required=True, multiple=True, type=click.Path(),
              help="Installed ManufacturerRootCertificate (PEM); repeat for several.")
@click.option("--at", "at_text", default=None, metavar="TIME", help="Validation time (default: now).")
@click.option("--scheme", type=click.Choice([s.value for s in FirmwareScheme]), default=None,
              help="Declared scheme; default: ECDSA for EC keys, RSA-PSS then PKCS#1 v1.5 for RSA keys.")
@click.option("--crl", "crl_paths", multiple=True, type=click.Path(),
              help="CRL (PEM/DER) of the manufacturer root; a listed certificate gives RevokedCertificate.")
@click.option("--ocpp", "ocpp_version", type=click.Choice(["1.6", "2.0.1", "2.1"]), default="2.0.1",
              show_default=True, help="OCPP version whose statuses and events are reported.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify(image: str, signature_b64: str | None, signature_file: str | None, cert_path: str,
           root_paths: tuple[str, ...], at_text: str | None, scheme: str | None, crl_paths: tuple[str, ...],
           ocpp_version: str, as_json: bool) -> None:
    """Verify IMAGE as a station does; exit 0 on SignatureVerified, 1 otherwise."""
    from ocppsec.firmware_signing.codecs import version_module
    from ocppsec.firmware_signing.files import check_file, read_signature_file
    from ocppsec.pki.events.catalogue import is_critical
    from ocppsec.pki.pem import load_certificates

    if (signature_b64 is None) == (signature_file is None):
        raise UsageError("give exactly one of --signature B64 and --signature-file FILE")
    version = OcppVersion.parse(ocpp_version)
    at = parse_time(at_text)
    image_size(image)
    signature = signature_b64 if signature_b64 is not None else read_signature_file(str(signature_file))
    cert_pem = read_input_file(cert_path, "signing certificate")
    roots = [c for p in root_paths for c in load_certificates(read_input_file(p, "root certificate"),
                                                                what=f"root certificate {p}")]
    crls = [_load_crl(p) for p in crl_paths]
    with _progress(image, not as_json, "verifying") as progress:
        report = check_file(image, signature, cert_pem, roots, at=at, crls=crls,
                            scheme=FirmwareScheme.parse(scheme) if scheme else None, progress=progress)
    mod = version_module(version)
    if as_json:
        data = _render(report, version)
        if not report.ok:  # the report, with the error object every failed --json command prints
            try:
                report.raise_for_outcome()
            except OcppsecError as exc:
                data["error"] = exc.to_json()
        echo_json(data)
        if not report.ok:
            sys.exit(1)  # SystemExit, not click's Exit: the exit code survives standalone_mode=False
        return
    for step in report.steps:
        click.echo(str(step))
    if report.ok:
        click.echo(report.summary())
        return
    status = mod.response_status(report) if mod.firmware_status(report) is None else mod.firmware_status(report)
    event = report.security_event
    failed = report.failed_step
    assert failed is not None
    assert event is not None
    critical = "critical" if is_critical(event, version) else "not critical"
    click.echo(f"error: {status}: step {failed.number} failed: {failed.detail} "
               f"(security event: {event}, {critical} in OCPP {version.value})", err=True)
    sys.exit(1)


def _load_crl(path: str) -> x509.CertificateRevocationList:
    from cryptography import x509

    from ocppsec.pki._untrusted import PYCA_INPUT_ERRORS, describe_pyca_error

    data = read_input_file(path, "CRL", limit=64 << 20)
    if not data.strip():
        raise InputError(f"CRL {path} is empty", hint="give the CRL file (PEM or DER)")
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except PYCA_INPUT_ERRORS as exc:
        raise InputError(f"CRL {path} is not a valid X.509 CRL ({describe_pyca_error(exc)})") from None
