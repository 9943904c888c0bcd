"""Expiry across a fleet: which certificates of the ledger and of the station inventory need action (sans-I/O).

:class:`ExpiryPolicy` says, per role, how long before notAfter a certificate needs action
(``renew_before``). Defaults come from the role, never one fixed number: a quarter of the role's
validity capped at the renewal window the spec or practice names (A03.FR.02 "one month" for station
and SECC certificates; a year for roots, whose rollover needs every station to install the new one;
a week for OCSP responders). The hierarchy file may override them (``[lifecycle.renew_before_days]``)
and so may the command line. :func:`find_expiring` covers every certificate of the ledger and of the
per-station inventory (what stations actually hold). Every function takes ``at``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ocppsec.pki.errors import UsageError
from ocppsec.pki.ledger import CertificateRecord
from ocppsec.pki.profiles import PROFILES, Profile

__all__ = ["ExpiringItem", "ExpiryPolicy", "InventoryItem", "find_expiring"]

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

# Inventory kinds → the role whose policy applies.
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
    """What a station holds (from the station inventory), reduced to what expiry needs."""

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
        if r.status != "valid" or r.superseded_by is not None or r.retired_at is not None:
            continue  # revoked, or renewed already (the new generation is what needs watching)
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


