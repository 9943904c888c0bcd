"""The on-disk PKI: a directory with the ledger, CA certificates and (encrypted) key files.

Layout of ``DIR``::

    DIR/ledger.db              SQLite ledger (every issued certificate)
    DIR/ledger.url             instead of ledger.db: the postgresql:// URL of a ledger shared by CSMS nodes (0600)
    DIR/hierarchy.toml         the configuration the directory was built from
    DIR/certs/<name>.pem       CA and named certificates
    DIR/keys/<name>.key.pem    PKCS#8 keys, mode 0600, encrypted unless built with --no-encrypt

``init`` is resumable: every entity is written key first (atomically), then recorded in the ledger in
one transaction, so a kill leaves either a complete entity or none (an orphan key file is overwritten on
the next run). Run again on an existing directory it keeps what is there, builds what the configuration
adds, and refuses a configuration that contradicts what was built (another CSO name, key type, subject...)
and a passphrase that does not open the keys held (:class:`InitReport` says what was kept and built).
Issuance from CSRs goes through an :class:`~ocppsec.pki.issuance.IssuancePipeline` per CA and profile
(:meth:`PkiDirectory.pipeline`), which records each certificate before returning it.

Lifecycle (the ledger's generations, :mod:`ocppsec.pki.ledger`): :meth:`PkiDirectory.renew` gives a sub-CA
or a named certificate (CSMS server, firmware signing) a new key and certificate under the current
generation of its issuer; :meth:`PkiDirectory.rollover` replaces a root by a new one with the two
cross-certificates of M05 (:func:`~ocppsec.pki.lifecycle.rollover.prepare_rollover`);
:meth:`PkiDirectory.cross_sign` certifies one CA's key under another; :meth:`PkiDirectory.retire` takes a
superseded generation out of service. New keys are written 0600 and encrypted with the directory's
passphrase before the ledger records them; the old generation keeps its key and name (``NAME@SERIAL``)
until it is retired, and ``NAME`` (``certs/NAME.pem``, :meth:`PkiDirectory.chain_of`) is the new one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from ocppsec.pki.builder import CertificateRequest, build_certificate, new_serial
from ocppsec.pki.csr import PolicyContext
from ocppsec.pki.errors import DuplicateError, PolicyError, UsageError, Violation
from ocppsec.pki.hierarchy import (
    CertificateAuthority,
    HierarchyConfig,
    Plan,
    PlannedEntity,
    make_root,
    request_for,
)
from ocppsec.pki.issuance import DEFAULT_BACKDATE, IssuancePipeline, IssueResult, check_validity
from ocppsec.pki.keys import KeySpec, LocalKey, PrivateKey, SigningKey, generate_key, key_spec_of
from ocppsec.pki.keys.files import atomic_write, load_key_file, write_key_file
from ocppsec.pki.ledger import CertificateRecord, CertificateStatus, Ledger, generation_name, lineage, record_for
from ocppsec.pki.ledger_sql import open_ledger
from ocppsec.pki.profiles import PROFILES, CnKind, Profile, get_profile
from ocppsec.pki.storage import Dialect, parse_url

__all__ = ["InitReport", "IssueResult", "PkiDirectory", "Renewal", "Rollover", "RolloverPreview", "compare_plans",
           "default_leaf_profile", "open_signing_key"]

LEDGER_FILE = "ledger.db"
LEDGER_URL_FILE = "ledger.url"
CONFIG_FILE = "hierarchy.toml"


def open_signing_key(key_ref: str, base: Path, passphrase: bytes | None) -> SigningKey:
    """Open the key a ledger row points at: ``file:<relative path>`` or a ``pkcs11:`` URI."""
    if key_ref.startswith("pkcs11:"):
        import importlib

        backend = importlib.import_module("ocppsec.pki.keys.pkcs11")  # needs python-pkcs11 (extra "hsm")
        key: SigningKey = backend.open_pkcs11_key(key_ref)
        return key
    if key_ref.startswith("file:"):
        return load_key_file(base / key_ref[5:], passphrase)
    raise UsageError(f"unknown key reference {key_ref!r} in the ledger")


def _open_dir_ledger(root: Path) -> Ledger:
    """``DIR/ledger.url`` names a shared ledger; otherwise the SQLite file ``DIR/ledger.db``."""
    url_file = root / LEDGER_URL_FILE
    if url_file.is_file():
        return open_ledger(url_file.read_text().strip())
    return open_ledger(root / LEDGER_FILE)


def _require_shared_ledger(url: str) -> None:
    """``ledger_url`` must name a PostgreSQL database (a SQLite ledger is ``DIR/ledger.db`` itself)."""
    if parse_url(url, what="ledger").dialect is not Dialect.POSTGRES:
        raise UsageError(f"not a ledger URL: {url!r}", hint="use postgresql://user@host/database")


def default_leaf_profile(ca_profile: Profile) -> Profile:
    """The end-entity profile a CA issues by default (stations for the CSMS root, SECC for CPO Sub-CA 2...)."""
    preferred = ("charging-station", "secc", "secc-20", "contract", "contract-20", "oem-provisioning",
                 "oem-provisioning-20", "cps-leaf", "cps-leaf-20", "firmware-signing")
    for name in preferred:
        if ca_profile.name in PROFILES[name].issuers:
            return PROFILES[name]
    raise UsageError(
        f"CA profile {ca_profile.name} issues no end-entity certificates directly",
        hint="name the profile with --profile",
    )


@dataclass(frozen=True, slots=True)
class InitReport:
    """What :meth:`PkiDirectory.init` found and did: the entities kept as they were, and those it built."""

    kept: tuple[str, ...] = ()
    built: tuple[str, ...] = ()
    existed: bool = False  # the directory held a hierarchy already


@dataclass(frozen=True, slots=True)
class Renewal:
    """A renewed CA or named certificate: the old generation (renamed ``NAME@SERIAL``) and the new one."""

    old: CertificateRecord
    new: CertificateRecord


@dataclass(frozen=True, slots=True)
class Rollover:
    """A rolled-over root: the old generation, the new root and the two cross-certificates (M05)."""

    old: CertificateRecord
    new: CertificateRecord
    new_by_old: CertificateRecord  # the new root's key under the old root: what AdditionalRootCertificateCheck wants
    old_by_new: CertificateRecord

    def root_rollover(self) -> Any:
        """The :class:`~ocppsec.pki.lifecycle.rollover.RootRollover` of these certificates (install and retire plans)."""
        from ocppsec.pki.lifecycle.rollover import RootRollover

        return RootRollover(self.old.certificate(), self.new.certificate(), self.new_by_old.certificate(),
                            self.old_by_new.certificate())


@dataclass(frozen=True, slots=True)
class RolloverPreview:
    """What :meth:`PkiDirectory.rollover` would do, computed without a key or a write (``--dry-run``)."""

    root: CertificateRecord
    alias: str  # the name the old root would keep
    new_subject: x509.Name
    new_not_after: datetime
    cross_not_after: datetime  # of the new root's certificate under the old one: the old root's notAfter at most
    renew_after: tuple[CertificateRecord, ...]  # what the old root issued that the directory holds keys for
    stations: tuple[Any, ...]  # StationImpact per station (none can hold a root not made yet)

    def to_json(self) -> dict[str, object]:
        return {"root": self.root.name, "old_name": self.alias, "new_subject": self.new_subject.rfc4514_string(),
                "new_not_after": self.new_not_after.isoformat(), "cross_not_after": self.cross_not_after.isoformat(),
                "renew_after": [r.name for r in self.renew_after], "stations": [i.to_json() for i in self.stations]}


def _entity_fields(e: PlannedEntity) -> dict[str, object]:
    return {"profile": e.profile.name, "issuer": e.issuer, "subject": dict(e.subject), "key": e.key.value,
            "validity_days": e.validity_days, "ocsp_url": e.ocsp_url, "crl_url": e.crl_url, "san_dns": list(e.san_dns)}


def compare_plans(built: Plan, given: Plan) -> tuple[list[str], list[str]]:
    """(conflicts, additions) of a configuration ``given`` for a directory built from ``built``.

    A conflict is a [network] value or an entity that differs, or an entity of ``built`` missing from
    ``given``; an addition is an entity only ``given`` has (built on top of what is there)."""
    conflicts: list[str] = []
    for key in sorted(set(built.network) | set(given.network)):
        have, want = built.network.get(key), given.network.get(key)
        if have != want:
            conflicts.append(f"network.{key} is {have!r} in the directory, {want!r} given")
    theirs = {e.name: e for e in given}
    for e in built:
        other = theirs.pop(e.name, None)
        if other is None:
            conflicts.append(f"{e.name} is in the directory but not in the configuration given")
            continue
        mine, yours = _entity_fields(e), _entity_fields(other)
        for field_name, value in mine.items():
            if yours[field_name] != value:
                conflicts.append(f"{e.name}: {field_name} is {value!r} in the directory, {yours[field_name]!r} given")
    return conflicts, list(theirs)


def _start(at: datetime) -> datetime:
    """notBefore of what is made at ``at``: :data:`DEFAULT_BACKDATE` earlier, in whole seconds (as encoded)."""
    return at.replace(microsecond=0) - DEFAULT_BACKDATE


def _generation_cn(cn: str) -> str:
    """The CN of a root's next generation: ``... G2`` after ``...``, ``... G3`` after ``... G2``."""
    head, _, tail = cn.rpartition(" G")
    if head and tail.isdigit():
        return f"{head} G{int(tail) + 1}"
    return f"{cn} G2"


def _san_of(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        return tuple(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName))
    except x509.ExtensionNotFound:
        return ()


def _urls_of(cert: x509.Certificate) -> tuple[str | None, str | None]:
    ocsp_url = crl_url = None
    try:
        for d in cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value:
            if d.access_method == AuthorityInformationAccessOID.OCSP and isinstance(d.access_location,
                                                                                   x509.UniformResourceIdentifier):
                ocsp_url = d.access_location.value
    except x509.ExtensionNotFound:
        pass
    try:
        for dp in cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value:
            for n in dp.full_name or ():
                if isinstance(n, x509.UniformResourceIdentifier):
                    crl_url = n.value
    except x509.ExtensionNotFound:
        pass
    return ocsp_url, crl_url


class PkiDirectory:
    """A PKI directory opened for use. Keys are loaded lazily with the passphrase given at open."""

    def __init__(self, path: Path, config: HierarchyConfig, ledger: Ledger, passphrase: bytes | None) -> None:
        self.path = path
        self.config = config
        self.ledger = ledger
        self._passphrase = passphrase
        self._cas: dict[str, CertificateAuthority] = {}
        self.init_report = InitReport()

    # -- building -------------------------------------------------------------------------------
    @classmethod
    def configuration(
        cls, path: Path | str, text: bytes | None = None, *, what: str = "configuration", iso15118_20: bool = False,
        **overrides: str | None,
    ) -> HierarchyConfig:
        """The configuration to :meth:`init` ``path`` with: ``text`` (a TOML file's bytes), else the one the directory
        was built from (``DIR/hierarchy.toml``), else the built-in one; ``iso15118_20`` turns the ISO 15118-20
        twins on; ``overrides`` replace [network] values (``cso_name``, ``csms_fqdn``)."""
        from ocppsec.pki.hierarchy import default_config_text

        stored = Path(path) / CONFIG_FILE
        if text is None and stored.is_file():
            text, what = stored.read_bytes(), str(stored)
        elif text is None:
            text, what = default_config_text().encode(), "the built-in configuration"
        if iso15118_20:
            text = text.replace(b"[iso15118_20]\nenabled = false", b"[iso15118_20]\nenabled = true")
        return HierarchyConfig.from_bytes(text, what=what, **overrides)

    @classmethod
    def init(
        cls, path: Path | str, config: HierarchyConfig, *, passphrase: bytes | None, at: datetime,
        ca_keys: Mapping[str, str] | None = None, ledger_url: str | None = None,
    ) -> PkiDirectory:
        """Build (or complete) every CA and certificate of ``config`` in ``path``.

        ``ca_keys`` maps entity names to existing ``pkcs11:`` key URIs to use instead of new key files.
        ``ledger_url``: a ``postgresql://`` URL to keep the ledger in (recorded in ``DIR/ledger.url``).
        Every certificate's notBefore lies :data:`~ocppsec.pki.issuance.DEFAULT_BACKDATE` before ``at``.

        On a directory built already: ``config`` must agree with what was built (:func:`compare_plans`;
        entities it adds are built, and the stored configuration becomes ``config``); ``passphrase`` must open
        the keys held; a ``ca_keys`` entry for an entity built already must be its key. Otherwise
        :class:`UsageError` listing every conflict, and nothing is written. :attr:`init_report` says
        what was kept and what was built.
        """
        root = Path(path)
        plan = config.plan()  # validate before touching the disk
        external = dict(ca_keys or {})
        config_path = root / CONFIG_FILE
        existed = config_path.is_file()
        if existed:
            stored = HierarchyConfig.from_bytes(config_path.read_bytes(), what=str(config_path))
            conflicts, added = compare_plans(stored.plan(), plan)
            if conflicts:
                network = [c for c in conflicts if c.startswith("network.")]
                shown = network or conflicts[:6]
                rest = len(conflicts) - len(shown)
                more = (f" (so {rest} entities differ too)" if network else f" (and {rest} more)") if rest else ""
                raise UsageError(f"{root} was built with another configuration: " + "; ".join(shown) + more,
                                 hint="nothing was changed; run without options to complete it, or build elsewhere")
        else:
            added = []
        root.mkdir(parents=True, exist_ok=True)
        (root / "certs").mkdir(exist_ok=True)
        (root / "keys").mkdir(mode=0o700, exist_ok=True)
        os.chmod(root / "keys", 0o700)
        if ledger_url is not None:
            _require_shared_ledger(ledger_url)
            url_file = root / LEDGER_URL_FILE
            if existed and url_file.is_file() and url_file.read_text().strip() != ledger_url:
                raise UsageError(f"{root} keeps its ledger elsewhere ({LEDGER_URL_FILE})",
                                 hint="nothing was changed; a directory's ledger does not move")
            atomic_write(url_file, ledger_url.encode() + b"\n", 0o600)
        ledger = _open_dir_ledger(root)
        try:
            records = ledger.all()
            for name, uri in external.items():
                rec = ledger.get_named(name)
                if rec is not None and rec.key_ref != uri:
                    raise UsageError(f"{name} was built already with the key {rec.key_ref}, not {uri}",
                                     hint="nothing was changed; --ca-key applies to entities still to build")
            held = [r.key_ref for r in records if r.key_ref and r.key_ref.startswith("file:") and r.retired_at is None]
            if held:
                # prove the passphrase on a key already held before writing anything: a wrong one raises
                # WrongPassphraseError with nothing new in the directory (and not only when resuming)
                open_signing_key(held[0], root, passphrase)
        except BaseException:
            ledger.close()
            raise
        if not existed or added:
            atomic_write(config_path, config.to_toml().encode(), 0o644)
        pki = cls(root, HierarchyConfig.from_bytes(config_path.read_bytes(), what=str(config_path)), ledger, passphrase)
        plan = pki.config.plan()
        for folder in ("keys", "certs"):  # temporaries of writes cut short by a kill
            for stale in (root / folder).glob(".*.tmp"):
                stale.unlink(missing_ok=True)
        kept, built = [], []
        for entity in plan:
            if ledger.get_named(entity.name) is not None:
                kept.append(entity.name)
                continue
            pki._build_entity(entity, at, external.get(entity.name))
            built.append(entity.name)
        pki.init_report = InitReport(tuple(kept), tuple(built), existed)
        return pki

    def _build_entity(self, e: PlannedEntity, at: datetime, key_uri: str | None) -> None:
        parent = self.ca(e.issuer) if e.issuer is not None else None  # opens the issuer's key before writing one
        not_before = _start(at)
        if parent is not None:
            not_before = max(not_before, parent.certificate.not_valid_before_utc)
            violations = check_validity(e.profile, not_before, not_before + timedelta(days=e.validity_days),
                                        parent.certificate, at=at, issuer_name=f"CA {e.issuer}")
            if violations:
                raise PolicyError(f"cannot build {e.name} under {e.issuer}", violations,
                                  hint=f"shorten validity_days of {e.name}, or renew {e.issuer} first")
        if key_uri is not None:
            key: SigningKey = open_signing_key(key_uri, self.path, None)
            key_ref = key_uri
        else:
            private = generate_key(e.key)
            rel = f"keys/{e.name}.key.pem"
            write_key_file(self.path / rel, private, self._passphrase)
            key = LocalKey(private, e.name)
            key_ref = "file:" + rel
        for _attempt in range(3):
            serial = new_serial()
            if parent is None:
                ca = make_root(e, key, not_before, serial)
                cert = ca.certificate
                issuer_name = e.name
            else:
                cert = parent.issue(request_for(e, key, not_before, serial)).certificate
                issuer_name = parent.name
            record = record_for(cert, issuer_ca=issuer_name, role=e.profile.name, issued_at=at, name=e.name,
                                key_ref=key_ref)
            atomic_write(self.path / "certs" / f"{e.name}.pem", cert.public_bytes(Encoding.PEM), 0o644)
            try:
                self.ledger.add([record])
            except DuplicateError:
                if self.ledger.get_named(e.name) is not None:
                    raise
                continue  # serial clash (astronomically unlikely): new serial
            return
        raise DuplicateError(f"could not find a free serial for {e.name}")

    @classmethod
    def open(cls, path: Path | str, passphrase: bytes | None = None, ledger_url: str | None = None) -> PkiDirectory:
        """Open an existing directory; ``ledger_url`` overrides where its ledger lives (else ``DIR/ledger.url``)."""
        root = Path(path)
        if ledger_url is not None:
            _require_shared_ledger(ledger_url)
            config = HierarchyConfig.from_bytes((root / CONFIG_FILE).read_bytes(), what=str(root / CONFIG_FILE))
            return cls(root, config, open_ledger(ledger_url), passphrase)
        if not (root / LEDGER_FILE).is_file() and not (root / LEDGER_URL_FILE).is_file():
            raise UsageError(f"{root} is not an ocppsec PKI directory (no {LEDGER_FILE})",
                             hint=f"create one with `ocppsec pki init {root}`")
        config = HierarchyConfig.from_bytes((root / CONFIG_FILE).read_bytes(), what=str(root / CONFIG_FILE))
        return cls(root, config, _open_dir_ledger(root), passphrase)

    def close(self) -> None:
        self.ledger.close()

    # -- CAs --------------------------------------------------------------------------------------
    def ca(self, name: str) -> CertificateAuthority:
        """The CA called ``name``, its key opened (wrong passphrase → WrongPassphraseError)."""
        if name in self._cas:
            return self._cas[name]
        rec = self.ledger.get_named(name)
        if rec is None or not rec.is_ca:
            cas = [r.name for r in self.ledger.all() if r.is_ca and r.name]
            raise UsageError(f"no CA named {name!r} in {self.path}", hint="CAs: " + ", ".join(str(c) for c in cas))
        if rec.key_ref is None:
            raise UsageError(f"the key of CA {name} is not held by this PKI directory")
        if rec.retired_at is not None:
            raise UsageError(f"CA {name} was retired on {rec.retired_at:%Y-%m-%d}: its key is gone",
                             hint=f"the current generation is {lineage(name)}")
        key = open_signing_key(rec.key_ref, self.path, self._passphrase)
        cert = rec.certificate()
        profile = get_profile(rec.role)
        if rec.issuer_ca == name:
            ca = CertificateAuthority(name, profile, cert, key)
        else:
            parent = self.ca(rec.issuer_ca)
            ca = parent.child(name, profile, cert, key)
        self._cas[name] = ca
        return ca

    def ca_certificate(self, name: str) -> x509.Certificate:
        rec = self.ledger.get_named(name)
        if rec is None:
            raise UsageError(f"no certificate named {name!r} in {self.path}")
        return rec.certificate()

    def chain_of(self, name: str) -> list[x509.Certificate]:
        """The named certificate followed by its issuers up to (including) the root."""
        out: list[x509.Certificate] = []
        current = self.ledger.get_named(name)
        while current is not None:
            out.append(current.certificate())
            if current.name is not None and current.issuer_ca == current.name:
                break
            current = self.ledger.get_named(current.issuer_ca)
        return out

    def policy_context(self, **overrides: str | None) -> PolicyContext:
        net = self.config.network
        return PolicyContext(cso_name=overrides.get("cso_name") or net.get("cso_name"),
                             expected_cn=overrides.get("expected_cn"))

    # -- issuing ----------------------------------------------------------------------------------
    def pipeline(
        self, ca: str, profile: Profile | None = None, *, ctx: PolicyContext | None = None,
        validity_days: int | None = None, backdate: timedelta = DEFAULT_BACKDATE,
    ) -> IssuancePipeline:
        """The issuance pipeline of CA ``ca`` for ``profile`` (default: what the CA issues), recording into the
        directory's ledger, with the network's OCSP and CRL URLs and its CSO name as the policy default."""
        authority = self.ca(ca)
        network = self.config.network
        return IssuancePipeline(
            authority, profile or default_leaf_profile(authority.profile), ledger=self.ledger,
            context=ctx or self.policy_context(), validity_days=validity_days, backdate=backdate,
            ocsp_url=network.get("ocsp_url", "").replace("{issuer}", ca) or None,
            crl_url=network.get("crl_url", "").replace("{issuer}", ca) or None,
        )

    def issue_from_csr(
        self, csr: x509.CertificateSigningRequest, *, ca: str, at: datetime, profile: Profile | None = None,
        ctx: PolicyContext | None = None, validity_days: int | None = None, station: str | None = None,
        now: datetime | None = None,
    ) -> IssueResult:
        """Check the CSR under the policy, sign it, record it, and return the chain (CertificateSigned form)."""
        return self.pipeline(ca, profile, ctx=ctx, validity_days=validity_days).issue_one(csr, at=at, station=station,
                                                                                          now=now)

    def issue_many(
        self, csrs: Sequence[x509.CertificateSigningRequest], *, ca: str, at: datetime, profile: Profile | None = None,
        ctx: PolicyContext | None = None, validity_days: int | None = None, station: str | None = None,
        now: datetime | None = None,
    ) -> list[IssueResult]:
        """Issue a batch: every CSR must pass; all records are committed in one transaction."""
        return self.pipeline(ca, profile, ctx=ctx, validity_days=validity_days).issue_many(csrs, at=at, station=station,
                                                                                           now=now)

    def trust_roots(self) -> list[x509.Certificate]:
        """Every root generation not retired (a superseded root stays trusted until it is)."""
        return [r.certificate() for r in self.ledger.all() if r.is_root and r.retired_at is None]

    # -- revocation -------------------------------------------------------------------------------
    def find_certificate(self, cert: x509.Certificate) -> CertificateRecord:
        """The ledger row of ``cert`` (same serial and fingerprint); :class:`NotFoundError` if this directory did not issue it."""
        from cryptography.hazmat.primitives import hashes

        from ocppsec.pki.errors import NotFoundError

        fp = cert.fingerprint(hashes.SHA256()).hex()
        for r in self.ledger.find_serial(format(cert.serial_number, "x")):
            if r.fingerprint == fp:
                return r
        raise NotFoundError(f"certificate serial {cert.serial_number:x} ({cert.subject.rfc4514_string()}) is not in "
                            f"the ledger of {self.path}", hint="list them with `ocppsec pki list DIR`")

    def revoke(self, record: CertificateRecord, *, at: datetime, reason: str, force: bool = False) -> CertificateRecord:
        """Record the revocation of ``record`` (CRLs and the OCSP responder pick it up).

        A root (a trust anchor, self-signed) is revoked only with ``force``: every certificate below it is cut
        off with it, and relying parties learn of it only through the root's own CRL or OCSP answers."""
        if record.status is CertificateStatus.REVOKED:
            raise UsageError(f"serial {record.serial} of {record.issuer_ca} was already revoked "
                             f"({record.revocation_reason}, {record.revoked_at})")
        if record.is_root and not force:
            below = sum(1 for r in self.ledger.all() if r.issuer_ca == record.name and r.fingerprint != record.fingerprint)
            raise UsageError(f"{record.name} is a root: revoking it cuts off the {below} certificate(s) it issued and "
                             f"everything below them", hint="pass --force to revoke it anyway")
        return self.ledger.revoke(record.serial, record.issuer_ca, at, reason)

    # -- lifecycle: renewal, rollover, cross-signing, retirement ------------------------------------
    def _current(self, name: str) -> CertificateRecord:
        rec = self.ledger.get_named(name)
        if rec is None:
            named = sorted({lineage(r.name) for r in self.ledger.all() if r.name})
            raise UsageError(f"no certificate named {name!r} in {self.path}", hint="named: " + ", ".join(named))
        if rec.superseded_by is not None:
            raise UsageError(f"{name} is a superseded generation; {lineage(name)} is the current one",
                             hint=f"renew {lineage(name)}")
        return rec

    def _new_key(self, name: str, spec: KeySpec, serial: int) -> tuple[LocalKey, str]:
        """A new key written ``keys/<name>-<serial>.key.pem`` (0600, encrypted with the directory's passphrase)."""
        private = generate_key(spec)
        rel = f"keys/{name}-{serial:x}.key.pem"
        write_key_file(self.path / rel, private, self._passphrase)
        return LocalKey(private, name), "file:" + rel

    def _write_certs(self, records: Iterable[CertificateRecord]) -> None:
        for r in records:
            if r.name is not None:
                atomic_write(self.path / "certs" / f"{r.name}.pem", r.pem.encode(), 0o644)

    def renew(
        self, name: str, *, at: datetime, validity_days: int | None = None, now: datetime | None = None,
        key: KeySpec | None = None,
    ) -> Renewal:
        """A new key and certificate for the sub-CA or named certificate ``name``, issued by the current generation
        of its issuer; the old one becomes ``name@SERIAL`` (what it issued follows it) and stays until retired.

        Subject, profile, subjectAltNames (a server certificate's CN at least), OCSP and CRL URLs are the old
        certificate's; the key type is the old key's unless ``key`` says otherwise; validity is ``validity_days``,
        else the configuration's, else the profile's, and must end within the issuer's (:class:`PolicyError`).
        A root is rolled over instead (:meth:`rollover`)."""
        old = self._current(name)
        if old.is_root:
            raise UsageError(f"{name} is a root: a root is rolled over, so that stations can check the new one "
                             "against the old one", requirement="M05.FR.09", hint=f"ocppsec pki rollover DIR {name}")
        if old.key_ref is None:
            raise UsageError(f"the key of {name} is not held by this PKI directory")
        if not old.key_ref.startswith("file:"):
            raise UsageError(f"the key of {name} is in a PKCS#11 token: renewing it would put the new key in a file",
                             hint="renewal of token-held keys is not supported; keep the token key until it is")
        profile = get_profile(old.role)
        cert = old.certificate()
        issuer = self.ca(lineage(old.issuer_ca))
        spec = key or key_spec_of(cert.public_key())
        if spec is None:
            raise UsageError(f"the key of {name} is of no supported type", hint="name one with --key-type")
        if spec not in profile.allowed_keys:
            raise UsageError(f"key {spec.value} is not allowed for profile {profile.name}", requirement=profile.cite("key"))
        try:
            planned_days = self.config.plan().get(name).validity_days
        except UsageError:
            planned_days = profile.validity_days
        days = validity_days or planned_days
        not_before = max(_start(at), issuer.certificate.not_valid_before_utc)
        violations = check_validity(profile, not_before, not_before + timedelta(days=days), issuer.certificate, at=at,
                                    now=now, issuer_name=f"CA {issuer.name}")
        if violations:
            raise PolicyError(f"cannot renew {name} under {issuer.name}", violations,
                              hint="nothing was written; give a shorter --validity-days, or renew (roll over) the issuer first")
        san = _san_of(cert)
        if profile.cn_kind is CnKind.FQDN and profile.allow_san and not san:
            cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            san = (str(cn[0].value),) if cn else ()
        ocsp_url, crl_url = _urls_of(cert)
        for _attempt in range(3):
            serial = new_serial()
            signing, key_ref = self._new_key(name, spec, serial)
            request = CertificateRequest(profile, cert.subject, signing.public_key(), not_before, days, serial, san,
                                         ocsp_url, crl_url)
            new_cert = build_certificate(request, issuer_certificate=issuer.certificate, issuer_key=issuer.key)
            new = record_for(new_cert, issuer_ca=issuer.name, role=old.role, issued_at=at, name=name, key_ref=key_ref,
                             station=old.station)
            alias = generation_name(name, old.serial)
            try:
                self.ledger.supersede(old, [new], alias=alias)
            except DuplicateError:
                (self.path / key_ref[5:]).unlink(missing_ok=True)
                if self._current(name).fingerprint != old.fingerprint:
                    raise
                continue
            self._cas.clear()
            renamed = replace(old, name=alias, superseded_by=new.fingerprint)
            self._write_certs([new, renamed])
            return Renewal(renamed, new)
        raise DuplicateError(f"could not find a free serial for {name}")

    def rollover(
        self, root: str, *, at: datetime, subject: Mapping[str, str] | None = None, validity_days: int | None = None,
        key: KeySpec | None = None,
    ) -> Rollover:
        """Replace the root ``root`` by a new one (new key, new subject: ``... G2``) with the two cross-certificates
        of M05 (:func:`~ocppsec.pki.lifecycle.rollover.prepare_rollover`): the new root signed by the old one (what a
        station with AdditionalRootCertificateCheck accepts, M05.FR.09-16) and the old one signed by the new one.

        The new root takes the name ``root``; the old one becomes ``root@SERIAL`` with what it issued, stays
        trusted (:meth:`trust_roots`) and keeps signing CRLs and OCSP answers for it until retired
        (:meth:`retire`). Certificates it issued are not re-issued: :meth:`renew` them (they then come from the
        new root). A root that has expired cannot sign the cross-certificate: :class:`PolicyError`."""
        from ocppsec.pki.lifecycle.rollover import prepare_rollover

        old = self._current(root)
        if not old.is_root:
            raise UsageError(f"{root} is not a root", hint=f"renew a sub-CA or certificate: ocppsec pki renew DIR {root}")
        ca = self.ca(root)
        profile = ca.profile
        if old.key_ref is None:
            raise UsageError(f"the key of {root} is not held by this PKI directory")
        if not old.key_ref.startswith("file:"):
            raise UsageError(f"the key of {root} is in a PKCS#11 token: a rollover would put the new root's key in a file",
                             hint="rollover of token-held roots is not supported")
        if at >= old.not_after:
            raise PolicyError(f"{root} expired on {old.not_after:%Y-%m-%d}: it cannot sign a cross-certificate for its "
                              "successor", [Violation("M05.FR.09", "stations that check a new root against the old "
                                                      "one (AdditionalRootCertificateCheck) will refuse any new root")],
                              hint="build a new hierarchy and install its root on the stations by other means")
        new_subject = self._rollover_subject(old, subject)
        spec = key or key_spec_of(ca.certificate.public_key()) or profile.default_key
        if spec not in profile.allowed_keys:
            raise UsageError(f"key {spec.value} is not allowed for profile {profile.name}", requirement=profile.cite("key"))
        for _attempt in range(3):
            serials = (new_serial(), new_serial(), new_serial())
            signing, key_ref = self._new_key(root, spec, serials[0])
            rolled = prepare_rollover(ca, signing, at=max(_start(at), old.not_before), subject=new_subject,
                                      validity_days=validity_days, serials=serials)
            alias = generation_name(root, old.serial)
            new = record_for(rolled.new_root, issuer_ca=root, role=old.role, issued_at=at, name=root, key_ref=key_ref)
            new_by_old = record_for(rolled.new_by_old, issuer_ca=alias, role=old.role, issued_at=at, key_ref=key_ref)
            old_by_new = record_for(rolled.old_by_new, issuer_ca=root, role=old.role, issued_at=at, key_ref=old.key_ref)
            try:
                self.ledger.supersede(old, [new, new_by_old, old_by_new], alias=alias)
            except DuplicateError:
                (self.path / key_ref[5:]).unlink(missing_ok=True)
                if self._current(root).fingerprint != old.fingerprint:
                    raise
                continue
            self._cas.clear()
            renamed = replace(old, name=alias, issuer_ca=alias, superseded_by=new.fingerprint)
            self._write_certs([new, renamed])
            atomic_write(self.path / "certs" / f"{root}.cross-signed-by-{alias}.pem", new_by_old.pem.encode(), 0o644)
            atomic_write(self.path / "certs" / f"{alias}.cross-signed-by-{root}.pem", old_by_new.pem.encode(), 0o644)
            return Rollover(renamed, new, new_by_old, old_by_new)
        raise DuplicateError(f"could not find free serials for the rollover of {root}")

    def _rollover_subject(self, rec: CertificateRecord, subject: Mapping[str, str] | None) -> x509.Name:
        from ocppsec.pki.names import make_name, name_attributes

        attrs = {k: v[0] for k, v in name_attributes(rec.certificate().subject).items()}
        if subject is None:
            attrs["CN"] = _generation_cn(attrs.get("CN", lineage(rec.name or "root")))
        else:
            attrs.update(subject)
        return make_name(attrs)

    def rollover_preview(
        self, root: str, *, at: datetime, inventory: Iterable[Any] = (), stations: Iterable[str] = (),
        subject: Mapping[str, str] | None = None, validity_days: int | None = None,
    ) -> RolloverPreview:
        """:meth:`rollover` without doing it: the new root's subject and validity, the cross-certificate's, what
        to renew afterwards, and per station of ``inventory`` (:class:`~ocppsec.pki.lifecycle.expiry.InventoryItem`)
        and ``stations`` whether it holds the old root (every one must install the new root, M05)."""
        from ocppsec.pki.lifecycle.rollover import station_impacts

        old = self._current(root)
        if not old.is_root:
            raise UsageError(f"{root} is not a root", hint=f"renew a sub-CA or certificate: ocppsec pki renew DIR {root}")
        profile = get_profile(old.role)
        start = max(_start(at), old.not_before)
        new_not_after = start + timedelta(days=validity_days or profile.validity_days)
        renew = tuple(r for r in self.ledger.all() if r.issuer_ca == root and r.name is not None and r.name != root
                      and r.key_ref is not None and r.superseded_by is None)
        impacts = station_impacts(old.certificate(), set(), inventory, stations)
        return RolloverPreview(old, generation_name(root, old.serial), self._rollover_subject(old, subject), new_not_after,
                               min(new_not_after, old.not_after), renew, tuple(impacts))

    def cross_certificates(self, subject: str) -> list[CertificateRecord]:
        """The cross-certificates of CA ``subject`` (its key under another CA's name), newest first."""
        rec = self.ledger.get_named(subject)
        if rec is None:
            return []
        return sorted((r for r in self.ledger.all() if r.is_ca and r.name is None and r.subject == rec.subject
                       and r.key_ref == rec.key_ref), key=lambda r: r.issued_at, reverse=True)

    def rollover_of(self, old: str) -> Rollover:
        """The :class:`Rollover` that superseded the root generation ``old`` (``root@SERIAL``)."""
        prev = self.ledger.get_named(old)
        if prev is None or not prev.is_root or prev.superseded_by is None:
            raise UsageError(f"{old} is not a root that was rolled over", hint="see `ocppsec pki list DIR --role ...`")
        records = self.ledger.all()
        new = next((r for r in records if r.fingerprint == prev.superseded_by), None)
        if new is None:
            raise UsageError(f"the successor of {old} is not in the ledger")
        new_by_old = next((r for r in records if r.is_ca and r.name is None and r.subject == new.subject
                           and r.issuer_ca == old), None)
        old_by_new = next((r for r in records if r.is_ca and r.name is None and r.subject == prev.subject
                           and r.issuer_ca == new.name), None)
        if new_by_old is None or old_by_new is None:
            raise UsageError(f"the cross-certificates of the rollover of {old} are not in the ledger")
        return Rollover(prev, new, new_by_old, old_by_new)

    def cross_sign(self, subject: str, *, by: str, at: datetime, validity_days: int | None = None) -> CertificateRecord:
        """Certify the key and subject of CA ``subject`` under CA ``by`` (a cross-certificate), recorded in the ledger.

        Its validity ends with the earlier of the two CAs' notAfter unless ``validity_days`` says less; more is
        refused (:class:`PolicyError`): a cross-certificate must not outlive its issuer, nor the CA it certifies."""
        target = self._current(subject)
        if not target.is_ca:
            raise UsageError(f"{subject} is not a CA: only CAs are cross-certified")
        issuer = self.ca(by)
        if lineage(target.issuer_ca) == lineage(by) and not target.is_root:
            raise UsageError(f"{by} issued {subject} already")
        if issuer.certificate.subject == target.certificate().subject:
            raise UsageError(f"{subject} and {by} have the same subject: a CA is not cross-signed by itself")
        cert = target.certificate()
        profile = get_profile(target.role)
        not_before = max(_start(at), issuer.certificate.not_valid_before_utc, cert.not_valid_before_utc)
        end = min(issuer.certificate.not_valid_after_utc, cert.not_valid_after_utc)
        days = validity_days if validity_days is not None else max(0, (end - not_before).days)
        not_after = not_before + timedelta(days=days)
        violations = check_validity(profile, not_before, not_after, issuer.certificate, at=at, issuer_name=f"CA {by}")
        if not_after > cert.not_valid_after_utc:
            own = cert.not_valid_after_utc
            violations.append(Violation(profile.cite("validity_nesting"),
                                        f"notAfter {not_after:%Y-%m-%d} is after {subject}'s own ({own:%Y-%m-%d})"))
        if days < 1 and not violations:
            violations.append(Violation(profile.cite("validity"), f"{by} and {subject} overlap by less than a day"))
        if violations:
            raise PolicyError(f"cannot cross-sign {subject} by {by}", violations, hint="nothing was written")
        for _attempt in range(3):
            request = CertificateRequest(profile, cert.subject, cert.public_key(), not_before, days,
                                         new_serial())
            cross = build_certificate(request, issuer_certificate=issuer.certificate, issuer_key=issuer.key)
            rec = record_for(cross, issuer_ca=issuer.name, role=target.role, issued_at=at, key_ref=target.key_ref)
            try:
                self.ledger.add([rec])
            except DuplicateError:
                continue
            atomic_write(self.path / "certs" / f"{subject}.cross-signed-by-{issuer.name}.pem", rec.pem.encode(), 0o644)
            return rec
        raise DuplicateError(f"could not find a free serial for a cross-certificate of {subject}")

    def retire(
        self, name: str, *, at: datetime, force: bool = False, impacts: Sequence[Any] | None = None, dry_run: bool = False,
    ) -> CertificateRecord:
        """Take the superseded generation ``name`` out of service: the ledger marks it retired and its key file is
        deleted (it signs no CRL or OCSP answer any more; a root stops being trusted by :meth:`trust_roots`).

        Refused (:class:`PolicyError`, unless ``force``) while certificates it issued are still valid and in service
        (renewed ones do not count; superseded sub-CAs do), and for a root while ``impacts``
        (:func:`~ocppsec.pki.lifecycle.rollover.station_impacts`) name stations that lack its successor (M05.FR.09).
        ``dry_run``: the checks only, nothing changed."""
        rec = self.ledger.get_named(name)
        if rec is None:
            raise UsageError(f"no certificate named {name!r} in {self.path}")
        if rec.superseded_by is None:
            raise UsageError(f"{name} is the current generation: renew or roll it over before retiring the old one")
        if rec.retired_at is not None:
            raise UsageError(f"{name} was retired already ({rec.retired_at:%Y-%m-%d})")
        if not force:
            # what it issued that still needs its key for CRLs and OCSP answers: valid certificates in service, and
            # superseded sub-CAs (what they issued is still out there); not a certificate already renewed, its own
            # OCSP responders, nor a cross-certificate of another CA (a bridge that ends with it)
            live = [r for r in self.ledger.all() if r.issuer_ca == name and r.fingerprint != rec.fingerprint
                    and r.role != "ocsp-responder" and not (r.is_ca and r.name is None)
                    and (r.status_at(at) is CertificateStatus.VALID
                         or (r.is_ca and r.status_at(at) is CertificateStatus.SUPERSEDED))]
            if live:
                raise PolicyError(
                    f"{len(live)} certificate(s) {name} issued are still valid", [
                        Violation(get_profile(rec.role).cite("validity_nesting"),
                                  f"{r.name or r.subject} (serial {r.serial}) valid until {r.not_after:%Y-%m-%d}")
                        for r in live[:10]],
                    hint="renew them first (their revocation status needs this key), or pass --force")
            if rec.is_root and impacts is not None:
                from ocppsec.pki.lifecycle.rollover import retire_plan

                retire_plan(self.rollover_of(name).root_rollover(), impacts)
        if dry_run:
            return rec
        done = self.ledger.retire(name, at)
        if rec.key_ref is not None and rec.key_ref.startswith("file:"):
            shared = any(r.key_ref == rec.key_ref and r.retired_at is None and r.fingerprint != rec.fingerprint
                         for r in self.ledger.all())
            if not shared:
                (self.path / rec.key_ref[5:]).unlink(missing_ok=True)
        self._cas.pop(name, None)
        return done

    # -- keys held by the directory (OCSP responders, new roots) ---------------------------------------
    def store_key(self, name: str, private: PrivateKey) -> str:
        """Write ``keys/<name>.key.pem`` (0600, encrypted with the directory passphrase); return its key_ref."""
        rel = f"keys/{name}.key.pem"
        write_key_file(self.path / rel, private, self._passphrase)
        return "file:" + rel

    def signing_key(self, key_ref: str) -> SigningKey:
        """Open the key a ledger row points at, with the passphrase the directory was opened with."""
        return open_signing_key(key_ref, self.path, self._passphrase)
