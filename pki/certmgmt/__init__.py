"""Certificate management over OCPP (A02/A03, M03-M05), CSMS side and station side, 1.6 / 2.0.1 / 2.1.

- :mod:`.model`: version-neutral nouns (uses, root types, triggers, outcomes);
- :mod:`.service`: the CSMS certificate service (SignCertificate review → sign → CertificateSigned);
- :mod:`.signer`: the pluggable signing CA (:class:`CertificateSigner`; local CA; how EST or a roaming
  platform plugs in);
- :mod:`.inventory`: per-station certificate inventory behind :class:`InventoryStore`, reconciled with the
  ledger; :mod:`.inventory_sql` its SQLite / PostgreSQL implementation (:func:`open_inventory`);
- :mod:`.station`: the station's certificate store (keys, CSRs, CertificateSigned checks, roots, delete, list);
  :mod:`.station_state` its state as values (:class:`StationState`, :class:`CredentialRole`);
- :mod:`.schedule`: back-off and renewal timing;
- :mod:`.v16`, :mod:`.v201`, :mod:`.v21`: shapes per version (the names: :mod:`ocppsec.pki.wire`);
- :mod:`.ocpp_handlers`: the certificate-management parts of the ChargePoint composer
  (:mod:`ocppsec.pki.chargepoint`), both sides.

Errors::

    every refusal is an Outcome (status, reasonCode, additionalInfo, security event), never an exception;
    OcppsecError subclasses (InputError, UsageError, StoreError, ...) are raised only for misuse of the API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ocppsec.pki._lazy import lazy_exports

if TYPE_CHECKING:
    from ocppsec.pki.certmgmt.codec import Codec
    from ocppsec.pki.certmgmt.inventory import (
        INVENTORY_FILE,
        EntrySource,
        InventoryEntry,
        InventoryState,
        InventoryStore,
        ReconcileReport,
        inventory_location,
        reconcile,
    )
    from ocppsec.pki.certmgmt.inventory_sql import SqlInventory, open_inventory
    from ocppsec.pki.certmgmt.model import (
        EVENT_DISCARDED_RENEWED,
        EVENT_INVALID_STATION_CERTIFICATE,
        EVENT_RECONFIGURATION,
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
    from ocppsec.pki.certmgmt.schedule import RetrySchedule, renewal_due, signing_retry_delays
    from ocppsec.pki.certmgmt.service import CertificateService, CertificateSignedOrder, SignDecision, StationInfo
    from ocppsec.pki.certmgmt.signer import AuthoritySigner, CertificateSigner, LocalCaSigner, SignedChain, SigningOrder
    from ocppsec.pki.certmgmt.station import (
        ClientCredential,
        DirectoryStationStorage,
        MemoryStationStorage,
        StationCertificateStore,
        StationConfig,
        StationStorage,
    )
    from ocppsec.pki.certmgmt.station_state import CredentialRole, PendingCsr, StationState, StoredCredential

# Imported on first use (ocppsec.pki._lazy): importing one module of this package does not import them all.
__getattr__, __dir__ = lazy_exports(__name__, {
    "AuthoritySigner": "ocppsec.pki.certmgmt.signer",
    "CertificateService": "ocppsec.pki.certmgmt.service",
    "CertificateSignedOrder": "ocppsec.pki.certmgmt.service",
    "CertificateSigner": "ocppsec.pki.certmgmt.signer",
    "CertificateUse": "ocppsec.pki.certmgmt.model",
    "ClientCredential": "ocppsec.pki.certmgmt.station",
    "Codec": "ocppsec.pki.certmgmt.codec",
    "CredentialRole": "ocppsec.pki.certmgmt.station_state",
    "DirectoryStationStorage": "ocppsec.pki.certmgmt.station",
    "EVENT_DISCARDED_RENEWED": "ocppsec.pki.certmgmt.model",
    "EVENT_INVALID_STATION_CERTIFICATE": "ocppsec.pki.certmgmt.model",
    "EVENT_RECONFIGURATION": "ocppsec.pki.certmgmt.model",
    "EntrySource": "ocppsec.pki.certmgmt.inventory",
    "INVENTORY_FILE": "ocppsec.pki.certmgmt.inventory",
    "InstalledCertificate": "ocppsec.pki.certmgmt.model",
    "InstalledType": "ocppsec.pki.certmgmt.model",
    "InventoryEntry": "ocppsec.pki.certmgmt.inventory",
    "InventoryState": "ocppsec.pki.certmgmt.inventory",
    "InventoryStore": "ocppsec.pki.certmgmt.inventory",
    "LocalCaSigner": "ocppsec.pki.certmgmt.signer",
    "MemoryStationStorage": "ocppsec.pki.certmgmt.station",
    "Outcome": "ocppsec.pki.certmgmt.model",
    "PendingCsr": "ocppsec.pki.certmgmt.station_state",
    "ReconcileReport": "ocppsec.pki.certmgmt.inventory",
    "RetrySchedule": "ocppsec.pki.certmgmt.schedule",
    "RootType": "ocppsec.pki.certmgmt.model",
    "SignDecision": "ocppsec.pki.certmgmt.service",
    "SignRequest": "ocppsec.pki.certmgmt.model",
    "SignedChain": "ocppsec.pki.certmgmt.signer",
    "SigningOrder": "ocppsec.pki.certmgmt.signer",
    "SqlInventory": "ocppsec.pki.certmgmt.inventory_sql",
    "StationCertificateStore": "ocppsec.pki.certmgmt.station",
    "StationConfig": "ocppsec.pki.certmgmt.station",
    "StationInfo": "ocppsec.pki.certmgmt.service",
    "StationState": "ocppsec.pki.certmgmt.station_state",
    "StationStorage": "ocppsec.pki.certmgmt.station",
    "Status": "ocppsec.pki.certmgmt.model",
    "StoredCredential": "ocppsec.pki.certmgmt.station_state",
    "Trigger": "ocppsec.pki.certmgmt.model",
    "TriggerStatus": "ocppsec.pki.certmgmt.model",
    "inventory_location": "ocppsec.pki.certmgmt.inventory",
    "open_inventory": "ocppsec.pki.certmgmt.inventory_sql",
    "reconcile": "ocppsec.pki.certmgmt.inventory",
    "renewal_due": "ocppsec.pki.certmgmt.schedule",
    "signing_retry_delays": "ocppsec.pki.certmgmt.schedule",
}, globals())

__all__ = [
    "EVENT_DISCARDED_RENEWED",
    "EVENT_INVALID_STATION_CERTIFICATE",
    "EVENT_RECONFIGURATION",
    "INVENTORY_FILE",
    "AuthoritySigner",
    "CertificateService",
    "CertificateSignedOrder",
    "CertificateSigner",
    "CertificateUse",
    "ClientCredential",
    "Codec",
    "CredentialRole",
    "DirectoryStationStorage",
    "EntrySource",
    "InstalledCertificate",
    "InstalledType",
    "InventoryEntry",
    "InventoryState",
    "InventoryStore",
    "LocalCaSigner",
    "MemoryStationStorage",
    "Outcome",
    "PendingCsr",
    "ReconcileReport",
    "RetrySchedule",
    "RootType",
    "SignDecision",
    "SignRequest",
    "SignedChain",
    "SigningOrder",
    "SqlInventory",
    "StationCertificateStore",
    "StationConfig",
    "StationInfo",
    "StationState",
    "StationStorage",
    "Status",
    "StoredCredential",
    "Trigger",
    "TriggerStatus",
    "inventory_location",
    "open_inventory",
    "reconcile",
    "renewal_due",
    "signing_retry_delays",
]
