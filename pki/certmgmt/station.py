"""Station side: the certificate store of a charging station (keys, CSRs, client and root certificates).

The store decides; a :class:`StationStorage` keeps the state (an immutable :class:`StationState`, on
disk the ``state.json`` document) and the private keys (through the key-file backend: PKCS#8, mode
0600, encrypted with the store's passphrase). Every operation builds the next state and saves it only
when it succeeds, so a refused message leaves
the store exactly as it was.

CertificateSigned is accepted only when (A02.FR.06-10, A02.FR.16, A02.FR.26, 2025 errata):

1. the chain fits 10000 characters and the configured MaxCertificateChainSize;
2. it is PEM certificates only (nothing after the last block), leaf first, and no root inside;
3. in 2.1, its requestId names an outstanding SignCertificate;
4. the leaf's public key is the key of an outstanding CSR (the key generated here);
5. it chains to an installed root of the right type (CSMS root for the client certificate, V2G root
   for an SECC certificate) and every certificate is valid *now* (no future-dated certificates);
6. subject O is the organization name and CN the serial number (SECC ID for V2G certificates).

Otherwise: Rejected, reasonCode ``InvalidCertificate`` / ``TooLargeElement`` / ``UnknownRequestId``,
security event InvalidChargingStationCertificate, and no automatic resend until triggered (A02.FR.20).
An accepted client certificate is *renewed*, not yet active: the station reconnects with it; after a
connection with either certificate the other one is discarded, and discarding the renewed one reports
DiscardedRenewedClientCertificate (A02.FR.10, A02.FR.28-29).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ocppsec.pki.certmgmt.model import (
    EVENT_DISCARDED_RENEWED,
    EVENT_INVALID_STATION_CERTIFICATE,
    CertificateUse,
    InstalledCertificate,
    InstalledType,
    Outcome,
    RootType,
    Status,
    Trigger,
)
from ocppsec.pki.certmgmt.schedule import DEFAULT_RENEW_BEFORE, renewal_due
from ocppsec.pki.certmgmt.station_state import CredentialRole, PendingCsr, StationState, StoredCredential
from ocppsec.pki.chain import verify_issued_chain
from ocppsec.pki.csr import make_csr
from ocppsec.pki.errors import BackendError, InputError, OcppsecError, StoreError, UsageError, VerificationError
from ocppsec.pki.hashdata import CertificateHashData, compute_hash_data
from ocppsec.pki.keys import KeySpec, LocalKey, PrivateKey, generate_key
from ocppsec.pki.keys.files import atomic_write, key_to_pem, load_key_pem
from ocppsec.pki.names import name_value
from ocppsec.pki.pem import certificates_to_pem, load_certificates
from ocppsec.pki.profiles import get_profile

__all__ = [
    "REASON_INVALID_CERTIFICATE",
    "REASON_TOO_LARGE",
    "REASON_UNKNOWN_REQUEST_ID",
    "ClientCredential",
    "CredentialRole",
    "DirectoryStationStorage",
    "MemoryStationStorage",
    "StationCertificateStore",
    "StationConfig",
    "StationState",
    "StationStorage",
]

REASON_INVALID_CERTIFICATE = "InvalidCertificate"
REASON_TOO_LARGE = "TooLargeElement"
REASON_UNKNOWN_REQUEST_ID = "UnknownRequestId"
MAX_CHAIN_CHARS = 10000
_CLIENT_USES = (CertificateUse.CHARGING_STATION, CertificateUse.COMBINED)
_PROFILE = {CertificateUse.CHARGING_STATION: "charging-station", CertificateUse.COMBINED: "charging-station",
            CertificateUse.V2G: "secc", CertificateUse.V2G20: "secc-20"}
_ROOT_FOR_USE = {CertificateUse.CHARGING_STATION: RootType.CSMS, CertificateUse.COMBINED: RootType.CSMS,
                 CertificateUse.V2G: RootType.V2G, CertificateUse.V2G20: RootType.V2G}


@dataclass(frozen=True, slots=True)
class StationConfig:
    """The station's identity and the certificate-related configuration variables."""

    serial: str  # CN of the charging-station certificate (A00.FR.511)
    organization: str  # O: CpoName (1.6) / SecurityCtrlr.OrganizationName (A02.FR.13)
    secc_id: str | None = None  # ISO15118Ctrlr.SeccId: CN of V2G certificates
    iso_organization: str | None = None  # ISO15118Ctrlr.OrganizationName (default: organization)
    country: str = "DE"  # ISO15118Ctrlr.CountryName
    key_spec: KeySpec = KeySpec.P256
    key_spec_v2g20: KeySpec = KeySpec.P521
    max_chain_size: int | None = None  # MaxCertificateChainSize / CertificateSignedMaxChainSize
    additional_root_certificate_check: bool = False
    certificate_entries: int = 20  # CertificateEntries maxLimit / CertificateStoreMaxLength
    renew_before: timedelta = DEFAULT_RENEW_BEFORE
    max_pending_csrs: int = 4

    def subject_for(self, use: CertificateUse) -> dict[str, str]:
        if use in _CLIENT_USES:
            return {"O": self.organization, "CN": self.serial}
        if not self.secc_id:
            raise UsageError("a V2G certificate needs the SECC ID (ISO15118Ctrlr.SeccId) in the station configuration")
        return {"C": self.country, "O": self.iso_organization or self.organization, "DC": "CPO", "CN": self.secc_id}


class StationStorage(Protocol):
    """Persistence of the station store: the state (:class:`StationState`) and the private keys."""

    def load_state(self) -> StationState:
        """The saved state; an empty :class:`StationState` when nothing was saved yet."""
        ...

    def save_state(self, state: StationState) -> None: ...

    def write_key(self, name: str, key: PrivateKey) -> str:
        """Store ``key`` (never in clear unless the storage was opened without a passphrase); return its reference."""
        ...

    def open_key(self, ref: str) -> LocalKey: ...

    def delete_key(self, ref: str) -> None: ...


class MemoryStationStorage:
    """In-memory storage (tests, simulators). Keys are held as encrypted PEM like on disk."""

    def __init__(self, passphrase: bytes | None = None) -> None:
        self._state = StationState()
        self._keys: dict[str, bytes] = {}
        self._passphrase = passphrase

    def load_state(self) -> StationState:
        return self._state

    def save_state(self, state: StationState) -> None:
        self._state = state

    def write_key(self, name: str, key: PrivateKey) -> str:
        self._keys[name] = key_to_pem(key, self._passphrase)
        return name

    def open_key(self, ref: str) -> LocalKey:
        try:
            return load_key_pem(self._keys[ref], self._passphrase, label=ref)
        except KeyError:
            raise StoreError(f"key {ref} is not in the station store") from None

    def delete_key(self, ref: str) -> None:
        self._keys.pop(ref, None)


class DirectoryStationStorage:
    """A directory: ``state.json``, ``keys/<name>.key.pem`` (0600, encrypted) and ``tls/`` files for ssl."""

    def __init__(self, path: Path | str, passphrase: bytes | None) -> None:
        self.path = Path(path)
        self.passphrase = passphrase
        try:
            (self.path / "keys").mkdir(parents=True, exist_ok=True, mode=0o700)
            (self.path / "tls").mkdir(exist_ok=True, mode=0o700)
        except OSError as exc:
            raise BackendError(f"cannot create the station store {self.path}: {exc.strerror}") from None

    def load_state(self) -> StationState:
        p = self.path / "state.json"
        if not p.exists():
            return StationState()
        try:
            data = json.loads(p.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot read {p}: {exc}") from None
        if not isinstance(data, dict):
            raise StoreError(f"cannot read {p}: not a JSON object")
        return StationState.from_json(data)

    def save_state(self, state: StationState) -> None:
        atomic_write(self.path / "state.json", json.dumps(state.to_json(), indent=1, sort_keys=True).encode(), 0o600)

    def write_key(self, name: str, key: PrivateKey) -> str:
        rel = f"keys/{name}.key.pem"
        atomic_write(self.path / rel, key_to_pem(key, self.passphrase), 0o600)
        return rel

    def open_key(self, ref: str) -> LocalKey:
        try:
            data = (self.path / ref).read_bytes()
        except OSError as exc:
            raise StoreError(f"cannot read key {ref}: {exc.strerror}") from None
        return load_key_pem(data, self.passphrase, label=ref)

    def delete_key(self, ref: str) -> None:
        try:
            os.unlink(self.path / ref)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StoreError(f"cannot delete key {ref}: {exc.strerror}") from None

    def tls_files(self, credential: ClientCredential) -> tuple[Path, Path]:
        """Certificate chain and key file paths for :meth:`ssl.SSLContext.load_cert_chain` (password: the passphrase)."""
        cert_path = self.path / "tls" / f"{credential.fingerprint[:16]}.pem"
        atomic_write(cert_path, credential.chain_pem.encode(), 0o600)
        return cert_path, self.path / credential.key_ref


@dataclass(frozen=True, slots=True)
class ClientCredential:
    """A client certificate (chain, leaf first) and the reference of its private key.

    The chain is parsed once, on first use, and the leaf's fingerprint computed once: a station asks for
    both on every connection attempt (the renewed credential first, A02.FR.08) and when it records which
    one connected (A02.FR.10)."""

    use: CertificateUse
    chain_pem: str
    key_ref: str
    role: CredentialRole
    _parsed: tuple[x509.Certificate, ...] | None = field(default=None, init=False, repr=False, compare=False)
    _fingerprint: str | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def parsed(cls, use: CertificateUse, entry: StoredCredential, role: CredentialRole,
               chain: tuple[x509.Certificate, ...] | None, fingerprint: str | None = None) -> ClientCredential:
        """The credential of ``entry`` with ``chain`` (the certificates its ``chain_pem`` holds) already parsed."""
        credential = cls(use, entry.chain_pem, entry.key_ref, role)
        object.__setattr__(credential, "_parsed", chain)
        object.__setattr__(credential, "_fingerprint", fingerprint)
        return credential

    def with_role(self, role: CredentialRole) -> ClientCredential:
        """This credential in ``role`` (a renewed one that became active), with what was parsed of it."""
        return self.parsed(self.use, StoredCredential(self.chain_pem, self.key_ref), role, self._parsed, self._fingerprint)

    @property
    def chain(self) -> list[x509.Certificate]:
        if self._parsed is None:
            object.__setattr__(self, "_parsed", tuple(load_certificates(self.chain_pem)))
        assert self._parsed is not None
        return list(self._parsed)

    @property
    def leaf(self) -> x509.Certificate:
        return self.chain[0]

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            object.__setattr__(self, "_fingerprint", self.leaf.fingerprint(hashes.SHA256()).hex())
        assert self._fingerprint is not None
        return self._fingerprint


def _spki_hash(pub: Any) -> str:
    der = pub.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    h = hashes.Hash(hashes.SHA256())
    h.update(der)
    return h.finalize().hex()


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(Encoding.PEM).decode("ascii")


def _fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _hash_or_none(cert: x509.Certificate, issuer: x509.Certificate, alg: str) -> CertificateHashData | None:
    try:
        return compute_hash_data(cert, issuer, alg)
    except OcppsecError:
        return None


def _invalid(text: str, requirement: str | None = None, reason: str = REASON_INVALID_CERTIFICATE) -> Outcome:
    return Outcome(Status.REJECTED, reason, text[:512], EVENT_INVALID_STATION_CERTIFICATE, requirement)


class StationCertificateStore:
    """The station's certificate store. Time is always an argument; storage is the only I/O."""

    def __init__(self, storage: StationStorage, config: StationConfig) -> None:
        self.storage = storage
        self.config = config
        self._state = storage.load_state()
        self.retry_blocked: set[CertificateUse] = set()  # A02.FR.20: no automatic resend until triggered
        # the credential objects handed out, by role and use: each parses its chain once, so a station asking
        # for its credentials on every connection attempt (A02.FR.08) and at every connect (A02.FR.10) gets
        # the one already parsed while the stored entry is the same
        self._credentials: dict[tuple[CredentialRole, CertificateUse], ClientCredential] = {}

    @property
    def state(self) -> StationState:
        """The current state (immutable)."""
        return self._state

    def _commit(self, state: StationState) -> None:
        self.storage.save_state(state)
        self._state = state

    # -- roots ----------------------------------------------------------------------------------
    def roots(self, root_type: RootType) -> list[x509.Certificate]:
        return [x509.load_pem_x509_certificate(p.encode()) for p in self._state.roots_of(root_type)]

    def csms_trust_roots(self) -> list[x509.Certificate]:
        """CSMS roots to trust for the connection, with the AdditionalRootCertificateCheck fallback last."""
        roots = self.roots(RootType.CSMS)
        fallback = self._state.csms_root_fallback
        if fallback:
            roots.append(x509.load_pem_x509_certificate(fallback.encode()))
        return roots

    def install_root(self, root_type: RootType, pem: str, *, at: datetime, max_chars: int) -> Outcome:
        """InstallCertificate (M05): Accepted / Rejected (invalid, limit) / Failed (storage)."""
        if len(pem) > max_chars:
            return Outcome(Status.REJECTED, REASON_TOO_LARGE, f"certificate is {len(pem)} characters; at most {max_chars}")
        try:
            certs = load_certificates(pem, what="InstallCertificate.certificate", strict=True)
        except InputError as exc:
            return Outcome(Status.REJECTED, REASON_INVALID_CERTIFICATE, exc.message[:512], requirement="M05.FR.03")
        if len(certs) != 1:
            return Outcome(Status.REJECTED, REASON_INVALID_CERTIFICATE, f"expected one certificate, got {len(certs)}")
        cert = certs[0]
        if not _is_ca(cert):
            return Outcome(Status.REJECTED, REASON_INVALID_CERTIFICATE, "not a CA certificate (basicConstraints CA:false)")
        if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
            return Outcome(Status.REJECTED, REASON_INVALID_CERTIFICATE, "the certificate is not valid now")
        state = self._state
        listed = state.roots_of(root_type)
        fp = _fingerprint(cert)
        existing = [i for i, p in enumerate(listed) if _fingerprint(x509.load_pem_x509_certificate(p.encode())) == fp]
        if existing:  # re-install replaces (M05.FR.17)
            n = existing[0]
            state = state.with_roots(root_type, (*listed[:n], _pem(cert), *listed[n + 1:]))
        elif root_type is RootType.CSMS and self.config.additional_root_certificate_check and listed:
            old = [x509.load_pem_x509_certificate(p.encode()) for p in listed]
            signer = next((o for o in old if self._issued_by(cert, o)), None)
            if signer is None:
                return Outcome(Status.REJECTED, REASON_INVALID_CERTIFICATE,
                               "AdditionalRootCertificateCheck: the new CSMS root is not signed by the installed one",
                               requirement="M05.FR.09")
            state = replace(state.with_roots(RootType.CSMS, (_pem(cert),)),
                            csms_root_fallback=_pem(signer),  # kept until a connection with the new root succeeds
                            root_issuers={**state.root_issuers, fp: _pem(signer)})  # for the new root's hash data
        else:
            if state.root_count >= self.config.certificate_entries:
                return Outcome(Status.REJECTED, None, f"the store holds {self.config.certificate_entries} certificates already",
                               requirement="M05.FR.07")
            state = state.with_roots(root_type, (*listed, _pem(cert)))
        return self._save(state)

    @staticmethod
    def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
        try:
            cert.verify_directly_issued_by(issuer)
        except Exception:  # InvalidSignature, ValueError, TypeError
            return False
        return True

    def csms_root_connected(self, root: x509.Certificate) -> None:
        """A connection validated with ``root`` succeeded: a new root (not the fallback) retires the fallback."""
        fallback = self._state.csms_root_fallback
        if fallback and _fingerprint(root) != _fingerprint(x509.load_pem_x509_certificate(fallback.encode())):
            self._commit(replace(self._state, csms_root_fallback=None))

    def csms_root_failed(self) -> None:
        """The new CSMS root could not connect: restore the old one (M05.FR.13-14 / WP M05.FR.11)."""
        fallback = self._state.csms_root_fallback
        if fallback:
            self._commit(replace(self._state.with_roots(RootType.CSMS, (fallback,)), csms_root_fallback=None))

    # -- CSRs -----------------------------------------------------------------------------------
    def create_csr(self, use: CertificateUse, *, at: datetime, request_id: int | None = None) -> str:
        """Generate a key (stored through the key backend, A02.FR.02/05) and return the PEM CSR (A02.FR.03)."""
        spec = self.config.key_spec_v2g20 if use is CertificateUse.V2G20 else self.config.key_spec
        profile = get_profile(_PROFILE[use])
        subject = self.config.subject_for(use)
        private = generate_key(spec)
        state = self._state.next_counter()
        name = f"{use.value}-{at:%Y%m%dT%H%M%S}-{state.counter}"
        ref = self.storage.write_key(name, private)
        csr = make_csr(LocalKey(private, name), subject, profile)
        pending = [p for p in state.pending if p.use is use]
        dropped = pending[: max(0, len(pending) - self.config.max_pending_csrs + 1)]
        kept = tuple(p for p in state.pending if p not in dropped)
        csr_entry = PendingCsr(use, ref, _spki_hash(private.public_key()), request_id, at)
        self._commit(replace(state, pending=(*kept, csr_entry)))
        for p in dropped:
            self.storage.delete_key(p.key_ref)
        self.retry_blocked.discard(use)
        return csr.public_bytes(Encoding.PEM).decode("ascii")

    def pending_request_ids(self) -> list[int]:
        return [p.request_id for p in self._state.pending if p.request_id is not None]

    def trigger(self, trigger: Trigger) -> CertificateUse:
        """A TriggerMessage for a certificate: lifts the A02.FR.20 block; the caller then sends a new CSR."""
        self.retry_blocked.discard(trigger.use)
        return trigger.use

    # -- CertificateSigned ----------------------------------------------------------------------
    def certificate_signed(
        self, chain_pem: str, use: CertificateUse | None, *, at: datetime, request_id: int | None = None,
        require_request_id: bool = False,
    ) -> Outcome:
        """Check and store a CertificateSigned chain; see the module docstring for the steps."""
        outcome = self._accept(chain_pem, use, at=at, request_id=request_id, require_request_id=require_request_id)
        if not outcome.accepted:
            for u in ([use] if use is not None else list(CertificateUse)):
                self.retry_blocked.add(u)
        return outcome

    def _accept(
        self, chain_pem: str, use: CertificateUse | None, *, at: datetime, request_id: int | None, require_request_id: bool,
    ) -> Outcome:
        limit = min(MAX_CHAIN_CHARS, self.config.max_chain_size or MAX_CHAIN_CHARS)
        if len(chain_pem) > limit:
            return _invalid(f"certificateChain is {len(chain_pem)} characters; at most {limit} are accepted",
                            "A02.FR.16", REASON_TOO_LARGE)
        try:
            certs = load_certificates(chain_pem, what="certificateChain", strict=True)
        except InputError as exc:
            return _invalid(exc.message, "A02.FR.06")
        state = self._state
        pending = list(state.pending)
        if request_id is not None:
            pending = [p for p in pending if p.request_id == request_id]
            if not pending:
                return _invalid(f"requestId {request_id} matches no outstanding SignCertificate", "A02.FR.26",
                                REASON_UNKNOWN_REQUEST_ID)
        elif require_request_id and any(p.request_id is not None for p in pending):
            return _invalid("CertificateSigned lacks the requestId of the SignCertificate", "A02.FR.25")
        if use is not None:
            pending = [p for p in pending if p.use is use]
        spki = _spki_hash(certs[0].public_key())
        match = next((p for p in pending if p.spki_sha256 == spki), None)
        if match is None:
            return _invalid("the certificate's key matches no outstanding CSR of this station", "A02.FR.06")
        actual_use = match.use
        roots = self.csms_trust_roots() if _ROOT_FOR_USE[actual_use] is RootType.CSMS else self.roots(RootType.V2G)
        if not roots:
            return _invalid(f"no {_ROOT_FOR_USE[actual_use].value} root is installed to verify the chain", "A02.FR.06")
        expected = self.config.subject_for(actual_use)
        try:
            for cert in certs:
                if not cert.not_valid_before_utc <= at:
                    raise VerificationError(f"{cert.subject.rfc4514_string()} is not valid yet (future-dated)",
                                            requirement="A02.FR.06 (errata 2025-01)")
            verify_issued_chain(certs, roots, at=at, expected_cn=expected["CN"])
        except (OcppsecError, ValueError) as exc:
            message = exc.message if isinstance(exc, OcppsecError) else str(exc)
            requirement = exc.requirement if isinstance(exc, OcppsecError) else None
            return _invalid(message, requirement or "A02.FR.06")
        org = name_value(certs[0].subject, "O")
        if org != expected["O"]:
            return _invalid(f"subject O {org!r} is not {expected['O']!r}", "A02.FR.13")
        state = replace(state, pending=tuple(p for p in state.pending if p is not match and p.key_ref != match.key_ref))
        entry = StoredCredential(certificates_to_pem(certs), match.key_ref)
        to_delete: list[str] = []
        if actual_use in _CLIENT_USES and state.credential(CredentialRole.ACTIVE, actual_use) is not None:
            old_renewed = state.credential(CredentialRole.RENEWED, actual_use)
            if old_renewed:
                to_delete.append(old_renewed.key_ref)
            role = CredentialRole.RENEWED
            state = state.with_credential(role, actual_use, entry)  # switch by reconnecting (A02.FR.08)
        else:
            old = state.credential(CredentialRole.ACTIVE, actual_use)
            if old:
                to_delete.append(old.key_ref)
            role = CredentialRole.ACTIVE
            state = state.with_credential(role, actual_use, entry)  # newest certificate wins (A02.FR.15)
        try:
            self._commit(state)
        except OcppsecError as exc:
            return Outcome(Status.REJECTED, None, f"cannot store the certificate: {exc.message}"[:512])
        # the credential handed out from now on comes with the chain parsed here (not parsed again to connect)
        self._credentials[(role, actual_use)] = ClientCredential.parsed(actual_use, entry, role, tuple(certs))
        for ref in to_delete:
            self.storage.delete_key(ref)
        self.retry_blocked.discard(actual_use)
        return Outcome.ok()

    # -- client certificate life cycle ----------------------------------------------------------
    def _credential(self, role: CredentialRole, use: CertificateUse) -> ClientCredential | None:
        entry = self._state.credential(role, use)
        if entry is None:
            return None
        cached = self._credentials.get((role, use))
        if cached is not None and cached.chain_pem == entry.chain_pem and cached.key_ref == entry.key_ref:
            return cached
        credential = ClientCredential(use, entry.chain_pem, entry.key_ref, role)
        self._credentials[(role, use)] = credential
        return credential

    def client_credentials(self, use: CertificateUse = CertificateUse.CHARGING_STATION) -> list[ClientCredential]:
        """What to connect with, in order: the renewed certificate first (A02.FR.08), then the active one."""
        out = [self._credential(CredentialRole.RENEWED, use), self._credential(CredentialRole.ACTIVE, use)]
        return [c for c in out if c is not None]

    def certificate(self, use: CertificateUse) -> ClientCredential | None:
        return self._credential(CredentialRole.ACTIVE, use)

    def install_client_certificate(self, use: CertificateUse, chain_pem: str, key: PrivateKey) -> None:
        """Factory provisioning: an initial certificate and key (e.g. manufacturer-issued, A00.FR.801)."""
        state = self._state.next_counter()
        ref = self.storage.write_key(f"{use.value}-factory-{state.counter}", key)
        self._commit(state.with_credential(CredentialRole.ACTIVE, use, StoredCredential(chain_pem, ref)))

    def connected(self, credential: ClientCredential) -> Outcome | None:
        """A connection with ``credential`` succeeded: keep it, discard the other (A02.FR.10).

        Returns the DiscardedRenewedClientCertificate event outcome when the renewed certificate is
        the one discarded (A02.FR.29), else ``None``.
        """
        use = credential.use
        renewed = self._state.credential(CredentialRole.RENEWED, use)
        if renewed is None:
            return None
        without_renewed = self._state.with_credential(CredentialRole.RENEWED, use, None)
        if credential.role is CredentialRole.RENEWED:
            old = self._state.credential(CredentialRole.ACTIVE, use)
            self._commit(without_renewed.with_credential(CredentialRole.ACTIVE, use, renewed))
            if credential.chain_pem == renewed.chain_pem and credential.key_ref == renewed.key_ref:
                self._credentials[(CredentialRole.ACTIVE, use)] = credential.with_role(CredentialRole.ACTIVE)
            if old and old.key_ref != renewed.key_ref:
                self.storage.delete_key(old.key_ref)
            return None
        self._commit(without_renewed)
        self.storage.delete_key(renewed.key_ref)
        return Outcome(Status.ACCEPTED, None, "the renewed client certificate could not connect and was discarded",
                       EVENT_DISCARDED_RENEWED, "A02.FR.29")

    def renewals_due(self, *, at: datetime) -> list[CertificateUse]:
        """Uses whose active certificate is in its last ``renew_before`` (A03.FR.02)."""
        due = []
        for use in CertificateUse:
            cred = self._credential(CredentialRole.ACTIVE, use)
            if cred is not None and renewal_due(cred.leaf.not_valid_after_utc, at, self.config.renew_before):
                due.append(use)
        return due

    # -- DeleteCertificate / GetInstalledCertificateIds ----------------------------------------
    def delete(self, hash_data: CertificateHashData) -> Outcome:
        """DeleteCertificate (M04): Accepted, Failed (own certificate, last CSMS root, storage), NotFound."""
        alg = hash_data.hash_algorithm
        for root_type in RootType:
            listed = self._state.roots_of(root_type)
            for n, pem in enumerate(listed):
                cert = x509.load_pem_x509_certificate(pem.encode())
                found = _hash_or_none(cert, self._root_issuer(cert), alg)
                if found is None or not found.matches(hash_data):
                    continue
                if root_type is RootType.CSMS and len(listed) == 1:
                    return Outcome(Status.FAILED, None, "refusing to delete the last CSMS root certificate",
                                   requirement="M04.FR.06")
                return self._save(self._state.with_roots(root_type, (*listed[:n], *listed[n + 1:])))
        for role in CredentialRole:
            for use, entry in self._state.credentials(role).items():
                chain = load_certificates(entry.chain_pem)
                for n, cert in enumerate(chain):
                    issuer = chain[n + 1] if n + 1 < len(chain) else self._issuer_root(cert)
                    if issuer is None or not compute_hash_data(cert, issuer, alg).matches(hash_data):
                        continue
                    if use in _CLIENT_USES or n > 0:
                        return Outcome(Status.FAILED, None, "refusing to delete the station's own certificate",
                                       requirement="M04.FR.06")
                    outcome = self._save(self._state.with_credential(role, use, None))
                    if outcome.accepted:
                        self.storage.delete_key(entry.key_ref)
                    return outcome
        return Outcome(Status.NOT_FOUND)

    def _save(self, state: StationState) -> Outcome:
        try:
            self._commit(state)
        except OcppsecError as exc:
            return Outcome(Status.FAILED, None, exc.message[:512])
        return Outcome.ok()

    def _issuer_root(self, cert: x509.Certificate) -> x509.Certificate | None:
        for root_type in RootType:
            for root in self.roots(root_type):
                if root.subject == cert.issuer and self._issued_by(cert, root):
                    return root
        return None

    def installed(
        self, types: Sequence[InstalledType] | None = None, hash_algorithm: str = "SHA256",
    ) -> list[InstalledCertificate]:
        """GetInstalledCertificateIds (M03): roots by type, V2G chains with their sub-CAs as children (M03.FR.05)."""
        wanted = list(types) if types else list(InstalledType)
        out: list[InstalledCertificate] = []
        for t in wanted:
            root_type = t.root_type
            if root_type is not None:
                for cert in self.roots(root_type):
                    hd = _hash_or_none(cert, self._root_issuer(cert), hash_algorithm)
                    if hd is not None:
                        out.append(InstalledCertificate(t, hd))
                continue
            for use in (CertificateUse.V2G, CertificateUse.V2G20):
                cred = self._credential(CredentialRole.ACTIVE, use)
                if cred is None:
                    continue
                chain = cred.chain
                root = self._issuer_root(chain[-1])
                hashes_: list[CertificateHashData] = []
                for n, cert in enumerate(chain):
                    issuer = chain[n + 1] if n + 1 < len(chain) else (root or cert)
                    hashes_.append(compute_hash_data(cert, issuer, hash_algorithm))
                out.append(InstalledCertificate(t, hashes_[0], tuple(hashes_[1:5])))
        return out

    def _root_issuer(self, cert: x509.Certificate) -> x509.Certificate:
        """The certificate that issued an installed root: itself, or the old root of a cross-signed CSMS root."""
        if cert.issuer == cert.subject:
            return cert
        known = self._state.root_issuers.get(_fingerprint(cert))
        if known:
            return x509.load_pem_x509_certificate(known.encode())
        return self._issuer_root(cert) or cert

    def snapshot(self) -> str:
        """The state document as canonical JSON (tests compare it to prove 'store unchanged')."""
        return json.dumps(self._state.to_json(), sort_keys=True)
