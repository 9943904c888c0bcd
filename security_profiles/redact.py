"""Credentials never reach a log record: :class:`CredentialFilter` and :func:`install_credential_filter`.

At DEBUG websockets logs every HTTP header of the opening handshake (``< Authorization: Basic ...``: the
station's identity and password in base64) and every frame it sends or receives, with up to 75
characters of the payload (an OCPP ``SetVariables`` of ``BasicAuthPassword`` or a 1.6
``ChangeConfiguration`` of ``AuthorizationKey`` carries the new password). The filter rewrites a record
before any handler formats it:

- ``Authorization`` / ``Proxy-Authorization`` header values and any ``Basic <token>`` become ``[redacted]``
  (in the message, its arguments, and the traceback text of ``exc_info``);
- websockets' data-frame records keep the direction, opcode and length, not the payload.

Installed on websockets' loggers (``websockets``, ``websockets.server``, ``websockets.client``) and ours
(``ocppsec``) by :func:`~.server.serve` and the gateway; the CLI also puts it on its log handlers, which
see the records of every logger.
"""

from __future__ import annotations

import logging
import re
from typing import Any

__all__ = ["REDACTED", "CredentialFilter", "install_credential_filter", "redact"]

REDACTED = "[redacted]"
_HEADER = re.compile(r"(?i)\b((?:proxy-)?authorization\b[\"']?\s*[:=]\s*[\"']?)([^\r\n\"',}]*)")
_BASIC = re.compile(r"(?i)\b(basic|bearer|digest)(\s+)[A-Za-z0-9+/=._~-]{8,}")
_DATA_OPCODES = ("TEXT", "BINARY", "CONT")
_LOGGERS = ("websockets", "websockets.server", "websockets.client", "ocppsec")


def redact(text: str) -> str:
    """``text`` with Authorization header values and Basic/Bearer credentials replaced by ``[redacted]``."""
    if not text:
        return text
    lowered = text.lower()
    if "authorization" not in lowered and "basic" not in lowered and "bearer" not in lowered and "digest" not in lowered:
        return text
    text = _HEADER.sub(lambda m: m.group(1) + REDACTED, text)
    return _BASIC.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)


def _frame_summary(arg: Any) -> str | None:
    """A websockets data frame as ``TEXT [n bytes]`` (no payload); None for anything else."""
    opcode = getattr(arg, "opcode", None)
    data = getattr(arg, "data", None)
    if opcode is None or data is None or getattr(opcode, "name", None) not in _DATA_OPCODES:
        return None
    fin = "" if getattr(arg, "fin", True) else ", continued"
    return f"{opcode.name} [{len(data)} bytes{fin}]"


class CredentialFilter(logging.Filter):
    """Redacts credentials in a record (see the module docstring); never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            args = record.args
            if isinstance(args, tuple) and args:
                args = tuple(s if (s := _frame_summary(a)) is not None else a for a in args)
                record.args = args
            message = record.getMessage()
        except Exception:  # a record that cannot be formatted: leave it to logging's own error handling
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FILTER = CredentialFilter()


def install_credential_filter(*targets: logging.Logger | logging.Handler) -> None:
    """Put the filter on ``targets`` (default: websockets' loggers and ``ocppsec``); installing twice is harmless."""
    for target in targets or tuple(logging.getLogger(name) for name in _LOGGERS):
        if not any(isinstance(f, CredentialFilter) for f in target.filters):
            target.addFilter(_FILTER)
