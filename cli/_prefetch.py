"""``ocppsec firmware sign IMAGE``: the image is hashed from the first moment of the process.

Python, click, pyca and the key (a passphrase-encrypted PEM) take tens of milliseconds to load;
hashing a large image takes hundreds. :func:`main <ocppsec.cli.main.main>` calls :func:`start` with the
arguments before it imports click: the image path is picked out of them here (without click), and a
:class:`~ocppsec.firmware_signing.files.BackgroundDigest` starts hashing it in a daemon thread while
the rest of the process starts. The ``sign`` command then asks :func:`take` for it: it gets the digest
only for the file it was about to hash itself (same path, device, inode, size and modification time);
otherwise (the arguments were read differently by click, the file changed) it hashes the image itself.

While the thread runs, the interpreter's switch interval is 0.5 ms instead of 5 ms, so that the hashing
thread gets the GIL back quickly between its 1 MiB blocks while the main thread imports.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ocppsec.firmware_signing.files import BackgroundDigest

__all__ = ["FLAG_OPTIONS", "VALUE_OPTIONS", "image_argument", "start", "take"]

# The options of `firmware sign` (tests/cli checks these against the click command).
VALUE_OPTIONS = frozenset({"--key", "--cert", "--scheme", "--location", "--ocpp", "--retrieve-at", "--install-at", "--out"})
FLAG_OPTIONS = frozenset({"--json"})
SWITCH_INTERVAL = 0.0005

_pending: BackgroundDigest | None = None
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
    from ocppsec.firmware_signing.files import BackgroundDigest
    from ocppsec.pki.errors import OcppsecError

    try:
        _pending = BackgroundDigest(image)
    except OcppsecError:
        return  # missing, a directory, a FIFO...: the command says so itself
    _interval = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)


def take(path: str) -> BackgroundDigest | None:
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
