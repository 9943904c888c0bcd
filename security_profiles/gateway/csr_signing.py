"""The gateway answers its stations' SignCertificate itself (``ocppsec gateway --sign-csrs``).

The gateway relays OCPP frames without parsing them; with CSR signing on, two kinds of station frames
are taken out of the relay:

1. a CALL ``SignCertificate``: checked against the official schema (tolerating only an oversized
   ``csr``, which the service answers with Rejected/InvalidCSR), reviewed and signed by the
   :class:`~ocppsec.pki.certmgmt.service.CertificateService` (CSR policy, station identity and serial
   from the station registry, CSO name, the CA of ``--pki``/``--ca``, inventory), answered with a
   CALLRESULT, and, if Accepted, followed by a CALL ``CertificateSigned`` that the gateway sends with a
   unique message id of its own (``ocppsec-gw-<uuid>``);
2. the station's CALLRESULT / CALLERROR to that id: consumed (never forwarded upstream) and recorded
   in the inventory (``installed`` / ``rejected``).

Every payload goes through the station's version :class:`~ocppsec.pki.certmgmt.codec.Codec`; this
module has no OCPP version ``if``. Detection is cheap: a frame is parsed only when it contains the
text ``SignCertificate`` or, while a CertificateSigned of ours is outstanding, when it is a response.
:class:`SigningSession` is sans-I/O (frames in, frames out); the gateway runs :meth:`SigningSession.answer`
and :meth:`SigningSession.take_response` in a worker thread because they sign and write SQLite.
:attr:`CsrSigning.listeners` (:class:`SigningListener`) hear of every answered SignCertificate and every
answer to our CertificateSigned, in that worker thread (the campaigns follow renewals this way).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from ocppsec.pki.certmgmt import CertificateService, CertificateSignedOrder, Outcome, SignRequest, StationInfo, Status
from ocppsec.pki.certmgmt.codec import Codec
from ocppsec.pki.certmgmt.codecs import codec_for
from ocppsec.pki.certmgmt.ocpp_handlers import validate_payload
from ocppsec.pki.errors import OcppsecError
from ocppsec.pki.versions import OcppVersion
from ocppsec.security_profiles.registry import StationRegistry

__all__ = ["ID_PREFIX", "CsrSigning", "RegistryStations", "SignCall", "SigningListener", "SigningSession",
           "parse_sign_certificate"]

_log = logging.getLogger("ocppsec.security_profiles.gateway.csr_signing")
ID_PREFIX = "ocppsec-gw-"
_ACTION = "SignCertificate"


class SigningListener(Protocol):
    """Hears what CSR signing did (called in a worker thread; must be thread-safe and quick)."""

    def sign_answered(self, station_id: str, request: SignRequest | None, outcome: Outcome,
                      order: CertificateSignedOrder | None) -> None: ...

    def certificate_signed_answered(self, order: CertificateSignedOrder, outcome: Outcome) -> None: ...


class RegistryStations(Mapping[str, StationInfo]):
    """The station registry seen as the certificate service's station map (serial = the registered serial)."""

    def __init__(self, registry: StationRegistry, *, cso_name: str | None = None, max_chain_size: int | None = None) -> None:
        self.registry = registry
        self.cso_name = cso_name
        self.max_chain_size = max_chain_size

    def __getitem__(self, station_id: str) -> StationInfo:
        record = self.registry.get(station_id)
        if record is None:
            raise KeyError(station_id)
        return StationInfo(station_id, serial=record.expected_serial, cso_name=self.cso_name,
                           max_chain_size=self.max_chain_size)

    def __iter__(self) -> Iterator[str]:
        return iter([r.identity for r in self.registry.list()])

    def __len__(self) -> int:
        return len(self.registry.list())


@dataclass(frozen=True, slots=True)
class SignCall:
    """A station's SignCertificate CALL: its message id and payload."""

    unique_id: str
    payload: dict[str, Any]


def parse_sign_certificate(message: str | bytes) -> SignCall | None:
    """The SignCertificate CALL in ``message``, or ``None`` (cheap substring test before any JSON parsing)."""
    if not isinstance(message, str) or _ACTION not in message:
        return None
    try:
        frame = json.loads(message)
    except ValueError:
        return None
    if (isinstance(frame, list) and len(frame) == 4 and frame[0] == 2 and frame[2] == _ACTION
            and isinstance(frame[1], str) and isinstance(frame[3], dict)):
        return SignCall(frame[1], frame[3])
    return None


def _frame(*parts: Any) -> str:
    return json.dumps(list(parts), separators=(",", ":"), ensure_ascii=False)


@dataclass
class SigningSession:
    """CSR signing for one connected station: frames in, frames out (see the module docstring)."""

    signing: CsrSigning
    station_id: str
    codec: Codec
    pending: dict[str, CertificateSignedOrder] = field(default_factory=dict)

    def answer(self, call: SignCall, *, at: datetime) -> list[str]:
        """The frames to send to the station for ``call``: the CALLRESULT, then (if Accepted) CertificateSigned."""
        from ocpp.exceptions import OCPPError

        try:
            validate_payload(self.codec, _ACTION, call.payload, response=False, lenient_length=("csr",))
        except OCPPError as exc:
            self.signing.stats["format_violations"] += 1
            return [_frame(4, call.unique_id, exc.code, exc.description, exc.details or {})]
        request: SignRequest | None = None
        try:
            request = self.codec.parse_sign_certificate_request(call.payload)
            outcome, order = self.signing.service.handle(self.station_id, request, at=at)
        except OcppsecError as exc:
            outcome, order = Outcome(Status.REJECTED, "InvalidCSR", exc.message[:512]), None
        response = self.codec.sign_certificate_response(outcome)
        validate_payload(self.codec, _ACTION, response, response=True)
        frames = [_frame(3, call.unique_id, response)]
        key = "accepted" if outcome.accepted else "rejected"
        self.signing.stats[key] += 1
        _log.info("%s: SignCertificate %s %s", self.station_id, outcome.status.value, outcome.additional_info or "")
        if order is not None:
            payload = self.codec.certificate_signed_request(order.chain_pem, order.use, order.request_id)
            validate_payload(self.codec, "CertificateSigned", payload, response=False)
            unique_id = ID_PREFIX + uuid.uuid4().hex
            self.pending[unique_id] = order
            frames.append(_frame(2, unique_id, "CertificateSigned", payload))
        self.signing.notify("sign_answered", self.station_id, request, outcome, order)
        return frames

    def may_answer(self, message: str | bytes) -> bool:
        """Cheap test (no JSON parsing): could ``message`` answer one of our outstanding CertificateSigned calls?"""
        return bool(self.pending) and isinstance(message, str) and ID_PREFIX in message

    def take_response(self, message: str, *, at: datetime) -> Outcome | None:
        """The station's answer to our CertificateSigned (CALLRESULT or CALLERROR), recorded in the inventory.

        ``None`` when ``message`` is not such an answer (the gateway then relays it as usual).
        """
        try:
            frame = json.loads(message)
        except ValueError:
            return None
        if not (isinstance(frame, list) and len(frame) >= 3 and frame[0] in (3, 4) and isinstance(frame[1], str)
                and frame[1] in self.pending):
            return None
        order = self.pending.pop(frame[1])
        if frame[0] == 3 and len(frame) == 3 and isinstance(frame[2], dict):
            try:
                validate_payload(self.codec, "CertificateSigned", frame[2], response=True)
                outcome = self.codec.parse_status(frame[2])
            except Exception as exc:  # a malformed answer is recorded as a failure, never raised
                outcome = Outcome(Status.FAILED, None, f"malformed CertificateSignedResponse: {exc}"[:512])
        elif frame[0] == 4:
            detail = frame[3] if len(frame) > 3 else ""
            outcome = Outcome(Status.FAILED, str(frame[2])[:20], f"CALLERROR {frame[2]}: {detail}"[:512])
        else:
            outcome = Outcome(Status.FAILED, None, "unreadable answer to CertificateSigned")
        self.signing.service.certificate_signed_result(order, outcome, at=at)
        self.signing.results.append((order, outcome))
        self.signing.stats["installed" if outcome.accepted else "not_installed"] += 1
        self.signing.notify("certificate_signed_answered", order, outcome)
        _log.info("%s: CertificateSigned %s", self.station_id, outcome.status.value)
        return outcome


class CsrSigning:
    """The gateway's SignCertificate answering: a certificate service and what it did (``stats``, ``results``)."""

    def __init__(self, service: CertificateService, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.service = service
        self.clock = clock
        self.stats: dict[str, int] = {"accepted": 0, "rejected": 0, "format_violations": 0, "installed": 0,
                                      "not_installed": 0}
        self.results: list[tuple[CertificateSignedOrder, Outcome]] = []
        self.listeners: list[SigningListener] = []

    def notify(self, what: str, *args: Any) -> None:
        for listener in self.listeners:
            try:
                getattr(listener, what)(*args)
            except Exception:  # a listener's fault never changes what the station is answered
                _log.exception("signing listener %r failed on %s", listener, what)

    def session(self, station_id: str, version: OcppVersion) -> SigningSession:
        return SigningSession(self, station_id, codec_for(version))
