"""The official OCPP JSON schemas shipped in the installed ocpp package, for validating our payloads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import ocpp

SCHEMA_DIRS = {
    "1.6": Path(ocpp.__file__).parent / "v16" / "schemas",
    "2.0.1": Path(ocpp.__file__).parent / "v201" / "schemas",
    "2.1": Path(ocpp.__file__).parent / "v21" / "schemas",
}


def schema_for(version: str, action: str, response: bool = False) -> dict[str, Any]:
    directory = SCHEMA_DIRS[version]
    if version == "1.6":
        name = f"{action}Response.json" if response else f"{action}.json"
    else:
        name = f"{action}Response.json" if response else f"{action}Request.json"
    return json.loads((directory / name).read_text(encoding="utf-8-sig"))


def validate(version: str, action: str, payload: dict[str, Any], response: bool = False) -> None:
    """Validate against the official JSON schema shipped in the ocpp package (format checks included)."""
    schema = schema_for(version, action, response)
    jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker()).validate(payload)
