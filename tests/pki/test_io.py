"""pki._io: bounded reads of named files and OSError turned into one FileError."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from ocppsec.pki import _io
from ocppsec.pki.errors import FileError, InputError


def test_a_file_over_the_limit_is_refused_before_it_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "big.pem"
    with big.open("wb") as fh:
        fh.truncate(100 * 1000 * 1000)
    reads: list[int] = []
    real_read = os.read
    monkeypatch.setattr(_io.os, "read", lambda fd, n: reads.append(n) or real_read(fd, n))
    with pytest.raises(InputError, match=r"larger than the 1 MiB allowed for it"):
        _io.read_bounded(big, what="certificate", limit=1 << 20)
    assert reads == []


def test_a_file_whose_size_says_nothing_is_read_up_to_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files in /proc report size 0: at most limit + 1 bytes are read, then the file is refused."""
    grows = tmp_path / "grows"
    grows.write_bytes(b"x" * 5000)
    real_fstat = os.fstat

    class Zero:
        def __init__(self, st: os.stat_result) -> None:
            self.st_mode, self.st_size = st.st_mode, 0

    monkeypatch.setattr(_io.os, "fstat", lambda fd: Zero(real_fstat(fd)))
    assert _io.read_bounded(grows, what="list", limit=5000) == b"x" * 5000
    with pytest.raises(InputError, match=r"larger than the 4\.9 KiB"):
        _io.read_bounded(grows, what="list", limit=4999)


@pytest.mark.parametrize(("code", "needle"), [
    (errno.ENOENT, "certificate c.pem does not exist"),
    (errno.EACCES, "cannot read certificate c.pem: permission denied"),
    (errno.EISDIR, "certificate c.pem is a directory, not a file"),
    (errno.ENOSPC, "cannot read certificate c.pem: no space left on device"),
])
def test_os_errors_name_the_path_and_what_to_do(code: int, needle: str) -> None:
    error = _io.file_error(OSError(code, os.strerror(code), "c.pem"), what="certificate")
    assert isinstance(error, FileError) and error.exit_code == 3 and error.path == "c.pem"
    assert error.message == needle and error.hint


def test_an_address_is_named_once() -> None:
    exc = OSError(errno.EADDRINUSE, "error while attempting to bind on address ('127.0.0.1', 8080): address already in use")
    error = _io.file_error(exc, "127.0.0.1:8080", what="", action="listen on")
    assert error.message == "cannot listen on 127.0.0.1:8080: address already in use"


def test_directories_and_fifos_are_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(FileError, match="is a FIFO"):
        _io.read_bounded(tmp_path / "fifo", what="key file", limit=100)
    with pytest.raises(FileError, match="is a directory"):
        _io.check_file(tmp_path, what="CRL file", limit=100)
