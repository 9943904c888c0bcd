"""OCPP 2.1 wire shapes of certificate status: GetCertificateStatus (M06, larger limits) and
GetCertificateChainStatus (M07, OCSP or CRL per certificate). Names: the 2.1 table of :mod:`ocppsec.pki.wire`;
logic: :mod:`ocppsec.pki.revocation.status`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ocppsec.pki.errors import InputError
from ocppsec.pki.events.model import format_timestamp
from ocppsec.pki.hashdata import CertificateHashData
from ocppsec.pki.revocation.status import ChainStatusItem, ChainStatusRequest, Source, StatusAnswer
from ocppsec.pki.revocation.v201 import parse_ocsp_request_data, status_response
from ocppsec.pki.wire import v21 as wire_v21

__all__ = [
    "GET_CERTIFICATE_CHAIN_STATUS",
    "GET_CERTIFICATE_STATUS",
    "MAX_OCSP_RESULT",
    "get_certificate_chain_status_response",
    "get_certificate_status_response",
    "parse_get_certificate_chain_status",
    "parse_get_certificate_status",
]

GET_CERTIFICATE_STATUS = wire_v21.NAMES.certificate_status_action
GET_CERTIFICATE_CHAIN_STATUS: str = wire_v21.NAMES.chain_status_action or ""
MAX_OCSP_RESULT = 18000  # schema maxLength (the minimum a 2.1 station supports)
MAX_RESPONDER_URL = 2000
MAX_ADDITIONAL_INFO = 1024


def parse_get_certificate_status(payload: Mapping[str, Any]) -> tuple[CertificateHashData, str]:
    data = payload.get("ocspRequestData")
    if not isinstance(data, Mapping):
        raise InputError("GetCertificateStatusRequest lacks ocspRequestData")
    return parse_ocsp_request_data(data, MAX_RESPONDER_URL)


def get_certificate_status_response(answer: StatusAnswer) -> dict[str, Any]:
    return status_response(answer, MAX_OCSP_RESULT, MAX_ADDITIONAL_INFO)


def parse_get_certificate_chain_status(payload: Mapping[str, Any]) -> list[ChainStatusRequest]:
    """GetCertificateChainStatusRequest → requests (1-4 certificates, 1-5 URLs of ≤2000 characters each)."""
    items = payload.get("certificateStatusRequests")
    if not isinstance(items, list) or not 1 <= len(items) <= 4:
        raise InputError("certificateStatusRequests must hold 1-4 entries")
    out = []
    for item in items:
        if not isinstance(item, Mapping):
            raise InputError("a certificateStatusRequests entry is not an object")
        try:
            source = Source(item.get("source"))
        except ValueError:
            raise InputError("source must be OCSP or CRL") from None
        urls = item.get("urls")
        if (not isinstance(urls, list) or not 1 <= len(urls) <= 5
                or not all(isinstance(u, str) and 0 < len(u) <= MAX_RESPONDER_URL for u in urls)):
            raise InputError("urls must hold 1-5 URLs of at most 2000 characters")
        hd = item.get("certificateHashData")
        if not isinstance(hd, Mapping):
            raise InputError("certificateHashData missing")
        out.append(ChainStatusRequest(CertificateHashData.from_ocpp(hd), source, tuple(urls)))
    return out


def get_certificate_chain_status_response(items: Sequence[ChainStatusItem]) -> dict[str, Any]:
    return {"certificateStatus": [
        {"certificateHashData": i.hash_data.to_ocpp(), "source": i.source.value, "status": i.status.value,
         "nextUpdate": format_timestamp(i.next_update)}
        for i in items
    ]}
