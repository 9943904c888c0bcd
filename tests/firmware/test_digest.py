"""Chunk hashing (core) and the file adapter."""

from __future__ import annotations

import hashlib
import itertools
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocppsec.firmware_signing import CHUNK_SIZE, hash_chunks, iter_file_chunks
from ocppsec.firmware_signing.files import BackgroundDigest
from ocppsec.pki.errors import FileError, UsageError


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=4096), cuts=st.lists(st.integers(min_value=0, max_value=4096), max_size=8))
def test_chunk_boundaries_do_not_matter(data: bytes, cuts: list[int]) -> None:
    points = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    chunks = [data[a:b] for a, b in itertools.pairwise(points)]
    digest = hash_chunks(chunks)
    assert digest.value == hashlib.sha256(data).digest()
    assert digest.size == len(data)
    assert digest.algorithm == "sha256"


def test_other_hashes_and_buffer_types() -> None:
    assert hash_chunks([bytearray(b"ab"), memoryview(b"c")], "sha384").value == hashlib.sha384(b"abc").digest()
    with pytest.raises(UsageError, match="unknown hash"):
        hash_chunks([b"x"], "md5")


def test_empty_iterable_hashes_to_the_empty_digest() -> None:
    digest = hash_chunks([])
    assert digest.size == 0
    assert digest.hex == hashlib.sha256(b"").hexdigest()


def test_file_adapter_streams_64k_chunks(image: Path) -> None:
    seen: list[int] = []
    sizes = [len(c) for c in iter_file_chunks(image, progress=seen.append)]
    assert CHUNK_SIZE == 65536
    assert sizes == [65536, 65536, 65536, 200 * 1024 + 123 - 3 * 65536]
    assert seen == sizes
    assert hash_chunks(iter_file_chunks(image)).value == hashlib.sha256(image.read_bytes()).digest()


def test_file_adapter_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(FileError, match="does not exist"):
        list(iter_file_chunks(tmp_path / "missing.bin"))
    with pytest.raises(FileError, match="is a directory"):
        list(iter_file_chunks(tmp_path))
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(FileError, match="not a regular file"):  # refused at once: no writer is waited for
        list(iter_file_chunks(tmp_path / "fifo"))


def test_background_digest_is_the_digest_of_the_whole_file(image: Path) -> None:
    pending = BackgroundDigest(image)
    seen: list[int] = []
    digest = pending.result(seen.append, interval=0.001)
    assert digest == hash_chunks(iter_file_chunks(image))
    assert pending.size == digest.size == sum(seen) == image.stat().st_size
    assert pending.same_file(image)


def test_background_digest_knows_when_the_path_names_another_file(image: Path, tmp_path: Path) -> None:
    pending = BackgroundDigest(image)
    pending.result()
    other = tmp_path / "other.bin"
    other.write_bytes(image.read_bytes())
    assert not pending.same_file(other)  # same bytes, another inode
    assert not pending.same_file(tmp_path / "missing.bin")
    image.write_bytes(image.read_bytes() + b"x")
    assert not pending.same_file(image)  # the file changed since it was hashed


def test_background_digest_refuses_what_is_not_an_image_file_at_once(tmp_path: Path) -> None:
    with pytest.raises(FileError, match="does not exist"):
        BackgroundDigest(tmp_path / "missing.bin")
    with pytest.raises(FileError, match="is a directory"):
        BackgroundDigest(tmp_path)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(FileError, match="not a regular file"):
        BackgroundDigest(tmp_path / "fifo")


def test_a_cancelled_background_digest_gives_no_digest(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    with big.open("wb") as fh:
        fh.truncate(256 << 20)  # sparse: hashing it takes a while, reading it costs no disk
    pending = BackgroundDigest(big)
    pending.cancel()
    with pytest.raises(FileError, match="cancelled"):
        pending.result()
