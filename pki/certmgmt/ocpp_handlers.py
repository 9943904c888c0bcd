"""Adapters for the ``ocpp`` package's ChargePoint: a CSMS side and a station side, for 1.6, 2.0.1 and 2.1.

:func:`csms_charge_point_class` and :func:`station_charge_point_class` build a subclass of the
version's ``ocpp.vXX.ChargePoint`` with ``@on`` handlers for the certificate messages; the payloads
come from the version's :class:`~ocppsec.pki.certmgmt.codec.Codec` (no version ``if`` here).

Handlers that carry long PEM fields (SignCertificate, CertificateSigned, InstallCertificate) validate
their request against the official JSON schema themselves, tolerating only ``maxLength`` on the PEM
field, so that an oversized CSR or chain is answered with the spec's status and reasonCode instead of a
CALLERROR; any other schema violation is a FormatViolation CALLERROR as usual. Every response is
validated against the official response schema before it is sent. Domain errors never escape: they
become Rejected / Failed / NotFound outcomes.
"""

from __future__ import annotations

import asyncio
import importlib
import itertools
import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ocppsec.pki.certmgmt.codec import Codec
from ocppsec.pki.certmgmt.codecs import codec_for
from ocppsec.pki.certmgmt.inventory import ReconcileReport
from ocppsec.pki.certmgmt.model import (
    CertificateUse,
    InstalledType,
    Outcome,
    RootType,
    SignRequest,
    Status,
    Trigger,
)
from ocppsec.pki.certmgmt.service import CertificateService, CertificateSignedOrder
from ocppsec.pki.certmgmt.station import StationCertificateStore
from ocppsec.pki.errors import OcppsecError, UsageError
from ocppsec.pki.hashdata import CertificateHashData
from ocppsec.pki.versions import OcppVersion

__all__ = ["csms_charge_point_class", "station_charge_point_class", "validate_payload"]

LOG = logging.getLogger("ocppsec.certmgmt")
Clock = Callable[[], datetime]


_F = TypeVar("_F", bound=Callable[..., Any])


def on(action: str, *, skip_schema_validation: bool = False) -> Callable[[_F], _F]:
    """``ocpp.routing.on`` with a type."""
    from ocpp.routing import on as ocpp_on

    decorator: Callable[[_F], _F] = ocpp_on(action, skip_schema_validation=skip_schema_validation)
    return decorator


def after(action: str) -> Callable[[_F], _F]:
    """``ocpp.routing.after`` with a type."""
    from ocpp.routing import after as ocpp_after

    decorator: Callable[[_F], _F] = ocpp_after(action)
    return decorator


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _ocpp(codec: Codec) -> Any:
    return importlib.import_module(codec.ocpp_package)


def validate_payload(codec: Codec, action: str, payload: dict[str, Any], *, response: bool,
                     lenient_length: Sequence[str] = ()) -> None:
    """Validate ``payload`` against the official schema shipped in the ``ocpp`` package.

    ``lenient_length``: top-level fields whose ``maxLength`` violation is left to the domain code.
    Raises ``ocpp.exceptions.FormatViolationError`` (answered as a CALLERROR by the ``ocpp`` package).
    """
    from ocpp.exceptions import FormatViolationError
    from ocpp.messages import MessageType, get_validator

    kind = MessageType.CallResult if response else MessageType.Call
    validator = get_validator(kind, action, codec.version.value)
    for err in validator.iter_errors(payload):
        path = list(err.absolute_path)
        if err.validator == "maxLength" and len(path) == 1 and path[0] in lenient_length:
            continue
        raise FormatViolationError(details={"cause": f"{'/'.join(map(str, path)) or action}: {err.message[:200]}"})


def _camel(kwargs: dict[str, Any]) -> dict[str, Any]:
    from ocpp.charge_point import snake_to_camel_case

    out: dict[str, Any] = snake_to_camel_case(kwargs)
    return out


def _snake(payload: dict[str, Any]) -> dict[str, Any]:
    from ocpp.charge_point import camel_to_snake_case

    out: dict[str, Any] = camel_to_snake_case(payload)
    return out


def _result(codec: Codec, action: str, payload: dict[str, Any]) -> Any:
    validate_payload(codec, action, payload, response=True)
    return getattr(_ocpp(codec).call_result, action)(**_snake(payload))


def _response_dict(result: Any) -> dict[str, Any]:
    from ocpp.charge_point import remove_nones, serialize_as_dict, snake_to_camel_case

    out: dict[str, Any] = snake_to_camel_case(remove_nones(serialize_as_dict(result)))
    return out


async def _call(cp: Any, codec: Codec, action: str, payload: dict[str, Any], *, validate: bool = True) -> dict[str, Any]:
    """Send a CALL built from a camelCase payload; return the camelCase response (CALLERROR raises)."""
    request = getattr(_ocpp(codec).call, action)(**_snake(payload))
    result = await cp.call(request, suppress=False, skip_schema_validation=not validate)
    return _response_dict(result)


def csms_charge_point_class(version: OcppVersion | str, service: CertificateService, *, clock: Clock = _utcnow) -> type:
    """A CSMS-side ChargePoint class answering SignCertificate with the service and sending CertificateSigned.

    Instances (``cls(station_id, websocket)``) also offer ``trigger``, ``install_root``,
    ``delete_certificate`` and ``get_installed`` for the CSMS-initiated messages, and keep the answers
    in ``self.results`` (outcomes of CertificateSigned) for the application.
    """
    codec = codec_for(version)
    base: type = _ocpp(codec).ChargePoint

    class CsmsCertificateChargePoint(base):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.codec = codec
            self.service = service
            self._orders: dict[str, CertificateSignedOrder] = {}
            self.results: list[tuple[CertificateSignedOrder, Outcome]] = []
            self.events: list[dict[str, Any]] = []
            self.signed = asyncio.Event()

        @on("SignCertificate", skip_schema_validation=True)
        async def _on_sign_certificate(self, call_unique_id: str, **kwargs: Any) -> Any:
            payload = _camel(kwargs)
            validate_payload(codec, "SignCertificate", payload, response=False, lenient_length=("csr",))
            try:
                request = codec.parse_sign_certificate_request(payload)
                outcome, order = await asyncio.to_thread(service.handle, self.id, request, at=clock())
            except OcppsecError as exc:
                outcome, order = Outcome(Status.REJECTED, "InvalidCSR", exc.message), None
            if order is not None:
                self._orders[call_unique_id] = order
            LOG.info("%s: SignCertificate %s %s", self.id, outcome.status.value, outcome.additional_info or "")
            return _result(codec, "SignCertificate", codec.sign_certificate_response(outcome))

        @after("SignCertificate")
        async def _after_sign_certificate(self, call_unique_id: str, **kwargs: Any) -> None:
            order = self._orders.pop(call_unique_id, None)
            if order is not None:
                await self.send_certificate_signed(order)

        @on("SecurityEventNotification")
        async def _on_security_event(self, **kwargs: Any) -> Any:
            self.events.append(_camel(kwargs))
            return _ocpp(codec).call_result.SecurityEventNotification()

        async def send_certificate_signed(self, order: CertificateSignedOrder, *, validate: bool = True) -> Outcome:
            payload = codec.certificate_signed_request(order.chain_pem, order.use, order.request_id)
            try:
                answer = codec.parse_status(await _call(self, codec, "CertificateSigned", payload, validate=validate))
            except Exception as exc:  # CALLERROR or timeout from the peer: recorded, not raised
                answer = Outcome(Status.FAILED, None, f"CertificateSigned failed: {exc}"[:512])
            await asyncio.to_thread(service.certificate_signed_result, order, answer, at=clock())
            self.results.append((order, answer))
            self.signed.set()
            return answer

        async def send_raw(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
            """Send any payload without schema validation (tests of the station's bad-input handling)."""
            return await _call(self, codec, action, payload, validate=False)

        async def trigger(self, trigger: Trigger) -> str:
            answer = await _call(self, codec, codec.trigger_action, codec.trigger_request(trigger))
            return str(answer["status"])

        async def install_root(self, root_type: RootType, certificate: x509.Certificate | str) -> Outcome:
            pem = certificate if isinstance(certificate, str) else certificate.public_bytes(Encoding.PEM).decode()
            answer = codec.parse_status(await _call(self, codec, "InstallCertificate",
                                                    codec.install_certificate_request(root_type, pem)))
            if not isinstance(certificate, str):
                service.install_result(self.id, root_type, certificate, answer, at=clock())
            return answer

        async def delete_certificate(self, hash_data: CertificateHashData) -> Outcome:
            answer = codec.parse_status(await _call(self, codec, "DeleteCertificate",
                                                    codec.delete_certificate_request(hash_data)))
            service.delete_result(self.id, hash_data, answer, at=clock())
            return answer

        async def get_installed(self, types: Sequence[InstalledType] | None = None) -> tuple[Status, ReconcileReport]:
            answer = await _call(self, codec, "GetInstalledCertificateIds", codec.get_installed_ids_request(types))
            status, entries = codec.parse_get_installed_ids_response(answer, types)
            kinds = [t.value for t in types] if types else None
            return status, service.installed_ids_result(self.id, entries, at=clock(), kinds=kinds)

    CsmsCertificateChargePoint.__name__ = f"CsmsCertificateChargePoint_{codec.version.name}"
    return CsmsCertificateChargePoint


def station_charge_point_class(
    version: OcppVersion | str, store: StationCertificateStore, *, clock: Clock = _utcnow,
    request_ids: Iterator[int] | None = None,
) -> type:
    """A station-side ChargePoint class backed by a :class:`StationCertificateStore`.

    It answers CertificateSigned, InstallCertificate, DeleteCertificate, GetInstalledCertificateIds and
    the certificate triggers (then sends a fresh SignCertificate), and sends SecurityEventNotification
    for every outcome that carries an event. ``renewed`` is set when a new client certificate was
    accepted, so the application reconnects with it (A02.FR.08).
    """
    codec = codec_for(version)
    base: type = _ocpp(codec).ChargePoint
    ids = request_ids or itertools.count(1)

    class StationCertificateChargePoint(base):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.codec = codec
            self.store = store
            self.renewed = asyncio.Event()
            self.sign_answers: list[Outcome] = []
            self.sent_events: list[dict[str, Any]] = []
            self._pending_events: dict[str, Outcome] = {}
            self._triggered: dict[str, Trigger] = {}

        # -- outgoing ---------------------------------------------------------------------------
        async def sign_certificate(self, use: CertificateUse = CertificateUse.CHARGING_STATION, *,
                                   hash_root: CertificateHashData | None = None) -> Outcome:
            """Generate a key and CSR and send SignCertificate (requestId in 2.1)."""
            request_id = next(ids) if codec.has_request_id else None
            csr = store.create_csr(use, at=clock(), request_id=request_id)
            payload = codec.sign_certificate_request(SignRequest(csr, use, request_id, hash_root))
            return await self.send_sign_certificate(payload)

        async def send_sign_certificate(self, payload: dict[str, Any], *, validate: bool = True) -> Outcome:
            answer = codec.parse_status(await _call(self, codec, "SignCertificate", payload, validate=validate))
            self.sign_answers.append(answer)
            return answer

        async def send_event(self, outcome: Outcome) -> None:
            if outcome.event is None:
                return
            payload = codec.security_event_notification(outcome.event, at=clock(), tech_info=outcome.tech_info())
            if payload is None:
                LOG.warning("%s: %s (not defined in OCPP %s)", self.id, outcome.event, codec.version.value)
                return
            self.sent_events.append(payload)
            await _call(self, codec, "SecurityEventNotification", payload)

        # -- incoming ---------------------------------------------------------------------------
        @on("CertificateSigned", skip_schema_validation=True)
        async def _on_certificate_signed(self, call_unique_id: str, **kwargs: Any) -> Any:
            payload = _camel(kwargs)
            validate_payload(codec, "CertificateSigned", payload, response=False, lenient_length=("certificateChain",))
            try:
                chain, use, request_id = codec.parse_certificate_signed_request(payload)
                outcome = store.certificate_signed(chain, use, at=clock(), request_id=request_id,
                                                   require_request_id=codec.has_request_id)
            except OcppsecError as exc:
                outcome = Outcome(Status.REJECTED, "InvalidCertificate", exc.message, "InvalidChargingStationCertificate")
            if outcome.event:
                self._pending_events[call_unique_id] = outcome
            if outcome.accepted and store.client_credentials() and store.client_credentials()[0].role == "renewed":
                self.renewed.set()
            return _result(codec, "CertificateSigned", codec.certificate_signed_response(outcome))

        @after("CertificateSigned")
        async def _after_certificate_signed(self, call_unique_id: str, **kwargs: Any) -> None:
            outcome = self._pending_events.pop(call_unique_id, None)
            if outcome is not None:
                await self.send_event(outcome)

        @on("InstallCertificate", skip_schema_validation=True)
        async def _on_install_certificate(self, **kwargs: Any) -> Any:
            payload = _camel(kwargs)
            validate_payload(codec, "InstallCertificate", payload, response=False, lenient_length=("certificate",))
            try:
                root_type, pem = codec.parse_install_certificate_request(payload)
                outcome = store.install_root(root_type, pem, at=clock(), max_chars=codec.install_max_chars)
            except OcppsecError as exc:
                outcome = Outcome(Status.REJECTED, "InvalidCertificate", exc.message)
            return _result(codec, "InstallCertificate", codec.install_certificate_response(outcome))

        @on("DeleteCertificate")
        async def _on_delete_certificate(self, **kwargs: Any) -> Any:
            try:
                outcome = store.delete(codec.parse_delete_certificate_request(_camel(kwargs)))
            except OcppsecError as exc:
                outcome = Outcome(Status.NOT_FOUND, None, exc.message)
            return _result(codec, "DeleteCertificate", codec.delete_certificate_response(outcome))

        @on("GetInstalledCertificateIds")
        async def _on_get_installed(self, **kwargs: Any) -> Any:
            try:
                types = codec.parse_get_installed_ids_request(_camel(kwargs))
                entries = store.installed(types)
            except OcppsecError:
                entries = []
            return _result(codec, "GetInstalledCertificateIds", codec.get_installed_ids_response(entries))

        @on(codec.trigger_action)
        async def _on_trigger(self, call_unique_id: str, **kwargs: Any) -> Any:
            trigger = codec.parse_trigger_request(_camel(kwargs))
            status = "NotImplemented"
            if trigger is not None:
                try:
                    store.config.subject_for(trigger.use)
                    store.trigger(trigger)
                    self._triggered[call_unique_id] = trigger
                    status = "Accepted"
                except UsageError:
                    status = "Rejected"
            return _result(codec, codec.trigger_action, codec.trigger_response(status))

        @after(codec.trigger_action)
        async def _after_trigger(self, call_unique_id: str, **kwargs: Any) -> None:
            trigger = self._triggered.pop(call_unique_id, None)
            if trigger is not None:
                try:
                    await self.sign_certificate(trigger.use)
                except Exception:  # a failed resend is the back-off's business, not the receive loop's
                    LOG.exception("%s: SignCertificate after %s failed", self.id, trigger.value)

    StationCertificateChargePoint.__name__ = f"StationCertificateChargePoint_{codec.version.name}"
    return StationCertificateChargePoint
