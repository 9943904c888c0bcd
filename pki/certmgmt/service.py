"""CSMS side: the certificate service (sans-I/O; the CA and the inventory come in as interfaces).

SignCertificate is a pipeline, each step able to answer Rejected with reasonCode ``InvalidCSR``:

1. size: ``csr`` at most 5500 characters (schema maxLength, all versions);
2. station: the requester must be a known station (its serial, SECC IDs, MaxCertificateChainSize);
3. CA: the signer must sign this use (and, 2.1, under the root ``hashRootCertificate`` names, A02.FR.27);
4. format: exactly one PEM ``CERTIFICATE REQUEST`` block and nothing else (A02.FR.03);
5. policy: :func:`~ocppsec.pki.csr.check_csr` for the use's profile with the CSO name (A02.FR.13) and
   the station's serial (CN, A00.FR.511) or SECC ID (V2G) — a CSR for another station is refused;
6. sign and size the chain: leaf first, sub-CAs, no root, at most the station's MaxCertificateChainSize
   (else Rejected, the certificate is recorded in the ledger but never sent);
7. record the certificate in the inventory (state ``sent``) and hand back the CertificateSigned order
   (``requestId`` echoed for 2.1, A02.FR.25).

Nothing here raises into the OCPP layer for bad input: every refusal is an :class:`Outcome`.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from ocppsec.pki._untrusted import PYCA_INPUT_ERRORS, describe_pyca_error, read_csr
from ocppsec.pki.certmgmt.inventory import (
    EntrySource,
    InventoryEntry,
    InventoryState,
    InventoryStore,
    IssuedEntryFactory,
    ReconcileReport,
    entry_for,
    reconcile,
)
from ocppsec.pki.certmgmt.model import (
    CertificateUse,
    InstalledCertificate,
    Outcome,
    RootType,
    SignRequest,
    Status,
)
from ocppsec.pki.certmgmt.signer import CertificateSigner, SignedChain, SigningOrder
from ocppsec.pki.csr import MAX_CSR_PEM_CHARS, CheckedRequest, PolicyContext, check_csr
from ocppsec.pki.errors import InputError, OcppsecError, Violation
from ocppsec.pki.hashdata import CertificateHashData, compute_hash_data
from ocppsec.pki.ledger import Ledger
from ocppsec.pki.names import name_value
from ocppsec.pki.pem import pem_blocks

__all__ = [
    "MAX_CHAIN_CHARS",
    "REASON_INVALID_CSR",
    "CertificateService",
    "CertificateSignedOrder",
    "SignDecision",
    "StationInfo",
]

MAX_CHAIN_CHARS = 10000  # CertificateSignedRequest.certificateChain maxLength (all versions)
REASON_INVALID_CSR = "InvalidCSR"
REASON_TOO_LARGE = "TooLargeElement"


@dataclass(frozen=True, slots=True)
class StationInfo:
    """What the CSMS knows about a station: identity, serial (CN of its certificate), SECC IDs, limits."""

    station_id: str
    serial: str | None = None  # expected CN of the charging-station certificate (A00.FR.511); None: the station id
    secc_ids: tuple[str, ...] = ()  # allowed CNs of its V2G certificates (ISO15118Ctrlr.SeccId); () = any
    cso_name: str | None = None  # O of its certificates; None: the service's CSO name
    max_chain_size: int | None = None  # its MaxCertificateChainSize / CertificateSignedMaxChainSize

    @property
    def expected_serial(self) -> str:
        return self.serial or self.station_id


@dataclass(frozen=True, slots=True)
class SignDecision:
    """The SignCertificate answer for one request, with what the policy found."""

    station_id: str
    request: SignRequest
    outcome: Outcome
    csr: x509.CertificateSigningRequest | None = None
    report: CheckedRequest | None = None  # the policy's report, with what it read (the signer reuses it)

    @property
    def accepted(self) -> bool:
        return self.outcome.accepted


@dataclass(frozen=True, slots=True)
class CertificateSignedOrder:
    """A CertificateSigned to send: the chain (leaf first, no root), its use and the 2.1 requestId."""

    station_id: str
    chain: SignedChain
    use: CertificateUse
    request_id: int | None
    chain_pem: str = ""  # leaf first, sub-CAs, no root (filled from ``chain`` when empty)

    def __post_init__(self) -> None:
        if not self.chain_pem:
            object.__setattr__(self, "chain_pem", self.chain.chain_pem())

    @property
    def leaf_hash_data(self) -> CertificateHashData:
        issuer = self.chain.sub_cas[0] if self.chain.sub_cas else self.chain.root
        return compute_hash_data(self.chain.leaf, issuer if issuer is not None else self.chain.leaf)


def _rejected(text: str, requirement: str | None = None, reason: str = REASON_INVALID_CSR) -> Outcome:
    return Outcome(Status.REJECTED, reason, text[:512], requirement=requirement)


def _strict_csr(pem: str) -> x509.CertificateSigningRequest:
    raw = pem.encode("utf-8", "replace")
    blocks = pem_blocks(raw)
    if len(blocks) != 1 or blocks[0][0] not in ("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"):
        found = ", ".join(label for label, _ in blocks) or "no PEM block"
        raise InputError(f"csr must hold exactly one PEM CERTIFICATE REQUEST block (found: {found})", requirement="A02.FR.03")
    if raw.replace(blocks[0][1], b"").strip():
        raise InputError("csr has data outside its PEM block", requirement="A02.FR.03")
    try:
        return read_csr(x509.load_pem_x509_csr(blocks[0][1]), what="csr")
    except PYCA_INPUT_ERRORS as exc:
        raise InputError(f"csr is not a valid PKCS#10 request ({describe_pyca_error(exc)})", requirement="A02.FR.03") from None


class _SentEntries:
    """``sent`` inventory entries for freshly signed leafs.

    With the CA's ledger row at hand (local CAs) the serial, fingerprint and notAfter are the row's, so
    nothing is read back from the certificate; otherwise :class:`IssuedEntryFactory` reads them. The
    issuer half of the hash data is worked out once per issuer."""

    def __init__(self) -> None:
        self._factory = IssuedEntryFactory()
        self._prefixes: dict[x509.Certificate, str] = {}

    def __call__(self, station_id: str, kind: str, signed: SignedChain, *, at: datetime,
                 request_id: int | None) -> InventoryEntry:
        parent = signed.sub_cas[0] if signed.sub_cas else signed.root
        issuer = parent if parent is not None else signed.leaf
        record = signed.record
        if record is None:
            return self._factory(station_id, kind, signed.leaf, issuer, at=at, request_id=request_id)
        prefix = self._prefixes.get(issuer)
        if prefix is None:
            if len(self._prefixes) >= 64:
                self._prefixes.clear()
            alg, name_hash, key_hash, _ = compute_hash_data(signed.leaf, issuer, "SHA256").canonical()
            prefix = self._prefixes[issuer] = f"{alg}:{name_hash}:{key_hash}:"
        return InventoryEntry(
            station_id=station_id, kind=kind, hash_key=prefix + record.serial, serial=record.serial,
            state=InventoryState.SENT, updated_at=at, source=EntrySource.ISSUED, fingerprint=record.fingerprint,
            not_after=record.not_after, request_id=request_id,
        )


class CertificateService:
    """The CSMS certificate service: SignCertificate review and signing, inventory bookkeeping.

    ``stations`` maps station identities to :class:`StationInfo`; requests from unknown stations are
    refused. ``serial_registry`` (optional) is the set of known station serial numbers.
    """

    def __init__(
        self, signer: CertificateSigner, *, cso_name: str | None, stations: Mapping[str, StationInfo],
        inventory: InventoryStore | None = None, ledger: Ledger | None = None,
        serial_registry: Container[str] | None = None, max_chain_size: int = MAX_CHAIN_CHARS,
    ) -> None:
        self.signer = signer
        self.cso_name = cso_name
        self.stations = stations
        self.inventory = inventory
        self.ledger = ledger
        self.serial_registry = serial_registry
        self.max_chain_size = max_chain_size
        self._entries = _SentEntries()

    # -- SignCertificate ------------------------------------------------------------------------
    def review(self, station_id: str, request: SignRequest) -> SignDecision:
        """Steps 1-5: Accepted (with the parsed CSR) or Rejected/InvalidCSR. Pure apart from the signer's config."""
        def no(text: str, requirement: str | None = None, report: CheckedRequest | None = None) -> SignDecision:
            return SignDecision(station_id, request, _rejected(text, requirement), None, report)

        if len(request.csr_pem) > MAX_CSR_PEM_CHARS:
            return no(f"csr is {len(request.csr_pem)} characters; at most {MAX_CSR_PEM_CHARS} are allowed",
                      "SignCertificate.csr maxLength")
        station = self.stations.get(station_id)
        if station is None:
            return no(f"station {station_id!r} is not known to this CSMS")
        why = self.signer.can_sign(request.use, request.hash_root)
        if why is not None:
            return no(why, "A02.FR.27" if request.hash_root is not None else None)
        try:
            csr = _strict_csr(request.csr_pem)
            profile = self.signer.profile_for(request.use)
        except OcppsecError as exc:
            return no(exc.message, exc.requirement)
        try:
            ctx, extra = self._context(station, request.use, csr)
            report = check_csr(csr, profile, ctx)
        except OcppsecError as exc:
            return no(exc.message, exc.requirement)
        violations = report.violations + tuple(extra)
        if violations:
            text = "; ".join(str(v) for v in violations)
            return no(f"CSR rejected: {text}", violations[0].requirement, report)
        return SignDecision(station_id, request, Outcome.ok(), csr, report)

    def _context(
        self, station: StationInfo, use: CertificateUse, csr: x509.CertificateSigningRequest,
    ) -> tuple[PolicyContext, list[Violation]]:
        cso = station.cso_name or self.cso_name
        if use in (CertificateUse.CHARGING_STATION, CertificateUse.COMBINED):
            return PolicyContext(cso_name=cso, expected_cn=station.expected_serial, serial_registry=self.serial_registry), []
        extra: list[Violation] = []
        cn = name_value(csr.subject, "CN")
        if station.secc_ids and cn not in station.secc_ids:
            extra.append(Violation("A02 alt. scenario", f"CN {cn!r} is not a SECC ID of station {station.station_id}"))
        return PolicyContext(cso_name=cso), extra

    def sign(self, decisions: Sequence[SignDecision], *, at: datetime) -> list[tuple[Outcome, CertificateSignedOrder | None]]:
        """Steps 6-7 for a batch of reviewed requests (rejected ones pass through unchanged)."""
        accepted = [d for d in decisions if d.accepted and d.csr is not None]
        orders = [SigningOrder(d.csr, d.request.use, d.station_id, d.request.hash_root, d.report) for d in accepted if d.csr]
        chains: dict[int, SignedChain] = {}
        failure: Outcome | None = None
        if orders:
            try:
                for d, chain in zip(accepted, self.signer.sign(orders, at=at), strict=True):
                    chains[id(d)] = chain
            except OcppsecError as exc:
                failure = Outcome(Status.REJECTED, None, f"the CA did not sign: {exc.message}"[:512])
        out: list[tuple[Outcome, CertificateSignedOrder | None]] = []
        entries = []
        for d in decisions:
            if not d.accepted:
                out.append((d.outcome, None))
                continue
            signed = chains.get(id(d))
            if signed is None:
                out.append((failure or Outcome(Status.REJECTED, None, "not signed"), None))
                continue
            order = CertificateSignedOrder(d.station_id, signed, d.request.use, d.request.request_id)
            station = self.stations[d.station_id]
            limit = min(self.max_chain_size, station.max_chain_size or MAX_CHAIN_CHARS)
            size = len(order.chain_pem)
            if size > limit:
                out.append((_rejected(f"the signed chain is {size} characters; the station accepts at most {limit}",
                                      "A02.FR.16", REASON_TOO_LARGE), None))
                continue
            if self.inventory is not None:
                entries.append(self._entries(d.station_id, d.request.use.value, signed, at=at,
                                             request_id=d.request.request_id))
            out.append((d.outcome, order))
        if entries and self.inventory is not None:
            self.inventory.upsert(entries)
        return out

    def handle(self, station_id: str, request: SignRequest, *, at: datetime) -> tuple[Outcome, CertificateSignedOrder | None]:
        """Review and sign one request: the SignCertificate answer and, if Accepted, the CertificateSigned to send."""
        return self.sign([self.review(station_id, request)], at=at)[0]

    def handle_many(
        self, requests: Sequence[tuple[str, SignRequest]], *, at: datetime,
    ) -> list[tuple[Outcome, CertificateSignedOrder | None]]:
        """Review and sign a batch (one ledger transaction per CA, one inventory transaction)."""
        return self.sign([self.review(sid, req) for sid, req in requests], at=at)

    # -- answers from the station ------------------------------------------------------------------
    def certificate_signed_result(self, order: CertificateSignedOrder, outcome: Outcome, *, at: datetime) -> None:
        """Record the station's CertificateSigned answer (installed / rejected)."""
        if self.inventory is not None:
            state = InventoryState.INSTALLED if outcome.accepted else InventoryState.REJECTED
            self.inventory.set_state(order.station_id, order.leaf_hash_data, state, at)

    def install_result(self, station_id: str, root_type: RootType, certificate: x509.Certificate, outcome: Outcome,
                       *, at: datetime) -> None:
        """Record an InstallCertificate answer: an accepted root becomes part of the station's inventory."""
        if self.inventory is not None and outcome.accepted:
            self.inventory.upsert([entry_for(station_id, root_type.value, certificate, None, state=InventoryState.INSTALLED,
                                             at=at, source=EntrySource.INSTALLED)])

    def delete_result(self, station_id: str, hash_data: CertificateHashData, outcome: Outcome, *, at: datetime) -> None:
        """Record a DeleteCertificate answer (Accepted or NotFound: the station no longer holds it)."""
        if self.inventory is not None and outcome.status in (Status.ACCEPTED, Status.NOT_FOUND):
            self.inventory.set_state(station_id, hash_data, InventoryState.DELETED, at)

    def installed_ids_result(
        self, station_id: str, reported: Sequence[InstalledCertificate], *, at: datetime, kinds: Sequence[str] | None = None,
    ) -> ReconcileReport:
        """Reconcile a GetInstalledCertificateIds answer with the inventory and the CA ledger."""
        if self.inventory is None:
            return ReconcileReport(station_id, unknown=tuple(reported))
        return reconcile(self.inventory, station_id, reported, at=at, ledger=self.ledger, kinds=kinds)
