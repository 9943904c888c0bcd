"""Hashing a firmware image given as an iterable of chunks (pure: the core never opens files).

L01.FR.04: the signature is calculated over the *entire* firmware file with SHA-256. The adapters in
:mod:`ocppsec.firmware_signing.files` stream files in :data:`CHUNK_SIZE` (64 KiB) chunks, which keeps
memory flat whatever the image size and is the fastest chunk size measured for OpenSSL's SHA-256.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ocppsec.pki.errors import UsageError

__all__ = ["CHUNK_SIZE", "HASH_NAMES", "Chunk", "ImageDigest", "hash_chunks"]

CHUNK_SIZE = 64 * 1024

Chunk = bytes | bytearray | memoryview

_HASHES: dict[str, Callable[[], hashlib._Hash]] = {
    "sha1": hashlib.sha1,
    "sha224": hashlib.sha224,
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}
HASH_NAMES = tuple(_HASHES)


@dataclass(frozen=True, slots=True)
class ImageDigest:
    """The hash of a whole image: algorithm name (``sha256``), digest bytes, image size in bytes."""

    algorithm: str
    value: bytes
    size: int

    @property
    def hex(self) -> str:
        return self.value.hex()

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex} ({self.size} bytes)"


def hash_chunks(chunks: Iterable[Chunk], algorithm: str = "sha256") -> ImageDigest:
    """Hash every chunk in order; chunk boundaries do not matter, only the concatenation does.

    A chunk may be a reused buffer (memoryview): it is consumed before the next one is requested.
    """
    try:
        h = _HASHES[algorithm]()
    except KeyError:
        raise UsageError(f"unknown hash {algorithm!r}", hint="use one of " + ", ".join(HASH_NAMES)) from None
    size = 0
    update = h.update
    for chunk in chunks:
        update(chunk)
        size += len(chunk)
    return ImageDigest(algorithm, h.digest(), size)
