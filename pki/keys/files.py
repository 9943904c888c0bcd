"""Key files: PKCS#8 PEM, encrypted with a passphrase unless the user says otherwise, mode 0600.

Writes are atomic (temporary file, fsync, rename), so a kill never leaves half a key behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from ocppsec.pki.errors import FileError, InputError, KeyError_, UsageError, WrongPassphraseError
from ocppsec.pki.keys import LocalKey, PrivateKey

__all__ = [
    "KEY_FILE_LIMIT",
    "atomic_write",
    "is_encrypted_key",
    "key_to_pem",
    "load_key_file",
    "load_key_pem",
    "private_key_block",
    "write_key_file",
]


def key_to_pem(key: PrivateKey, passphrase: bytes | None) -> bytes:
    """PKCS#8 PEM; encrypted (AES-256-CBC, PBKDF2 via OpenSSL's best available) when a passphrase is given."""
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` atomically with ``mode`` (fsync of the file and of its directory).

    Errors name ``path`` (never the temporary file beside it) and say what to do (:class:`FileError`)."""
    from ocppsec.pki._io import file_error

    path = Path(path)
    parent = path.parent
    try:
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise FileError(f"cannot write {path}: directory {parent} does not exist", path=str(path),
                            hint=f"create it first (mkdir -p {parent})") from None
        raise file_error(exc, path, what="", action="write") from None
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
        raise file_error(exc, path, what="", action="write") from None
    try:
        dir_fd = os.open(parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise file_error(exc, parent, what="directory", action="sync") from None


def write_key_file(path: Path, key: PrivateKey, passphrase: bytes | None) -> None:
    """Store a private key (0600; encrypted when ``passphrase`` is given)."""
    atomic_write(Path(path), key_to_pem(key, passphrase), 0o600)


_KEY_LABELS = frozenset({"PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY", "DSA PRIVATE KEY"})
KEY_FILE_LIMIT = 1 << 20


def private_key_block(data: bytes, *, label: str = "key") -> bytes | None:
    """The one private-key PEM block of ``data`` (a key file, or certificates and a key in one file, as
    ``ocppsec pki export NAME --key`` writes); ``None`` when ``data`` is not PEM (DER is tried then)."""
    if b"-----BEGIN" not in data:
        return None
    from ocppsec.pki.pem import pem_blocks

    blocks = pem_blocks(data)
    keys = [block for name, block in blocks if name in _KEY_LABELS]
    if len(keys) > 1:
        raise InputError(f"{label} holds {len(keys)} private keys", hint="give a file with one private key")
    if not keys:
        found = sorted({name for name, _ in blocks})
        held = f"only {', '.join(found)} PEM blocks" if found else "a truncated or malformed PEM block"
        raise InputError(f"{label} holds no private key ({held})",
                         hint="give the key file (PEM 'PRIVATE KEY' or 'ENCRYPTED PRIVATE KEY')")
    return keys[0]


def is_encrypted_key(data: bytes) -> bool:
    """Whether the private key in ``data`` (a PEM key file or a combined certificate + key PEM) is encrypted."""
    try:
        block = private_key_block(data)
    except InputError:
        return False
    if block is None:
        return False
    return block.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY") or b"Proc-Type: 4,ENCRYPTED" in block


def load_key_pem(data: bytes, passphrase: bytes | None, *, label: str = "key") -> LocalKey:
    """Load a PEM or DER private key, telling a wrong passphrase apart from garbage.

    A PEM file may hold certificates beside the key (certificate(s) + encrypted key, as ``ocppsec pki
    export NAME --key`` writes); the one private-key block is used."""
    if not data.strip():
        raise InputError(f"{label} is empty", hint="give the private key file (PEM)")
    block = private_key_block(data, label=label)
    encrypted = is_encrypted_key(data)
    if encrypted and not passphrase:
        raise UsageError(f"{label} is encrypted and no passphrase was given", hint="set OCPPSEC_PASSPHRASE")
    try:
        if block is not None:
            key = serialization.load_pem_private_key(block, passphrase if encrypted else None)
        else:
            key = serialization.load_der_private_key(data, None)
    except (ValueError, TypeError) as exc:
        text = str(exc).lower()
        if encrypted and ("decrypt" in text or "password" in text or "bad" in text
                          or (block is not None and _ciphertext_intact(block))):
            raise WrongPassphraseError(f"wrong passphrase for {label} (check OCPPSEC_PASSPHRASE)") from None
        if block is None:
            raise InputError(f"{label} is not a private key: neither PEM nor DER",
                             hint="give the private key file (PEM 'PRIVATE KEY' or 'ENCRYPTED PRIVATE KEY')") from None
        raise InputError(f"{label} is not a readable private key ({_one_line(str(exc))})") from None
    except Exception as exc:  # pyca raises UnsupportedAlgorithm for exotic keys
        raise KeyError_(f"{label}: unsupported private key ({_one_line(str(exc))})") from None
    return LocalKey(key, label)  # type: ignore[arg-type]


def _one_line(text: str) -> str:
    return " ".join(text.split())


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
    """:func:`load_key_pem` on a file (at most 1 MiB, a regular file; one-line errors otherwise)."""
    from ocppsec.pki._io import read_bounded

    data = read_bounded(path, what="key file", limit=KEY_FILE_LIMIT)
    return load_key_pem(data, passphrase, label=str(path))
