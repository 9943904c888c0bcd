"""The campaign engine: runs the pure campaigns of :mod:`ocppsec.pki.lifecycle.campaign` through a gateway.

One :class:`CampaignEngine` per gateway. It listens to the gateway (sessions opened and closed, the
stations' security events) and to its CSR signing (SignCertificate answered, CertificateSigned answered),
and on every tick (and whenever something happened) feeds the rows their signals, asks
:func:`~ocppsec.pki.lifecycle.campaign.next_commands` what to send and sends it with the gateway's own
calls (:mod:`..calls`): never seen by the upstream. Rows that changed are written to the campaign record
in batches in a worker thread; :meth:`CampaignEngine.start` takes up the record's running campaigns
(a restarted gateway resumes where it stopped).

Renewal targets come from the certificates the stations present at the handshake
(:class:`.presented.PresentedCertificates`, kept in the inventory) and, for V2G certificates, from the
inventory rows of what our CA issued, confirmed by what the connected stations report when the campaign
starts (GetInstalledCertificateIds V2GCertificateChain, reconciled into the inventory; 1.6 has none). Rollover
and retirement take the new and old root from the campaign's detail (``certificate``,
``cross_certificate``, ``old_root``); a CSMS root goes to a station as the new-by-old cross certificate
when its AdditionalRootCertificateCheck is true (asked with GetVariables / 1.6 GetConfiguration unless
``root_check`` says ``cross`` or ``self-signed``), else as the self-signed new root.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from ocppsec.pki.certmgmt.codecs import codec_for
from ocppsec.pki.certmgmt.inventory import InventoryState, InventoryStore
from ocppsec.pki.certmgmt.model import (
    EVENT_DISCARDED_RENEWED,
    CertificateUse,
    InstalledType,
    Outcome,
    RootType,
    SignRequest,
    Status,
    Trigger,
    TriggerStatus,
)
from ocppsec.pki.certmgmt.service import CertificateSignedOrder
from ocppsec.pki.errors import InputError, OcppsecError, PolicyError, UsageError, Violation
from ocppsec.pki.events.model import SecurityEvent
from ocppsec.pki.hashdata import CertificateHashData, compute_hash_data
from ocppsec.pki.lifecycle.campaign import (
    IN_FLIGHT,
    Campaign,
    CampaignKind,
    CampaignOptions,
    CampaignStatus,
    Command,
    CommandAction,
    RowState,
    Signal,
    StationProgress,
    apply,
    expire,
    new_campaign,
    next_commands,
    progress,
    resume_rows,
    skip,
)
from ocppsec.pki.lifecycle.campaign_sql import SqlCampaignStore
from ocppsec.pki.pem import load_certificates
from ocppsec.pki.versions import OcppVersion
from ocppsec.security_profiles.gateway.calls import CallAnswer, StationCalls
from ocppsec.security_profiles.gateway.campaigns._variables import QUERIES
from ocppsec.security_profiles.gateway.campaigns.presented import PresentedCertificate, PresentedCertificates
from ocppsec.security_profiles.server import StationConnection

__all__ = ["ROOT_CHECKS", "CampaignEngine", "rollover_detail"]

_log = logging.getLogger("ocppsec.security_profiles.gateway.campaigns")
ROOT_CHECKS = ("ask", "cross", "self-signed")
_TRIGGERS = {CertificateUse.CHARGING_STATION: Trigger.SIGN_CHARGING_STATION, CertificateUse.V2G: Trigger.SIGN_V2G,
             CertificateUse.V2G20: Trigger.SIGN_V2G20, CertificateUse.COMBINED: Trigger.SIGN_COMBINED}
_V2G_KINDS = {CertificateUse.V2G: "v2g", CertificateUse.V2G20: "v2g20"}


def _pem(cert: x509.Certificate) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding

    return cert.public_bytes(Encoding.PEM).decode("ascii")


def _one_certificate(pem: object, what: str) -> x509.Certificate:
    if not isinstance(pem, str):
        raise InputError(f"{what} must be a PEM certificate")
    certs = load_certificates(pem, what=what, strict=True)
    if len(certs) != 1:
        raise InputError(f"{what} must hold exactly one certificate, not {len(certs)}")
    return certs[0]


def rollover_detail(data: Mapping[str, Any]) -> dict[str, Any]:
    """The rollover / retirement detail from the admin request: ``certificate`` (the new root, PEM),
    optional ``cross_certificate`` (new-by-old) and ``old_root`` (PEM), ``root_check`` (ask | cross |
    self-signed). Checked here: the cross certificate carries the new root's subject and key and is
    signed by the old root (what AdditionalRootCertificateCheck requires, M05.FR.09)."""
    new = _one_certificate(data.get("certificate"), "certificate")
    out: dict[str, Any] = {"certificate": _pem(new), "root_check": data.get("root_check", "ask")}
    if out["root_check"] not in ROOT_CHECKS:
        raise InputError(f"root_check must be one of {', '.join(ROOT_CHECKS)}")
    old = _one_certificate(data["old_root"], "old_root") if data.get("old_root") else None
    if old is not None:
        out["old_root"] = _pem(old)
    if data.get("cross_certificate"):
        cross = _one_certificate(data["cross_certificate"], "cross_certificate")
        if cross.subject != new.subject or cross.public_key() != new.public_key():
            raise InputError("cross_certificate does not carry the new root's subject and key")
        if old is None:
            raise InputError("a cross_certificate needs the old_root it is signed by")
        try:
            cross.verify_directly_issued_by(old)
        except Exception:  # InvalidSignature, ValueError, TypeError
            raise InputError("cross_certificate is not signed by old_root (M05.FR.09)") from None
        out["cross_certificate"] = _pem(cross)
    return out


class _Material:
    """The certificates of a rollover / retirement campaign, parsed once."""

    def __init__(self, detail: Mapping[str, Any]) -> None:
        self.new = x509.load_pem_x509_certificate(detail["certificate"].encode())
        self.cross = (x509.load_pem_x509_certificate(detail["cross_certificate"].encode())
                      if detail.get("cross_certificate") else None)
        self.old = x509.load_pem_x509_certificate(detail["old_root"].encode()) if detail.get("old_root") else None
        self.root_check: str = detail.get("root_check", "ask")
        self._keys: dict[str, set[tuple[str, str, str, str]]] = {}

    def new_root_keys(self, algorithm: str) -> set[tuple[str, str, str, str]]:
        """Hash data under which a station may list the new root (self-signed or cross-signed)."""
        keys = self._keys.get(algorithm)
        if keys is None:
            keys = {compute_hash_data(self.new, self.new, algorithm).canonical()}
            if self.cross is not None and self.old is not None:  # listed with its issuer's (the old root's) key
                keys.add(compute_hash_data(self.cross, self.old, algorithm).canonical())
            self._keys[algorithm] = keys
        return keys

    def old_root_hash(self) -> CertificateHashData:
        if self.old is None:
            raise UsageError("retiring a root needs the old root (old_root)")
        return compute_hash_data(self.old, self.old)


class _Moving:
    """The rows of one campaign that a step can move, kept as the rows change: the pending ones (in the
    order they became pending) and the active ones (a call out, or a reconnect awaited), and how many are
    not finished. A step looks at these instead of walking every row of the campaign (at 10,000 stations
    five walks per step cost the gateway 1.4 ms per renewal, benchmarks/lifecycle.py)."""

    __slots__ = ("active", "open", "pending")

    def __init__(self, rows: Sequence[StationProgress]) -> None:
        self.pending: dict[str, StationProgress] = {}
        self.active: dict[str, StationProgress] = {}
        self.open = 0
        for row in rows:
            self.put(None, row)

    def put(self, old: StationProgress | None, new: StationProgress) -> None:
        if old is not None:
            self.pending.pop(old.station_id, None)
            self.active.pop(old.station_id, None)
            self.open -= not old.terminal
        if new.state is RowState.PENDING:
            self.pending[new.station_id] = new
        elif not new.terminal:
            self.active[new.station_id] = new
        self.open += not new.terminal

    def due(self, room: int, online: Mapping[str, object], at: datetime) -> list[StationProgress]:
        """The first ``room`` pending rows whose station is connected and whose back-off is over."""
        out: list[StationProgress] = []
        if room <= 0:
            return out
        for row in self.pending.values():
            if row.station_id in online and (row.next_at is None or at >= row.next_at):
                out.append(row)
                if len(out) == room:
                    break
        return out


class CampaignEngine:
    """Runs campaigns through ``gateway`` (see the module docstring)."""

    def __init__(self, gateway: Any, store: SqlCampaignStore, *, presented: PresentedCertificates | None = None,
                 inventory: InventoryStore | None = None, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 tick: float = 0.5) -> None:
        calls = getattr(gateway, "calls", None)
        if not isinstance(calls, StationCalls):
            raise UsageError("campaigns need a gateway made with calls=StationCalls()")
        self.gateway = gateway
        self.calls: StationCalls = calls
        self.store = store
        self.presented = presented
        self.inventory = inventory
        self.clock = clock
        self.tick = tick
        self.connected: dict[str, StationConnection] = {}
        self.counters: dict[str, int] = {"started": 0, "done": 0, "failed": 0, "skipped": 0, "calls": 0}
        self._campaigns: dict[str, Campaign] = {}
        self._rows: dict[str, dict[str, StationProgress]] = {}
        self._moving: dict[str, _Moving] = {}
        self._material: dict[str, _Material] = {}
        self._dirty: dict[str, set[str]] = {}
        self._finished: dict[str, asyncio.Event] = {}
        self._wake = asyncio.Event()
        self._finished_counts: dict[tuple[str, str], int] = {}
        self.peak_in_flight: dict[str, int] = {}  # per campaign: the most rows between a call and its answer
        self._change = asyncio.Event()  # set (and replaced) on every row change: what wait_row awaits
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._flush_lock = asyncio.Lock()
        gateway.listeners.append(self)
        gateway.campaign_engine = self
        signing = getattr(gateway, "csr_signing", None)
        if signing is not None:
            signing.listeners.append(self)

    # -- life cycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        """Take up the record's running campaigns and start the loop."""
        self._loop = asyncio.get_running_loop()
        at = self.clock()
        for campaign in await asyncio.to_thread(self.store.campaigns):
            if campaign.status is CampaignStatus.DONE:
                continue
            rows = await asyncio.to_thread(self.store.rows, campaign.id)
            resumed = resume_rows(rows, at=at, options=campaign.options)
            self._adopt(campaign, resumed)
            self._dirty[campaign.id] = {r.station_id for r, old in zip(resumed, rows, strict=True) if r != old}
        self._runner = asyncio.create_task(self._run())

    async def close(self) -> None:
        """Stop the loop and the calls it made, and write what changed."""
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
            self._runner = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._finish_complete(self.clock())
        await self._flush()

    def _adopt(self, campaign: Campaign, rows: Sequence[StationProgress]) -> None:
        self._campaigns[campaign.id] = campaign
        self._rows[campaign.id] = {r.station_id: r for r in rows}
        self._moving[campaign.id] = _Moving(list(self._rows[campaign.id].values()))
        self._dirty.setdefault(campaign.id, set())
        self._finished.setdefault(campaign.id, asyncio.Event())
        if campaign.kind is not CampaignKind.RENEW:
            self._material[campaign.id] = _Material(campaign.detail)

    # -- the operator's API (admin routes, tests) -----------------------------------------------------
    async def start_campaign(self, kind: CampaignKind, options: CampaignOptions,
                             detail: Mapping[str, Any] | None = None, *, force: bool = False) -> dict[str, Any]:
        """Create and start a campaign; with ``options.dry_run`` only report what it would send."""
        at = self.clock()
        material_detail = rollover_detail(detail or {}) if kind is not CampaignKind.RENEW else {}
        targets = await self._targets(kind, options, at=at)
        if kind is CampaignKind.RETIRE:
            self._check_retire(material_detail, targets, force=force)
        if options.dry_run:
            return self._dry_run(kind, options, material_detail, targets, at=at)
        if kind is CampaignKind.RENEW and self.gateway.csr_signing is None:
            raise UsageError("a renewal campaign needs the gateway to answer SignCertificate itself (--sign-csrs)",
                             hint="otherwise the stations' CSRs would go to the CSMS")
        campaign = new_campaign(kind, options, at=at, detail=material_detail)
        rows = [StationProgress(sid, updated_at=at) for sid in targets]
        await asyncio.to_thread(self.store.create, campaign, rows)
        self._adopt(campaign, rows)
        self.counters["started"] += 1
        _log.info("campaign %s started: %s, %d stations", campaign.id, kind.value, len(rows))
        self._wake.set()
        return self.describe(campaign.id, rows=False)

    async def renew_station(self, station_id: str, options: CampaignOptions,
                            detail: Mapping[str, Any] | None = None) -> str:
        """The id of a renewal campaign running for ``station_id``: one it is in already (not finished), or a
        new one for it alone (whatever its certificate's expiry; onboarding)."""
        for cid, _row in self._active_rows(station_id, CampaignKind.RENEW):
            return cid
        at = self.clock()
        options = replace(options, stations=(station_id,), force=True, dry_run=False)
        campaign = new_campaign(CampaignKind.RENEW, options, at=at, detail=dict(detail or {}))
        rows = [StationProgress(station_id, updated_at=at)]
        await asyncio.to_thread(self.store.create, campaign, rows)
        self._adopt(campaign, rows)
        self.counters["started"] += 1
        self._wake.set()
        return campaign.id

    async def stop(self, campaign_id: str) -> dict[str, Any]:
        return await self._set_status(campaign_id, CampaignStatus.STOPPED)

    async def resume(self, campaign_id: str) -> dict[str, Any]:
        return await self._set_status(campaign_id, CampaignStatus.RUNNING)

    async def _set_status(self, campaign_id: str, status: CampaignStatus) -> dict[str, Any]:
        campaign = self._get(campaign_id)
        if campaign.status is CampaignStatus.DONE:
            raise UsageError(f"campaign {campaign_id} is done")
        campaign = replace(campaign, status=status, updated_at=self.clock())
        self._campaigns[campaign_id] = campaign
        await asyncio.to_thread(self.store.set_status, campaign)
        self._wake.set()
        return self.describe(campaign_id, rows=False)

    def _get(self, campaign_id: str) -> Campaign:
        campaign = self._campaigns.get(campaign_id)
        if campaign is None:
            from ocppsec.pki.errors import NotFoundError

            raise NotFoundError(f"no campaign {campaign_id!r}")
        return campaign

    def summaries(self) -> list[dict[str, Any]]:
        return [self.describe(cid, rows=False) for cid in self._campaigns]

    def describe(self, campaign_id: str, *, rows: bool = True) -> dict[str, Any]:
        campaign = self._get(campaign_id)
        table = self._rows[campaign_id]
        out = campaign.to_json()
        out["progress"] = progress(table.values()).to_json()
        if rows:
            out["stations"] = [r.to_json() for r in sorted(table.values(), key=lambda r: r.station_id)]
        return out

    def rows(self, campaign_id: str) -> list[StationProgress]:
        self._get(campaign_id)
        return sorted(self._rows[campaign_id].values(), key=lambda r: r.station_id)

    async def wait_finished(self, campaign_id: str, timeout: float) -> dict[str, Any]:
        """Until every row of the campaign is done, failed or skipped (or ``timeout`` seconds)."""
        self._get(campaign_id)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._finished[campaign_id].wait(), timeout)
        return self.describe(campaign_id, rows=False)

    async def wait_row(self, campaign_id: str, station_id: str, states: frozenset[RowState] | set[RowState],
                       timeout: float) -> StationProgress:
        """The station's row once it is in one of ``states`` (TimeoutError after ``timeout`` seconds)."""
        self._get(campaign_id)

        async def until() -> StationProgress:
            while True:
                row = self._rows[campaign_id].get(station_id)
                if row is not None and row.state in states:
                    return row
                await self._change.wait()

        return await asyncio.wait_for(until(), timeout)

    def finished_counts(self) -> dict[tuple[str, str], int]:
        """(kind, done | failed | skipped) -> rows that ended in this process, for metrics."""
        return dict(self._finished_counts)

    def state_counts(self) -> dict[tuple[str, str, str], int]:
        """(campaign, kind, state) -> stations, for metrics."""
        out: dict[tuple[str, str, str], int] = {}
        for cid, table in self._rows.items():
            kind = self._campaigns[cid].kind.value
            for row in table.values():
                key = (cid, kind, row.state.value)
                out[key] = out.get(key, 0) + 1
        return out

    # -- selection ---------------------------------------------------------------------------------
    async def _targets(self, kind: CampaignKind, options: CampaignOptions, *, at: datetime) -> list[str]:
        if kind is not CampaignKind.RENEW:
            listed = list(options.stations) or await asyncio.to_thread(self._registered_profile_stations)
            return sorted(set(listed))
        entries = await asyncio.to_thread(self.inventory.all) if self.inventory is not None else []
        window = timedelta(days=options.within_days)
        due: dict[str, datetime | None] = {}
        if options.use in (CertificateUse.CHARGING_STATION, CertificateUse.COMBINED):
            known = self.presented.known(entries) if self.presented is not None else {}
            for sid, facts in known.items():
                due[sid] = facts.not_after
        else:
            await self._survey_v2g(options)
            entries = await asyncio.to_thread(self.inventory.all) if self.inventory is not None else []
            wanted = _V2G_KINDS[options.use]
            for e in entries:
                if e.kind == wanted and e.state is InventoryState.INSTALLED and e.not_after is not None:
                    prior = due.get(e.station_id)
                    due[e.station_id] = e.not_after if prior is None else max(prior, e.not_after)
        chosen = {s: due.get(s) for s in options.stations} if options.stations else due
        return sorted(s for s, not_after in chosen.items()
                      if options.force or (not_after is not None and not_after - at <= window))

    async def _survey_v2g(self, options: CampaignOptions) -> None:
        """Ask the connected 2.0.1 / 2.1 stations (those listed, if any) which V2G certificate chains they hold
        (GetInstalledCertificateIds V2GCertificateChain) and reconcile the answers into the inventory, so the
        selection sees what the stations report (at most ``max_in_flight`` at a time, 10 s each at most)."""
        signing = self.gateway.csr_signing
        service = getattr(signing, "service", None)
        if service is None or getattr(service, "inventory", None) is None:
            return
        stations = [st for sid, st in self.connected.items()
                    if st.version is not OcppVersion.V16 and (not options.stations or sid in options.stations)]
        limit = asyncio.Semaphore(options.max_in_flight)
        types = [InstalledType.V2G_CHAIN]
        short = replace(options, timeout=min(options.timeout, 10.0))

        async def one(station: StationConnection) -> None:
            async with limit:
                codec = codec_for(station.version)
                answer = await self._call(station, "GetInstalledCertificateIds", codec.get_installed_ids_request(types),
                                          short)
                if answer.payload is None:
                    return
                try:
                    _status, listed = codec.parse_get_installed_ids_response(answer.payload, types)
                except (InputError, ValueError, KeyError, TypeError):
                    _log.info("%s: unreadable GetInstalledCertificateIds answer", station.identity)
                    return
                try:
                    await asyncio.to_thread(service.installed_ids_result, station.identity, listed, at=self.clock(),
                                            kinds=[t.value for t in types])
                except OcppsecError as exc:
                    _log.warning("%s: reported V2G certificates not recorded: %s", station.identity, exc.message)

        await asyncio.gather(*(one(st) for st in stations))

    def _registered_profile_stations(self) -> list[str]:
        return [r.identity for r in self.gateway.registry.list() if r.profile in (2, 3)]

    def _check_retire(self, detail: Mapping[str, Any], targets: Sequence[str], *, force: bool) -> None:
        """DeleteCertificate of the old root is refused while a station lacks the new one (unless forced)."""
        material = _Material(detail)
        material.old_root_hash()  # the old root is required
        new_fp = material.new.fingerprint(hashes.SHA256())
        holders: set[str] = set()
        for cid, campaign in self._campaigns.items():
            if campaign.kind is not CampaignKind.ROLLOVER:
                continue
            if self._material[cid].new.fingerprint(hashes.SHA256()) != new_fp:
                continue
            holders |= {sid for sid, r in self._rows[cid].items() if r.state is RowState.DONE}
        lacking = sorted(set(targets) - holders)
        if lacking and not force:
            raise PolicyError(f"{len(lacking)} station(s) are not confirmed to hold the new root",
                              [Violation("M05.FR.09", f"station {s} lacks the new root") for s in lacking[:20]],
                              hint="run the rollover campaign until every station is done, or force")

    def _dry_run(self, kind: CampaignKind, options: CampaignOptions, detail: Mapping[str, Any], targets: Sequence[str],
                 *, at: datetime) -> dict[str, Any]:
        per_station = []
        material = _Material(detail) if kind is not CampaignKind.RENEW else None
        for sid in targets:
            station = self.connected.get(sid)
            item: dict[str, Any] = {"station": sid, "connected": station is not None}
            missing: list[str] = []
            if station is None:
                missing.append("not connected (waits until it connects)")
            else:
                item["version"] = station.version.value
                codec = codec_for(station.version)
                try:
                    if kind is CampaignKind.RENEW:
                        item["send"] = {codec.trigger_action: codec.trigger_request(_TRIGGERS[options.use])}
                    elif kind is CampaignKind.ROLLOVER:
                        assert material is not None
                        choice = {"ask": "ask AdditionalRootCertificateCheck, then new-by-old or self-signed",
                                  "cross": "new-by-old", "self-signed": "self-signed"}[material.root_check]
                        item["send"] = {"InstallCertificate": {"certificateType": codec.roots[options.root_type],
                                                               "certificate": choice if material.cross else "self-signed"}}
                    else:
                        assert material is not None
                        item["send"] = {"DeleteCertificate": codec.delete_certificate_request(material.old_root_hash())}
                except (UsageError, KeyError) as exc:
                    missing.append(exc.message if isinstance(exc, UsageError) else f"OCPP {station.version.value} "
                                   f"has no {options.root_type.value} root type")
            if kind is CampaignKind.RENEW and (self.gateway.csr_signing is None):
                missing.append("the gateway does not sign CSRs (--sign-csrs)")
            if kind is CampaignKind.RENEW and self.presented is not None:
                facts = self.presented.latest.get(sid)
                if facts is not None:
                    item["not_after"] = facts.not_after.isoformat()
            item["missing"] = missing
            per_station.append(item)
        return {"dry_run": True, "kind": kind.value, "options": options.to_json(), "at": at.isoformat(),
                "stations": per_station, "total": len(per_station),
                "ready": sum(1 for i in per_station if not i["missing"])}

    # -- listeners (the gateway calls these on the loop; CSR signing in a worker thread) ---------------
    def opened(self, station: StationConnection) -> None:
        self.connected[station.identity] = station
        facts = station.context.get("certificate")
        if isinstance(facts, PresentedCertificate):
            for cid, row in self._active_rows(station.identity, CampaignKind.RENEW):
                if row.expected is not None and row.expected == facts.fingerprint:
                    self._signal(cid, row, Signal.RECONNECTED_NEW)
        self._wake.set()

    def closed(self, station: StationConnection) -> None:
        if self.connected.get(station.identity) is station:
            del self.connected[station.identity]

    def station_event(self, station: StationConnection, event: SecurityEvent) -> None:
        if event.canonical_type == EVENT_DISCARDED_RENEWED:
            for cid, row in self._active_rows(station.identity, CampaignKind.RENEW):
                self._signal(cid, row, Signal.DISCARDED, reason="the station discarded the renewed certificate "
                             "(DiscardedRenewedClientCertificate, A02.FR.28-29)")

    def sign_answered(self, station_id: str, request: SignRequest | None, outcome: Outcome,
                      order: CertificateSignedOrder | None) -> None:
        if self._loop is not None and request is not None:
            self._loop.call_soon_threadsafe(self._on_sign, station_id, request.use, outcome, order)

    def certificate_signed_answered(self, order: CertificateSignedOrder, outcome: Outcome) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._on_certificate_signed, order, outcome)

    def _on_sign(self, station_id: str, use: CertificateUse, outcome: Outcome, order: CertificateSignedOrder | None) -> None:
        for cid, row in self._active_rows(station_id, CampaignKind.RENEW):
            if not _same_use(self._campaigns[cid].options.use, use):
                continue
            if not outcome.accepted or order is None:
                self._signal(cid, row, Signal.CSR_REJECTED, reason=f"CSR rejected: {outcome.additional_info or ''}"[:255])
                continue
            fingerprint = order.chain.leaf.fingerprint(hashes.SHA256()).hex()
            row = self._signal(cid, row, Signal.CSR)
            self._signal(cid, row, Signal.CERT_SENT, expected=fingerprint)

    def _on_certificate_signed(self, order: CertificateSignedOrder, outcome: Outcome) -> None:
        fingerprint = order.chain.leaf.fingerprint(hashes.SHA256()).hex()
        for cid, row in self._active_rows(order.station_id, CampaignKind.RENEW):
            if row.expected != fingerprint:
                continue
            if outcome.accepted:
                self._signal(cid, row, Signal.CERT_ACCEPTED)
            else:
                self._signal(cid, row, Signal.CERT_REFUSED,
                             reason=f"CertificateSigned {outcome.status.value}: {outcome.additional_info or ''}"[:255])

    def _active_rows(self, station_id: str, kind: CampaignKind) -> list[tuple[str, StationProgress]]:
        out = []
        for cid, campaign in self._campaigns.items():
            if campaign.kind is kind and campaign.status is not CampaignStatus.DONE:
                row = self._rows[cid].get(station_id)
                if row is not None and not row.terminal:
                    out.append((cid, row))
        return out

    def _signal(self, campaign_id: str, row: StationProgress, signal: Signal, *, reason: str | None = None,
                expected: str | None = None) -> StationProgress:
        campaign = self._campaigns[campaign_id]
        new = apply(row, signal, kind=campaign.kind, options=campaign.options, at=self.clock(), reason=reason,
                    expected=expected)
        self._put(campaign_id, row, new)
        return new

    def _put(self, campaign_id: str, old: StationProgress, new: StationProgress) -> None:
        if new == old:
            return
        self._rows[campaign_id][new.station_id] = new
        self._moving[campaign_id].put(old, new)
        self._dirty[campaign_id].add(new.station_id)
        self._change.set()
        self._change = asyncio.Event()
        if new.terminal and not old.terminal:
            self.counters[new.state.value] = self.counters.get(new.state.value, 0) + 1
            key = (self._campaigns[campaign_id].kind.value, new.state.value)
            self._finished_counts[key] = self._finished_counts.get(key, 0) + 1
            if new.state is RowState.FAILED:
                _log.warning("campaign %s: %s failed: %s", campaign_id, new.station_id, new.reason)
        self._wake.set()

    # -- the loop ----------------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.tick)
            self._wake.clear()
            started = time.perf_counter()
            try:
                self._step()
            except Exception:  # one bad tick must not end every campaign
                _log.exception("campaign tick failed")
            stepped = time.perf_counter() - started
            try:
                await self._flush()
            except Exception:
                _log.exception("writing the campaign record failed")
            # coalesce bursts of signals into one step; a step walks every row (about 5 ms for 10,000 on this
            # machine), so the pause grows with it: the steps take at most a fifth of the event loop
            await asyncio.sleep(max(0.02, 4 * stepped))

    def _step(self) -> None:
        """Time out what is overdue and send what is due: the kernel's ``expire`` and ``next_commands`` over
        the rows that can move (:class:`_Moving`), which give what they would give over every row."""
        at = self.clock()
        for cid, campaign in list(self._campaigns.items()):
            if campaign.status is CampaignStatus.DONE:
                continue
            table = self._rows[cid]
            moving = self._moving[cid]
            for sid in expire(list(moving.active.values()), at=at):
                self._signal(cid, table[sid], Signal.TIMEOUT, reason=f"timed out in {table[sid].state.value}")
            if campaign.status is CampaignStatus.RUNNING:
                active = list(moving.active.values())
                flying = sum(1 for r in active if r.state in IN_FLIGHT)
                due = moving.due(campaign.options.max_in_flight - flying, self.connected, at)
                commands = next_commands(campaign.kind, [*active, *due], campaign.options,
                                         connected={r.station_id for r in due}, at=at)
                for command in commands:
                    station = self.connected[command.station_id]
                    row = table[command.station_id]
                    self._put(cid, row, apply(row, Signal.SENT, kind=campaign.kind, options=campaign.options, at=at))
                    task = asyncio.create_task(self._execute(cid, command, station))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                self.peak_in_flight[cid] = max(self.peak_in_flight.get(cid, 0), flying + len(commands))
        self._finish_complete(at)

    def _finish_complete(self, at: datetime) -> None:
        """Mark done the campaigns whose every row is done, failed or skipped."""
        for cid, campaign in list(self._campaigns.items()):
            table = self._rows[cid]
            if campaign.status is not CampaignStatus.DONE and self._moving[cid].open == 0:
                self._campaigns[cid] = replace(campaign, status=CampaignStatus.DONE, updated_at=at)
                self._dirty[cid].add("")  # the flush writes the status
                self._finished[cid].set()
                _log.info("campaign %s done: %s", cid, progress(table.values()).to_json())

    async def _flush(self) -> None:
        async with self._flush_lock:
            for cid, dirty in list(self._dirty.items()):
                if not dirty:
                    continue
                table = self._rows[cid]
                taken = set(dirty)
                rows = [table[s] for s in sorted(taken) if s in table]  # "": only the status changed
                dirty.clear()
                try:
                    await asyncio.to_thread(self.store.save_rows, cid, rows)
                    campaign = self._campaigns[cid]
                    if campaign.status is CampaignStatus.DONE:
                        await asyncio.to_thread(self.store.set_status, campaign)
                except OcppsecError as exc:
                    _log.warning("campaign %s: record not written (retried): %s", cid, exc.message)
                    dirty.update(taken)
                except BaseException:  # cancelled (close() writes them), or a fault of ours: written next time
                    dirty.update(taken)
                    raise

    # -- commands ----------------------------------------------------------------------------------
    async def _call(self, station: StationConnection, action: str, payload: dict[str, Any],
                    options: CampaignOptions) -> CallAnswer:
        self.counters["calls"] += 1
        return await self.calls.call(station, action, payload, timeout=options.timeout)

    async def _execute(self, campaign_id: str, command: Command, station: StationConnection) -> None:
        campaign = self._campaigns[campaign_id]
        try:
            if command.action is CommandAction.TRIGGER:
                await self._trigger(campaign, station)
            elif command.action is CommandAction.INSTALL:
                await self._install(campaign, station)
            elif command.action is CommandAction.DELETE:
                await self._delete(campaign, station)
        except UsageError as exc:  # this station's version cannot do it (no such trigger or root type)
            row = self._rows[campaign_id][station.identity]
            self._put(campaign_id, row, skip(row, exc.message, at=self.clock()))
        except Exception as exc:
            _log.exception("campaign %s: %s on %s failed", campaign_id, command.action.value, station.identity)
            self._result(campaign, station.identity, Signal.TIMEOUT, f"{type(exc).__name__}: {exc}"[:255])

    def _result(self, campaign: Campaign, station_id: str, signal: Signal, reason: str | None = None) -> None:
        row = self._rows[campaign.id].get(station_id)
        if row is not None:
            self._signal(campaign.id, row, signal, reason=reason)

    async def _trigger(self, campaign: Campaign, station: StationConnection) -> None:
        codec = codec_for(station.version)
        payload = codec.trigger_request(_TRIGGERS[campaign.options.use])
        answer = await self._call(station, codec.trigger_action, payload, campaign.options)
        if answer.timed_out or not answer.ok:
            self._result(campaign, station.identity, Signal.TIMEOUT if answer.timed_out else Signal.TRIGGER_REFUSED,
                         answer.describe())
            return
        assert answer.payload is not None
        status = answer.payload.get("status")
        if status == TriggerStatus.ACCEPTED.value:
            self._result(campaign, station.identity, Signal.TRIGGER_ACCEPTED)
        elif status == TriggerStatus.NOT_IMPLEMENTED.value:
            self._result(campaign, station.identity, Signal.TRIGGER_UNSUPPORTED, f"{codec.trigger_action} NotImplemented")
        else:
            self._result(campaign, station.identity, Signal.TRIGGER_REFUSED, f"{codec.trigger_action} {status}")

    async def _root_check(self, station: StationConnection, material: _Material, options: CampaignOptions) -> bool:
        if material.cross is None or material.root_check == "self-signed":
            return False
        if material.root_check == "cross":
            return True
        query = QUERIES[station.version]
        name = "AdditionalRootCertificateCheck"
        answer = await self._call(station, query.action, query.request(name), options)
        return bool(answer.ok and answer.payload is not None and query.boolean(name, answer.payload))

    async def _install(self, campaign: Campaign, station: StationConnection) -> None:
        material = self._material[campaign.id]
        options = campaign.options
        codec = codec_for(station.version)
        root_type = options.root_type
        use_cross = root_type is RootType.CSMS and await self._root_check(station, material, options)
        cert = material.cross if use_cross and material.cross is not None else material.new
        payload = codec.install_certificate_request(root_type, _pem(cert))
        answer = await self._call(station, "InstallCertificate", payload, options)
        if answer.timed_out:
            self._result(campaign, station.identity, Signal.TIMEOUT, answer.describe())
            return
        try:
            outcome = codec.parse_status(answer.payload) if answer.payload is not None else None
        except InputError as exc:
            outcome = Outcome(Status.FAILED, None, exc.message)
        if outcome is None or not outcome.accepted:
            why = answer.describe() if outcome is None else \
                f"InstallCertificate {outcome.status.value} {outcome.reason_code or ''} {outcome.additional_info or ''}"
            self._result(campaign, station.identity, Signal.INSTALL_REFUSED, why.strip()[:255])
            return
        self._result(campaign, station.identity, Signal.INSTALL_ACCEPTED)
        installed_type = InstalledType.for_root(root_type)
        answer = await self._call(station, "GetInstalledCertificateIds",
                                  codec.get_installed_ids_request([installed_type]), options)
        if answer.timed_out or answer.payload is None:
            self._result(campaign, station.identity, Signal.TIMEOUT if answer.timed_out else Signal.NOT_CONFIRMED,
                         answer.describe())
            return
        try:
            _status, listed = codec.parse_get_installed_ids_response(answer.payload, [installed_type])
        except (InputError, ValueError, KeyError, TypeError) as exc:
            self._result(campaign, station.identity, Signal.NOT_CONFIRMED, f"unreadable GetInstalledCertificateIds: {exc}"[:255])
            return
        found = any(e.hash_data.canonical() in material.new_root_keys(e.hash_data.hash_algorithm) for e in listed)
        self._result(campaign, station.identity, Signal.CONFIRMED if found else Signal.NOT_CONFIRMED,
                     None if found else "GetInstalledCertificateIds does not list the new root")

    async def _delete(self, campaign: Campaign, station: StationConnection) -> None:
        material = self._material[campaign.id]
        codec = codec_for(station.version)
        answer = await self._call(station, "DeleteCertificate", codec.delete_certificate_request(material.old_root_hash()),
                                  campaign.options)
        if answer.timed_out or answer.payload is None:
            self._result(campaign, station.identity, Signal.TIMEOUT if answer.timed_out else Signal.DELETE_REFUSED,
                         answer.describe())
            return
        status = answer.payload.get("status")
        if status in (Status.ACCEPTED.value, Status.NOT_FOUND.value):  # NotFound: it holds the old root no more
            self._result(campaign, station.identity, Signal.DELETE_ACCEPTED)
        else:
            self._result(campaign, station.identity, Signal.DELETE_REFUSED, f"DeleteCertificate {status}")


def _same_use(wanted: CertificateUse, got: CertificateUse) -> bool:
    client = (CertificateUse.CHARGING_STATION, CertificateUse.COMBINED)
    return wanted == got or (wanted in client and got in client)
