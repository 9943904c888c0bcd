"""The gateway's log lines: text (``--log-format text``) or one JSON object per line (``json``).

A JSON line holds ``timestamp`` (ISO 8601, UTC), ``level``, ``logger``, ``message`` and the structured
fields a log call passed with ``extra=`` (e.g. ``station``, ``event``), plus ``exception`` with the
traceback when there is one. Filters on the handler (the credential redaction) run before the formatter,
so a JSON line carries no more than the text line would.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

__all__ = ["JsonFormatter", "configure_logging"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def configure_logging(level: int, fmt: str = "text") -> logging.Handler:
    """Log ``level`` and above to stderr as ``fmt`` (``text`` or ``json``); the handler installed.

    Replaces handlers a previous call installed (so a test calling the command twice logs once)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_ocppsec_gateway", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler()
    handler._ocppsec_gateway = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
    return handler
