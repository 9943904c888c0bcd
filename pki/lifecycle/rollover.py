"""Root rollover (M05, AdditionalRootCertificateCheck), sans-I/O.

:func:`prepare_rollover` creates the new root and cross-certifies both ways (new-by-old: what a station
with AdditionalRootCertificateCheck accepts, since "the new root MUST be signed by the old root",
M05.FR.09-16; old-by-new: lets peers that already trust only the new root validate chains of the old
one); :func:`install_plan` gives the InstallCertificate request per version; :func:`rollover_dry_run`
names the stations that would lose connectivity once the CSMS serves certificates of the new hierarchy;
:func:`retire_plan` lists the DeleteCertificate of the old root and refuses while stations still lack
the new one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from ocppsec.pki.builder import CertificateRequest, build_certificate
from ocppsec.pki.certmgmt.codecs import codec_for
from ocppsec.pki.certmgmt.model import RootType
from ocppsec.pki.errors import PolicyError, UsageError, Violation
from ocppsec.pki.hashdata import CertificateHashData, compute_hash_data
from ocppsec.pki.hierarchy import CertificateAuthority
from ocppsec.pki.keys import SigningKey
from ocppsec.pki.lifecycle.expiry import InventoryItem
from ocppsec.pki.versions import OcppVersion

__all__ = ["RootRollover", "StationImpact", "install_plan", "prepare_rollover", "retire_plan", "rollover_dry_run",
           "station_impacts"]

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


def install_plan(rollover: RootRollover, version: OcppVersion, *, additional_root_check: bool) -> dict[str, str]:
    """The InstallCertificate request payload for a station of ``version``.

    With AdditionalRootCertificateCheck the station accepts only a root signed by the root it replaces
    (M05.FR.09-16), so it gets the new-by-old certificate; otherwise the self-signed new root.
    """
    cert = rollover.new_by_old if additional_root_check else rollover.new_root
    return codec_for(version).install_certificate_request(RootType.CSMS, rollover.pem(cert))


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
    return station_impacts(rollover.old_root, rollover.identities(), inventory, stations)


def station_impacts(
    old_root: x509.Certificate, new_ids: set[str], inventory: Iterable[InventoryItem], stations: Iterable[str] = (),
) -> list[StationImpact]:
    """Per station: does it hold a root known by ``new_ids`` (:meth:`RootRollover.identities`; empty before the
    new root exists, when no station can hold it), is one on its way, does it hold ``old_root``?"""
    old_ids = {old_root.fingerprint(hashes.SHA256()).hex(),
               ":".join(compute_hash_data(old_root, old_root).canonical())}
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


