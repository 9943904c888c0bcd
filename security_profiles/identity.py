"""Station identity from the connection URL (201P4 / 21P4 §3.1.1; 201ERR23 §2.17.3).

The URL is the CSMS endpoint followed by ``/`` and the percent-encoded identity
(``RDAM|123`` is sent as ``RDAM%7C123``). The identity is at most 48 characters and never contains
``:`` because it is also the Basic-auth username. Pure functions; errors are
:class:`~ocppsec.pki.errors.InputError` with the requirement they break.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urlsplit

from ocppsec.pki.errors import InputError

__all__ = ["MAX_IDENTITY", "identity_from_path", "identity_url", "validate_identity"]

MAX_IDENTITY = 48
_FORBIDDEN = re.compile(r"[/\x00-\x1f\x7f]")  # '/' and control characters


def validate_identity(identity: str) -> str:
    """Return ``identity`` if it is a usable station identity, else raise :class:`InputError`."""
    if not identity:
        raise InputError("the station identity is empty", hint="connect to <endpoint>/<identity>")
    if len(identity) > MAX_IDENTITY:
        raise InputError(
            f"the station identity is {len(identity)} characters long, more than {MAX_IDENTITY}",
            requirement="SecurityCtrlr.Identity",
        )
    if ":" in identity:
        raise InputError(
            "the station identity contains ':' (it is the Basic-auth username)",
            hint="choose an identity without a colon", requirement="201P4 3.1.1",
        )
    if _FORBIDDEN.search(identity):
        raise InputError("the station identity contains '/' or a control character")
    return identity


def identity_from_path(path: str, base_path: str = "/") -> str:
    """The percent-decoded last segment of ``path`` below ``base_path``; raises :class:`InputError`.

    ``path`` may carry a query string (ignored). ``base_path`` is the endpoint prefix the server
    listens on (``/`` or e.g. ``/ocpp/``); exactly one segment must follow it.
    """
    try:
        raw_path = urlsplit(path).path if "?" in path or "#" in path else path
    except ValueError:  # urlsplit refuses e.g. "//[?" (an unclosed IPv6 host after a "//" authority)
        raise InputError(f"path {path[:80]!r} is not a valid request target") from None
    base = base_path if base_path.endswith("/") else base_path + "/"
    if not raw_path.startswith(base):
        raise InputError(f"path {raw_path[:80]!r} is not below the endpoint {base!r}")
    segment = raw_path[len(base):]
    if not segment or "/" in segment:
        raise InputError(f"path {raw_path[:80]!r} must be {base}<identity> with exactly one segment")
    try:
        decoded = unquote(segment, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise InputError("the station identity is not valid UTF-8 after percent-decoding") from None
    return validate_identity(decoded)


def identity_url(endpoint: str, identity: str) -> str:
    """``endpoint`` + ``/`` + the percent-encoded identity (what a station connects to)."""
    validate_identity(identity)
    return endpoint.rstrip("/") + "/" + quote(identity, safe="")
