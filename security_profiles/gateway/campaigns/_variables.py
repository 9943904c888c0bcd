"""Reading one boolean configuration variable of a station, per OCPP version (data, no version ``if``).

1.6: GetConfiguration ``{"key": [NAME]}`` -> ``configurationKey[].value``; 2.0.1 / 2.1: GetVariables of
``SecurityCtrlr.NAME`` -> ``getVariableResult[].attributeValue`` with ``attributeStatus`` Accepted.
Used for AdditionalRootCertificateCheck (1.6 configuration key, 2.0.1 / 2.1 SecurityCtrlr variable).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ocppsec.pki.versions import OcppVersion

__all__ = ["QUERIES", "VariableQuery"]


def _request_16(name: str) -> dict[str, Any]:
    return {"key": [name]}


def _answer_16(name: str, payload: Mapping[str, Any]) -> str | None:
    for item in payload.get("configurationKey") or []:
        if isinstance(item, Mapping) and item.get("key") == name and isinstance(item.get("value"), str):
            return str(item["value"])
    return None


def _request_2x(name: str) -> dict[str, Any]:
    return {"getVariableData": [{"component": {"name": "SecurityCtrlr"}, "variable": {"name": name}}]}


def _answer_2x(name: str, payload: Mapping[str, Any]) -> str | None:
    for item in payload.get("getVariableResult") or []:
        if (isinstance(item, Mapping) and item.get("attributeStatus") == "Accepted"
                and (item.get("variable") or {}).get("name") == name and isinstance(item.get("attributeValue"), str)):
            return str(item["attributeValue"])
    return None


@dataclass(frozen=True, slots=True)
class VariableQuery:
    action: str
    request: Callable[[str], dict[str, Any]]
    answer: Callable[[str, Mapping[str, Any]], str | None]

    def boolean(self, name: str, payload: Mapping[str, Any]) -> bool | None:
        value = self.answer(name, payload)
        if value is None:
            return None
        return value.strip().lower() == "true"


QUERIES: Mapping[OcppVersion, VariableQuery] = MappingProxyType({
    OcppVersion.V16: VariableQuery("GetConfiguration", _request_16, _answer_16),
    OcppVersion.V201: VariableQuery("GetVariables", _request_2x, _answer_2x),
    OcppVersion.V21: VariableQuery("GetVariables", _request_2x, _answer_2x),
})
