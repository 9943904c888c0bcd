"""Named files and addresses the user gave: bounded reads, and an ``OSError`` turned into one clear error.

Every input file a command names (certificate, CSR, key, chain, CRL, signature, hierarchy TOML, serial
list...) is read through :func:`read_bounded`: it opens without blocking (a FIFO does not hang the
command), refuses anything but a regular file, refuses a file larger than the caller's limit before
reading it, and reads at most ``limit + 1`` bytes (files in ``/proc`` report size 0). Failures are a
:class:`~ocppsec.pki.errors.FileError` (exit 3) naming the path and what to do, or an
:class:`~ocppsec.pki.errors.InputError` (exit 1) when the file is too large.
"""

from __future__ import annotations

import errno
import os
import stat

from ocppsec.pki.errors import FileError, InputError

__all__ = ["check_file", "file_error", "human_size", "read_bounded"]

_HINTS: dict[int, str] = {
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "a component of the path is a file, not a directory",
    errno.EACCES: "check the owner and mode of the file and of its directories",
    errno.EPERM: "check the owner and mode of the file and of its directories",
    errno.EISDIR: "give the path of a file",
    errno.ENOSPC: "free space on that file system or choose another location",
    errno.EDQUOT: "the disk quota is exhausted: free space or choose another location",
    errno.EROFS: "choose a location on a writable file system",
    errno.ENAMETOOLONG: "use a shorter path",
    errno.ELOOP: "the path has a symbolic link loop",
    errno.EMFILE: "too many open files: raise the limit (ulimit -n)",
    errno.EADDRINUSE: "another process listens there: stop it or choose another address/port",
    errno.EADDRNOTAVAIL: "that address is not one of this host's: use 0.0.0.0, 127.0.0.1 or a local address",
}


def human_size(n: int) -> str:
    """``16 MiB``, ``512 KiB``, ``100 bytes``."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"


def file_error(exc: OSError, path: str | os.PathLike[str] | None = None, *, what: str = "file",
               action: str = "read") -> FileError:
    """One :class:`FileError` for ``exc`` on ``path`` (``what``: ``certificate``, ``key file``...;
    ``action``: ``read``, ``write``, ``create``, ``listen on``)."""
    where = os.fspath(path) if path is not None else (exc.filename if isinstance(exc.filename, str) else None)
    code = exc.errno or 0
    # With the path named here, the system's plain words (asyncio's strerror repeats the address).
    reason = (os.strerror(code) if where is not None and code else exc.strerror or str(exc) or type(exc).__name__).lower()
    named = " ".join(x for x in (what, where) if x)
    if where is None:
        message = reason  # nothing to name (a socket, an address): the system's words
    elif code == errno.ENOENT:
        message = f"{named} does not exist" if action == "read" else f"cannot {action} {named}: no such file or directory"
    elif code == errno.EISDIR:
        message = f"{named} is a directory, not a file"
    elif code in (errno.EACCES, errno.EPERM):
        message = f"cannot {action} {named}: permission denied"
    else:
        message = f"cannot {action} {named}: {reason}"
    return FileError(message, path=where, hint=_HINTS.get(code))


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def check_file(path: str | os.PathLike[str], *, what: str, limit: int) -> None:
    """What :func:`read_bounded` checks before reading (a regular file, readable, at most ``limit`` bytes), for
    a file that is read later, by another component."""
    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise file_error(exc, name, what=what) from None
    try:
        _check_open(fd, name, what, limit)
    finally:
        os.close(fd)


def _check_open(fd: int, name: str, what: str, limit: int) -> InputError:
    """Refuse a non-regular file or one larger than ``limit``; return the error for a file that grows past it."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        kind = _kind(st.st_mode)
        raise FileError(f"{what} {name} is {kind}, not a file" if kind.startswith("a ") else f"{what} {name} is {kind}",
                        path=name, hint="give the path of a file")
    too_large = InputError(f"{what} {name} is larger than the {human_size(limit)} allowed for it",
                           hint=f"is {name} really a {what}?")
    if st.st_size > limit:
        raise too_large
    return too_large


def read_bounded(path: str | os.PathLike[str], *, what: str, limit: int) -> bytes:
    """The whole of the regular file ``path``, at most ``limit`` bytes (else :class:`InputError`)."""
    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise file_error(exc, name, what=what) from None
    try:
        too_large = _check_open(fd, name, what, limit)
        chunks: list[bytes] = []
        total = 0
        while total <= limit:
            chunk = os.read(fd, min(limit + 1 - total, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise too_large
        return b"".join(chunks)
    except OSError as exc:
        raise file_error(exc, name, what=what) from None
    finally:
        os.close(fd)
