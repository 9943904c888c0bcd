"""Hierarchy configuration (declarative TOML) and the in-memory certificate authority nouns.

- :class:`HierarchyConfig` reads the TOML file (a complete default ships as ``default_hierarchy.toml``)
  and resolves it into a :class:`Plan`: every CA and end-entity certificate with its profile, issuer,
  subject, key type and validity, in build order.
- :class:`CertificateAuthority` is a CA usable for issuing (certificate, signing key, the chain above).
- :class:`Hierarchy` builds a whole plan in memory (tests, the library, the demo); the on-disk
  directory (:mod:`ocppsec.pki.directory`) persists the same plan with a ledger and key files.
"""

from __future__ import annotations

import string
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import Any

from cryptography import x509

from ocppsec.pki.builder import CertificateRequest, build_certificate
from ocppsec.pki.errors import UsageError
from ocppsec.pki.keys import KeySpec, LocalKey, SigningKey, generate_key
from ocppsec.pki.names import make_name
from ocppsec.pki.pem import certificates_to_pem
from ocppsec.pki.profiles import PROFILES, Family, Profile, get_profile

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
        """The source text, with command-line overrides recorded in ``[network_overrides]``."""
        if not self.overrides:
            return self.source
        lines = [self.source.rstrip(), "", "[network_overrides]"]
        lines += [f"{k} = {_toml_string(v)}" for k, v in self.overrides.items()]
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
        net = self.network
        seen: dict[str, PlannedEntity] = {}

        def entity(raw: Mapping[str, Any], *, want_ca: bool) -> PlannedEntity:
            where = "[[ca]]" if want_ca else "[[certificate]]"
            if "name" not in raw or "subject" not in raw:
                lacks = "name" if "name" not in raw else "subject"
                raise UsageError(f"hierarchy entry {where} {str(raw)[:120]} lacks {lacks!r}")
            name = _string(raw["name"], f"{where}.name")
            where = f"{where} {name!r}"
            profile = get_profile(_string(raw.get("profile", name), f"{where}: profile"))
            subject = {k: _render(_string(v, f"{where}: subject.{k}"), net, f"{where}: subject.{k}")
                       for k, v in _table(raw["subject"], f"{where}: subject").items()}
            if profile.is_ca != want_ca:
                kind = "[[ca]]" if want_ca else "[[certificate]]"
                raise UsageError(f"{name}: profile {profile.name} does not belong in {kind}")
            if name in seen:
                raise UsageError(f"hierarchy entry {name!r} appears twice")
            issuer = raw.get("issuer")
            if issuer is not None:
                issuer = _string(issuer, f"{where}: issuer")
            if issuer is not None and issuer not in seen:
                raise UsageError(f"{name}: issuer {issuer!r} is not defined before it")
            if issuer is None and not profile.is_root:
                raise UsageError(f"{name}: profile {profile.name} needs an issuer")
            key = KeySpec.parse(_string(raw["key"], f"{where}: key")) if "key" in raw else profile.default_key
            days = raw.get("validity_days", profile.validity_days)
            if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 36500:
                raise UsageError(f"hierarchy configuration: {where}: validity_days must be a whole number of days (1-36500)")
            urls = {}
            for field_name in ("ocsp_url", "crl_url"):
                template = _string(raw.get(field_name, net.get(field_name, "")), f"{where}: {field_name}")
                values = {**net, "issuer": issuer or name}
                urls[field_name] = (_render(template, values, f"{where}: {field_name}") or None) if issuer is not None else None
            e = PlannedEntity(
                name=name, profile=profile, issuer=issuer,
                subject=subject, key=key, validity_days=days,
                ocsp_url=urls["ocsp_url"], crl_url=urls["crl_url"],
            )
            seen[name] = e
            return e

        cas = [entity(raw, want_ca=True) for raw in _tables(self.data.get("ca", []), "ca")]
        iso20 = _table(self.data.get("iso15118_20", {}), "iso15118_20")
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
                san_dns: Sequence[str] = ()) -> CertificateRequest:
    return CertificateRequest(entity.profile, make_name(entity.subject), key.public_key(), at,
                              entity.validity_days, serial, tuple(san_dns),
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
        plan = (config or HierarchyConfig.default()).plan()
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
        key: KeySpec | None = None, validity_days: int | None = None, san_dns: Sequence[str] = (),
        ocsp_url: str | None = None,
    ) -> IssuedCertificate:
        """Issue a fresh end-entity certificate with a new key (tests, examples, demos)."""
        p = get_profile(profile) if isinstance(profile, str) else profile
        signing = LocalKey(generate_key(key or p.default_key), str(subject.get("CN", p.name)))
        if ocsp_url is None and p.require_ocsp_aia:
            ocsp_url = self.plan.network.get("ocsp_url", "").replace("{issuer}", ca) or None
        request = CertificateRequest(p, make_name(subject), signing.public_key(), at, validity_days,
                                     None, tuple(san_dns), ocsp_url)
        return self.ca(ca).issue(request, signing, subject.get("CN"))
