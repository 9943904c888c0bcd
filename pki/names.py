"""Subject names: build them from simple ``{"CN": ..., "O": ...}`` mappings and read them back."""

from __future__ import annotations

from collections.abc import Mapping

from cryptography import x509
from cryptography.x509.oid import NameOID

from ocppsec.pki.errors import InputError, UsageError

__all__ = ["ATTRIBUTE_OIDS", "make_name", "name_attributes", "name_value"]

ATTRIBUTE_OIDS: Mapping[str, x509.ObjectIdentifier] = {
    "C": NameOID.COUNTRY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "L": NameOID.LOCALITY_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "DC": NameOID.DOMAIN_COMPONENT,
    "CN": NameOID.COMMON_NAME,
}
_ORDER = ("C", "ST", "L", "O", "OU", "DC", "CN")
_SHORT = {oid: short for short, oid in ATTRIBUTE_OIDS.items()}


def make_name(attributes: Mapping[str, str]) -> x509.Name:
    """An X.509 Name in the conventional order C, ST, L, O, OU, DC, CN; empty values are dropped."""
    unknown = set(attributes) - set(ATTRIBUTE_OIDS)
    if unknown:
        raise UsageError(
            f"unknown subject attribute(s) {', '.join(sorted(unknown))}",
            hint="use " + ", ".join(_ORDER),
        )
    rdns = []
    for key in _ORDER:
        value = attributes.get(key)
        if value:
            if key == "C" and not (len(value) == 2 and value.isascii() and value.isalpha()):
                raise InputError(f"country (C) must be a two-letter ISO 3166 code, not {value!r}", requirement="ISO3166-1")
            # pyca bounds CN by its UTF-8 size (64 octets), so count octets there: else its ValueError escapes
            if (len(value.encode("utf-8", "surrogatepass")) if key == "CN" else len(value)) > 64:
                raise InputError(f"subject {key} is longer than 64 characters (RFC 5280 upper bound; CN: 64 octets of UTF-8)")
            rdns.append(x509.NameAttribute(ATTRIBUTE_OIDS[key], value))
    return x509.Name(rdns)


def name_attributes(name: x509.Name) -> dict[str, list[str]]:
    """``{"CN": [...], "O": [...], ...}`` for the attributes ocppsec knows; other OIDs by dotted string."""
    out: dict[str, list[str]] = {}
    for attr in name:
        key = _SHORT.get(attr.oid, attr.oid.dotted_string)
        value = attr.value if isinstance(attr.value, str) else attr.value.decode("latin-1")
        out.setdefault(key, []).append(value)
    return out


def name_value(name: x509.Name, key: str) -> str | None:
    """The single value of attribute ``key`` (first one if repeated), or None."""
    values = name.get_attributes_for_oid(ATTRIBUTE_OIDS[key])
    if not values:
        return None
    v = values[0].value
    return v if isinstance(v, str) else v.decode("latin-1")
