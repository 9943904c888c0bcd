"""The gateway's configuration file: one TOML table whose keys are the command's option names.

``ocppsec gateway --config gateway.toml`` reads the file into the command's defaults, so every option of
the command (present and future) can be set there, and an option given on the command line wins::

    listen = "0.0.0.0:8443"
    profile = "2,3"
    upstream = "ws://127.0.0.1:9000/ocpp"
    server_cert = ["rsa.pem", "ec.pem"]     # repeatable options take a list (or one string)
    server_key = ["rsa.key", "ec.key"]
    trust = ["cso-root.pem"]
    crl = ["https://pki.example/cso.crl"]
    admin = "127.0.0.1:9443"

A key is the option's long name without the dashes, ``-`` or ``_`` between words (``server-cert`` and
``server_cert`` are the same key). A key the command does not know is refused with the closest known
names (``did you mean``); every unknown key is listed at once. :func:`read_config` reads and checks
the file (sans-I/O except for reading it); :class:`ConfigReport` collects the problems
``--check-config`` finds.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocppsec.pki.errors import UsageError

__all__ = ["DEFAULT_ADMIN", "AdminAddress", "ConfigReport", "normalise_key", "parse_admin", "read_config", "to_defaults"]

_MAX_CONFIG = 1024 * 1024
DEFAULT_ADMIN = "127.0.0.1:9443"  # the admin listener: loopback only unless told otherwise


def normalise_key(key: str) -> str:
    """A configuration key as compared: lower case, ``_`` between words, no leading dashes."""
    return key.strip().lstrip("-").replace("-", "_").lower()


def read_config(path: str | Path) -> dict[str, Any]:
    """The top-level table of the TOML file ``path``; :class:`UsageError` if it cannot be read or parsed."""
    p = Path(path)
    try:
        if p.stat().st_size > _MAX_CONFIG:
            raise UsageError(f"configuration file {p} is larger than {_MAX_CONFIG} bytes")
        data = p.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"configuration file {p} does not exist") from None
    except IsADirectoryError:
        raise UsageError(f"configuration file {p} is a directory") from None
    except OSError as exc:
        raise UsageError(f"cannot read configuration file {p}: {exc.strerror or exc}") from None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise UsageError(f"configuration file {p} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"configuration file {p} is not valid TOML: {exc}") from None


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def to_defaults(data: Mapping[str, Any], options: Mapping[str, str], *, multiple: Iterable[str] = (),
                suggest: Iterable[str] = (), source: str = "configuration") -> dict[str, Any]:
    """``data`` (a parsed configuration) as ``{parameter name: value}``.

    ``options``: every accepted key (normalised option name, and the parameter name itself) mapped to the
    parameter it sets. ``multiple``: parameters that take a list (a single string becomes a one-item list).
    ``suggest``: the keys offered for a misspelt one (default: every key of ``options``).
    Raises :class:`UsageError` listing every unknown key (with the closest known ones) and every value that
    is neither a string, number, boolean nor (for ``multiple``) a list of those."""
    known = {normalise_key(k): v for k, v in options.items()}
    repeatable = set(multiple)
    candidates = sorted({normalise_key(k) for k in suggest} or known)
    out: dict[str, Any] = {}
    problems: list[str] = []
    for raw_key, value in data.items():
        key = normalise_key(raw_key)
        param = known.get(key)
        if param is None:
            close = difflib.get_close_matches(key, candidates, n=3, cutoff=0.6)
            problems.append(f"unknown key {raw_key!r}" + (f" (did you mean {' or '.join(repr(c) for c in close)}?)"
                                                           if close else ""))
            continue
        if param in out:
            problems.append(f"key {raw_key!r} sets {param!r} a second time")
            continue
        if param in repeatable:
            items = value if isinstance(value, list) else [value]
            if not all(_scalar(v) for v in items):
                problems.append(f"key {raw_key!r} takes a list of strings")
                continue
            out[param] = [str(v) if not isinstance(v, bool | int | float) else v for v in items]
        elif isinstance(value, dict):
            problems.append(f"key {raw_key!r} is a table; the gateway's configuration is one flat table")
        elif not _scalar(value):
            problems.append(f"key {raw_key!r} takes one value, not a list")
        else:
            out[param] = value
    if problems:
        raise UsageError(f"{source}: " + "; ".join(problems),
                         hint="keys are the option names of `ocppsec gateway --help`, e.g. server_cert = [\"rsa.pem\"]")
    return out


@dataclass
class ConfigReport:
    """What ``--check-config`` found: one line per problem (``ok`` when there is none) and what it checked."""

    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # worth knowing, not a problem (e.g. a store down for now)

    @property
    def ok(self) -> bool:
        return not self.problems

    def check(self, what: str, probe: Any) -> Any:
        """Run ``probe()``; an :class:`~ocppsec.pki.errors.OcppsecError` becomes a problem about ``what``.
        Returns what the probe returned (``None`` after a problem)."""
        from ocppsec.pki.errors import OcppsecError

        try:
            result = probe()
        except OcppsecError as exc:
            self.problems.append(f"{what}: {exc.diagnostics()}")
            return None
        self.checked.append(what)
        return result

    def passes(self, what: str, probe: Any) -> bool:
        """:meth:`check`, telling whether the probe passed."""
        before = len(self.problems)
        self.check(what, probe)
        return len(self.problems) == before

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "problems": list(self.problems), "checked": list(self.checked), "notes": list(self.notes)}


@dataclass(frozen=True, slots=True)
class AdminAddress:
    """Where the admin listener listens: a TCP ``host``/``port``, or a unix socket ``path``."""

    host: str | None = None
    port: int | None = None
    path: str | None = None

    def __str__(self) -> str:
        return f"unix:{self.path}" if self.path else f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def parse_admin(text: str) -> AdminAddress | None:
    """``HOST:PORT``, ``unix:PATH`` or ``off`` (None); :class:`UsageError` otherwise."""
    text = text.strip()
    if text.lower() in ("off", "none", ""):
        return None
    if text.startswith("unix:"):
        return AdminAddress(path=text[5:])
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--admin {text!r} is not HOST:PORT, unix:PATH or off", hint=f"e.g. --admin {DEFAULT_ADMIN}")
    return AdminAddress(host=host.strip("[]") or "127.0.0.1", port=int(port))
