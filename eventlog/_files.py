"""Durable appends of JSON lines (the station log, the offline queue, the outage spool)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["append_lines"]


def append_lines(path: Path, lines: list[str]) -> None:
    """Append whole lines and fsync. A torn last line (power cut mid-write) is closed off first, so it
    stays one unreadable line instead of swallowing the next record."""
    with path.open("ab") as fh:
        if fh.tell() > 0:
            with path.open("rb") as check:
                check.seek(-1, os.SEEK_END)
                if check.read(1) != b"\n":
                    fh.write(b"\n")
        fh.write("".join(line + "\n" for line in lines).encode("utf-8", "surrogatepass"))
        fh.flush()
        os.fsync(fh.fileno())
