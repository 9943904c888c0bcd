"""Hierarchy configuration (declarative TOML) and the in-memory certificate authority nouns.

- :class:`HierarchyConfig` reads the TOML file (a complete default ships as ``default_hierarchy.toml``)
  and resolves it into a :class:`Plan`: every CA and end-entity certificate with its profile, issuer,
  subject, key type and validity, in build order.
- :class:`CertificateAuthority` is a CA usable for issuing (certificate, signing key, the chain above).
- :class:`Hierarchy` builds a whole plan in memory (tests, the library, the demo); the on-disk
  directory (:mod:`ocppsec.pki.directory`) persists the same plan with a ledger and key files.
"""

from __future__ import annotations

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


class _Defaults(dict[str, str]):
    def __missing__(self, key: str) -> str:
        raise UsageError(f"unknown placeholder {{{key}}} in the hierarchy configuration",
                         hint="placeholders come from the [network] table")


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

    @property
    def network(self) -> dict[str, str]:
        net = {k: str(v) for k, v in self.data.get("network", {}).items()}
        net.update({k: str(v) for k, v in self.data.get("network_overrides", {}).items()})
        net.update(self.overrides)
        return net

    def plan(self) -> Plan:
        net = self.network
        fmt = _Defaults(net)
        seen: dict[str, PlannedEntity] = {}

        def entity(raw: Mapping[str, Any], *, want_ca: bool) -> PlannedEntity:
            try:
                name = str(raw["name"])
                profile = get_profile(str(raw.get("profile", name)))
                subject = {str(k): str(v).format_map(fmt) for k, v in dict(raw["subject"]).items()}
            except KeyError as exc:
                raise UsageError(f"hierarchy entry {raw!r} lacks {exc}") from None
            if profile.is_ca != want_ca:
                kind = "[[ca]]" if want_ca else "[[certificate]]"
                raise UsageError(f"{name}: profile {profile.name} does not belong in {kind}")
            if name in seen:
                raise UsageError(f"hierarchy entry {name!r} appears twice")
            issuer = raw.get("issuer")
            if issuer is not None and str(issuer) not in seen:
                raise UsageError(f"{name}: issuer {issuer!r} is not defined before it")
            if issuer is None and not profile.is_root:
                raise UsageError(f"{name}: profile {profile.name} needs an issuer")
            key = KeySpec.parse(str(raw["key"])) if "key" in raw else profile.default_key
            days = int(raw.get("validity_days", profile.validity_days))
            ocsp = str(raw.get("ocsp_url", net.get("ocsp_url", ""))).replace("{issuer}", str(issuer or name))
            crl = str(raw.get("crl_url", net.get("crl_url", ""))).replace("{issuer}", str(issuer or name))
            e = PlannedEntity(
                name=name, profile=profile, issuer=str(issuer) if issuer is not None else None,
                subject=subject, key=key, validity_days=days,
                ocsp_url=(ocsp.format_map(fmt) or None) if issuer is not None else None,
                crl_url=(crl.format_map(fmt) or None) if issuer is not None else None,
            )
            seen[name] = e
            return e

        cas = [entity(raw, want_ca=True) for raw in self.data.get("ca", [])]
        iso20 = self.data.get("iso15118_20", {})
        if iso20.get("enabled"):
            key20 = KeySpec.parse(str(iso20.get("key", "p521")))
            for base in list(cas):
                twin = f"{base.profile.name}-20"
                if base.profile.family is Family.ISO15118_2 and twin in PROFILES:
                    p20 = PROFILES[twin]
                    raw = {"name": f"{base.name}-20", "profile": twin, "subject": dict(base.subject),
                           "key": key20.value, "validity_days": p20.validity_days}
                    if base.issuer is not None:
                        raw["issuer"] = f"{base.issuer}-20"
                    cas.append(entity(raw, want_ca=True))
        certs = [entity(raw, want_ca=False) for raw in self.data.get("certificate", [])]
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
