"""Helpers shared by the CLI modules: output, time parsing, passphrases. No domain logic here."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import click

from ocppsec.pki._io import file_error, read_bounded
from ocppsec.pki.errors import InputError, UsageError

__all__ = [
    "INPUT_LIMIT",
    "PASSPHRASE_ENV",
    "echo_json",
    "echo_table",
    "listening_on",
    "now",
    "parse_time",
    "passphrase_for_reading",
    "passphrase_for_writing",
    "read_input_file",
    "read_text_file",
]

PASSPHRASE_ENV = "OCPPSEC_PASSPHRASE"
INPUT_LIMIT = 1 << 20  # certificates, CSRs, keys, chains, trust bundles, TOML: far below 1 MiB


def now() -> datetime:
    """The clock, read only here (adapters), passed to the core as ``at``."""
    return datetime.now(UTC)


def parse_time(text: str | None) -> datetime:
    """``None`` → now; ISO 8601 with or without zone (naive = UTC); ``now``; unix seconds."""
    if text is None or text == "now":
        return now()
    try:
        if text.isdigit():
            return datetime.fromtimestamp(int(text), UTC)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise UsageError(
            f"cannot read time {text!r}", hint="use ISO 8601, e.g. 2026-01-31T12:00:00Z, or unix seconds"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def echo_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain aligned text table (no colours, so it survives pipes and logs)."""
    cells = [[str(c) for c in headers]] + [[("" if c is None else str(c)) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            click.echo("  ".join("-" * w for w in widths))


def read_input_file(path: str | os.PathLike[str], what: str, *, limit: int = INPUT_LIMIT) -> bytes:
    """The bytes of an input file the user named (certificate, CSR, key, chain, CRL, list...).

    At most ``limit`` bytes: a larger file is refused before it is read (exit 1, the limit in the
    message); a missing or unreadable file, a directory or a FIFO is a one-line error (exit 3)."""
    return read_bounded(path, what=what, limit=limit)


def read_text_file(path: str | os.PathLike[str], what: str, *, limit: int = INPUT_LIMIT) -> str:
    """:func:`read_input_file` decoded as UTF-8; other bytes are an :class:`InputError` naming the offset."""
    data = read_input_file(path, what, limit=limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} {os.fspath(path)} is not UTF-8 text (byte {exc.start}: {data[exc.start:exc.start + 1]!r})",
                         hint=f"a {what} is a UTF-8 text file") from None


@contextlib.contextmanager
def listening_on(address: str) -> Iterator[None]:
    """Binding a server socket: an ``OSError`` (port taken, address not local, no permission for a port
    below 1024) becomes one :class:`~ocppsec.pki.errors.FileError` naming ``HOST:PORT`` (exit 3)."""
    try:
        yield
    except OSError as exc:
        raise file_error(exc, address, what="", action="listen on") from None


def passphrase_for_reading(required: bool = True) -> bytes | None:
    """The key passphrase from ``OCPPSEC_PASSPHRASE``, else asked on a terminal, else None/error."""
    value = os.environ.get(PASSPHRASE_ENV)
    if value is not None:
        return value.encode()
    if sys.stdin.isatty():
        return str(click.prompt("key passphrase", hide_input=True)).encode()
    if required:
        raise UsageError(
            "the keys are encrypted and no passphrase was given",
            hint=f"set {PASSPHRASE_ENV} or run on a terminal to be asked",
        )
    return None


def passphrase_for_writing(no_encrypt: bool) -> bytes | None:
    """Passphrase for new key files: env, else asked twice on a terminal; None only with --no-encrypt."""
    if no_encrypt:
        return None
    value = os.environ.get(PASSPHRASE_ENV)
    if value is not None:
        if not value:
            raise UsageError(f"{PASSPHRASE_ENV} is empty", hint="set a passphrase or pass --no-encrypt")
        return value.encode()
    if sys.stdin.isatty():
        return str(click.prompt("new key passphrase", hide_input=True, confirmation_prompt=True)).encode()
    raise UsageError(
        "new private keys are encrypted at rest, but no passphrase was given",
        hint=f"set {PASSPHRASE_ENV}, run on a terminal, or pass --no-encrypt to store keys unencrypted",
    )
