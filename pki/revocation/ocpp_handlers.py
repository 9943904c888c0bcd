"""Certificate status for the ``ocpp`` package: a CSMS part and a station part for the ChargePoint composer.

CSMS side (:func:`csms_part`), answered by a :class:`~ocppsec.pki.revocation.status.CsmsRevocationService`:

=======  ==========================================================================================
1.6      DataTransfer with the Plug & Charge vendorId and messageId GetCertificateStatus (PNC16 §2.2);
         another vendorId is UnknownVendorId, another messageId UnknownMessageId, unreadable data Rejected
2.0.1    GetCertificateStatus (M06)
2.1      GetCertificateStatus (M06, larger limits) and GetCertificateChainStatus (M07, OCSP or CRL)
=======  ==========================================================================================

The service's OCSP and CRL look-ups block (HTTP to the responder, signing with our own responder), so
they run in a worker thread. A request the codec cannot read is answered with the version's CallError
(FormatViolation); an unreachable or failing responder is a ``Failed`` answer, never an exception.

Station side (:func:`station_part`): ``refresh_certificate_status()`` asks the CSMS for every answer a
:class:`~ocppsec.pki.revocation.status.StationOcspCache` is missing (M06.FR.06-10) and stores the ones
whose signature and certificate check out. Version differences are the table at the bottom (how a
request travels, which actions the CSMS answers); no version ``if``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from types import MappingProxyType, ModuleType
from typing import Any

from ocppsec.pki.chargepoint import glue
from ocppsec.pki.chargepoint.compose import Part, Side, on
from ocppsec.pki.errors import InputError, OcppsecError
from ocppsec.pki.revocation import v16 as status_v16
from ocppsec.pki.revocation import v21 as status_v21
from ocppsec.pki.revocation import v201 as status_v201
from ocppsec.pki.revocation.status import CsmsRevocationService, StationOcspCache
from ocppsec.pki.versions import OcppVersion
from ocppsec.pki.wire import wire_names

__all__ = ["PART_NAME", "csms_part", "station_part"]

LOG = logging.getLogger("ocppsec.revocation")
PART_NAME = "certificate status"
Clock = Callable[[], datetime]
Payload = dict[str, Any]


def _status_handlers(version: OcppVersion, service: CsmsRevocationService, clock: Clock, codec: ModuleType) -> type:
    """GetCertificateStatus answered in ``codec``'s shapes (2.0.1 or 2.1 limits)."""
    action = wire_names(version).certificate_status_action

    class CertificateStatusHandlers:
        @on(action)
        async def _on_get_certificate_status(self, **kwargs: Any) -> Any:
            try:
                hash_data, url = codec.parse_get_certificate_status(glue.camel(kwargs))
            except InputError as exc:
                raise glue.format_error(version, exc.message) from None
            answer = await asyncio.to_thread(service.certificate_status, hash_data, url, at=clock())
            return glue.result(version, action, codec.get_certificate_status_response(answer))

    return CertificateStatusHandlers


def _v201_handlers(version: OcppVersion, service: CsmsRevocationService, clock: Clock) -> type:
    return _status_handlers(version, service, clock, status_v201)


def _v21_handlers(version: OcppVersion, service: CsmsRevocationService, clock: Clock) -> type:
    action = status_v21.GET_CERTIFICATE_CHAIN_STATUS

    class CertificateChainStatusHandlers(_status_handlers(version, service, clock, status_v21)):  # type: ignore[misc]
        @on(action)
        async def _on_get_certificate_chain_status(self, **kwargs: Any) -> Any:
            try:
                requests = status_v21.parse_get_certificate_chain_status(glue.camel(kwargs))
            except InputError as exc:
                raise glue.format_error(version, exc.message) from None
            items = await asyncio.to_thread(service.chain_status, requests, at=clock())
            return glue.result(version, action, status_v21.get_certificate_chain_status_response(items))

    return CertificateChainStatusHandlers


def _v16_handlers(version: OcppVersion, service: CsmsRevocationService, clock: Clock) -> type:
    status_action = wire_names(version).certificate_status_action
    inner_version = OcppVersion.V201  # PnC carries the 2.0.1 payloads

    class PncDataTransferHandlers:
        @on("DataTransfer")
        async def _on_pnc_data_transfer(self, **kwargs: Any) -> Any:
            payload = glue.camel(kwargs)
            if payload.get("vendorId") != status_v16.PNC_VENDOR_ID:
                return glue.result(version, "DataTransfer", status_v16.unknown_vendor())
            if payload.get("messageId") != status_action:
                return glue.result(version, "DataTransfer", status_v16.rejected())
            try:
                _, inner = status_v16.unwrap_data_transfer(payload)
                if not glue.conforms(inner_version, status_action, inner, response=False):
                    raise InputError("the data is not a 2.0.1 GetCertificateStatusRequest")
                hash_data, url = status_v201.parse_get_certificate_status(inner)
            except InputError:
                return glue.result(version, "DataTransfer", status_v16.refused())
            answer = await asyncio.to_thread(service.certificate_status, hash_data, url, at=clock())
            response = status_v201.get_certificate_status_response(answer)
            glue.validate_payload(inner_version, status_action, response, response=True)
            return glue.result(version, "DataTransfer", status_v16.wrap_response(response))

    return PncDataTransferHandlers


Asker = Callable[[Any, OcppVersion, Payload], Awaitable[Payload | None]]


async def _ask_directly(cp: Any, version: OcppVersion, request: Payload) -> Payload | None:
    return await glue.call(cp, version, wire_names(version).certificate_status_action, request)


async def _ask_in_data_transfer(cp: Any, version: OcppVersion, request: Payload) -> Payload | None:
    wrapped = status_v16.wrap_request(wire_names(version).certificate_status_action, request)
    return status_v16.unwrap_response(await glue.call(cp, version, "DataTransfer", wrapped))


_CSMS: Mapping[OcppVersion, Callable[[OcppVersion, CsmsRevocationService, Clock], type]] = MappingProxyType(
    {OcppVersion.V16: _v16_handlers, OcppVersion.V201: _v201_handlers, OcppVersion.V21: _v21_handlers}
)
_ASK: Mapping[OcppVersion, Asker] = MappingProxyType(
    {OcppVersion.V16: _ask_in_data_transfer, OcppVersion.V201: _ask_directly, OcppVersion.V21: _ask_directly}
)


def _version(version: OcppVersion | str) -> OcppVersion:
    return version if isinstance(version, OcppVersion) else OcppVersion.parse(version)


def csms_part(version: OcppVersion | str, service: CsmsRevocationService, *, clock: Clock) -> Part:
    """The CSMS's certificate-status handlers of ``version``, answered by ``service``."""
    v = _version(version)
    return Part(PART_NAME, v, Side.CSMS, _CSMS[v](v, service, clock))


def station_part(version: OcppVersion | str, cache: StationOcspCache, *, clock: Clock) -> Part:
    """``refresh_certificate_status()``: the station asks the CSMS for the OCSP answers ``cache`` lacks."""
    v = _version(version)
    ask = _ASK[v]

    class CertificateStatusRequests:
        ocsp_cache: StationOcspCache

        async def refresh_certificate_status(self) -> int:
            """One GetCertificateStatus per due certificate; returns how many answers were stored.

            An answer that is not Accepted, or whose OCSP response does not check out (wrong certificate,
            bad signature, stale), is logged and not stored; the certificate stays due.
            """
            stored = 0
            for hash_data, url in cache.due_requests(at=clock()):
                request = status_v201.get_certificate_status_request(hash_data, url)
                try:
                    answer = await ask(self, v, request)
                    result = answer.get("ocspResult") if answer and answer.get("status") == "Accepted" else None
                    if not isinstance(result, str):
                        LOG.warning("no OCSP answer for serial %s: %s", hash_data.serial_number, answer)
                        continue
                    cache.accept(hash_data, result, at=clock())
                except OcppsecError as exc:
                    LOG.warning("OCSP answer for serial %s refused: %s", hash_data.serial_number, exc.message)
                    continue
                stored += 1
            return stored

    def setup(cp: Any, options: Mapping[str, Any]) -> None:
        cp.ocsp_cache = cache

    return Part(PART_NAME, v, Side.STATION, CertificateStatusRequests, setup)
