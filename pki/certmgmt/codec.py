"""The payload codec shared by the per-version modules; every version difference is a field of :class:`Codec`.

A :class:`Codec` turns the neutral nouns of :mod:`.model` into camelCase OCPP payloads and back. The
version's wire names (uses, root types, triggers, the trigger action) are its :mod:`ocppsec.pki.wire`
table, the security event names and critical flags the event catalogue's; the switches (which optional
fields a version has, the shape of GetInstalledCertificateIds, field limits) are filled in by :mod:`.v16`,
:mod:`.v201` and :mod:`.v21`; this module holds no version name. Parsers raise
:class:`~ocppsec.pki.errors.InputError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ocppsec.pki.certmgmt.model import (
    CertificateUse,
    InstalledCertificate,
    InstalledType,
    Outcome,
    RootType,
    SignRequest,
    Status,
    Trigger,
    TriggerStatus,
)
from ocppsec.pki.errors import InputError, UsageError
from ocppsec.pki.events import catalogue
from ocppsec.pki.events.ingest import notification_payload
from ocppsec.pki.hashdata import CertificateHashData
from ocppsec.pki.versions import OcppVersion

if TYPE_CHECKING:
    from ocppsec.pki.wire.table import WireNames

__all__ = ["Codec"]

Payload = dict[str, Any]


def _reverse(table: Mapping[Any, str], value: object, what: str) -> Any:
    for k, v in table.items():
        if v == value:
            return k
    raise InputError(f"unknown {what} {value!r}")


@dataclass(frozen=True, slots=True)
class Codec:
    """Payload builders and parsers of one OCPP version (see the module docstring)."""

    wire: WireNames  # the version's wire names (ocppsec.pki.wire)
    install_max_chars: int  # InstallCertificate.certificate maxLength
    has_certificate_type: bool  # SignCertificate / CertificateSigned carry certificateType
    has_status_info: bool  # responses carry statusInfo (reasonCode <= 20, additionalInfo <= 512)
    has_request_id: bool  # SignCertificate.requestId / hashRootCertificate, CertificateSigned.requestId
    flat_installed_ids: bool  # request: one required certificateType; response: certificateHashData list

    # -- the wire table, under the names the methods use --------------------------------------
    @property
    def version(self) -> OcppVersion:
        return self.wire.version

    @property
    def trigger_action(self) -> str:
        """TriggerMessage, or 1.6 ExtendedTriggerMessage."""
        return self.wire.trigger_action

    @property
    def uses(self) -> Mapping[CertificateUse, str]:
        """certificateType wire names; COMBINED absent (the field is omitted)."""
        return self.wire.signing_uses

    @property
    def roots(self) -> Mapping[RootType, str]:
        """InstallCertificateUseEnumType."""
        return self.wire.install_types

    @property
    def installed_types(self) -> Mapping[InstalledType, str]:
        """GetCertificateIdUseEnumType."""
        return self.wire.installed_types

    @property
    def triggers(self) -> Mapping[Trigger, str]:
        """MessageTrigger names of the certificate triggers."""
        return self.wire.certificate_triggers

    # -- helpers --------------------------------------------------------------------------------
    def _status(self, outcome: Outcome, allowed: Sequence[Status]) -> Payload:
        status = outcome.status if outcome.status in allowed else allowed[-1]
        payload: Payload = {"status": status.value}
        if self.has_status_info and (outcome.reason_code or outcome.additional_info) and status is not Status.ACCEPTED:
            info: Payload = {"reasonCode": (outcome.reason_code or "Unspecified")[:20]}
            if outcome.additional_info:
                info["additionalInfo"] = outcome.additional_info[:512]
            payload["statusInfo"] = info
        return payload

    def parse_status(self, payload: Mapping[str, Any]) -> Outcome:
        """Any certificate-message response: status and (when present) statusInfo."""
        try:
            status = Status(payload["status"])
        except (KeyError, ValueError):
            raise InputError(f"response status {payload.get('status')!r} is not a certificate-message status") from None
        info = payload.get("statusInfo") or {}
        return Outcome(status, info.get("reasonCode"), info.get("additionalInfo"))

    def wire_use(self, use: CertificateUse) -> str | None:
        if use is CertificateUse.COMBINED or not self.has_certificate_type:
            return None
        try:
            return self.uses[use]
        except KeyError:
            raise UsageError(f"OCPP {self.version.value} has no {use.value} certificate type") from None

    def _parse_use(self, payload: Mapping[str, Any]) -> CertificateUse | None:
        value = payload.get("certificateType")
        if value is None:
            return None
        use: CertificateUse = _reverse(self.uses, value, "certificateType")
        return use

    # -- SignCertificate ------------------------------------------------------------------------
    def sign_certificate_request(self, request: SignRequest) -> Payload:
        payload: Payload = {"csr": request.csr_pem}
        wire = self.wire_use(request.use)
        if wire is not None:
            payload["certificateType"] = wire
        if self.has_request_id:
            if request.request_id is not None:
                payload["requestId"] = request.request_id
            if request.hash_root is not None:
                payload["hashRootCertificate"] = request.hash_root.to_ocpp()
        return payload

    def parse_sign_certificate_request(self, payload: Mapping[str, Any]) -> SignRequest:
        csr = payload.get("csr")
        if not isinstance(csr, str):
            raise InputError("SignCertificate has no csr")
        if self.has_certificate_type:
            use = self._parse_use(payload) or CertificateUse.COMBINED
        else:
            use = CertificateUse.CHARGING_STATION
        request_id = payload.get("requestId") if self.has_request_id else None
        raw_root = payload.get("hashRootCertificate") if self.has_request_id else None
        hash_root = CertificateHashData.from_ocpp(raw_root) if raw_root else None
        return SignRequest(csr, use, int(request_id) if request_id is not None else None, hash_root)

    def sign_certificate_response(self, outcome: Outcome) -> Payload:
        return self._status(outcome, (Status.ACCEPTED, Status.REJECTED))

    # -- CertificateSigned ----------------------------------------------------------------------
    def certificate_signed_request(self, chain_pem: str, use: CertificateUse, request_id: int | None) -> Payload:
        payload: Payload = {"certificateChain": chain_pem}
        wire = self.wire_use(use)
        if wire is not None:
            payload["certificateType"] = wire
        if self.has_request_id and request_id is not None:
            payload["requestId"] = request_id
        return payload

    def parse_certificate_signed_request(self, payload: Mapping[str, Any]) -> tuple[str, CertificateUse | None, int | None]:
        chain = payload.get("certificateChain")
        if not isinstance(chain, str):
            raise InputError("CertificateSigned has no certificateChain")
        use = self._parse_use(payload) if self.has_certificate_type else CertificateUse.CHARGING_STATION
        request_id = payload.get("requestId") if self.has_request_id else None
        return chain, use, int(request_id) if request_id is not None else None

    def certificate_signed_response(self, outcome: Outcome) -> Payload:
        return self._status(outcome, (Status.ACCEPTED, Status.REJECTED))

    # -- InstallCertificate ---------------------------------------------------------------------
    def install_certificate_request(self, root_type: RootType, pem: str) -> Payload:
        try:
            wire = self.roots[root_type]
        except KeyError:
            raise UsageError(f"OCPP {self.version.value} cannot install {root_type.value} roots") from None
        return {"certificateType": wire, "certificate": pem}

    def parse_install_certificate_request(self, payload: Mapping[str, Any]) -> tuple[RootType, str]:
        root_type: RootType = _reverse(self.roots, payload.get("certificateType"), "certificateType")
        pem = payload.get("certificate")
        if not isinstance(pem, str):
            raise InputError("InstallCertificate has no certificate")
        return root_type, pem

    def install_certificate_response(self, outcome: Outcome) -> Payload:
        return self._status(outcome, (Status.ACCEPTED, Status.FAILED, Status.REJECTED))

    # -- DeleteCertificate ----------------------------------------------------------------------
    def delete_certificate_request(self, hash_data: CertificateHashData) -> Payload:
        return {"certificateHashData": hash_data.to_ocpp()}

    def parse_delete_certificate_request(self, payload: Mapping[str, Any]) -> CertificateHashData:
        return CertificateHashData.from_ocpp(payload.get("certificateHashData") or {})

    def delete_certificate_response(self, outcome: Outcome) -> Payload:
        return self._status(outcome, (Status.ACCEPTED, Status.NOT_FOUND, Status.FAILED))

    # -- GetInstalledCertificateIds -------------------------------------------------------------
    def get_installed_ids_request(self, types: Sequence[InstalledType] | None) -> Payload:
        try:
            wire = [self.installed_types[t] for t in (types or ())]
        except KeyError as exc:
            raise UsageError(f"OCPP {self.version.value} cannot list {exc.args[0].value} certificates") from None
        if self.flat_installed_ids:
            if len(wire) != 1:
                raise UsageError(f"OCPP {self.version.value} GetInstalledCertificateIds asks for exactly one type")
            return {"certificateType": wire[0]}
        return {"certificateType": wire} if wire else {}

    def parse_get_installed_ids_request(self, payload: Mapping[str, Any]) -> list[InstalledType] | None:
        raw = payload.get("certificateType")
        if raw is None:
            return None
        values = [raw] if isinstance(raw, str) else list(raw)
        return [_reverse(self.installed_types, v, "certificateType") for v in values] or None

    def get_installed_ids_response(self, entries: Sequence[InstalledCertificate]) -> Payload:
        listed = [e for e in entries if e.type in self.installed_types]
        if not listed:
            return {"status": Status.NOT_FOUND.value}
        if self.flat_installed_ids:
            return {"status": "Accepted", "certificateHashData": [e.hash_data.to_ocpp() for e in listed]}
        return {"status": "Accepted",
                "certificateHashDataChain": [e.as_chain(self.installed_types[e.type]).to_ocpp() for e in listed]}

    def parse_get_installed_ids_response(
        self, payload: Mapping[str, Any], asked: Sequence[InstalledType] | None = None,
    ) -> tuple[Status, list[InstalledCertificate]]:
        status = Status(payload.get("status", "NotFound"))
        out: list[InstalledCertificate] = []
        if self.flat_installed_ids:
            kind = asked[0] if asked else InstalledType.CSMS_ROOT
            for raw in payload.get("certificateHashData") or []:
                out.append(InstalledCertificate(kind, CertificateHashData.from_ocpp(raw)))
            return status, out
        for raw in payload.get("certificateHashDataChain") or []:
            kind = _reverse(self.installed_types, raw.get("certificateType"), "certificateType")
            children = tuple(CertificateHashData.from_ocpp(c) for c in raw.get("childCertificateHashData") or [])
            out.append(InstalledCertificate(kind, CertificateHashData.from_ocpp(raw.get("certificateHashData") or {}), children))
        return status, out

    # -- triggers -------------------------------------------------------------------------------
    def trigger_request(self, trigger: Trigger) -> Payload:
        try:
            return {"requestedMessage": self.triggers[trigger]}
        except KeyError:
            raise UsageError(f"OCPP {self.version.value} has no {trigger.value} trigger") from None

    def parse_trigger_request(self, payload: Mapping[str, Any]) -> Trigger | None:
        """The certificate trigger asked for, or None for a trigger this module does not handle."""
        wanted = payload.get("requestedMessage")
        for trigger, wire in self.triggers.items():
            if wire == wanted:
                return trigger
        return None

    def trigger_response(self, status: TriggerStatus) -> Payload:
        return {"status": status.value}

    # -- security events (names and flags: the event catalogue) -----------------------------------
    def event_name(self, neutral: str) -> str | None:
        """The event's name in this version; None for a catalogue event this version does not define."""
        definition = catalogue.lookup(neutral)
        if definition is not None and not definition.defined_in(self.version):
            return None
        return catalogue.name_for(neutral, self.version)

    def security_event_notification(self, neutral: str, *, at: datetime, tech_info: str | None = None) -> Payload | None:
        """SecurityEventNotification payload, or None when the event does not exist in this version."""
        if self.event_name(neutral) is None:
            return None
        return notification_payload(neutral, timestamp=at, tech_info=tech_info, version=self.version)

    def is_critical(self, neutral: str) -> bool:
        return bool(catalogue.is_critical(neutral, self.version))

    def schema_name(self, action: str, response: bool) -> str:
        return action + ("Response" if response else self.wire.schema_suffix)
