"""OCPP 1.6 Plug & Charge: certificate status travels inside DataTransfer (PNC16 §2.2).

vendorId ``org.openchargealliance.iso15118pnc``, messageId = the 2.0.1 message name, data = the 2.0.1
payload as a JSON string; the answer is DataTransfer.conf with ``data`` = the 2.0.1 response as JSON.
Roots for the OCPP connection keep their white-paper names (``CentralSystemRootCertificate``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ocppsec.pki.errors import InputError

__all__ = ["CSMS_ROOT_TYPE", "PNC_VENDOR_ID", "unwrap_data_transfer", "wrap_request", "wrap_response"]

PNC_VENDOR_ID = "org.openchargealliance.iso15118pnc"
CSMS_ROOT_TYPE = "CentralSystemRootCertificate"
PNC_MESSAGES = ("Authorize", "GetCertificateStatus")


def unwrap_data_transfer(payload: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """DataTransfer.req → (messageId, inner 2.0.1 payload); InputError if it is not a PnC status message."""
    if payload.get("vendorId") != PNC_VENDOR_ID:
        raise InputError(f"DataTransfer vendorId is not {PNC_VENDOR_ID}")
    message_id = payload.get("messageId")
    if message_id not in PNC_MESSAGES:
        raise InputError(f"unsupported PnC messageId {message_id!r}")
    try:
        inner = json.loads(str(payload.get("data", "")))
    except json.JSONDecodeError:
        raise InputError("DataTransfer data is not JSON") from None
    if not isinstance(inner, dict):
        raise InputError("DataTransfer data is not a JSON object")
    return str(message_id), inner


def wrap_request(message_id: str, inner: Mapping[str, Any]) -> dict[str, Any]:
    return {"vendorId": PNC_VENDOR_ID, "messageId": message_id, "data": json.dumps(inner, separators=(",", ":"))}


def wrap_response(inner: Mapping[str, Any]) -> dict[str, Any]:
    """DataTransfer.conf carrying the 2.0.1-shaped response."""
    return {"status": "Accepted", "data": json.dumps(inner, separators=(",", ":"))}


def rejected() -> dict[str, Any]:
    """A DataTransfer we cannot understand (unknown messageId or bad data)."""
    return {"status": "UnknownMessageId"}
