"""Key files: PKCS#8 PEM, encrypted with a passphrase unless the user says otherwise, mode 0600.

Writes are atomic (temporary file, fsync, rename), so a kill never leaves half a key behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from ocppsec.pki.errors import BackendError, InputError, KeyError_, UsageError, WrongPassphraseError
from ocppsec.pki.keys import LocalKey, PrivateKey

__all__ = ["atomic_write", "key_to_pem", "load_key_file", "load_key_pem", "write_key_file"]


def key_to_pem(key: PrivateKey, passphrase: bytes | None) -> bytes:
    """PKCS#8 PEM; encrypted (AES-256-CBC, PBKDF2 via OpenSSL's best available) when a passphrase is given."""
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` atomically with ``mode`` (fsync of the file and of its directory)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise BackendError(f"cannot write {path}: {exc.strerror or exc}") from None
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_key_file(path: Path, key: PrivateKey, passphrase: bytes | None) -> None:
    """Store a private key (0600; encrypted when ``passphrase`` is given)."""
    atomic_write(Path(path), key_to_pem(key, passphrase), 0o600)


def load_key_pem(data: bytes, passphrase: bytes | None, *, label: str = "key") -> LocalKey:
    """Load a PEM or DER private key, telling a wrong passphrase apart from garbage."""
    encrypted = b"ENCRYPTED" in data[:200]
    if encrypted and not passphrase:
        raise UsageError(f"{label} is encrypted and no passphrase was given", hint="set OCPPSEC_PASSPHRASE")
    try:
        if b"-----BEGIN" in data:
            key = serialization.load_pem_private_key(data, passphrase if encrypted else None)
        else:
            key = serialization.load_der_private_key(data, passphrase if encrypted else None)
    except (ValueError, TypeError) as exc:
        text = str(exc).lower()
        if encrypted and ("decrypt" in text or "password" in text or "bad" in text or _ciphertext_intact(data)):
            raise WrongPassphraseError(
                f"wrong passphrase for {label}", hint="check OCPPSEC_PASSPHRASE"
            ) from None
        raise InputError(f"{label} is not a readable private key ({exc})") from None
    except Exception as exc:  # pyca raises UnsupportedAlgorithm for exotic keys
        raise KeyError_(f"{label}: unsupported private key ({exc})") from None
    return LocalKey(key, label)  # type: ignore[arg-type]


def _ciphertext_intact(data: bytes) -> bool:
    """Whether an encrypted PEM key is whole, so that a failure to load it is the passphrase's.

    A wrong passphrase does not always fail the decryption's padding check: about one in 256 decrypts to
    garbage with valid padding, which then fails as ASN.1. For PKCS#8 the outer EncryptedPrivateKeyInfo is
    plain DER, so an intact outer structure says the bytes are fine and the passphrase is not. Traditional
    OpenSSL PEM (``DEK-Info``) has nothing to check around the ciphertext: the passphrase is taken as wrong.
    """
    import base64
    import binascii

    if b"DEK-Info:" in data[:400]:
        return True
    lines = data.strip().splitlines()
    if len(lines) < 3 or not lines[0].startswith(b"-----BEGIN ") or not lines[-1].startswith(b"-----END "):
        return False
    try:
        der = base64.b64decode(b"".join(lines[1:-1]), validate=True)
    except (binascii.Error, ValueError):
        return False
    return _one_der_sequence(der)


def _one_der_sequence(der: bytes) -> bool:
    """``der`` is exactly one DER SEQUENCE (its length field agrees with the bytes)."""
    if len(der) < 2 or der[0] != 0x30:
        return False
    first = der[1]
    if first < 0x80:
        return 2 + first == len(der)
    count = first & 0x7F
    if count == 0 or count > 4 or len(der) < 2 + count:
        return False
    return 2 + count + int.from_bytes(der[2:2 + count], "big") == len(der)


def load_key_file(path: Path | str, passphrase: bytes | None) -> LocalKey:
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"key file {p} does not exist") from None
    except OSError as exc:
        raise BackendError(f"cannot read key file {p}: {exc.strerror}") from None
    return load_key_pem(data, passphrase, label=str(p))
