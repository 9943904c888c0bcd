"""OCPP 2.0.1 wire shapes of certificate status (GetCertificateStatus M06, Authorize with hash data).

Only shapes and field limits of 2.0.1 live here (the action name: the 2.0.1 table of :mod:`ocppsec.pki.wire`);
the logic is in :mod:`ocppsec.pki.revocation.status`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ocppsec.pki.errors import InputError
from ocppsec.pki.hashdata import CertificateHashData
from ocppsec.pki.revocation.status import AuthorizeStatus, StatusAnswer
from ocppsec.pki.wire import v201 as wire_v201

__all__ = [
    "GET_CERTIFICATE_STATUS",
    "MAX_OCSP_RESULT",
    "authorize_hash_data",
    "get_certificate_status_request",
    "get_certificate_status_response",
    "parse_get_certificate_status",
]

GET_CERTIFICATE_STATUS = wire_v201.NAMES.certificate_status_action
MAX_OCSP_RESULT = 5500  # GetCertificateStatusResponse.ocspResult maxLength
MAX_RESPONDER_URL = 512
MAX_ADDITIONAL_INFO = 512


def parse_ocsp_request_data(data: Mapping[str, Any], max_url: int = MAX_RESPONDER_URL) -> tuple[CertificateHashData, str]:
    hd = CertificateHashData.from_ocpp(data)
    url = data.get("responderURL")
    if not isinstance(url, str) or not url or len(url) > max_url:
        raise InputError(f"OCSPRequestData.responderURL must be 1-{max_url} characters")
    return hd, url


def parse_get_certificate_status(payload: Mapping[str, Any]) -> tuple[CertificateHashData, str]:
    """GetCertificateStatusRequest → (hash data, responderURL); InputError if malformed."""
    data = payload.get("ocspRequestData")
    if not isinstance(data, Mapping):
        raise InputError("GetCertificateStatusRequest lacks ocspRequestData")
    return parse_ocsp_request_data(data)


def get_certificate_status_request(hash_data: CertificateHashData, responder_url: str) -> dict[str, Any]:
    return {"ocspRequestData": {**hash_data.to_ocpp(), "responderURL": responder_url}}


def status_response(answer: StatusAnswer, max_result: int, max_info: int) -> dict[str, Any]:
    b64 = answer.ocsp_base64
    if answer.accepted and b64 is not None and len(b64) <= max_result:
        return {"status": "Accepted", "ocspResult": b64}
    out: dict[str, Any] = {"status": "Failed"}
    reason = answer.reason_code or "TooLargeElement"
    detail = answer.detail or (f"OCSP response of {len(b64)} characters exceeds {max_result}" if b64 else None)
    out["statusInfo"] = {"reasonCode": reason[:20]}
    if detail:
        out["statusInfo"]["additionalInfo"] = detail[:max_info]
    return out


def get_certificate_status_response(answer: StatusAnswer) -> dict[str, Any]:
    return status_response(answer, MAX_OCSP_RESULT, MAX_ADDITIONAL_INFO)


def authorize_hash_data(payload: Mapping[str, Any]) -> list[tuple[CertificateHashData, str]]:
    """AuthorizeRequest.iso15118CertificateHashData (OCSPRequestDataType, at most 4)."""
    items = payload.get("iso15118CertificateHashData") or []
    if not isinstance(items, list) or len(items) > 4:
        raise InputError("iso15118CertificateHashData must be a list of at most 4 entries")
    return [parse_ocsp_request_data(i) for i in items]


def authorize_certificate_status(status: AuthorizeStatus) -> str:
    return status.value
