"""Where a store lives: one parser for every store's path or URL, and one redactor for messages.

Accepted forms (the same for the ledger, the station inventory, the station registry and the event store):

- a plain file path (``./ocppsec-events.db``, ``DIR/ledger.db``), or ``sqlite:///abs/path`` /
  ``sqlite://rel/path`` → SQLite; ``sqlite://`` URLs may carry ``?mode=ro`` (open read-only) and
  ``?timeout=<seconds>`` (how long a write waits for another connection's lock, default 30);
- ``postgresql://`` or ``postgres://`` → PostgreSQL (the URL goes to libpq as it is);
- anything else with a scheme (``mysql://``...) is refused with :class:`~ocppsec.pki.errors.UsageError`,
  never taken for a file name.

:func:`redact` hides the password of a URL (``user:***@``, ``password=***``); :attr:`StoreUrl.location`
is what messages and ``location`` properties show.
"""

from __future__ import annotations

import enum
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

from ocppsec.pki.errors import UsageError

__all__ = ["DEFAULT_TIMEOUT", "Dialect", "StoreUrl", "parse_url", "redact"]

DEFAULT_TIMEOUT = 30.0  # seconds a SQLite write waits for another connection's lock
ACCEPTED = "a file path, sqlite:///path or postgresql://user@host/database"

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_USERINFO = re.compile(r"(://[^:/@?#]*):[^@/?#]*@")
_PASSWORD_PARAM = re.compile(r"(?i)(\bpassword=)[^&\s]*")


class Dialect(enum.Enum):
    """The two database engines a store can live in."""

    SQLITE = "sqlite"
    POSTGRES = "postgresql"


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (in the user info and in a ``password=`` parameter)."""
    return _PASSWORD_PARAM.sub(r"\1***", _USERINFO.sub(r"\1:***@", url))


@dataclass(frozen=True, slots=True)
class StoreUrl:
    """A parsed store location. ``target`` is the SQLite file path or the PostgreSQL URL as given."""

    dialect: Dialect
    target: str
    read_only: bool = False
    timeout: float = DEFAULT_TIMEOUT

    @property
    def location(self) -> str:
        """The path or the URL without its password, for messages."""
        return redact(self.target)

    @property
    def path(self) -> Path | None:
        """The SQLite file (None for PostgreSQL and for ``:memory:``)."""
        if self.dialect is Dialect.SQLITE and self.target != ":memory:":
            return Path(self.target)
        return None

    def __repr__(self) -> str:
        return f"StoreUrl({self.dialect.value}, {self.location!r})"

    def __str__(self) -> str:
        return self.location


def parse_url(spec: str | os.PathLike[str] | StoreUrl, *, what: str = "store") -> StoreUrl:
    """Parse a store path or URL (``what`` names the store in the error of an unknown scheme)."""
    if isinstance(spec, StoreUrl):
        return spec
    if not isinstance(spec, str):
        return StoreUrl(Dialect.SQLITE, os.fspath(spec))
    text = spec.strip()
    if not text:
        raise UsageError(f"no {what} given", hint=f"use {ACCEPTED}")
    match = _SCHEME.match(text)
    if match is None:
        return StoreUrl(Dialect.SQLITE, text)
    scheme = match.group(1).lower()
    if scheme in ("postgresql", "postgres"):
        return StoreUrl(Dialect.POSTGRES, text)
    if scheme == "sqlite":
        return _sqlite_url(text, what)
    raise UsageError(f"unsupported {what} URL {scheme}://...", hint=f"use {ACCEPTED}")


def _sqlite_url(text: str, what: str) -> StoreUrl:
    path, _, query = text[len("sqlite://"):].partition("?")
    if not path:
        raise UsageError(f"{what} URL {text!r} names no file", hint="use sqlite:///absolute/path or sqlite://relative/path")
    read_only, timeout = False, DEFAULT_TIMEOUT
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == "mode" and value in ("ro", "rw", "rwc"):
            read_only = value == "ro"
        elif key == "timeout":
            try:
                timeout = float(value)
            except ValueError:
                timeout = -1.0
            if not 0 <= timeout <= 86_400:
                raise UsageError(f"{what} URL timeout {value!r} is not a number of seconds (0 to 86400)")
        else:
            raise UsageError(f"unknown {what} URL option {key}={value}", hint="sqlite:// URLs take mode=ro and timeout=SECONDS")
    return StoreUrl(Dialect.SQLITE, path, read_only=read_only, timeout=timeout)
