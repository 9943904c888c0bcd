"""Issuance from CSRs as one pipeline: validate the request, apply the profile, sign, record.

An :class:`IssuancePipeline` is one CA issuing one profile: the CA's certificate and signing key, the
profile, the policy context its requests are checked under by default, validity, OCSP/CRL URLs and the
:class:`~ocppsec.pki.ledger.Ledger` it records into. It is immutable and reads no clock: every call takes
``at``. Its four steps are public and are what :meth:`~IssuancePipeline.issue_one` and
:meth:`~IssuancePipeline.issue_many` run, for :class:`~ocppsec.pki.directory.PkiDirectory`, the CSMS
certificate service (:mod:`ocppsec.pki.certmgmt.signer`) and ``ocppsec pki issue`` alike:

1. :meth:`~IssuancePipeline.validate`: the CSR policy (:func:`~ocppsec.pki.csr.check_csr`) under the
   pipeline's profile; the :class:`~ocppsec.pki.csr.CheckedRequest` it returns carries the subject Name
   and public key the policy read, so nothing reads the request twice;
2. :meth:`~IssuancePipeline.apply_profile`: the unsigned certificate: subject and key from the request,
   everything else (serial, validity, extensions) from the profile and the CA; nothing of the request's
   own extensions is copied (a server certificate gets its CN as subjectAltName dNSName, RFC 6125). The
   part every certificate of a validity shares is one prebuilt pyca ``CertificateBuilder`` (immutable),
   extended per certificate. The validity rules apply here (:func:`check_validity`): notBefore lies
   ``backdate`` (default :data:`DEFAULT_BACKDATE`) before ``at`` but not before the CA's own notBefore, so a
   station whose clock is a little behind does not see a future-dated certificate (A02.FR.06 as the 2025
   errata have it); notAfter may not pass the CA's notAfter; a CA that has expired or is not yet valid
   issues nothing;
3. :meth:`~IssuancePipeline.sign`: pyca's builder signs with the CA key, in memory or in a PKCS#11 token;
4. :meth:`~IssuancePipeline.record`: the ledger rows, all of a batch in one transaction, committed before
   anything is returned (ADR 3); a serial clash signs the whole batch again with fresh serials.

:meth:`~IssuancePipeline.issue_checked` starts at step 2 for requests validated already (the CSMS service
checks each request under its station's own context before it signs a batch).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ocppsec.pki.builder import DEFAULT_BACKDATE, CertificateTemplate, new_serial
from ocppsec.pki.csr import CheckedRequest, PolicyContext, check_csr
from ocppsec.pki.errors import DuplicateError, PolicyError, UsageError, Violation
from ocppsec.pki.hierarchy import CertificateAuthority, IssuedCertificate
from ocppsec.pki.ledger import CertificateRecord, Ledger
from ocppsec.pki.names import name_value
from ocppsec.pki.profiles import CnKind, Profile

__all__ = ["DEFAULT_BACKDATE", "BatchOutcome", "BatchRequest", "IssuancePipeline", "IssueResult", "SignedCertificate",
           "check_validity", "unchecked_identity"]

SERIAL_ATTEMPTS = 3


def _day(dt: datetime) -> str:
    return f"{_aware(dt):%Y-%m-%dT%H:%M:%SZ}"


def _aware(dt: datetime) -> datetime:
    """``dt`` in UTC; a naive time is taken as UTC (as pyca's builder takes it)."""
    return dt.astimezone(UTC) if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def check_validity(
    profile: Profile, not_before: datetime, not_after: datetime, issuer: x509.Certificate | None, *, at: datetime,
    now: datetime | None = None, issuer_name: str = "the issuer",
) -> list[Violation]:
    """Every reason a certificate of ``profile`` valid from ``not_before`` to ``not_after``, issued at ``at`` by
    ``issuer`` (None: self-signed), must not be issued. ``now`` (default ``at``): when it reaches its holder.

    - the issuer is outside its own validity at ``at`` (expired, or not yet valid);
    - notAfter after the issuer's notAfter: path validation checks every certificate of the path, so the
      rest would be useless (RFC 5280 §6.1.3 (a)(2));
    - notAfter not after ``now``: expired on arrival;
    - notBefore after ``now``: future-dated, which stations refuse (A02.FR.06, 2025 errata).
    """
    out: list[Violation] = []
    at, not_before, not_after = _aware(at), _aware(not_before), _aware(not_after)
    nesting = profile.cite("validity_nesting")
    if issuer is not None:
        inb, ina = issuer.not_valid_before_utc, issuer.not_valid_after_utc
        if at > ina:
            out.append(Violation(nesting, f"{issuer_name} expired on {_day(ina)}; it issues nothing any more"))
        elif at < inb:
            out.append(Violation(profile.cite("not_before"), f"{issuer_name} is not valid before {_day(inb)}"))
        elif not_after > ina:
            most = (ina - not_before).days
            out.append(Violation(nesting, f"notAfter {_day(not_after)} is after the notAfter of {issuer_name} "
                                          f"({_day(ina)}): at most {most} days"))
    when = at if now is None else _aware(now)
    if not_after <= when:
        out.append(Violation(profile.cite("validity"),
                             f"the certificate would have expired already (notAfter {_day(not_after)})"))
    if not_before > when:
        out.append(Violation(profile.cite("not_before"),
                             f"notBefore {_day(not_before)} is in the future: stations refuse certificates not valid yet"))
    return out


def unchecked_identity(profile: Profile, ctx: PolicyContext) -> Violation | None:
    """A note when a station or SECC certificate is issued without the requester's identity to check its CN
    against (no ``expected_cn``, no serial registry): the CN is then whatever the CSR says."""
    if profile.cn_kind not in (CnKind.SERIAL, CnKind.SECC_ID) or ctx.expected_cn is not None:
        return None
    if profile.cn_kind is CnKind.SERIAL and ctx.serial_registry is not None:
        return None
    return Violation(profile.cite("cn"), "the CN was not checked against the requester's identity "
                                         "(no expected CN was given): it is what the CSR asked for")


@dataclass(frozen=True, slots=True)
class IssueResult:
    """A certificate issued from a CSR: the chain it is sent with, the policy report, the ledger row."""

    issued: IssuedCertificate
    report: CheckedRequest
    record: CertificateRecord
    warnings: tuple[Violation, ...] = ()  # what was not checked (e.g. the CN without an expected CN)

    def chain_pem(self) -> str:
        return self.issued.chain_pem()


@dataclass(frozen=True, slots=True)
class BatchRequest:
    """One request of :meth:`IssuancePipeline.issue_each`: the CSR, the context it is checked under (None: the
    pipeline's), the station it is for."""

    csr: x509.CertificateSigningRequest
    ctx: PolicyContext | None = None
    station: str | None = None


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """What became of one request of a batch: issued (``result``), or refused (``violations``)."""

    index: int
    result: IssueResult | None = None
    violations: tuple[Violation, ...] = ()

    @property
    def ok(self) -> bool:
        return self.result is not None


@dataclass(frozen=True, slots=True)
class SignedCertificate:
    """Step 3's output: a signed certificate with its serial and DER, and the request it was made for."""

    certificate: x509.Certificate
    serial: int
    der: bytes
    request: CheckedRequest


def _pem(der: bytes) -> str:
    """PEM exactly as ``Certificate.public_bytes(Encoding.PEM)`` writes it (64-character lines)."""
    b64 = base64.b64encode(der).decode("ascii")
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(b64[i : i + 64] for i in range(0, len(b64), 64)) + \
        "\n-----END CERTIFICATE-----\n"


def _as_encoded(dt: datetime) -> datetime:
    """A validity date as the certificate carries it and pyca reads it back: UTC, whole seconds."""
    return (dt.astimezone(UTC) if dt.tzinfo is not None else dt.replace(tzinfo=UTC)).replace(microsecond=0)


class IssuancePipeline:
    """One CA issuing certificates of one profile from CSRs (see the module docstring for the steps).

    ``context``: the policy context requests are checked under when a call names none. ``ledger``: where
    records go (``None``: records are made but kept nowhere, for in-memory CAs). ``backdate``: how far
    notBefore lies before ``at`` (clock skew of the requesters; never before the CA's own notBefore).
    ``issuer_name``: the CA's name in the ledger (default: the authority's name).

    Its configuration does not change once made; all it keeps is the shared base builder of the last few
    validities it issued (pyca builders are immutable, so sharing one is safe).
    """

    def __init__(
        self, authority: CertificateAuthority, profile: Profile, *, ledger: Ledger | None = None,
        context: PolicyContext | None = None, validity_days: int | None = None, ocsp_url: str | None = None,
        crl_url: str | None = None, backdate: timedelta = DEFAULT_BACKDATE, issuer_name: str | None = None,
    ) -> None:
        if profile.issuers and authority.profile.name not in profile.issuers:
            raise UsageError(
                f"profile {profile.name} is issued by {', '.join(profile.issuers)}, not by {authority.profile.name}",
                requirement=profile.cite("issuer"),
            )
        if validity_days is not None and validity_days <= 0:
            raise UsageError(f"validity of {profile.name} must be a positive number of days, not {validity_days}")
        if backdate < timedelta(0):
            raise UsageError("notBefore cannot lie after the issuance time (backdate must not be negative)",
                             requirement=profile.cite("not_before"))
        self.authority = authority
        self.profile = profile
        self.ledger = ledger
        self.context = context or PolicyContext()
        self.validity = timedelta(days=validity_days or profile.validity_days)
        self.backdate = backdate
        self.issuer_name = issuer_name or authority.name
        self.template = CertificateTemplate(profile, issuer_certificate=authority.certificate, issuer_key=authority.key,
                                            ocsp_url=ocsp_url, crl_url=crl_url)
        self._sub_cas = authority.sub_cas
        self._root = authority.root
        self._san_from_cn = profile.cn_kind is CnKind.FQDN and profile.allow_san
        self._bases: dict[tuple[datetime, bool], x509.CertificateBuilder] = {}

    def __repr__(self) -> str:
        return f"IssuancePipeline({self.issuer_name!r}, {self.profile.name!r})"

    # -- the steps ------------------------------------------------------------------------------------
    def validate(self, csr: x509.CertificateSigningRequest, ctx: PolicyContext | None = None) -> CheckedRequest:
        """Step 1: the CSR policy under this pipeline's profile (never raises for policy problems)."""
        return check_csr(csr, self.profile, ctx or self.context)

    def validity_at(self, at: datetime) -> tuple[datetime, datetime]:
        """notBefore and notAfter of what is issued at ``at``: from ``backdate`` before ``at`` (never before
        the CA's notBefore) for the pipeline's validity."""
        start = _as_encoded(at) - self.backdate  # whole seconds, as the certificate carries them
        not_before = max(start, self.authority.certificate.not_valid_before_utc)
        return not_before, start + self.validity

    def check_validity(self, at: datetime, *, now: datetime | None = None) -> list[Violation]:
        """:func:`check_validity` for what this pipeline issues at ``at`` (empty: it may issue)."""
        not_before, not_after = self.validity_at(at)
        return check_validity(self.profile, not_before, not_after, self.authority.certificate, at=at, now=now,
                              issuer_name=f"CA {self.issuer_name}")

    def verify_validity(self, at: datetime, *, now: datetime | None = None) -> None:
        """:class:`PolicyError` listing every validity rule what is issued at ``at`` would break."""
        violations = self.check_validity(at, now=now)
        if violations:
            raise PolicyError(f"{self.issuer_name} cannot issue {self.profile.name} certificates at {_day(at)}",
                              violations, hint="nothing was issued")

    def apply_profile(self, request: CheckedRequest, *, at: datetime, serial: int | None = None) -> x509.CertificateBuilder:
        """Step 2: the unsigned certificate for a request that passed the policy (a fresh serial unless given).

        The request gives the subject and the public key; the profile and the CA give the rest. Raises
        :class:`PolicyError` when the validity rules forbid issuing at ``at`` (:meth:`check_validity`)."""
        pub = request.public_key
        if not request.ok or pub is None or request.profile != self.profile.name:
            raise UsageError(f"the request has not passed the {self.profile.name} policy", hint="validate it first")
        rsa_subject = self.template.rsa_subject(pub)
        key = (at, rsa_subject)
        base = self._bases.get(key)
        if base is None:  # one per validity and key family, shared by every certificate of a batch (immutable)
            self.verify_validity(at)
            if len(self._bases) >= 8:
                self._bases.clear()
            not_before, not_after = self.validity_at(at)
            base = self._bases[key] = self.template.base(not_before, not_after, rsa_subject=rsa_subject)
        san: tuple[str, ...] = ()
        if self._san_from_cn:
            cn = name_value(request.subject_name, "CN")
            san = (cn,) if cn else ()
        return self.template.complete(base, request.subject_name, pub, new_serial() if serial is None else serial, san)

    def sign(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        """Step 3: sign with the CA key (pyca's builder; a token-held key signs in the token)."""
        return self.template.sign(builder)

    def record(
        self, signed: Sequence[SignedCertificate], *, at: datetime, station: str | None = None,
        stations: Sequence[str | None] | None = None,
    ) -> list[CertificateRecord]:
        """Step 4: the ledger rows of a batch, added in one transaction (durable when this returns).

        ``station`` tags every row, ``stations`` each row with its own. Raises
        :class:`~ocppsec.pki.errors.DuplicateError` (and records nothing) on a serial clash."""
        if stations is not None and len(stations) != len(signed):
            raise UsageError(f"{len(stations)} stations for {len(signed)} certificates")
        not_before, not_after = (_as_encoded(d) for d in self.validity_at(at))
        issuer, role, is_ca = self.issuer_name, self.profile.name, self.profile.is_ca
        rows = [
            CertificateRecord(
                serial=format(s.serial, "x"), issuer_ca=issuer, role=role, subject=s.request.subject_text,
                not_before=not_before, not_after=not_after, issued_at=at, fingerprint=hashlib.sha256(s.der).hexdigest(),
                pem=_pem(s.der), is_ca=is_ca, station=stations[n] if stations is not None else station,
            )
            for n, s in enumerate(signed)
        ]
        if self.ledger is not None:
            self.ledger.add(rows)
        return rows

    # -- whole runs -------------------------------------------------------------------------------------
    def issue_one(
        self, csr: x509.CertificateSigningRequest, *, at: datetime, ctx: PolicyContext | None = None,
        station: str | None = None, now: datetime | None = None,
    ) -> IssueResult:
        """Validate, sign and record one CSR; :class:`~ocppsec.pki.errors.PolicyError` if it fails the policy."""
        return self.issue_many([csr], at=at, ctx=ctx, station=station, now=now)[0]

    def issue_many(
        self, csrs: Sequence[x509.CertificateSigningRequest], *, at: datetime, ctx: PolicyContext | None = None,
        station: str | None = None, now: datetime | None = None,
    ) -> list[IssueResult]:
        """Issue a batch: every CSR must pass the policy (else PolicyError and nothing is issued); one transaction.

        ``now``: when the certificates reach their holders, if not ``at`` (see :func:`check_validity`)."""
        self.verify_validity(at, now=now)
        checked = [self.validate(csr, ctx) for csr in csrs]
        for n, c in enumerate(checked):
            if not c.ok:
                where = f" (request {n + 1})" if len(checked) > 1 else ""
                raise PolicyError(f"CSR rejected for profile {self.profile.name}{where}", c.violations,
                                  hint="nothing was issued or recorded")
        note = unchecked_identity(self.profile, ctx or self.context)
        return self.issue_checked(checked, at=at, station=station, now=now, warnings=(note,) if note else ())

    def issue_each(
        self, requests: Sequence[BatchRequest], *, at: datetime, now: datetime | None = None, chunk: int = 1000,
        progress: Callable[[int], None] | None = None,
    ) -> list[BatchOutcome]:
        """Issue every request that passes the policy under its own context; the others are refused in the outcome
        (not raised), so one bad CSR of thousands costs only itself. Each chunk of ``chunk`` issued certificates
        is one ledger transaction, committed before the next chunk is signed. ``progress(n)`` is called as ``n``
        more requests are done. The validity rules apply to the whole batch (:class:`PolicyError`, nothing issued)."""
        if chunk < 1:
            raise UsageError("chunk must be at least 1")
        self.verify_validity(at, now=now)
        outcomes: list[BatchOutcome | None] = [None] * len(requests)
        passed: list[tuple[int, CheckedRequest, str | None, tuple[Violation, ...]]] = []
        for n, item in enumerate(requests):
            ctx = item.ctx or self.context
            checked = self.validate(item.csr, ctx)
            if checked.ok:
                note = unchecked_identity(self.profile, ctx)
                passed.append((n, checked, item.station, (note,) if note else ()))
            else:
                outcomes[n] = BatchOutcome(n, None, checked.violations)
                if progress is not None:
                    progress(1)
        for start in range(0, len(passed), chunk):
            part = passed[start:start + chunk]
            results = self.issue_checked([p[1] for p in part], at=at, stations=[p[2] for p in part], now=now)
            for (n, _checked, _station, notes), result in zip(part, results, strict=True):
                outcomes[n] = BatchOutcome(n, replace(result, warnings=notes) if notes else result)
            if progress is not None:
                progress(len(part))
        return [o for o in outcomes if o is not None]

    def issue_checked(
        self, requests: Sequence[CheckedRequest], *, at: datetime, station: str | None = None,
        stations: Sequence[str | None] | None = None, now: datetime | None = None,
        warnings: Sequence[Violation] = (),
    ) -> list[IssueResult]:
        """Steps 2-4 for requests that passed this profile's policy; records are committed before return.

        ``warnings`` are handed back on every result (what the caller did not check)."""
        self.verify_validity(at, now=now)
        notes = tuple(warnings)
        for _attempt in range(SERIAL_ATTEMPTS):
            signed = []
            for request in requests:
                serial = new_serial()
                cert = self.sign(self.apply_profile(request, at=at, serial=serial))
                signed.append(SignedCertificate(cert, serial, cert.public_bytes(Encoding.DER), request))
            try:
                records = self.record(signed, at=at, station=station, stations=stations)
            except DuplicateError:
                continue  # a serial clash: sign again with fresh serials, nothing was recorded
            sub_cas, root = self._sub_cas, self._root
            return [IssueResult(IssuedCertificate(s.certificate, sub_cas, root), s.request, r, notes)
                    for s, r in zip(signed, records, strict=True)]
        raise DuplicateError(f"could not record the batch after {SERIAL_ATTEMPTS} attempts")
