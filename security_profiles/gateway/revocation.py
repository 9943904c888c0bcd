"""Revocation of station certificates at the gateway: the decision core (sans I/O, time passed in).

A profile-3 station's certificate is looked up in what the revocation sources hold at that moment
(:class:`RevocationState`, built and refreshed by the adapters of :mod:`.revocation_io`):

1. **CRLs** (:class:`CrlState`, one per ``--crl`` file or URL): each CRL was checked once against its issuing
   CA with the kernel's rules (:func:`ocppsec.pki.revocation.check.index_crl`: issuer Name and signature,
   CRLNumber, no delta, no unknown critical extension) and indexed by serial. A CRL of the station's issuer
   lists the serial -> **revoked** (reason code from the entry); does not list it and is current -> good;
   is past its nextUpdate -> **unknown** (stale). A source that never loaded -> unknown for every
   certificate (nobody knows whose CRL it would be).
2. **The ledger** (:class:`LedgerState`, ``--pki DIR``): the certificate's SHA-256 fingerprint is among the
   revoked records, or its issuer is a revoked CA of the ledger -> **revoked**; the ledger speaks for the
   certificates its CAs issued and is **unknown** for them when it has not been read for ``max_age``.
3. **OCSP** (:class:`OcspAnswer`, ``--ocsp auto|URL``): the cached or freshly fetched answer about the
   certificate; an unreachable responder, an answer that does not check, ``unknown`` from the responder,
   or an issuer we do not hold (no CertID can be built) -> **unknown**.

The verdict (:class:`Verdict`) is **revoked** when any source says so, else **unknown** when a source
that applies cannot answer, else good. :func:`admission_refusal` turns it into the handshake's answer:
revoked -> refused; unknown -> refused with ``fail=closed`` (the default), admitted with ``fail=open``.
A refusal is HTTP 403 with the security event InvalidChargingStationCertificate and a techInfo naming
the reason (``revoked (keyCompromise) by crl FILE`` / ``revocation status unknown (...), fail-closed``).
Connected stations are closed only for a definite revocation (:func:`revocation_close`), never for an
unknown status, so an outage of a source refuses new handshakes (fail-closed) but drops nobody.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from cryptography import x509

from ocppsec.pki._untrusted import pyca_input
from ocppsec.pki.revocation.check import CrlIndex
from ocppsec.pki.revocation.status import ocsp_url_of
from ocppsec.security_profiles import events as ev
from ocppsec.security_profiles.handshake import Reject

__all__ = [
    "REQUIREMENT",
    "CrlState",
    "FailMode",
    "Finding",
    "LedgerRevocation",
    "LedgerState",
    "OcspAnswer",
    "RevocationState",
    "StationCertificate",
    "Status",
    "Verdict",
    "admission_refusal",
    "crl_findings",
    "evaluate",
    "issuer_keys",
    "key_id",
    "ledger_finding",
    "revocation_close",
]

REQUIREMENT = "A00.FR.705"  # the CSMS checks the station certificate's validity with the CA (online verification)


class FailMode(StrEnum):
    """What a handshake gets when a revocation source cannot answer for its certificate."""

    OPEN = "open"  # admitted (and logged)
    CLOSED = "closed"  # refused


class Status(StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _name_key(name_der: bytes) -> bytes:
    return b"name:" + name_der


def key_id(ca: x509.Certificate) -> bytes:
    """The CA's key identifier: its subjectKeyIdentifier, else the RFC 5280 SHA-1 of its public key."""
    try:
        return ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return x509.SubjectKeyIdentifier.from_public_key(ca.public_key()).digest


def issuer_keys(ca: x509.Certificate) -> frozenset[bytes]:
    """What identifies ``ca`` as a certificate's issuer: its key identifier (matched against the certificate's
    authorityKeyIdentifier) and, for certificates without one, its subject Name."""
    return frozenset({key_id(ca), _name_key(ca.subject.public_bytes())})


@dataclass(frozen=True, slots=True)
class StationCertificate:
    """The facts of a station certificate the sources are asked about (parsed once, kept small: no parsed
    certificate object is held, :attr:`certificate` parses the DER again for the rare caller that needs it)."""

    der: bytes
    fingerprint: str  # SHA-256 of the DER, hex: the ledger's key
    serial: int
    issuer: bytes  # the issuer Name, DER
    issuer_key: bytes  # the authorityKeyIdentifier's keyIdentifier, else the issuer Name (see issuer_keys)
    ocsp_url: str | None  # the AIA OCSP URL, if any

    @classmethod
    def from_der(cls, der: bytes) -> StationCertificate:
        """The facts of ``der``; :class:`~ocppsec.pki.errors.InputError` for a certificate pyca cannot read (the
        TLS layer accepted it, and pyca is stricter than OpenSSL)."""
        with pyca_input("the station certificate cannot be parsed", requirement=REQUIREMENT):
            cert = x509.load_der_x509_certificate(der)
            issuer = cert.issuer.public_bytes()
            url = ocsp_url_of(cert)
            try:
                aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
            except x509.ExtensionNotFound:
                aki = None
        return cls(der, hashlib.sha256(der).hexdigest(), cert.serial_number, issuer, aki or _name_key(issuer), url)

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.der)

    def __repr__(self) -> str:
        return f"StationCertificate(serial={self.serial_hex}, fingerprint={self.fingerprint[:16]}...)"

    @property
    def serial_hex(self) -> str:
        return format(self.serial, "x")


@dataclass(frozen=True, slots=True)
class Finding:
    """What one source says about one certificate."""

    status: Status
    source: str  # "crl /etc/ocppsec/root.crl", "ledger", "ocsp http://ocsp.example.com/csms-root"
    detail: str = ""  # the reason code of a revocation, or why the status is unknown
    reason: x509.ReasonFlags | None = None
    revoked_at: datetime | None = None

    def describe(self) -> str:
        if self.status is Status.REVOKED:
            return f"revoked ({self.detail or 'unspecified'}) by {self.source}"
        if self.status is Status.UNKNOWN:
            return f"{self.source}: {self.detail}" if self.detail else self.source
        return f"good by {self.source}"


@dataclass(frozen=True, slots=True)
class Verdict:
    """Every source's finding about one certificate; revoked beats unknown beats good."""

    findings: tuple[Finding, ...] = ()

    @property
    def revocation(self) -> Finding | None:
        return next((f for f in self.findings if f.status is Status.REVOKED), None)

    @property
    def unknowns(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.status is Status.UNKNOWN)

    @property
    def status(self) -> Status:
        if self.revocation is not None:
            return Status.REVOKED
        return Status.UNKNOWN if self.unknowns else Status.GOOD

    def with_finding(self, finding: Finding | None) -> Verdict:
        return self if finding is None else Verdict((*self.findings, finding))


# -- what the sources hold ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CrlState:
    """One CRL source: its last good CRL (checked and indexed), and the last failure to load it, if any."""

    source: str
    index: CrlIndex | None = None  # None: never loaded
    error: str | None = None
    issuer: frozenset[bytes] = frozenset()  # issuer_keys() of the CA the CRL was checked against

    @classmethod
    def loaded(cls, source: str, index: CrlIndex, issuer: x509.Certificate) -> CrlState:
        return cls(source, index, None, issuer_keys(issuer))


@dataclass(frozen=True, slots=True)
class LedgerRevocation:
    serial: str
    issuer_ca: str
    reason: str | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class LedgerState:
    """The ledger's revocations as last read: by certificate fingerprint, and its revoked CAs by subject."""

    revoked: Mapping[str, LedgerRevocation] = field(default_factory=dict)  # fingerprint -> revocation
    revoked_cas: Mapping[bytes, LedgerRevocation] = field(default_factory=dict)  # issuer_keys() of a revoked CA -> it
    cas: frozenset[bytes] = frozenset()  # issuer_keys() of the ledger's CAs: whose certificates it speaks for
    read_at: datetime | None = None  # the last successful read; None: never
    error: str | None = None  # the last failure to read it


@dataclass(frozen=True, slots=True)
class OcspAnswer:
    """One OCSP outcome about one certificate, as cached: good / revoked / unknown until ``expires``."""

    status: Status
    source: str
    detail: str = ""
    reason: x509.ReasonFlags | None = None
    revoked_at: datetime | None = None
    expires: datetime | None = None  # None: not cacheable (a failure, or already past its lifetime)

    def finding(self) -> Finding:
        return Finding(self.status, self.source, self.detail, self.reason, self.revoked_at)


@dataclass(frozen=True, slots=True)
class RevocationState:
    """Everything the CRL and ledger sources hold at one moment (OCSP answers are kept apart, per certificate)."""

    crls: tuple[CrlState, ...] = ()
    ledger: LedgerState | None = None  # None: no ledger source
    ledger_max_age: timedelta = timedelta(seconds=30)


# -- the decision ------------------------------------------------------------------------------------------
def _reason_text(reason: x509.ReasonFlags | None) -> str:
    return reason.value if reason is not None else "unspecified"


def crl_findings(cert: StationCertificate, crls: Sequence[CrlState], *, at: datetime) -> list[Finding]:
    """Step 1 of the module docstring for every CRL source."""
    out: list[Finding] = []
    for state in crls:
        source = f"crl {state.source}"
        if state.index is None:
            out.append(Finding(Status.UNKNOWN, source, f"not loaded ({state.error or 'not read yet'})"))
            continue
        if cert.issuer_key not in state.issuer or not state.index.covers(ca=False):
            continue  # another CA's CRL, or one for CA certificates only
        answer = state.index.status(cert.serial, at=at, ca=False)
        if answer.revoked:
            out.append(Finding(Status.REVOKED, source, _reason_text(answer.reason), answer.reason, answer.revoked_at))
        elif answer.status == Status.UNKNOWN:
            next_update = state.index.next_update
            why = (f"past its nextUpdate {_when(next_update)}" if next_update is not None and at > next_update
                   else f"not valid before {_when(state.index.this_update)}")
            out.append(Finding(Status.UNKNOWN, source, why))
        else:
            out.append(Finding(Status.GOOD, source))
    return out


def ledger_finding(cert: StationCertificate, ledger: LedgerState, *, at: datetime, max_age: timedelta) -> Finding | None:
    """Step 2 of the module docstring (None: the ledger does not speak for this certificate's issuer)."""
    hit = ledger.revoked.get(cert.fingerprint)
    if hit is not None:
        return Finding(Status.REVOKED, "ledger", hit.reason or "unspecified", None, hit.revoked_at)
    ca = ledger.revoked_cas.get(cert.issuer_key)
    if ca is not None:
        return Finding(Status.REVOKED, "ledger", f"issuing CA {ca.issuer_ca} revoked ({ca.reason or 'unspecified'})",
                       None, ca.revoked_at)
    if ledger.read_at is None:
        return Finding(Status.UNKNOWN, "ledger", f"not read yet ({ledger.error or 'starting'})")
    if cert.issuer_key not in ledger.cas:
        return None
    if at - ledger.read_at > max_age:
        return Finding(Status.UNKNOWN, "ledger", f"not read since {_when(ledger.read_at)} ({ledger.error or 'no answer'})")
    return Finding(Status.GOOD, "ledger")


def evaluate(cert: StationCertificate, state: RevocationState, *, at: datetime, ocsp: OcspAnswer | None = None) -> Verdict:
    """Every source's finding about ``cert`` at ``at`` (``ocsp``: the OCSP outcome, when OCSP applies)."""
    findings = crl_findings(cert, state.crls, at=at)
    if state.ledger is not None:
        found = ledger_finding(cert, state.ledger, at=at, max_age=state.ledger_max_age)
        if found is not None:
            findings.append(found)
    if ocsp is not None:
        findings.append(ocsp.finding())
    return Verdict(tuple(findings))


TECH_INFO_BUDGET = 240  # techInfo holds 255 characters; the server appends " [A00.FR.705]"


def _fit(text: str, room: int) -> str:
    return text if len(text) <= room else text[: max(room - 3, 0)] + "..."


def _tech_info(cert: StationCertificate, verdict: Verdict, fail: FailMode) -> str:
    """The reason of a refusal or close, within :data:`TECH_INFO_BUDGET` (the details are cut, never the verdict)."""
    who = f"certificate serial {cert.serial_hex}"
    revoked = verdict.revocation
    if revoked is not None:
        return _fit(f"{who} {revoked.describe()}", TECH_INFO_BUDGET)
    head, tail = f"{who}: revocation status unknown (", f"), fail-{fail.value}"
    unknown = "; ".join(f.describe() for f in verdict.unknowns)
    return head + _fit(unknown, TECH_INFO_BUDGET - len(head) - len(tail)) + tail


def admission_refusal(cert: StationCertificate, verdict: Verdict, fail: FailMode, *, identity: str) -> Reject | None:
    """The handshake's answer to ``verdict``: a 403 refusal with InvalidChargingStationCertificate, or None."""
    status = verdict.status
    if status is Status.GOOD or (status is Status.UNKNOWN and fail is FailMode.OPEN):
        return None
    return Reject(_tech_info(cert, verdict, fail), 403, ev.INVALID_CS_CERTIFICATE, REQUIREMENT, identity)


def revocation_close(cert: StationCertificate, verdict: Verdict) -> str | None:
    """Why a connected station must be closed now (its certificate is revoked), or None (unknown is no reason)."""
    if verdict.revocation is None:
        return None
    return _tech_info(cert, verdict, FailMode.CLOSED)
