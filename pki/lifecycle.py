"""Certificate lifecycle across a fleet: expiry, renewal planning in bounded batches, root rollover.

Sans-I/O: every function takes the records, the inventory entries and ``at``; adapters read the stores.

**Expiry.** :class:`ExpiryPolicy` says, per role, how long before notAfter a certificate needs action
(``renew_before``). Defaults come from the role, never one fixed number: a quarter of the role's
validity capped at the renewal window the spec or practice names (A03.FR.02 "one month" for station
and SECC certificates; a year for roots, whose rollover needs every station to install the new one;
a week for OCSP responders). The hierarchy file may override them (``[lifecycle.renew_before_days]``)
and so may the command line. :func:`find_expiring` covers every certificate of the ledger and of the
per-station inventory (what stations actually hold).

**Renewal.** :func:`plan_renewals` turns due items into actions (trigger a station to send a new CSR,
re-issue a CSMS server certificate, renew a sub-CA, roll a root over); :func:`run_renewals` hands them to a
:class:`RenewalExecutor` — the certificate service of issue 5 plugs in there — in batches of at most
``batch_size``, reporting progress after each item through a :class:`ProgressReporter` and stopping when a
batch fails more than ``max_failures``.

**Root rollover** (M05, AdditionalRootCertificateCheck): :func:`prepare_rollover` creates the new root and
cross-certifies both ways (new-by-old: what a station with AdditionalRootCertificateCheck accepts, since
"the new root MUST be signed by the old root", M05.FR.09-16; old-by-new: lets peers that already trust
only the new root validate chains of the old one); :func:`install_plan` gives the InstallCertificate
requests per version; :func:`rollover_dry_run` names the stations that would lose connectivity once the
CSMS serves certificates of the new hierarchy; :func:`retire_plan` lists the DeleteCertificate of the old root
and refuses while stations still lack the new one.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from ocppsec.pki.builder import CertificateRequest, build_certificate
from ocppsec.pki.errors import PolicyError, UsageError, Violation
from ocppsec.pki.hashdata import CertificateHashData, compute_hash_data
from ocppsec.pki.hierarchy import CertificateAuthority
from ocppsec.pki.keys import SigningKey
from ocppsec.pki.ledger import CertificateRecord
from ocppsec.pki.profiles import PROFILES, Profile
from ocppsec.pki.versions import OcppVersion

__all__ = [
    "Action",
    "ExpiringItem",
    "ExpiryPolicy",
    "InventoryItem",
    "PlanItem",
    "ProgressReporter",
    "RenewalExecutor",
    "RenewalReport",
    "RootRollover",
    "StationImpact",
    "find_expiring",
    "install_plan",
    "load_inventory_file",
    "plan_renewals",
    "prepare_rollover",
    "retire_plan",
    "rollover_dry_run",
    "run_renewals",
]

# Caps on the renewal window per role (the window is min(cap, validity / 4)).
_WINDOW_CAPS: Mapping[str, timedelta] = {
    "charging-station": timedelta(days=30),  # A03.FR.02: renew when it "will expire in one month"
    "secc": timedelta(days=30), "secc-20": timedelta(days=30),  # A03.FR.02 applies to V2G certificates too
    "csms-server-rsa": timedelta(days=30), "csms-server-ecdsa": timedelta(days=30),
    "firmware-signing": timedelta(days=90),  # signed firmware in the field must still verify
    "ocsp-responder": timedelta(days=7),
}
_ROOT_CAP = timedelta(days=365)  # every station must install the new root before the old one expires
_SUB_CA_CAP = timedelta(days=90)
_DEFAULT_CAP = timedelta(days=30)

# Inventory kinds (issue 5) → the role whose policy applies.
_KIND_ROLES: Mapping[str, str] = {
    "charging-station": "charging-station", "combined": "charging-station", "v2g": "secc", "v2g20": "secc-20",
    "csms": "csms-root", "manufacturer": "manufacturer-root", "mo": "mo-root", "oem": "oem-root",
}


@dataclass(frozen=True, slots=True)
class ExpiryPolicy:
    """How long before notAfter each role needs action. ``overrides`` win over the role defaults."""

    overrides: Mapping[str, timedelta] = field(default_factory=dict)

    def renew_before(self, role: str) -> timedelta:
        if role in self.overrides:
            return self.overrides[role]
        profile: Profile | None = PROFILES.get(role)
        if profile is not None and profile.is_root:
            cap = _ROOT_CAP
        elif profile is not None and profile.is_ca:
            cap = _SUB_CA_CAP
        else:
            cap = _WINDOW_CAPS.get(role, _DEFAULT_CAP)
        if profile is None:
            return cap
        return min(cap, timedelta(days=profile.validity_days) / 4)

    @classmethod
    def from_config(cls, data: Mapping[str, Any], extra: Mapping[str, timedelta] | None = None) -> ExpiryPolicy:
        """``[lifecycle.renew_before_days]`` of the hierarchy file (role = days), then ``extra``."""
        table = dict(data.get("lifecycle", {}).get("renew_before_days", {}))
        out: dict[str, timedelta] = {}
        for role, days in table.items():
            try:
                value = float(days)
            except (TypeError, ValueError):
                raise UsageError(f"[lifecycle.renew_before_days] {role} must be a number of days") from None
            if value < 0:
                raise UsageError(f"[lifecycle.renew_before_days] {role} must not be negative")
            out[str(role)] = timedelta(days=value)
        out.update(extra or {})
        return cls(out)


@dataclass(frozen=True, slots=True)
class InventoryItem:
    """What a station holds (from the issue-5 inventory), reduced to what expiry needs."""

    station_id: str
    kind: str
    serial: str
    subject: str | None
    not_after: datetime | None
    state: str = "installed"
    hash_key: str | None = None
    fingerprint: str | None = None


@dataclass(frozen=True, slots=True)
class ExpiringItem:
    source: str  # ledger | inventory
    role: str
    serial: str
    subject: str
    not_after: datetime
    renew_before: timedelta
    remaining: timedelta
    name: str | None = None
    issuer: str | None = None
    station: str | None = None
    is_ca: bool = False

    @property
    def expired(self) -> bool:
        return self.remaining <= timedelta(0)

    @property
    def due(self) -> bool:
        return self.remaining <= self.renew_before

    def to_json(self) -> dict[str, object]:
        return {
            "source": self.source, "role": self.role, "name": self.name, "serial": self.serial,
            "subject": self.subject, "issuer": self.issuer, "station": self.station,
            "not_after": self.not_after.isoformat(), "remaining_days": round(self.remaining.total_seconds() / 86400, 2),
            "renew_before_days": round(self.renew_before.total_seconds() / 86400, 2),
            "due": self.due, "expired": self.expired,
        }


def find_expiring(
    records: Iterable[CertificateRecord], inventory: Iterable[InventoryItem] = (), *, at: datetime,
    policy: ExpiryPolicy | None = None, within: timedelta | None = None,
) -> list[ExpiringItem]:
    """Valid certificates that need action: inside their role's window, or (``within``) expiring before ``at + within``.

    Inventory rows already described by a ledger row (same serial) add the station but not a duplicate;
    inventory rows in state ``deleted`` or ``rejected`` are ignored. Sorted by notAfter.
    """
    pol = policy or ExpiryPolicy()
    out: dict[tuple[str, str], ExpiringItem] = {}

    def wanted(remaining: timedelta, window: timedelta) -> bool:
        return remaining <= within if within is not None else remaining <= window

    for r in records:
        if r.status != "valid":
            continue
        window = pol.renew_before(r.role)
        remaining = r.not_after - at
        if wanted(remaining, window):
            out[(r.serial, r.issuer_ca)] = ExpiringItem("ledger", r.role, r.serial, r.subject, r.not_after, window,
                                                        remaining, r.name, r.issuer_ca, r.station, r.is_ca)
    by_serial = {serial: key for key in out for serial in (key[0],)}
    for e in inventory:
        if e.state in ("deleted", "rejected") or e.not_after is None:
            continue
        role = _KIND_ROLES.get(e.kind, e.kind)
        window = pol.renew_before(role)
        remaining = e.not_after - at
        if not wanted(remaining, window):
            continue
        known = by_serial.get(e.serial)
        if known is not None:
            item = out[known]
            if item.station is None:
                out[known] = ExpiringItem(item.source, item.role, item.serial, item.subject, item.not_after,
                                          item.renew_before, item.remaining, item.name, item.issuer, e.station_id,
                                          item.is_ca)
            continue
        key = (e.serial, f"station:{e.station_id}")
        out[key] = ExpiringItem("inventory", role, e.serial, e.subject or "", e.not_after, window, remaining,
                                station=e.station_id, is_ca=role.endswith("-root"))
    return sorted(out.values(), key=lambda i: (i.not_after, i.serial))


# -- renewal -----------------------------------------------------------------------------------------
class Action(enum.Enum):
    TRIGGER_STATION_CSR = "trigger-station-csr"  # TriggerMessage SignChargingStationCertificate (A03)
    TRIGGER_V2G_CSR = "trigger-v2g-csr"  # TriggerMessage SignV2GCertificate / SignV2G20Certificate
    REISSUE_SERVER = "reissue-csms-server"  # the CSMS's own TLS certificate
    REISSUE_SIGNING = "reissue-firmware-signing"
    RENEW_SUB_CA = "renew-sub-ca"
    ROLLOVER_ROOT = "rollover-root"
    RENEW_RESPONDER = "renew-ocsp-responder"
    REVIEW = "review"  # nothing automatic: a person decides (contract, OEM ... certificates we do not renew)


_ROLE_ACTIONS: Mapping[str, Action] = {
    "charging-station": Action.TRIGGER_STATION_CSR, "secc": Action.TRIGGER_V2G_CSR,
    "secc-20": Action.TRIGGER_V2G_CSR, "csms-server-rsa": Action.REISSUE_SERVER,
    "csms-server-ecdsa": Action.REISSUE_SERVER, "firmware-signing": Action.REISSUE_SIGNING,
    "ocsp-responder": Action.RENEW_RESPONDER,
}


@dataclass(frozen=True, slots=True)
class PlanItem:
    action: Action
    item: ExpiringItem

    @property
    def station(self) -> str | None:
        return self.item.station

    def to_json(self) -> dict[str, object]:
        return {"action": self.action.value, **self.item.to_json()}


def plan_renewals(items: Iterable[ExpiringItem]) -> list[PlanItem]:
    """One action per due certificate: expired and soonest first; roots and sub-CAs before what they issue."""
    plan: list[PlanItem] = []
    for item in items:
        if not item.due:
            continue
        profile = PROFILES.get(item.role)
        if profile is not None and profile.is_root:
            action = Action.ROLLOVER_ROOT
        elif item.is_ca or (profile is not None and profile.is_ca):
            action = Action.RENEW_SUB_CA
        else:
            action = _ROLE_ACTIONS.get(item.role, Action.REVIEW)
        if action in (Action.TRIGGER_STATION_CSR, Action.TRIGGER_V2G_CSR) and item.station is None:
            action = Action.REVIEW  # a station certificate we cannot attribute to a station
        plan.append(PlanItem(action, item))
    order = {Action.ROLLOVER_ROOT: 0, Action.RENEW_SUB_CA: 1}
    return sorted(plan, key=lambda p: (order.get(p.action, 2), p.item.not_after))


@dataclass(frozen=True, slots=True)
class RenewalOutcome:
    ok: bool
    detail: str = ""


class RenewalExecutor(Protocol):
    """Carries out one plan item (the certificate service triggers the station, the CA re-issues ...)."""

    def renew(self, item: PlanItem) -> RenewalOutcome: ...


class ProgressReporter(Protocol):
    def __call__(self, done: int, total: int, item: PlanItem, outcome: RenewalOutcome) -> None: ...


@dataclass(frozen=True, slots=True)
class RenewalReport:
    done: tuple[tuple[PlanItem, RenewalOutcome], ...]
    skipped: tuple[PlanItem, ...]
    batches: int
    stopped_early: bool

    @property
    def failed(self) -> tuple[tuple[PlanItem, RenewalOutcome], ...]:
        return tuple(d for d in self.done if not d[1].ok)

    def to_json(self) -> dict[str, object]:
        return {
            "done": len(self.done), "failed": len(self.failed), "skipped": len(self.skipped), "batches": self.batches,
            "stopped_early": self.stopped_early,
            "failures": [{"serial": p.item.serial, "station": p.station, "detail": o.detail} for p, o in self.failed],
        }


def run_renewals(
    plan: Sequence[PlanItem], executor: RenewalExecutor, *, batch_size: int = 50, max_batches: int | None = None,
    max_failures: int | None = None, progress: ProgressReporter | None = None,
    actions: Iterable[Action] | None = None, between_batches: Callable[[int], None] | None = None,
) -> RenewalReport:
    """Run ``plan`` through ``executor`` in batches of at most ``batch_size``.

    ``max_batches`` bounds one run (the rest is ``skipped``, for the next run); after a batch with more
    than ``max_failures`` failures the run stops. ``actions`` restricts which actions run (e.g. only
    station triggers); ``between_batches(n)`` is called after batch ``n`` (an adapter may pause there).
    An exception from the executor counts as a failure of that item.
    """
    if batch_size < 1:
        raise UsageError("batch size must be at least 1")
    allowed = set(actions) if actions is not None else None
    todo = [p for p in plan if allowed is None or p.action in allowed]
    skipped = [p for p in plan if allowed is not None and p.action not in allowed]
    done: list[tuple[PlanItem, RenewalOutcome]] = []
    batches = 0
    stopped = False
    total = len(todo)
    for start in range(0, total, batch_size):
        if max_batches is not None and batches >= max_batches:
            skipped += todo[start:]
            stopped = True
            break
        failures = 0
        for item in todo[start:start + batch_size]:
            try:
                outcome = executor.renew(item)
            except Exception as exc:  # one station's failure must not end the fleet run
                outcome = RenewalOutcome(False, f"{type(exc).__name__}: {exc}")
            failures += not outcome.ok
            done.append((item, outcome))
            if progress is not None:
                progress(len(done), total, item, outcome)
        batches += 1
        if between_batches is not None:
            between_batches(batches)
        if max_failures is not None and failures > max_failures:
            skipped += todo[start + batch_size:]
            stopped = bool(todo[start + batch_size:])
            break
    return RenewalReport(tuple(done), tuple(skipped), batches, stopped)


# -- root rollover ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RootRollover:
    old_root: x509.Certificate
    new_root: x509.Certificate  # self-signed
    new_by_old: x509.Certificate  # new root's subject and key, issued by the old root (AdditionalRootCertificateCheck)
    old_by_new: x509.Certificate  # old root's subject and key, issued by the new root

    def pem(self, cert: x509.Certificate) -> str:
        return cert.public_bytes(Encoding.PEM).decode("ascii")

    def identities(self) -> set[str]:
        """SHA-256 fingerprints and hash-data keys under which a station may report holding the new root."""
        out = {c.fingerprint(hashes.SHA256()).hex() for c in (self.new_root, self.new_by_old)}
        out.add(":".join(compute_hash_data(self.new_root, self.new_root).canonical()))
        out.add(":".join(compute_hash_data(self.new_by_old, self.old_root).canonical()))
        return out


def prepare_rollover(
    old: CertificateAuthority, new_key: SigningKey, *, at: datetime, subject: x509.Name | None = None,
    validity_days: int | None = None, serials: tuple[int, int, int] | None = None,
) -> RootRollover:
    """Create the new root (same profile, new key) and the two cross-certificates."""
    profile = old.profile
    if not profile.is_root:
        raise UsageError(f"{old.name} is not a root CA", hint="roll over a root; sub-CAs are simply renewed")
    new_subject = subject or old.certificate.subject
    if new_subject == old.certificate.subject:
        raise UsageError("the new root needs a subject different from the old one",
                         hint="e.g. add a generation to the CN ('... Root CA G2'), so both can be installed at once")
    s = serials or (None, None, None)
    days = validity_days or profile.validity_days
    new_root = build_certificate(CertificateRequest(profile, new_subject, new_key.public_key(), at, days, s[0]),
                                 issuer_certificate=None, issuer_key=new_key)
    # A cross-certificate must not outlive its issuer.
    cross_days = max(1, min(days, (old.certificate.not_valid_after_utc - at).days))
    new_by_old = build_certificate(CertificateRequest(profile, new_subject, new_key.public_key(), at, cross_days, s[1]),
                                   issuer_certificate=old.certificate, issuer_key=old.key)
    old_by_new = build_certificate(
        CertificateRequest(profile, old.certificate.subject, old.key.public_key(), at,
                           max(1, (old.certificate.not_valid_after_utc - at).days), s[2]),
        issuer_certificate=new_root, issuer_key=new_key,
    )
    return RootRollover(old.certificate, new_root, new_by_old, old_by_new)


def _install_type(version: OcppVersion) -> str:
    from ocppsec.pki import ocsp_v16, ocsp_v21, ocsp_v201  # the per-version names

    return {OcppVersion.V16: ocsp_v16.CSMS_ROOT_TYPE, OcppVersion.V201: ocsp_v201.CSMS_ROOT_TYPE,
            OcppVersion.V21: ocsp_v21.CSMS_ROOT_TYPE}[version]


def install_plan(rollover: RootRollover, version: OcppVersion, *, additional_root_check: bool) -> dict[str, str]:
    """The InstallCertificate request payload for a station of ``version``.

    With AdditionalRootCertificateCheck the station accepts only a root signed by the root it replaces
    (M05.FR.09-16), so it gets the new-by-old certificate; otherwise the self-signed new root.
    """
    cert = rollover.new_by_old if additional_root_check else rollover.new_root
    return {"certificateType": _install_type(version), "certificate": rollover.pem(cert)}


@dataclass(frozen=True, slots=True)
class StationImpact:
    station_id: str
    has_new_root: bool
    pending: bool  # an InstallCertificate was sent, no answer yet
    has_old_root: bool

    @property
    def would_lose_connectivity(self) -> bool:
        return not self.has_new_root

    def to_json(self) -> dict[str, object]:
        return {"station": self.station_id, "has_new_root": self.has_new_root, "pending": self.pending,
                "has_old_root": self.has_old_root, "would_lose_connectivity": self.would_lose_connectivity}


_CSMS_KINDS = {"csms", "CSMSRootCertificate", "CentralSystemRootCertificate"}


def _keys_of(e: InventoryItem) -> set[str]:
    return {k for k in (e.fingerprint, e.hash_key) if k}


def rollover_dry_run(
    rollover: RootRollover, inventory: Iterable[InventoryItem], stations: Iterable[str] = (),
) -> list[StationImpact]:
    """Per station: does it hold the new root? ``stations`` adds stations with no inventory rows at all."""
    new_ids = rollover.identities()
    old_ids = {rollover.old_root.fingerprint(hashes.SHA256()).hex(),
               ":".join(compute_hash_data(rollover.old_root, rollover.old_root).canonical())}
    per: dict[str, list[InventoryItem]] = {s: [] for s in stations}
    for e in inventory:
        per.setdefault(e.station_id, [])
        if e.kind in _CSMS_KINDS:
            per[e.station_id].append(e)
    out = []
    for sid, entries in sorted(per.items()):
        installed = [e for e in entries if e.state == "installed"]
        has_new = any(_keys_of(e) & new_ids for e in installed)
        pending = any(_keys_of(e) & new_ids for e in entries if e.state == "sent")
        has_old = any(_keys_of(e) & old_ids for e in installed)
        out.append(StationImpact(sid, has_new, pending, has_old))
    return out


def retire_plan(
    rollover: RootRollover, impacts: Sequence[StationImpact], *, force: bool = False,
) -> dict[str, Any]:
    """The DeleteCertificate request that removes the old root from stations, once all hold the new root."""
    lacking = [i.station_id for i in impacts if i.would_lose_connectivity]
    if lacking and not force:
        raise PolicyError(
            f"{len(lacking)} station(s) do not hold the new root yet",
            [Violation("M05.FR.09", f"station {s} lacks the new CSMS root") for s in lacking[:20]],
            hint="install it (InstallCertificate) and confirm with GetInstalledCertificateIds first",
        )
    hd: CertificateHashData = compute_hash_data(rollover.old_root, rollover.old_root)
    return {"certificateHashData": hd.to_ocpp(), "stations": [i.station_id for i in impacts if i.has_old_root]}


# -- adapter: the issue-5 inventory store ----------------------------------------------------------------
def load_inventory_file(path: Path | str) -> list[InventoryItem]:
    """Every row of a station inventory (:mod:`ocppsec.pki.certmgmt.inventory`), read through its store.

    ``path``: the SQLite file (``DIR/inventory.db``; a missing file is an empty inventory) or a
    ``postgresql://`` URL (the inventory shared by several CSMS nodes) — what
    :func:`~ocppsec.pki.certmgmt.inventory.inventory_location` answers for a PKI directory.
    """
    from ocppsec.pki.certmgmt.inventory import open_inventory

    if not (isinstance(path, str) and path.startswith(("postgresql://", "postgres://"))) and not Path(path).is_file():
        return []
    store = open_inventory(path)
    try:
        entries = store.all()
    finally:
        store.close()
    return [InventoryItem(e.station_id, e.kind, e.serial, e.subject, e.not_after, e.state, e.hash_key, e.fingerprint)
            for e in entries]
