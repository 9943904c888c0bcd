"""Version-neutral nouns of the certificate-management flows (A02/A03, M03-M05).

The per-version modules (:mod:`.v16`, :mod:`.v201`, :mod:`.v21`) translate these to and from the wire
names of one OCPP version; nothing here knows a version. Statuses are the union of the OCPP status
enums (``Accepted``, ``Rejected``, ``Failed``, ``NotFound``); events carry the 2.0.1 / 2.1 name and
are renamed by the 1.6 module.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ocppsec.pki.hashdata import CertificateHashData, CertificateHashDataChain

__all__ = [
    "EVENT_DISCARDED_RENEWED",
    "EVENT_INVALID_STATION_CERTIFICATE",
    "EVENT_RECONFIGURATION",
    "CertificateUse",
    "InstalledCertificate",
    "InstalledType",
    "Outcome",
    "RootType",
    "SignRequest",
    "Status",
    "Trigger",
    "TriggerStatus",
]

EVENT_INVALID_STATION_CERTIFICATE = "InvalidChargingStationCertificate"  # A02.FR.07 (1.6: InvalidChargePointCertificate)
EVENT_DISCARDED_RENEWED = "DiscardedRenewedClientCertificate"  # A02.FR.29 / A03.FR.24-25
EVENT_RECONFIGURATION = "ReconfigurationOfSecurityParameters"  # after install/delete/renewal (non-critical)


class Status(enum.Enum):
    """Response statuses of the certificate messages (the union of their enums)."""

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    FAILED = "Failed"
    NOT_FOUND = "NotFound"


class CertificateUse(enum.Enum):
    """What a CSR / CertificateSigned is for (CertificateSigningUseEnumType, neutral names)."""

    CHARGING_STATION = "charging-station"  # client certificate for the CSMS connection
    V2G = "v2g"  # ISO 15118-2 SECC certificate
    V2G20 = "v2g20"  # ISO 15118-20 SECC certificate (2.1)
    COMBINED = "combined"  # certificateType omitted: one certificate for both connections


class RootType(enum.Enum):
    """Installable root certificate types (InstallCertificateUseEnumType, neutral names)."""

    CSMS = "csms"  # CSMSRootCertificate / 1.6 CentralSystemRootCertificate
    MANUFACTURER = "manufacturer"
    V2G = "v2g"
    MO = "mo"
    OEM = "oem"  # 2.1 only


class InstalledType(enum.Enum):
    """GetCertificateIdUseEnumType: the roots plus the station's V2G chain."""

    CSMS_ROOT = "csms"
    MANUFACTURER_ROOT = "manufacturer"
    V2G_ROOT = "v2g"
    MO_ROOT = "mo"
    OEM_ROOT = "oem"
    V2G_CHAIN = "v2g-chain"

    @classmethod
    def for_root(cls, root: RootType) -> InstalledType:
        return cls(root.value)

    @property
    def root_type(self) -> RootType | None:
        return None if self is InstalledType.V2G_CHAIN else RootType(self.value)


class Trigger(enum.Enum):
    """Certificate triggers (TriggerMessage / 1.6 ExtendedTriggerMessage requestedMessage)."""

    SIGN_CHARGING_STATION = "sign-charging-station"
    SIGN_V2G = "sign-v2g"
    SIGN_V2G20 = "sign-v2g20"
    SIGN_COMBINED = "sign-combined"

    @property
    def use(self) -> CertificateUse:
        return {
            Trigger.SIGN_CHARGING_STATION: CertificateUse.CHARGING_STATION,
            Trigger.SIGN_V2G: CertificateUse.V2G,
            Trigger.SIGN_V2G20: CertificateUse.V2G20,
            Trigger.SIGN_COMBINED: CertificateUse.COMBINED,
        }[self]


class TriggerStatus(enum.Enum):
    """TriggerMessageStatusEnumType (1.6 TriggerMessageStatus of ExtendedTriggerMessage)."""

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    NOT_IMPLEMENTED = "NotImplemented"


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer to one certificate message: status, optional reasonCode/additionalInfo, optional event.

    ``event`` is the neutral (2.0.1/2.1) security event name the receiver raises, ``tech_info`` its text.
    """

    status: Status
    reason_code: str | None = None
    additional_info: str | None = None
    event: str | None = None
    requirement: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status is Status.ACCEPTED

    @classmethod
    def ok(cls) -> Outcome:
        return cls(Status.ACCEPTED)

    def tech_info(self) -> str:
        parts = [p for p in (self.requirement and f"[{self.requirement}]", self.additional_info) if p]
        return " ".join(parts)[:255]


@dataclass(frozen=True, slots=True)
class SignRequest:
    """A SignCertificate request, version-neutral."""

    csr_pem: str
    use: CertificateUse = CertificateUse.CHARGING_STATION
    request_id: int | None = None  # 2.1 (A02.FR.24)
    hash_root: CertificateHashData | None = None  # 2.1 (A02.FR.27)


@dataclass(frozen=True, slots=True)
class InstalledCertificate:
    """One GetInstalledCertificateIds entry."""

    type: InstalledType
    hash_data: CertificateHashData
    children: tuple[CertificateHashData, ...] = field(default=())

    def as_chain(self, wire_type: str) -> CertificateHashDataChain:
        return CertificateHashDataChain(wire_type, self.hash_data, self.children)
