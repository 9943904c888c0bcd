"""Hierarchy configuration (declarative TOML) and the in-memory certificate authority nouns.

- :class:`HierarchyConfig` reads the TOML file (a complete default ships as ``default_hierarchy.toml``)
  and resolves it into a :class:`Plan`: every CA and end-entity certificate with its profile, issuer,
  subject, key type and validity, in build order. Resolving refuses what the toolkit's own profiles would
  reject later: an unknown key (with the key probably meant, e.g. ``valdity_days`` -> ``validity_days``),
  a key type the role's profile does not allow, an issuer whose profile may not issue the role, a
  certificate that would outlive its issuer, subjectAltNames on a role without them; each error names
  the requirement (:meth:`Profile.cite`).
- :class:`CertificateAuthority` is a CA usable for issuing (certificate, signing key, the chain above).
- :class:`Hierarchy` builds a whole plan in memory (tests, the library, the demo); the on-disk
  directory (:mod:`ocppsec.pki.directory`) persists the same plan with a ledger and key files.
"""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import Any

from cryptography import x509

from ocppsec.pki.builder import DEFAULT_BACKDATE, CertificateRequest, build_certificate
from ocppsec.pki.errors import UsageError
from ocppsec.pki.keys import KeySpec, LocalKey, SigningKey, generate_key
from ocppsec.pki.names import ATTRIBUTE_OIDS, make_name
from ocppsec.pki.pem import certificates_to_pem
from ocppsec.pki.profiles import PROFILES, CnKind, Family, Profile, did_you_mean, get_profile

__all__ = [
    "CertificateAuthority",
    "Hierarchy",
    "HierarchyConfig",
    "IssuedCertificate",
    "Plan",
    "PlannedEntity",
    "default_config_text",
]


def default_config_text() -> str:
    """The built-in hierarchy configuration (what ``ocppsec pki config`` prints)."""
    return resources.files("ocppsec.pki").joinpath("default_hierarchy.toml").read_text("utf-8")


@dataclass(frozen=True, slots=True)
class PlannedEntity:
    """One certificate to build: a CA (``is_ca``) or an end-entity certificate."""

    name: str
    profile: Profile
    issuer: str | None
    subject: Mapping[str, str]
    key: KeySpec
    validity_days: int
    ocsp_url: str | None = None
    crl_url: str | None = None
    san_dns: tuple[str, ...] = ()  # subjectAltName dNSNames (a server certificate's FQDN, RFC 6125)

    @property
    def is_ca(self) -> bool:
        return self.profile.is_ca


@dataclass(frozen=True, slots=True)
class Plan:
    """Resolved configuration: entities in build order (every issuer before what it issues)."""

    cas: tuple[PlannedEntity, ...]
    certificates: tuple[PlannedEntity, ...]
    network: Mapping[str, str]

    def __iter__(self) -> Iterator[PlannedEntity]:
        yield from self.cas
        yield from self.certificates

    def get(self, name: str) -> PlannedEntity:
        for e in self:
            if e.name == name:
                return e
        raise UsageError(f"the hierarchy has no entry named {name!r}", hint="see `ocppsec pki config`")


# The keys each table of the configuration may hold (anything else is a typo or a misunderstanding).
TOP_KEYS = ("network", "network_overrides", "iso15118_20", "ca", "certificate", "lifecycle")
ENTRY_KEYS = ("name", "profile", "issuer", "subject", "key", "validity_days", "ocsp_url", "crl_url", "san_dns")
ISO20_KEYS = ("enabled", "key")
LIFECYCLE_KEYS = ("renew_before_days",)
# Entity names: file names in DIR/certs and DIR/keys; "@" and "+" are left for the names the directory gives
# superseded generations and cross-certificates.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def _check_keys(table: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    """A :class:`UsageError` for the first key of ``table`` not in ``allowed``, suggesting the key probably meant."""
    for key in table:
        if key in allowed:
            continue
        guess = did_you_mean(str(key), allowed)
        hint = f"did you mean {guess!r}?" if guess else "allowed here: " + ", ".join(allowed)
        raise UsageError(f"hierarchy configuration: {where} has the unknown key {key!r}", hint=hint)


def _toml_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _render(template: str, values: Mapping[str, str], where: str) -> str:
    """``template`` with each ``{placeholder}`` replaced from ``values`` (the [network] table); UsageError naming ``where``.

    Only bare names are placeholders: no attribute or index lookups, conversions or format specs."""
    out: list[str] = []
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:  # a stray "{" or "}"
        raise UsageError(f"hierarchy configuration: {where} = {template[:80]!r} is not a valid template ({exc})",
                         hint="write placeholders as {name}; a literal brace as {{ or }}") from None
    for literal, name, spec, conversion in parts:
        out.append(literal)
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise UsageError(f"hierarchy configuration: {where} has the placeholder {{{name}}} that is not a plain name",
                             hint="placeholders are names from the [network] table, e.g. {cso_name}")
        if name not in values:
            raise UsageError(f"unknown placeholder {{{name}}} in the hierarchy configuration ({where})",
                             hint="placeholders come from the [network] table")
        out.append(values[name])
    return "".join(out)


def _table(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise UsageError(f"hierarchy configuration: {where} must be a table, not {type(value).__name__}")
    return value


def _tables(value: object, where: str) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        raise UsageError(f"hierarchy configuration: {where} must be an array of tables ([[{where}]])")
    return [_table(item, f"{where}[{n}]") for n, item in enumerate(value)]


def _string(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise UsageError(f"hierarchy configuration: {where} must be a string, not {type(value).__name__}")
    return value


@dataclass(frozen=True, slots=True)
class HierarchyConfig:
    """The parsed TOML configuration. ``overrides`` replace [network] values (e.g. --cso-name)."""

    data: Mapping[str, Any]
    overrides: Mapping[str, str] = field(default_factory=dict)
    source: str = ""

    def to_toml(self) -> str:
        """The source text, with command-line overrides recorded in ``[network_overrides]`` (one such table: a
        source that has one already, written here before, gets it replaced by the merged values)."""
        if not self.overrides:
            return self.source
        source, merged = self.source, dict(self.overrides)
        marker = "\n[network_overrides]\n"
        if marker in "\n" + source:
            cut = ("\n" + source).index(marker)
            rest = ("\n" + source)[cut + len(marker):]
            if any(line.lstrip().startswith("[") for line in rest.splitlines()):
                raise UsageError("hierarchy configuration: [network_overrides] must be the last table to take "
                                 "command-line overrides", hint="move it to the end of the file")
            previous = _table(self.data.get("network_overrides", {}), "network_overrides")
            merged = {**{k: _string(v, f"network_overrides.{k}") for k, v in previous.items()}, **merged}
            source = ("\n" + source)[:cut].lstrip("\n")
        lines = [source.rstrip(), "", "[network_overrides]"]
        lines += [f"{k} = {_toml_string(v)}" for k, v in merged.items()]
        return "\n".join(lines) + "\n"

    @classmethod
    def default(cls, **overrides: str | None) -> HierarchyConfig:
        return cls.from_toml(default_config_text(), **overrides)

    @classmethod
    def from_toml(cls, text: str, **overrides: str | None) -> HierarchyConfig:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"hierarchy configuration is not valid TOML: {exc}") from None
        return cls(data, {k: v for k, v in overrides.items() if v is not None}, text)

    @classmethod
    def from_bytes(cls, data: bytes, *, what: str = "hierarchy configuration", **overrides: str | None) -> HierarchyConfig:
        """:meth:`from_toml` for the bytes of a file; a file that is not UTF-8 is a :class:`UsageError`."""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError(f"{what} is not UTF-8 text (byte {exc.start}: {data[exc.start:exc.start + 1]!r})",
                             hint="TOML files are UTF-8") from None
        return cls.from_toml(text, **overrides)

    @property
    def network(self) -> dict[str, str]:
        net = {}
        for table in ("network", "network_overrides"):
            for k, v in _table(self.data.get(table, {}), table).items():
                net[k] = _string(v, f"{table}.{k}")
        net.update(self.overrides)
        return net

    def plan(self) -> Plan:
        """Resolve the configuration into a :class:`Plan`; :class:`UsageError` for anything the profiles would refuse."""
        _check_keys(self.data, TOP_KEYS, "the top level")
        if "lifecycle" in self.data:
            lifecycle = _table(self.data["lifecycle"], "lifecycle")
            _check_keys(lifecycle, LIFECYCLE_KEYS, "[lifecycle]")
            roles = (*PROFILES, "ocsp-responder")
            _check_keys(_table(lifecycle.get("renew_before_days", {}), "lifecycle.renew_before_days"), roles,
                        "[lifecycle.renew_before_days] (role names)")
        net = self.network
        seen: dict[str, PlannedEntity] = {}

        def entity(raw: Mapping[str, Any], *, want_ca: bool) -> PlannedEntity:
            where = "[[ca]]" if want_ca else "[[certificate]]"
            if "name" not in raw or "subject" not in raw:
                lacks = "name" if "name" not in raw else "subject"
                raise UsageError(f"hierarchy entry {where} {str(raw)[:120]} lacks {lacks!r}")
            name = _string(raw["name"], f"{where}.name")
            where = f"{where} {name!r}"
            _check_keys(raw, ENTRY_KEYS, where)
            if not _NAME.fullmatch(name):
                raise UsageError(f"hierarchy configuration: {where}: a name is 1-64 letters, digits, '.', '_' or '-'",
                                 hint="names become file names in DIR/certs and DIR/keys")
            profile = get_profile(_string(raw.get("profile", name), f"{where}: profile"))
            subject_table = _table(raw["subject"], f"{where}: subject")
            _check_keys(subject_table, tuple(ATTRIBUTE_OIDS), f"{where}: subject")
            subject = {k: _render(_string(v, f"{where}: subject.{k}"), net, f"{where}: subject.{k}")
                       for k, v in subject_table.items()}
            if profile.is_ca != want_ca:
                kind = "[[ca]]" if want_ca else "[[certificate]]"
                raise UsageError(f"{name}: profile {profile.name} does not belong in {kind}")
            if name in seen:
                raise UsageError(f"hierarchy entry {name!r} appears twice")
            issuer = raw.get("issuer")
            if issuer is not None:
                issuer = _string(issuer, f"{where}: issuer")
            if issuer is not None and issuer not in seen:
                guess = did_you_mean(issuer, seen)
                raise UsageError(f"{name}: issuer {issuer!r} is not defined before it",
                                 hint=f"did you mean {guess!r}?" if guess else "define the issuing [[ca]] above it")
            if issuer is None and not profile.is_root:
                raise UsageError(f"{name}: profile {profile.name} needs an issuer", requirement=profile.cite("issuer"))
            if issuer is not None and profile.is_root:
                raise UsageError(f"{name}: profile {profile.name} is a self-signed root and takes no issuer",
                                 requirement=profile.cite("issuer"))
            parent = seen[issuer] if issuer is not None else None
            if parent is not None and profile.issuers and parent.profile.name not in profile.issuers:
                raise UsageError(
                    f"{name}: profile {profile.name} is issued by {', '.join(profile.issuers)}, not by "
                    f"{parent.name} (profile {parent.profile.name})", requirement=profile.cite("issuer"))
            key = KeySpec.parse(_string(raw["key"], f"{where}: key")) if "key" in raw else profile.default_key
            if key not in profile.allowed_keys:
                raise UsageError(
                    f"{name}: key {key.value} is not allowed for profile {profile.name}",
                    requirement=profile.cite("key"),
                    hint="allowed: " + ", ".join(k.value for k in profile.allowed_keys))
            days = raw.get("validity_days", profile.validity_days)
            if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 36500:
                raise UsageError(f"hierarchy configuration: {where}: validity_days must be a whole number of days (1-36500)")
            if parent is not None and days > parent.validity_days:
                raise UsageError(
                    f"{name}: validity_days = {days} outlives its issuer {parent.name} ({parent.validity_days} days); "
                    f"a certificate is valid only while its issuer is", requirement=profile.cite("validity_nesting"),
                    hint=f"use at most {parent.validity_days} days, or give {parent.name} a longer validity")
            san = _san(raw, profile, subject, where)
            urls = {}
            for field_name in ("ocsp_url", "crl_url"):
                template = _string(raw.get(field_name, net.get(field_name, "")), f"{where}: {field_name}")
                values = {**net, "issuer": issuer or name}
                urls[field_name] = (_render(template, values, f"{where}: {field_name}") or None) if issuer is not None else None
            e = PlannedEntity(
                name=name, profile=profile, issuer=issuer,
                subject=subject, key=key, validity_days=days,
                ocsp_url=urls["ocsp_url"], crl_url=urls["crl_url"], san_dns=san,
            )
            seen[name] = e
            return e

        cas = [entity(raw, want_ca=True) for raw in _tables(self.data.get("ca", []), "ca")]
        iso20 = _table(self.data.get("iso15118_20", {}), "iso15118_20")
        _check_keys(iso20, ISO20_KEYS, "[iso15118_20]")
        if iso20.get("enabled"):
            key20 = KeySpec.parse(_string(iso20.get("key", "p521"), "iso15118_20.key"))
            for base in list(cas):
                twin = f"{base.profile.name}-20"
                if base.profile.family is Family.ISO15118_2 and twin in PROFILES:
                    p20 = PROFILES[twin]
                    raw = {"name": f"{base.name}-20", "profile": twin, "subject": dict(base.subject),
                           "key": key20.value, "validity_days": p20.validity_days}
                    if base.issuer is not None:
                        raw["issuer"] = f"{base.issuer}-20"
                    cas.append(entity(raw, want_ca=True))
        certs = [entity(raw, want_ca=False) for raw in _tables(self.data.get("certificate", []), "certificate")]
        return Plan(tuple(cas), tuple(certs), net)


def _san(raw: Mapping[str, Any], profile: Profile, subject: Mapping[str, str], where: str) -> tuple[str, ...]:
    """subjectAltName dNSNames of an entry: a server certificate's CN first (RFC 6125), then ``san_dns``."""
    extra = raw.get("san_dns", [])
    if not isinstance(extra, list) or not all(isinstance(x, str) and x for x in extra):
        raise UsageError(f"hierarchy configuration: {where}: san_dns must be a list of DNS names")
    if extra and not profile.allow_san:
        raise UsageError(f"{where}: profile {profile.name} carries no subjectAltName (identity is the subject CN)",
                         requirement=profile.cite("san"))
    names: list[str] = []
    cn = subject.get("CN")
    if profile.cn_kind is CnKind.FQDN and cn:
        names.append(cn)
    for name in extra:
        if name.lower() not in (n.lower() for n in names):
            names.append(name)
    return tuple(names)


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """A certificate with the chain OCPP sends with it and (when made here) its key."""

    certificate: x509.Certificate
    sub_cas: tuple[x509.Certificate, ...]  # issuing CA first, up to but excluding the root
    root: x509.Certificate
    key: SigningKey | None = None
    name: str | None = None

    def chain_pem(self) -> str:
        """Leaf first, then the sub-CAs, root excluded: the CertificateSigned ``certificateChain``."""
        return certificates_to_pem((self.certificate, *self.sub_cas))

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        return (self.certificate, *self.sub_cas)


@dataclass(frozen=True, slots=True)
class CertificateAuthority:
    """A CA ready to issue: its certificate, its signing key and the certificates above it."""

    name: str
    profile: Profile
    certificate: x509.Certificate
    key: SigningKey
    parents: tuple[x509.Certificate, ...] = ()  # nearest first, root last; () for a root

    @property
    def root(self) -> x509.Certificate:
        return self.parents[-1] if self.parents else self.certificate

    @property
    def sub_cas(self) -> tuple[x509.Certificate, ...]:
        """The CA certificates a leaf issued here is sent with (this CA and those above, no root)."""
        return (self.certificate, *self.parents)[:-1] if self.parents else ()

    def issue(self, request: CertificateRequest, key: SigningKey | None = None, name: str | None = None) -> IssuedCertificate:
        """Sign ``request`` (pure: the request carries the time)."""
        if request.profile.issuers and self.profile.name not in request.profile.issuers:
            raise UsageError(
                f"profile {request.profile.name} is issued by {', '.join(request.profile.issuers)}, not by {self.profile.name}",
                requirement=request.profile.cite("issuer"),
            )
        cert = build_certificate(request, issuer_certificate=self.certificate, issuer_key=self.key)
        return IssuedCertificate(cert, self.sub_cas, self.root, key, name)

    def child(self, name: str, profile: Profile, cert: x509.Certificate, key: SigningKey) -> CertificateAuthority:
        return CertificateAuthority(name, profile, cert, key, (self.certificate, *self.parents))


def make_root(entity: PlannedEntity, key: SigningKey, at: datetime, serial: int | None = None) -> CertificateAuthority:
    request = CertificateRequest(entity.profile, make_name(entity.subject), key.public_key(), at,
                                 entity.validity_days, serial)
    cert = build_certificate(request, issuer_certificate=None, issuer_key=key)
    return CertificateAuthority(entity.name, entity.profile, cert, key)


def request_for(entity: PlannedEntity, key: SigningKey, at: datetime, serial: int | None = None,
                san_dns: Sequence[str] | None = None) -> CertificateRequest:
    """The request for ``entity`` (its subjectAltNames unless ``san_dns`` says otherwise)."""
    return CertificateRequest(entity.profile, make_name(entity.subject), key.public_key(), at,
                              entity.validity_days, serial, tuple(entity.san_dns if san_dns is None else san_dns),
                              entity.ocsp_url,  # sub-CAs too: stations ask OCSP about them (M06.FR.06)
                              entity.crl_url)


@dataclass(frozen=True, slots=True)
class Hierarchy:
    """Every CA and certificate of a plan, built in memory. Keys are :class:`LocalKey` objects."""

    plan: Plan
    cas: Mapping[str, CertificateAuthority]
    certificates: Mapping[str, IssuedCertificate]

    @classmethod
    def build(cls, config: HierarchyConfig | None = None, *, at: datetime) -> Hierarchy:
        """Every CA and certificate of ``config``, valid from :data:`~ocppsec.pki.builder.DEFAULT_BACKDATE` before ``at``."""
        plan = (config or HierarchyConfig.default()).plan()
        at = at.replace(microsecond=0) - DEFAULT_BACKDATE
        cas: dict[str, CertificateAuthority] = {}
        for e in plan.cas:
            key = LocalKey(generate_key(e.key), e.name)
            if e.issuer is None:
                cas[e.name] = make_root(e, key, at)
            else:
                parent = cas[e.issuer]
                issued = parent.issue(request_for(e, key, at))
                cas[e.name] = parent.child(e.name, e.profile, issued.certificate, key)
        certs: dict[str, IssuedCertificate] = {}
        for e in plan.certificates:
            assert e.issuer is not None
            key = LocalKey(generate_key(e.key), e.name)
            certs[e.name] = cas[e.issuer].issue(request_for(e, key, at), key, e.name)
        return cls(plan, cas, certs)

    def ca(self, name: str) -> CertificateAuthority:
        try:
            return self.cas[name]
        except KeyError:
            raise UsageError(f"no CA named {name!r}", hint="CAs: " + ", ".join(self.cas)) from None

    def issue_leaf(
        self, profile: str | Profile, *, ca: str, subject: Mapping[str, str], at: datetime,
        key: KeySpec | None = None, validity_days: int | None = None, san_dns: Sequence[str] | None = None,
        ocsp_url: str | None = None,
    ) -> IssuedCertificate:
        """Issue a fresh end-entity certificate with a new key (tests, examples, demos). ``san_dns`` defaults to
        the CN for server certificates (RFC 6125) and to none otherwise."""
        p = get_profile(profile) if isinstance(profile, str) else profile
        if san_dns is None:
            cn = subject.get("CN")
            san_dns = (cn,) if cn and p.cn_kind is CnKind.FQDN and p.allow_san else ()
        signing = LocalKey(generate_key(key or p.default_key), str(subject.get("CN", p.name)))
        if ocsp_url is None and p.require_ocsp_aia:
            ocsp_url = self.plan.network.get("ocsp_url", "").replace("{issuer}", ca) or None
        request = CertificateRequest(p, make_name(subject), signing.public_key(), at, validity_days,
                                     None, tuple(san_dns), ocsp_url)
        return self.ca(ca).issue(request, signing, subject.get("CN"))
