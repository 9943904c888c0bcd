"""``ocppsec firmware sign IMAGE``: the image is hashed from the first moment of the process.

Python, click, pyca and the key (a passphrase-encrypted PEM) take tens of milliseconds to load;
hashing a large image takes hundreds. :func:`main <ocppsec.cli.main.main>` calls :func:`start` with the
arguments before it imports click or the error tree: the image path is picked out of them here (without
click), and the image is hashed meanwhile. The ``sign`` command then asks :func:`take` for the digest: it
gets it only for the file it was about to hash itself (same path, device, inode, size and modification
time); otherwise (the arguments were read differently by click, the file changed) it hashes the image
itself.

Where the platform forks (POSIX), a :class:`ForkedDigest` child process hashes the image: it maps the
file and hands the whole mapping to OpenSSL's SHA-256 in a few large slices, on the second core, with no
GIL shared with the importing parent (ADR 20: 195 ms for 256 MiB here against 300-370 ms read in 1 MiB
blocks and 240-280 ms for ``openssl dgst``). Mapping a file is not safe in the process that signs: a
file truncated while it is mapped raises SIGBUS, which would kill the command; in the child it only ends
the child, and the command says that the image changed while it was being hashed. Elsewhere a
:class:`~ocppsec.firmware_signing.files.BackgroundDigest` thread reads the image in 1 MiB blocks, and
the interpreter's switch interval is 0.5 ms instead of 5 ms while it runs, so that the thread gets the
GIL back quickly between blocks while the main thread imports.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    import hashlib
    import types
    from collections.abc import Callable, Sequence

    from ocppsec.firmware_signing.digest import ImageDigest
    from ocppsec.firmware_signing.files import BackgroundDigest

__all__ = ["FLAG_OPTIONS", "VALUE_OPTIONS", "ForkedDigest", "image_argument", "start", "take"]

# The options of `firmware sign` (tests/cli checks these against the click command).
VALUE_OPTIONS = frozenset({"--key", "--cert", "--scheme", "--location", "--ocpp", "--retrieve-at", "--install-at", "--out"})
FLAG_OPTIONS = frozenset({"--json"})
SWITCH_INTERVAL = 0.0005

SLICE = 32 << 20  # the child hashes the mapping in slices of this size and reports progress after each

_pending: BackgroundDigest | ForkedDigest | None = None
_interval: float | None = None


def image_argument(args: Sequence[str]) -> str | None:
    """The IMAGE argument of ``firmware sign`` ARGS, or ``None`` if the arguments are not plainly readable
    (an unknown option, ``--help``): nothing is started then."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return args[i + 1] if i + 1 < len(args) else None
        if arg.startswith("--"):
            name = arg.split("=", 1)[0]
            if name in VALUE_OPTIONS:
                i += 1 if "=" in arg else 2
                continue
            if arg in FLAG_OPTIONS:
                i += 1
                continue
            return None
        if arg.startswith("-") and arg != "-":
            return None
        return arg
    return None


def start(args: Sequence[str]) -> None:
    """Start hashing the image named in ``args`` (the arguments after ``firmware sign``), if any."""
    global _pending, _interval
    image = image_argument(args)
    if image is None or _pending is not None:
        return
    if hasattr(os, "fork"):
        try:
            _pending = ForkedDigest(image)
        except OSError:  # missing, a directory, a FIFO, no process left...: the command hashes (and reports) itself
            _pending = None
            return
        import atexit

        atexit.register(_stop_unclaimed)  # a usage error before the command ran: stop the child now (else it ends
        # at its next progress write, on the closed pipe)
        return
    from ocppsec.firmware_signing.files import BackgroundDigest
    from ocppsec.pki.errors import OcppsecError

    try:
        _pending = BackgroundDigest(image)
    except OcppsecError:
        return  # missing, a directory, a FIFO...: the command says so itself
    _interval = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)


def _stop_unclaimed() -> None:
    """At exit: stop a child nobody took the digest of."""
    global _pending
    pending, _pending = _pending, None
    if pending is not None:
        pending.cancel()


def take(path: str) -> BackgroundDigest | ForkedDigest | None:
    """The digest started for ``path`` (still the same file), else ``None``; either way the early start ends."""
    global _pending, _interval
    pending, _pending = _pending, None
    if _interval is not None:
        sys.setswitchinterval(_interval)
        _interval = None
    if pending is None:
        return None
    if pending.path == path and pending.same_file(path):
        return pending
    pending.cancel()
    return None


class ForkedDigest:
    """The SHA-256 of an image file, computed by a child process forked when this object is made.

    Same interface as :class:`~ocppsec.firmware_signing.files.BackgroundDigest` (``path``, ``size``,
    :meth:`same_file`, :meth:`result`, :meth:`cancel`). Raises ``OSError`` if ``path`` is not an openable
    regular file (nothing is forked then). The child reports on a pipe: ``P`` and 8 bytes (bytes hashed so
    far), then ``D`` and the 32-byte digest, or ``C`` if the file's size or modification time changed
    while it was hashed, or ``E`` if it could not hash it (an empty file, a mapping refused: then
    :meth:`result` hashes the image itself). A child killed by SIGBUS (the file was truncated under the
    mapping) is reported as a changed image, like ``C``.
    """

    def __init__(self, path: str) -> None:
        import hashlib  # in the parent, before the fork (the command needs it anyway): the child imports nothing
        import mmap
        import stat

        self.path = path
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise IsADirectoryError(path) if stat.S_ISDIR(st.st_mode) else OSError(f"{path}: not a regular file")
            self.size = st.st_size
            self._identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            read_end, write_end = os.pipe()
            try:
                pid = os.fork()
            except BaseException:
                os.close(read_end)
                os.close(write_end)
                raise
            if pid == 0:  # pragma: no cover - the child (its work is checked through the parent)
                os.close(read_end)
                _hash_in_child(fd, write_end, st, hashlib.sha256, mmap)
        finally:
            os.close(fd)
        os.close(write_end)
        self._pid: int | None = pid
        self._read = read_end
        self.done = 0

    def same_file(self, path: str) -> bool:
        try:
            st = os.stat(path)
        except OSError:
            return False
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) == self._identity

    def result(self, progress: Callable[[int], None] | None = None) -> ImageDigest:
        """The digest of the whole image (waits for the child; ``progress`` gets the bytes hashed since its
        last call). Raises :class:`~ocppsec.pki.errors.FileError` if the image changed while it was hashed."""
        from ocppsec.firmware_signing.digest import ImageDigest
        from ocppsec.pki.errors import FileError

        if self._pid is None:
            raise FileError(f"hashing firmware image {self.path} was cancelled", path=self.path)
        buffer = b""
        outcome = b""
        value = b""
        while True:
            chunk = os.read(self._read, 4096)
            if not chunk:
                break
            buffer += chunk
            while buffer:
                tag = buffer[:1]
                need = {b"P": 9, b"D": 33}.get(tag, 1)
                if len(buffer) < need:
                    break
                message, buffer = buffer[:need], buffer[need:]
                if tag == b"P":
                    done = int.from_bytes(message[1:], "big")
                    if progress is not None and done > self.done:
                        progress(done - self.done)
                    self.done = done
                else:
                    outcome, value = tag, message[1:]
        status = self._reap()
        if outcome == b"D":
            if progress is not None and self.size > self.done:
                progress(self.size - self.done)
            self.done = self.size
            return ImageDigest("sha256", value, self.size)
        import signal

        if (outcome == b"C" or (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGBUS)
                or not self.same_file(self.path)):
            raise FileError(f"firmware image {self.path} changed while it was being hashed",
                            path=self.path, hint="sign the image once it is completely written")
        from ocppsec.firmware_signing.files import BackgroundDigest  # the child could not: hash it here

        return BackgroundDigest(self.path).result(progress)

    def cancel(self) -> None:
        """Stop the child if it is still hashing (a no-op once :meth:`result` returned)."""
        if self._pid is not None:
            import contextlib
            import signal

            with contextlib.suppress(ProcessLookupError):  # already gone
                os.kill(self._pid, signal.SIGKILL)
            self._reap()

    def _reap(self) -> int:
        pid, self._pid = self._pid, None
        os.close(self._read)
        if pid is None:  # pragma: no cover - guarded by the callers
            return 0
        while True:
            try:
                return os.waitpid(pid, 0)[1]
            except InterruptedError:  # pragma: no cover - PEP 475 retries; kept for signals with handlers
                continue
            except ChildProcessError:  # pragma: no cover - reaped by someone else (a SIGCHLD handler)
                return 0


def _hash_in_child(fd: int, out: int, st: os.stat_result, sha256: Callable[[], hashlib._Hash],
                   mmap_module: types.ModuleType) -> NoReturn:  # pragma: no cover - runs in the child
    """Hash the file ``fd`` (of status ``st``) through a read-only mapping, report on ``out``, exit."""
    handler = sys.modules.get("faulthandler")
    if handler is not None and handler.is_enabled():
        handler.disable()  # a SIGBUS here is an expected end (the parent reports it), not a crash to dump
    try:
        size = st.st_size
        if not size:  # empty, or a file that reports no size (procfs): the parent reads it to its end
            raise OSError("nothing to map")
        h = sha256()
        mm = mmap_module.mmap(fd, size, access=mmap_module.ACCESS_READ)
        advise: Callable[..., None] | None = getattr(mm, "madvise", None)
        if advise is not None and hasattr(mmap_module, "MADV_SEQUENTIAL"):
            advise(mmap_module.MADV_SEQUENTIAL)
        drop = getattr(mmap_module, "MADV_DONTNEED", None)
        view = memoryview(mm)
        step = max(SLICE, size // 1024 // mmap_module.PAGESIZE * mmap_module.PAGESIZE)
        for offset in range(0, size, step):
            length = min(step, size - offset)
            h.update(view[offset:offset + length])  # one C call per slice, no GIL to share
            if advise is not None and drop is not None:  # hashed pages leave this process, not the page cache
                advise(drop, offset, length)
            os.write(out, b"P" + (offset + length).to_bytes(8, "big"))
        after = os.fstat(fd)
        if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
            os.write(out, b"C")
        else:
            os.write(out, b"D" + h.digest())
    except BaseException:
        os.write(out, b"E")  # if even this fails, the parent sees no outcome and hashes the image itself
    finally:
        os._exit(0)
