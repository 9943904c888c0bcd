"""OCPP 1.6 Plug & Charge: certificate status travels inside DataTransfer (PNC16 §2.2).

vendorId ``org.openchargealliance.iso15118pnc``, messageId = the 2.0.1 message name, data = the 2.0.1
payload as a JSON string; the answer is DataTransfer.conf with ``data`` = the 2.0.1 response as JSON.
The names are the 1.6 table of :mod:`ocppsec.pki.wire`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ocppsec.pki.errors import InputError
from ocppsec.pki.wire import v16 as wire_v16

__all__ = [
    "PNC_MESSAGES",
    "PNC_VENDOR_ID",
    "refused",
    "rejected",
    "unknown_vendor",
    "unwrap_data_transfer",
    "unwrap_response",
    "wrap_request",
    "wrap_response",
]

PNC_VENDOR_ID: str = wire_v16.NAMES.pnc_vendor_id or ""
PNC_MESSAGES = wire_v16.NAMES.pnc_message_ids


def unwrap_data_transfer(payload: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """DataTransfer.req → (messageId, inner 2.0.1 payload); InputError if it is not a PnC status message."""
    if payload.get("vendorId") != PNC_VENDOR_ID:
        raise InputError(f"DataTransfer vendorId is not {PNC_VENDOR_ID}")
    message_id = payload.get("messageId")
    if message_id not in PNC_MESSAGES:
        raise InputError(f"unsupported PnC messageId {message_id!r}")
    return str(message_id), _json_object(payload, "DataTransfer")


def _json_object(payload: Mapping[str, Any], what: str) -> dict[str, Any]:
    try:
        inner = json.loads(str(payload.get("data", "")))
    except json.JSONDecodeError:
        raise InputError(f"{what} data is not JSON") from None
    if not isinstance(inner, dict):
        raise InputError(f"{what} data is not a JSON object")
    return inner


def wrap_request(message_id: str, inner: Mapping[str, Any]) -> dict[str, Any]:
    return {"vendorId": PNC_VENDOR_ID, "messageId": message_id, "data": json.dumps(inner, separators=(",", ":"))}


def wrap_response(inner: Mapping[str, Any]) -> dict[str, Any]:
    """DataTransfer.conf carrying the 2.0.1-shaped response."""
    return {"status": "Accepted", "data": json.dumps(inner, separators=(",", ":"))}


def unwrap_response(payload: Mapping[str, Any]) -> dict[str, Any] | None:
    """The 2.0.1-shaped response inside DataTransfer.conf, or None when the CSMS did not accept the message."""
    if payload.get("status") != "Accepted":
        return None
    return _json_object(payload, "DataTransfer.conf")


def rejected() -> dict[str, Any]:
    """A PnC DataTransfer whose messageId is not handled here."""
    return {"status": "UnknownMessageId"}


def unknown_vendor() -> dict[str, Any]:
    """A DataTransfer for another vendorId."""
    return {"status": "UnknownVendorId"}


def refused() -> dict[str, Any]:
    """A PnC message handled here whose data cannot be read."""
    return {"status": "Rejected"}
