"""Certificate management for the ``ocpp`` package: a CSMS part and a station part for the ChargePoint composer.

:func:`csms_part` and :func:`station_part` give :func:`ocppsec.pki.chargepoint.compose` the certificate
messages of one version; the payloads come from the version's :class:`~ocppsec.pki.certmgmt.codec.Codec`
(no version ``if`` here). The ready-made classes (certificate management together with the security
events and, given a revocation service, certificate status) are made by
:func:`ocppsec.pki.chargepoint.classes.csms_charge_point_class` and ``station_charge_point_class``.

Handlers that carry long PEM fields (SignCertificate, CertificateSigned, InstallCertificate) validate
their request against the official JSON schema themselves, tolerating only ``maxLength`` on the PEM
field, so that an oversized CSR or chain is answered with the spec's status and reasonCode instead of a
CALLERROR; any other schema violation is a FormatViolation CALLERROR as usual. Every response is
validated against the official response schema before it is sent. Domain errors never escape: they
become Rejected / Failed / NotFound outcomes. SecurityEventNotification is not handled here: the
security-event part (:mod:`ocppsec.pki.events.ocpp_handlers`) takes the events the station sends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

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
    TriggerStatus,
)
from ocppsec.pki.certmgmt.service import CertificateService, CertificateSignedOrder
from ocppsec.pki.certmgmt.station import CredentialRole, StationCertificateStore
from ocppsec.pki.chargepoint import glue
from ocppsec.pki.chargepoint.compose import Part, Side, after, on
from ocppsec.pki.errors import OcppsecError, UsageError
from ocppsec.pki.events.ingest import ACTION as SECURITY_EVENT_ACTION
from ocppsec.pki.hashdata import CertificateHashData
from ocppsec.pki.versions import OcppVersion

__all__ = [
    "PART_NAME",
    "csms_part",
    "station_part",
    "validate_payload",
]

LOG = logging.getLogger("ocppsec.certmgmt")
PART_NAME = "certificate management"
Clock = Callable[[], datetime]


def validate_payload(codec: Codec, action: str, payload: dict[str, Any], *, response: bool,
                     lenient_length: Sequence[str] = ()) -> None:
    """:func:`ocppsec.pki.chargepoint.glue.validate_payload` for the codec's version."""
    glue.validate_payload(codec.version, action, payload, response=response, lenient_length=lenient_length)


def csms_part(version: OcppVersion | str, service: CertificateService, *, clock: Clock) -> Part:
    """SignCertificate answered with ``service``, CertificateSigned sent after it; the CSMS-initiated messages.

    Instances offer ``trigger``, ``install_root``, ``delete_certificate``, ``get_installed`` and
    ``send_raw``, keep the answers to CertificateSigned in ``results`` and set ``signed`` after each.
    """
    codec = codec_for(version)
    v = codec.version

    class CertificateCsmsHandlers:
        id: str
        certificate_service: CertificateService
        results: list[tuple[CertificateSignedOrder, Outcome]]
        signed: asyncio.Event
        _certificate_orders: dict[str, CertificateSignedOrder]

        @on("SignCertificate", skip_schema_validation=True)
        async def _on_sign_certificate(self, call_unique_id: str, **kwargs: Any) -> Any:
            payload = glue.camel(kwargs)
            glue.validate_payload(v, "SignCertificate", payload, response=False, lenient_length=("csr",))
            try:
                request = codec.parse_sign_certificate_request(payload)
                outcome, order = await asyncio.to_thread(service.handle, self.id, request, at=clock())
            except OcppsecError as exc:
                outcome, order = Outcome(Status.REJECTED, "InvalidCSR", exc.message), None
            if order is not None:
                self._certificate_orders[call_unique_id] = order
            LOG.info("%s: SignCertificate %s %s", self.id, outcome.status.value, outcome.additional_info or "")
            return glue.result(v, "SignCertificate", codec.sign_certificate_response(outcome))

        @after("SignCertificate")
        async def _after_sign_certificate(self, call_unique_id: str, **kwargs: Any) -> None:
            order = self._certificate_orders.pop(call_unique_id, None)
            if order is not None:
                await self.send_certificate_signed(order)

        async def send_certificate_signed(self, order: CertificateSignedOrder, *, validate: bool = True) -> Outcome:
            payload = codec.certificate_signed_request(order.chain_pem, order.use, order.request_id)
            try:
                answer = codec.parse_status(await glue.call(self, v, "CertificateSigned", payload, validate=validate))
            except Exception as exc:  # CALLERROR or timeout from the peer: recorded, not raised
                answer = Outcome(Status.FAILED, None, f"CertificateSigned failed: {exc}"[:512])
            await asyncio.to_thread(service.certificate_signed_result, order, answer, at=clock())
            self.results.append((order, answer))
            self.signed.set()
            return answer

        async def send_raw(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
            """Send any payload without schema validation (tests of the station's bad-input handling)."""
            return await glue.call(self, v, action, payload, validate=False)

        async def trigger(self, trigger: Trigger) -> TriggerStatus:
            answer = await glue.call(self, v, codec.trigger_action, codec.trigger_request(trigger))
            return TriggerStatus(answer["status"])

        async def install_root(self, root_type: RootType, certificate: x509.Certificate | str) -> Outcome:
            pem = certificate if isinstance(certificate, str) else certificate.public_bytes(Encoding.PEM).decode()
            answer = codec.parse_status(await glue.call(self, v, "InstallCertificate",
                                                        codec.install_certificate_request(root_type, pem)))
            if not isinstance(certificate, str):
                service.install_result(self.id, root_type, certificate, answer, at=clock())
            return answer

        async def delete_certificate(self, hash_data: CertificateHashData) -> Outcome:
            answer = codec.parse_status(await glue.call(self, v, "DeleteCertificate",
                                                        codec.delete_certificate_request(hash_data)))
            service.delete_result(self.id, hash_data, answer, at=clock())
            return answer

        async def get_installed(self, types: Sequence[InstalledType] | None = None) -> tuple[Status, ReconcileReport]:
            answer = await glue.call(self, v, "GetInstalledCertificateIds", codec.get_installed_ids_request(types))
            status, entries = codec.parse_get_installed_ids_response(answer, types)
            kinds = [t.value for t in types] if types else None
            return status, service.installed_ids_result(self.id, entries, at=clock(), kinds=kinds)

    def setup(cp: Any, options: Mapping[str, Any]) -> None:
        cp.certificate_service = service
        cp.results = []
        cp.signed = asyncio.Event()
        cp._certificate_orders = {}

    return Part(PART_NAME, v, Side.CSMS, CertificateCsmsHandlers, setup)


def station_part(version: OcppVersion | str, store: StationCertificateStore, *, clock: Clock,
                 request_ids: Iterator[int]) -> Part:
    """The station's certificate messages answered from ``store``.

    It answers CertificateSigned, InstallCertificate, DeleteCertificate, GetInstalledCertificateIds and
    the certificate triggers (then sends a fresh SignCertificate), and sends SecurityEventNotification
    for every outcome that carries an event. ``renewed`` is set when a new client certificate was
    accepted, so the application reconnects with it (A02.FR.08).
    """
    codec = codec_for(version)
    v = codec.version

    class CertificateStationHandlers:
        id: str
        certificate_store: StationCertificateStore
        renewed: asyncio.Event
        sign_answers: list[Outcome]
        sent_events: list[dict[str, Any]]
        _pending_certificate_events: dict[str, Outcome]
        _certificate_triggers: dict[str, Trigger]

        # -- outgoing ---------------------------------------------------------------------------
        async def sign_certificate(self, use: CertificateUse = CertificateUse.CHARGING_STATION, *,
                                   hash_root: CertificateHashData | None = None) -> Outcome:
            """Generate a key and CSR and send SignCertificate (requestId in 2.1)."""
            request_id = next(request_ids) if codec.has_request_id else None
            csr = store.create_csr(use, at=clock(), request_id=request_id)
            payload = codec.sign_certificate_request(SignRequest(csr, use, request_id, hash_root))
            return await self.send_sign_certificate(payload)

        async def send_sign_certificate(self, payload: dict[str, Any], *, validate: bool = True) -> Outcome:
            answer = codec.parse_status(await glue.call(self, v, "SignCertificate", payload, validate=validate))
            self.sign_answers.append(answer)
            return answer

        async def send_event(self, outcome: Outcome) -> None:
            if outcome.event is None:
                return
            payload = codec.security_event_notification(outcome.event, at=clock(), tech_info=outcome.tech_info())
            if payload is None:
                LOG.warning("%s: %s (not defined in OCPP %s)", self.id, outcome.event, v.value)
                return
            self.sent_events.append(payload)
            await glue.call(self, v, SECURITY_EVENT_ACTION, payload)

        # -- incoming ---------------------------------------------------------------------------
        @on("CertificateSigned", skip_schema_validation=True)
        async def _on_certificate_signed(self, call_unique_id: str, **kwargs: Any) -> Any:
            payload = glue.camel(kwargs)
            glue.validate_payload(v, "CertificateSigned", payload, response=False, lenient_length=("certificateChain",))
            try:
                chain, use, request_id = codec.parse_certificate_signed_request(payload)
                outcome = store.certificate_signed(chain, use, at=clock(), request_id=request_id,
                                                   require_request_id=codec.has_request_id)
            except OcppsecError as exc:
                outcome = Outcome(Status.REJECTED, "InvalidCertificate", exc.message, "InvalidChargingStationCertificate")
            if outcome.event:
                self._pending_certificate_events[call_unique_id] = outcome
            credentials = store.client_credentials()
            if outcome.accepted and credentials and credentials[0].role is CredentialRole.RENEWED:
                self.renewed.set()
            return glue.result(v, "CertificateSigned", codec.certificate_signed_response(outcome))

        @after("CertificateSigned")
        async def _after_certificate_signed(self, call_unique_id: str, **kwargs: Any) -> None:
            outcome = self._pending_certificate_events.pop(call_unique_id, None)
            if outcome is not None:
                await self.send_event(outcome)

        @on("InstallCertificate", skip_schema_validation=True)
        async def _on_install_certificate(self, **kwargs: Any) -> Any:
            payload = glue.camel(kwargs)
            glue.validate_payload(v, "InstallCertificate", payload, response=False, lenient_length=("certificate",))
            try:
                root_type, pem = codec.parse_install_certificate_request(payload)
                outcome = store.install_root(root_type, pem, at=clock(), max_chars=codec.install_max_chars)
            except OcppsecError as exc:
                outcome = Outcome(Status.REJECTED, "InvalidCertificate", exc.message)
            return glue.result(v, "InstallCertificate", codec.install_certificate_response(outcome))

        @on("DeleteCertificate")
        async def _on_delete_certificate(self, **kwargs: Any) -> Any:
            try:
                outcome = store.delete(codec.parse_delete_certificate_request(glue.camel(kwargs)))
            except OcppsecError as exc:
                outcome = Outcome(Status.NOT_FOUND, None, exc.message)
            return glue.result(v, "DeleteCertificate", codec.delete_certificate_response(outcome))

        @on("GetInstalledCertificateIds")
        async def _on_get_installed(self, **kwargs: Any) -> Any:
            try:
                types = codec.parse_get_installed_ids_request(glue.camel(kwargs))
                entries = store.installed(types)
            except OcppsecError:
                entries = []
            return glue.result(v, "GetInstalledCertificateIds", codec.get_installed_ids_response(entries))

        @on(codec.trigger_action)
        async def _on_trigger(self, call_unique_id: str, **kwargs: Any) -> Any:
            trigger = codec.parse_trigger_request(glue.camel(kwargs))
            status = TriggerStatus.NOT_IMPLEMENTED
            if trigger is not None:
                try:
                    store.config.subject_for(trigger.use)
                    store.trigger(trigger)
                    self._certificate_triggers[call_unique_id] = trigger
                    status = TriggerStatus.ACCEPTED
                except UsageError:
                    status = TriggerStatus.REJECTED
            return glue.result(v, codec.trigger_action, codec.trigger_response(status))

        @after(codec.trigger_action)
        async def _after_trigger(self, call_unique_id: str, **kwargs: Any) -> None:
            trigger = self._certificate_triggers.pop(call_unique_id, None)
            if trigger is not None:
                try:
                    await self.sign_certificate(trigger.use)
                except Exception:  # a failed resend is the back-off's business, not the receive loop's
                    LOG.exception("%s: SignCertificate after %s failed", self.id, trigger.value)

    def setup(cp: Any, options: Mapping[str, Any]) -> None:
        cp.certificate_store = store
        cp.renewed = asyncio.Event()
        cp.sign_answers = []
        cp.sent_events = []
        cp._pending_certificate_events = {}
        cp._certificate_triggers = {}

    return Part(PART_NAME, v, Side.STATION, CertificateStationHandlers, setup)
