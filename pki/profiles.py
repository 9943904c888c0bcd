"""Certificate profiles, one per role, as data.

Each :class:`Profile` states what a certificate of that role must look like and cites, per rule, the
requirement it comes from (``Profile.cite(rule)``). The linter (:mod:`ocppsec.pki.lint`) and the CSR
policy (:mod:`ocppsec.pki.csr`) read these objects; nothing else hard-codes a profile value.

Sources: OCPP 2.0.1 / 2.1 Part 2 A00.FR.5xx (same in the 1.6 security white paper), ISO 15118-2 as
encoded by reference implementations (V2G2-006/007/009/010, second-hand), ISO 15118-20 (second-hand).
See ``../shared/reference/ocpp-security.md`` §1.6, §2.4 and §5.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from ocppsec.pki.errors import UsageError
from ocppsec.pki.keys import KeySpec

__all__ = [
    "PROFILES",
    "CnKind",
    "Family",
    "Profile",
    "did_you_mean",
    "get_profile",
    "profile_names",
]


class CnKind(enum.Enum):
    """What the subject CN of a role holds."""

    ANY = "any"
    FQDN = "fqdn"  # CSMS server (A00.FR.510)
    SERIAL = "serial"  # charging station serial number (A00.FR.511)
    SECC_ID = "secc-id"  # ISO 15118 SECC ID
    EMAID = "emaid"  # contract certificate
    PCID = "pcid"  # OEM provisioning certificate


class Family(enum.Enum):
    """Which hierarchy a profile belongs to (decides chain rules such as the ISO 15118 depth limit)."""

    CSO = "cso"  # CSMS root, CSO sub-CA, CSMS server, charging station
    MANUFACTURER = "manufacturer"
    ISO15118_2 = "iso15118-2"
    ISO15118_20 = "iso15118-20"


# Key-usage names follow cryptography.x509.KeyUsage attribute names.
CA_USAGE = frozenset({"key_cert_sign", "crl_sign"})

OCPP_KEYS = (KeySpec.RSA2048, KeySpec.RSA3072, KeySpec.RSA4096, KeySpec.P256, KeySpec.P384, KeySpec.P521)

_BASE_RULES: Mapping[str, str] = {
    "key": "A00.FR.501-503",
    "algorithm": "A00.FR.504",
    "hash": "A00.FR.506",
    "serial": "A00.FR.508",
    "o": "A00.FR.509",
    "key_usage": "A00.FR.512",
    "eku": "A00.FR.514",
    "san": "A00.FR.511",
    "basic_constraints": "RFC5280-4.2.1.9",
    "validity": "RFC5280-4.1.2.5",
    "issuer": "RFC5280-6.1",
    "cn": "A00.FR.509",
    "dc": "ISO15118-2 Annex F",
    "c": "ISO3166-1",
    "size": "V2G2-010",
    "depth": "V2G2-009",
    "aia": "M06 remarks",
    # a certificate is valid only while every certificate above it is (path validation checks each one)
    "validity_nesting": "RFC5280-6.1.3(a)(2)",
    # no future-dated certificates: stations check that now is inside the validity period (2025 errata)
    "not_before": "A02.FR.06",
    # TLS clients that ignore the CN (Go, rustls, browsers) find the server name only in subjectAltName
    "server_san": "RFC6125-6.4.4",
}


@dataclass(frozen=True, slots=True)
class Profile:
    """What a certificate of one role looks like. Immutable; ``with_validity`` gives an override."""

    name: str
    description: str
    family: Family
    is_ca: bool
    path_length: int | None
    key_usage: frozenset[str]
    allowed_keys: tuple[KeySpec, ...]
    default_key: KeySpec
    validity_days: int
    issuers: tuple[str, ...] = ()  # profile names allowed to issue this one; () = self-signed root
    cn_kind: CnKind = CnKind.ANY
    required_attributes: tuple[str, ...] = ("CN",)  # subject attributes that must be present
    fixed_attributes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    o_is_cso_name: bool = False  # O must equal the CSO name (A00.FR.509, A02.FR.13)
    allow_san: bool = False
    allow_eku: bool = False
    critical_extensions: bool = True  # KeyUsage and BasicConstraints critical
    max_der_size: int | None = None
    require_ocsp_aia: bool = False
    max_chain_depth: int | None = None  # number of CAs above the leaf, root included
    ocpp_use: str | None = None  # InstallCertificateUse / GetCertificateIdUse of a root, or the signing use
    rules: Mapping[str, str] = field(default_factory=lambda: MappingProxyType(dict(_BASE_RULES)))

    @property
    def is_root(self) -> bool:
        return self.is_ca and not self.issuers

    def cite(self, rule: str) -> str:
        """The requirement ID behind ``rule`` (e.g. ``cite('cn')`` → ``A00.FR.511`` for stations)."""
        return self.rules.get(rule, rule)

    def with_validity(self, days: int) -> Profile:
        if days <= 0:
            raise UsageError(f"validity of {self.name} must be a positive number of days, not {days}")
        return replace(self, validity_days=days)


def _rules(**overrides: str) -> Mapping[str, str]:
    merged = dict(_BASE_RULES)
    merged.update(overrides)
    return MappingProxyType(merged)


def _fixed(**attrs: str) -> Mapping[str, str]:
    return MappingProxyType(dict(attrs))


def _iso_chain(
    prefix: str, dc: str, root_desc: str, *, family: Family, key: KeySpec, allowed: tuple[KeySpec, ...],
    root_name: str | None, sub1_days: int, sub2_days: int, root_use: str | None, suffix: str,
) -> list[Profile]:
    """Root (optional), Sub-CA 1 (pathLen 1) and Sub-CA 2 (pathLen 0) of one ISO 15118 hierarchy."""
    iso_rules = _rules(
        key="V2G2-007" if family is Family.ISO15118_2 else "ISO15118-20 (P-521/Ed448)",
        algorithm="V2G2-006" if family is Family.ISO15118_2 else "ISO15118-20 (ecdsa-with-SHA512/Ed448)",
        hash="V2G2-006" if family is Family.ISO15118_2 else "ISO15118-20 (SHA-512)",
        key_usage="ISO15118-2 Annex F (KeyUsage critical)",
        basic_constraints="V2G2-009",
        dc="ISO15118-2 Annex F",
    )
    out: list[Profile] = []
    if root_name is not None:
        out.append(Profile(
            name=root_name + suffix, description=root_desc, family=family, is_ca=True, path_length=None,
            key_usage=CA_USAGE, allowed_keys=allowed, default_key=key, validity_days=3650,
            fixed_attributes=_fixed(DC=dc if dc != "CPO" else "V2G"), max_der_size=800, ocpp_use=root_use,
            required_attributes=("CN", "O"), rules=iso_rules,
        ))
    parent = (root_name + suffix,) if root_name else ()
    if prefix in ("cpo", "cps"):
        parent = ("v2g-root" + suffix,)
    sub_dc = "V2G" if dc == "CPO" else dc
    out.append(Profile(
        name=f"{prefix}-sub-ca-1{suffix}", description=f"{prefix.upper()} Sub-CA 1 (pathLen 1)", family=family,
        is_ca=True, path_length=1, key_usage=CA_USAGE, allowed_keys=allowed, default_key=key,
        validity_days=sub1_days, issuers=parent, fixed_attributes=_fixed(DC=sub_dc), max_der_size=800,
        required_attributes=("CN", "O"), rules=iso_rules,
    ))
    out.append(Profile(
        name=f"{prefix}-sub-ca-2{suffix}", description=f"{prefix.upper()} Sub-CA 2 (pathLen 0)", family=family,
        is_ca=True, path_length=0, key_usage=CA_USAGE, allowed_keys=allowed, default_key=key,
        validity_days=sub2_days, issuers=(f"{prefix}-sub-ca-1{suffix}",), fixed_attributes=_fixed(DC=sub_dc),
        max_der_size=800, required_attributes=("CN", "O"), rules=iso_rules,
    ))
    return out


def _iso_family(family: Family, key: KeySpec, allowed: tuple[KeySpec, ...], suffix: str) -> list[Profile]:
    iso_rules = _rules(
        key="V2G2-007" if family is Family.ISO15118_2 else "ISO15118-20 (P-521/Ed448)",
        algorithm="V2G2-006" if family is Family.ISO15118_2 else "ISO15118-20 (ecdsa-with-SHA512/Ed448)",
        hash="V2G2-006" if family is Family.ISO15118_2 else "ISO15118-20 (SHA-512)",
        key_usage="ISO15118-2 Annex F (KeyUsage critical)",
        basic_constraints="V2G2-009",
        cn="A02 alt. scenario (CN = SeccId)",
    )
    common = {"family": family, "allowed_keys": allowed, "default_key": key, "max_der_size": 800,
              "max_chain_depth": 3}
    profiles = _iso_chain("cpo", "CPO", "ISO 15118 V2G root CA", family=family, key=key, allowed=allowed,
                          root_name="v2g-root", sub1_days=1460, sub2_days=365,
                          root_use="V2GRootCertificate", suffix=suffix)
    profiles.append(Profile(
        name="secc" + suffix, description="SECC (EVSE) leaf: TLS server certificate towards the EV",
        is_ca=False, path_length=None, key_usage=frozenset({"digital_signature", "key_agreement"}),
        validity_days=60, issuers=("cpo-sub-ca-2" + suffix,), cn_kind=CnKind.SECC_ID,
        required_attributes=("CN", "O", "C"), fixed_attributes=_fixed(DC="CPO"), require_ocsp_aia=True,
        ocpp_use="V2GCertificate" if family is Family.ISO15118_2 else "V2G20Certificate",
        rules=_rules(**{**iso_rules, "dc": "Hubject 3.7 (DC=CPO)", "aia": "M06 remarks (responderURL)"}),
        **common,  # type: ignore[arg-type]
    ))
    profiles += _iso_chain("cps", "CPS", "", family=family, key=key, allowed=allowed, root_name=None,
                           sub1_days=1460, sub2_days=730, root_use=None, suffix=suffix)
    profiles.append(Profile(
        name="cps-leaf" + suffix, description="Certificate provisioning service leaf (signs installation responses)",
        is_ca=False, path_length=None, key_usage=frozenset({"digital_signature"}), validity_days=90,
        issuers=("cps-sub-ca-2" + suffix,), required_attributes=("CN", "O"), fixed_attributes=_fixed(DC="CPS"),
        rules=iso_rules, **common,  # type: ignore[arg-type]
    ))
    profiles += _iso_chain("mo", "MO", "Mobility operator root CA", family=family, key=key, allowed=allowed,
                           root_name="mo-root", sub1_days=1460, sub2_days=1460,
                           root_use="MORootCertificate", suffix=suffix)
    profiles.append(Profile(
        name="contract" + suffix, description="Contract certificate (CN = eMAID)", is_ca=False, path_length=None,
        key_usage=frozenset({"digital_signature", "content_commitment", "key_encipherment", "key_agreement"}),
        validity_days=730, issuers=("mo-sub-ca-2" + suffix,), cn_kind=CnKind.EMAID,
        required_attributes=("CN", "O", "C"), fixed_attributes=_fixed(DC="MO"), require_ocsp_aia=True,
        rules=_rules(**{**iso_rules, "cn": "ISO15118-2 eMAID (14-15 chars)"}), **common,  # type: ignore[arg-type]
    ))
    profiles += _iso_chain("oem", "OEM", "OEM root CA", family=family, key=key, allowed=allowed,
                           root_name="oem-root", sub1_days=1460, sub2_days=1460,
                           root_use="OEMRootCertificate", suffix=suffix)
    profiles.append(Profile(
        name="oem-provisioning" + suffix, description="OEM provisioning certificate (CN = PCID)", is_ca=False,
        path_length=None, key_usage=frozenset({"digital_signature", "key_agreement"}), validity_days=1460,
        issuers=("oem-sub-ca-2" + suffix,), cn_kind=CnKind.PCID, required_attributes=("CN",),
        fixed_attributes=_fixed(DC="OEM"), rules=_rules(**{**iso_rules, "cn": "ISO15118-2 PCID (17-18 chars)"}),
        **common,  # type: ignore[arg-type]
    ))
    return profiles


def _ocpp_profiles() -> list[Profile]:
    ca_keys = OCPP_KEYS
    return [
        Profile(
            name="csms-root", description="CSMS root (CSMSRootCertificate / 1.6 CentralSystemRootCertificate)",
            family=Family.CSO, is_ca=True, path_length=None, key_usage=CA_USAGE, allowed_keys=ca_keys,
            default_key=KeySpec.P256, validity_days=3650, required_attributes=("CN", "O"),
            ocpp_use="CSMSRootCertificate", rules=_rules(issuer="A00.FR.601"),
        ),
        Profile(
            name="cso-sub-ca", description="Optional CSO sub-CA signing CSMS and station certificates",
            family=Family.CSO, is_ca=True, path_length=0, key_usage=CA_USAGE, allowed_keys=ca_keys,
            default_key=KeySpec.P256, validity_days=1825, issuers=("csms-root",),
            required_attributes=("CN", "O"), rules=_rules(issuer="A00.FR.602"),
        ),
        Profile(
            name="csms-server-rsa", description="CSMS TLS server certificate, RSA flavour (CN = FQDN)",
            family=Family.CSO, is_ca=False, path_length=None,
            key_usage=frozenset({"digital_signature", "key_encipherment"}),
            allowed_keys=(KeySpec.RSA2048, KeySpec.RSA3072, KeySpec.RSA4096), default_key=KeySpec.RSA2048,
            validity_days=365, issuers=("csms-root", "cso-sub-ca"), cn_kind=CnKind.FQDN,
            required_attributes=("CN", "O"), o_is_cso_name=True, allow_san=True,
            rules=_rules(cn="A00.FR.510", key="A00.FR.502"),
        ),
        Profile(
            name="csms-server-ecdsa", description="CSMS TLS server certificate, ECDSA P-256 flavour (CN = FQDN)",
            family=Family.CSO, is_ca=False, path_length=None,
            key_usage=frozenset({"digital_signature", "key_agreement"}),
            allowed_keys=(KeySpec.P256, KeySpec.P384), default_key=KeySpec.P256, validity_days=365,
            issuers=("csms-root", "cso-sub-ca"), cn_kind=CnKind.FQDN, required_attributes=("CN", "O"),
            o_is_cso_name=True, allow_san=True, rules=_rules(cn="A00.FR.510", key="A00.FR.503"),
        ),
        Profile(
            name="charging-station", description="Charging station client certificate (O = CSO name, CN = serial)",
            family=Family.CSO, is_ca=False, path_length=None,
            key_usage=frozenset({"digital_signature", "key_agreement"}), allowed_keys=OCPP_KEYS,
            default_key=KeySpec.P256, validity_days=730, issuers=("csms-root", "cso-sub-ca"),
            cn_kind=CnKind.SERIAL, required_attributes=("CN", "O"), o_is_cso_name=True,
            ocpp_use="ChargingStationCertificate",
            rules=_rules(cn="A00.FR.511", o="A00.FR.509/A02.FR.13"),
        ),
        Profile(
            name="manufacturer-root", description="Manufacturer root (ManufacturerRootCertificate)",
            family=Family.MANUFACTURER, is_ca=True, path_length=0, key_usage=CA_USAGE, allowed_keys=ca_keys,
            default_key=KeySpec.P256, validity_days=7300, required_attributes=("CN", "O"),
            ocpp_use="ManufacturerRootCertificate", rules=_rules(issuer="A00.FR.604"),
        ),
        Profile(
            name="firmware-signing", description="Firmware-signing certificate, issued directly by the manufacturer root",
            family=Family.MANUFACTURER, is_ca=False, path_length=None, key_usage=frozenset({"digital_signature"}),
            allowed_keys=OCPP_KEYS, default_key=KeySpec.P256, validity_days=1825, issuers=("manufacturer-root",),
            required_attributes=("CN", "O"), max_chain_depth=1,
            rules=_rules(issuer="L01.FR.02 (signed by the manufacturer root)", depth="L01.FR.02"),
        ),
    ]


def _build() -> Mapping[str, Profile]:
    profiles = _ocpp_profiles()
    profiles += _iso_family(Family.ISO15118_2, KeySpec.P256, (KeySpec.P256,), "")
    profiles += _iso_family(Family.ISO15118_20, KeySpec.P521, (KeySpec.P521, KeySpec.ED448), "-20")
    return MappingProxyType({p.name: p for p in profiles})


PROFILES: Mapping[str, Profile] = _build()


def profile_names() -> list[str]:
    return list(PROFILES)


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate ``word`` most likely stands for (a typo, another case), or None (difflib's ratio >= 0.6)."""
    names = list(candidates)
    for c in names:
        if c.lower() == word.lower():
            return c
    close = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    return close[0] if close else None


def get_profile(name: str) -> Profile:
    """The profile called ``name``; a :class:`UsageError` naming the closest one (and listing them all) otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        guess = did_you_mean(name, PROFILES)
        hint = (f"did you mean {guess!r}? " if guess else "") + "known profiles: " + ", ".join(PROFILES)
        raise UsageError(f"unknown certificate profile {name!r}", hint=hint) from None
