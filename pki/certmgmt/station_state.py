"""The station certificate store's state as values: what :class:`StationStorage` loads and saves.

:class:`StationState` is immutable: the store builds the next state from the current one and commits it
only when an operation succeeds, so a refused message leaves the state exactly as it was. Its JSON form
(:meth:`StationState.to_json` / :meth:`StationState.from_json`) is the ``state.json`` format written
since the first version of the store; files missing keys that later versions added still load, and
keys this version does not know are ignored.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from ocppsec.pki.certmgmt.model import CertificateUse, RootType
from ocppsec.pki.errors import StoreError

__all__ = ["CredentialRole", "PendingCsr", "StationState", "StoredCredential"]


class CredentialRole(enum.Enum):
    """Which of a use's two client certificates: the one in use, or the one accepted but not yet used."""

    ACTIVE = "active"
    RENEWED = "renewed"  # accepted by CertificateSigned; the station switches by reconnecting (A02.FR.08)


_JSON_BUCKET = {CredentialRole.ACTIVE: "client", CredentialRole.RENEWED: "renewed"}


@dataclass(frozen=True, slots=True)
class StoredCredential:
    """A certificate chain (PEM, leaf first) and the storage reference of its private key."""

    chain_pem: str
    key_ref: str


@dataclass(frozen=True, slots=True)
class PendingCsr:
    """A CSR sent and not yet answered: its key, and what identifies the answer."""

    use: CertificateUse
    key_ref: str
    spki_sha256: str  # hex SHA-256 of the public key's SubjectPublicKeyInfo
    request_id: int | None
    created: datetime


@dataclass(frozen=True, slots=True)
class StationState:
    """Roots by type, client certificates by role and use, outstanding CSRs, the key counter."""

    roots: Mapping[RootType, tuple[str, ...]] = field(default_factory=dict)  # PEM, in install order
    csms_root_fallback: str | None = None  # AdditionalRootCertificateCheck: the old CSMS root (M05.FR.09-14)
    active: Mapping[CertificateUse, StoredCredential] = field(default_factory=dict)
    renewed: Mapping[CertificateUse, StoredCredential] = field(default_factory=dict)
    pending: tuple[PendingCsr, ...] = ()
    counter: int = 0  # numbers key names
    root_issuers: Mapping[str, str] = field(default_factory=dict)  # fingerprint of a cross-signed root -> issuer PEM

    def __post_init__(self) -> None:
        # one form per state: a root type with no certificates is simply absent (equality, snapshots)
        object.__setattr__(self, "roots", {t: tuple(pems) for t, pems in self.roots.items() if pems})

    # -- reading --------------------------------------------------------------------------------
    def roots_of(self, root_type: RootType) -> tuple[str, ...]:
        return self.roots.get(root_type, ())

    @property
    def root_count(self) -> int:
        return sum(len(v) for v in self.roots.values())

    def credentials(self, role: CredentialRole) -> Mapping[CertificateUse, StoredCredential]:
        return self.active if role is CredentialRole.ACTIVE else self.renewed

    def credential(self, role: CredentialRole, use: CertificateUse) -> StoredCredential | None:
        return self.credentials(role).get(use)

    # -- the next state ------------------------------------------------------------------------
    def with_roots(self, root_type: RootType, pems: tuple[str, ...]) -> StationState:
        return replace(self, roots={**self.roots, root_type: pems})

    def with_credential(self, role: CredentialRole, use: CertificateUse, credential: StoredCredential | None) -> StationState:
        """``credential`` stored for (role, use); ``None`` removes it."""
        bucket = {u: c for u, c in self.credentials(role).items() if u is not use}
        if credential is not None:
            bucket[use] = credential
        if role is CredentialRole.ACTIVE:
            return replace(self, active=bucket)
        return replace(self, renewed=bucket)

    def next_counter(self) -> StationState:
        return replace(self, counter=self.counter + 1)

    # -- the JSON document ----------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The ``state.json`` document (every root type listed, as the store has always written it)."""
        def bucket(role: CredentialRole) -> dict[str, Any]:
            return {u.value: {"chain": c.chain_pem, "key": c.key_ref} for u, c in self.credentials(role).items()}

        return {
            "roots": {t.value: list(self.roots_of(t)) for t in RootType},
            "csms_root_fallback": self.csms_root_fallback,
            "client": bucket(CredentialRole.ACTIVE),
            "renewed": bucket(CredentialRole.RENEWED),
            "pending": [{"use": p.use.value, "key": p.key_ref, "spki": p.spki_sha256, "request_id": p.request_id,
                         "created": p.created.isoformat()} for p in self.pending],
            "counter": self.counter,
            "root_issuers": dict(self.root_issuers),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StationState:
        """Read a ``state.json`` document; raises :class:`StoreError` when it is not one."""
        try:
            roots = {t: tuple(_strings(data.get("roots", {}).get(t.value, []), "roots")) for t in RootType}
            buckets = {role: {CertificateUse(u): StoredCredential(_text(e["chain"]), _text(e["key"]))
                              for u, e in data.get(_JSON_BUCKET[role], {}).items()} for role in CredentialRole}
            pending = tuple(
                PendingCsr(CertificateUse(p["use"]), _text(p["key"]), _text(p["spki"]),
                           None if p.get("request_id") is None else int(p["request_id"]),
                           datetime.fromisoformat(p["created"]))
                for p in data.get("pending", [])
            )
            fallback = data.get("csms_root_fallback")
            issuers = {_text(k): _text(v) for k, v in data.get("root_issuers", {}).items()}
            return cls(roots, None if fallback is None else _text(fallback), buckets[CredentialRole.ACTIVE],
                       buckets[CredentialRole.RENEWED], pending, int(data.get("counter", 0)), issuers)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StoreError(f"the station state is not readable ({type(exc).__name__}: {exc})"[:300]) from None


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _strings(values: object, what: str) -> list[str]:
    if not isinstance(values, list):
        raise TypeError(f"{what} must list PEM strings")
    return [_text(v) for v in values]
