"""File adapter: streams images from disk in 64 KiB chunks into the sans-I/O core.

Memory stays flat whatever the image size (one reused 64 KiB buffer). This module and the CLI are
the only places that open files or read the clock for firmware signing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509

from ocppsec.firmware_signing.digest import CHUNK_SIZE
from ocppsec.firmware_signing.schemes import FirmwareScheme, SignatureAlgorithm
from ocppsec.firmware_signing.signing import FirmwareSignature, sign_chunks
from ocppsec.firmware_signing.verification import FirmwareVerification, check_firmware, raising
from ocppsec.pki.errors import BackendError, InputError, UsageError
from ocppsec.pki.keys import SigningKey

__all__ = [
    "check_file",
    "image_size",
    "iter_file_chunks",
    "read_signature_file",
    "sign_file",
    "verify_file",
    "write_signature_file",
]

Progress = Callable[[int], None]


@contextlib.contextmanager
def _usage_errors(what: str, p: Path) -> Iterator[None]:
    """One-line UsageErrors for a missing, unreadable or directory ``what`` (the user named a wrong path)."""
    try:
        yield
    except FileNotFoundError:
        raise UsageError(f"{what} {p} does not exist") from None
    except IsADirectoryError:
        raise UsageError(f"{what} {p} is a directory") from None
    except PermissionError:
        raise UsageError(f"cannot read {what} {p}: permission denied") from None


def image_size(path: str | os.PathLike[str]) -> int:
    """Size of an image file, with one-line errors for a missing file or a directory."""
    p = Path(path)
    with _usage_errors("firmware image", p):
        st = p.stat()
    if p.is_dir():
        raise UsageError(f"firmware image {p} is a directory, not a file")
    return st.st_size


def iter_file_chunks(
    path: str | os.PathLike[str], *, chunk_size: int = CHUNK_SIZE, progress: Progress | None = None
) -> Iterator[memoryview]:
    """Yield the file's bytes in ``chunk_size`` pieces (one reused buffer: consume each chunk at once).

    ``progress`` is called with the number of bytes of each chunk read.
    """
    image_size(path)
    buf = bytearray(chunk_size)
    view = memoryview(buf)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise UsageError(f"cannot open firmware image {path}: {exc.strerror}") from None
    try:
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        with open(fd, "rb", buffering=0, closefd=False) as fh:
            while True:
                try:
                    n = fh.readinto(buf)
                except OSError as exc:
                    raise BackendError(f"reading firmware image {path} failed: {exc.strerror}") from None
                if not n:
                    return
                if progress is not None:
                    progress(n)
                yield view[:n]
    finally:
        os.close(fd)


def sign_file(
    path: str | os.PathLike[str],
    key: SigningKey,
    certificate: x509.Certificate | None = None,
    *,
    scheme: FirmwareScheme | None = None,
    progress: Progress | None = None,
) -> FirmwareSignature:
    """Sign a firmware image file (SHA-256 of the whole file)."""
    return sign_chunks(iter_file_chunks(path, progress=progress), key, certificate, scheme=scheme)


def check_file(
    path: str | os.PathLike[str],
    signature: str | bytes,
    signing_certificate: x509.Certificate | str | bytes,
    roots: Sequence[x509.Certificate],
    *,
    at: datetime | None = None,
    scheme: FirmwareScheme | SignatureAlgorithm | None = None,
    revoked_serials: Collection[int] = (),
    crls: Sequence[x509.CertificateRevocationList] = (),
    progress: Progress | None = None,
) -> FirmwareVerification:
    """Report on a firmware image file (``at`` defaults to now); see :func:`check_firmware`."""
    image_size(path)
    return check_firmware(
        iter_file_chunks(path, progress=progress), signature, signing_certificate, roots,
        at=at or datetime.now(UTC), scheme=scheme, revoked_serials=revoked_serials, crls=crls,
    )


verify_file = raising(check_file, "verify_file",
                      "Verify a firmware image file; return the report, or raise unless SignatureVerified.")


def read_signature_file(path: str | os.PathLike[str]) -> str:
    """A detached signature file: base64 text (whitespace and line breaks allowed)."""
    p = Path(path)
    with _usage_errors("signature file", p):
        data = p.read_bytes()
    if len(data) > 64 * 1024:
        raise InputError(f"signature file {p} is {len(data)} bytes; a base64 firmware signature is under 1 KiB")
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        # Raw binary (e.g. openssl dgst -sign output) is not the OCPP form, but it is not base64 either;
        # let the verifier report it as a malformed signature.
        return data.decode("latin-1")


def write_signature_file(path: str | os.PathLike[str], signature: FirmwareSignature) -> None:
    """Write the detached base64 signature (one line) to ``path``."""
    try:
        Path(path).write_text(signature.b64 + "\n", encoding="ascii")
    except OSError as exc:
        raise BackendError(f"cannot write signature file {path}: {exc.strerror or exc}") from None
