"""The ``ocpp`` package seen through one OCPP version: its module, schemas, CallErrors and payload casing.

Handlers written for :mod:`.compose` get camelCase payloads (the wire form every codec speaks) and give
back camelCase payloads; these helpers translate to and from the ``ocpp`` package's snake_case keyword
arguments and dataclasses, validate against the official JSON schemas the package ships, and send
CALLs. The version's names come from :mod:`ocppsec.pki.wire`; the ``ocpp`` package is imported only
when a helper runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from ocppsec.pki.versions import OcppVersion
from ocppsec.pki.wire import wire_names

__all__ = [
    "call",
    "camel",
    "conforms",
    "format_error",
    "ocpp_module",
    "response_dict",
    "result",
    "snake",
    "validate_payload",
]


def ocpp_module(version: OcppVersion) -> ModuleType:
    """``ocpp.v16`` / ``ocpp.v201`` / ``ocpp.v21`` (with ``ChargePoint``, ``call``, ``call_result``)."""
    return importlib.import_module(wire_names(version).ocpp_module)


def format_error(version: OcppVersion, message: str) -> Exception:
    """The CallError the version answers an unreadable payload with (1.6 FormationViolation, else FormatViolation)."""
    from ocpp import exceptions

    code = wire_names(version).format_violation
    for value in vars(exceptions).values():
        if isinstance(value, type) and issubclass(value, exceptions.OCPPError) and getattr(value, "code", None) == code:
            error: Exception = value(message)
            return error
    raise LookupError(f"the ocpp package has no CallError {code}")  # pragma: no cover - a package upgrade broke it


def validate_payload(version: OcppVersion, action: str, payload: dict[str, Any], *, response: bool,
                     lenient_length: Sequence[str] = ()) -> None:
    """Validate ``payload`` against the official schema shipped in the ``ocpp`` package.

    ``lenient_length``: top-level fields whose ``maxLength`` violation is left to the domain code.
    Raises ``ocpp.exceptions.FormatViolationError`` (answered as a CALLERROR by the ``ocpp`` package).
    """
    from ocpp.exceptions import FormatViolationError
    from ocpp.messages import MessageType, get_validator

    kind = MessageType.CallResult if response else MessageType.Call
    validator = get_validator(kind, action, version.value)
    for err in validator.iter_errors(payload):
        path = list(err.absolute_path)
        if err.validator == "maxLength" and len(path) == 1 and path[0] in lenient_length:
            continue
        raise FormatViolationError(details={"cause": f"{'/'.join(map(str, path)) or action}: {err.message[:200]}"})


def conforms(version: OcppVersion, action: str, payload: dict[str, Any], *, response: bool) -> bool:
    """Whether ``payload`` is valid against the official schema (for payloads nested in others, e.g. PnC)."""
    from ocpp.messages import MessageType, get_validator

    kind = MessageType.CallResult if response else MessageType.Call
    return bool(get_validator(kind, action, version.value).is_valid(payload))


def camel(kwargs: dict[str, Any]) -> dict[str, Any]:
    """A handler's snake_case keyword arguments back as the camelCase payload."""
    from ocpp.charge_point import snake_to_camel_case

    out: dict[str, Any] = snake_to_camel_case(kwargs)
    return out


def snake(payload: dict[str, Any]) -> dict[str, Any]:
    from ocpp.charge_point import camel_to_snake_case

    out: dict[str, Any] = camel_to_snake_case(payload)
    return out


def result(version: OcppVersion, action: str, payload: dict[str, Any]) -> Any:
    """The ``call_result`` object a handler returns for a camelCase payload, validated against the schema first."""
    validate_payload(version, action, payload, response=True)
    return getattr(ocpp_module(version).call_result, action)(**snake(payload))


def response_dict(answer: Any) -> dict[str, Any]:
    """A ``call_result`` object as the camelCase payload."""
    from ocpp.charge_point import remove_nones, serialize_as_dict, snake_to_camel_case

    out: dict[str, Any] = snake_to_camel_case(remove_nones(serialize_as_dict(answer)))
    return out


async def call(cp: Any, version: OcppVersion, action: str, payload: dict[str, Any], *, validate: bool = True) -> dict[str, Any]:
    """Send a CALL built from a camelCase payload; return the camelCase response (a CALLERROR raises)."""
    request = getattr(ocpp_module(version).call, action)(**snake(payload))
    answer = await cp.call(request, suppress=False, skip_schema_validation=not validate)
    return response_dict(answer)
