"""Subject names: build them from simple ``{"CN": ..., "O": ...}`` mappings and read them back."""

from __future__ import annotations

import re
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


# -- reading simple subject names straight from DER -------------------------------------------------
# Attribute types read without pyca (those of ATTRIBUTE_OIDS), by the DER contents of their OID.
_OID_CONTENTS: Mapping[bytes, str] = {
    b"\x55\x04\x06": "C", b"\x55\x04\x08": "ST", b"\x55\x04\x07": "L", b"\x55\x04\x0a": "O",
    b"\x55\x04\x0b": "OU", b"\x09\x92\x26\x89\x93\xf2\x2c\x64\x01\x19": "DC", b"\x55\x04\x03": "CN",
}
_UTF8, _PRINTABLE, _IA5 = 0x0C, 0x13, 0x16
_PRINTABLE_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?")
_RFC4514_SPECIAL = re.compile(r'[\\"+,;<>\x00]')  # characters rfc4514_value escapes
_RFC4514_ESCAPES = str.maketrans(
    {"\\": "\\\\", '"': '\\"', "+": "\\+", ",": "\\,", ";": "\\;", "<": "\\<", ">": "\\>", "\0": "\\00"}
)


def rfc4514_value(value: str) -> str:
    """An attribute value escaped for an RFC 4514 string exactly as pyca's ``rfc4514_string`` escapes it."""
    if not value:
        return ""
    if _RFC4514_SPECIAL.search(value) is not None:
        value = value.translate(_RFC4514_ESCAPES)
    if value[0] == "#" or (value[0] == " " and len(value) > 1):
        value = "\\" + value
    if value[-1] == " ":
        value = value[:-1] + "\\ "
    return value


def read_simple_name(der: bytes) -> tuple[dict[str, list[str]], str] | None:
    """What :func:`name_attributes` and ``Name.rfc4514_string()`` give for the Name ``der``, read in one pass.

    Only for plain names, whose attributes pyca would decode without warnings and re-encode into the very
    same bytes: one attribute per RDN, each RDN shorter than 128 octets, types from :data:`ATTRIBUTE_OIDS`,
    valid UTF8String, PrintableString or IA5String values, C of 2 and CN of 1-64 octets. Anything else
    gives None (use pyca's Name)."""
    size = len(der)
    if size < 2 or der[0] != 0x30:
        return None
    first = der[1]
    if first < 0x80:
        pos, end = 2, 2 + first
    elif first == 0x81 and size > 2:
        pos, end = 3, 3 + der[2]
    elif first == 0x82 and size > 3:
        pos, end = 4, 4 + (der[2] << 8 | der[3])
    else:
        return None
    if end != size:
        return None
    attrs: dict[str, list[str]] = {}
    texts: list[str] = []
    try:
        while pos < end:
            # SET { SEQUENCE { OID, value } }, every length in short form, the lengths nesting exactly
            set_len, seq_len, oid_len = der[pos + 1], der[pos + 3], der[pos + 5]
            v_tag_at = pos + 6 + oid_len
            tag, v_len = der[v_tag_at], der[v_tag_at + 1]
            stop = v_tag_at + 2 + v_len
            if (der[pos] != 0x31 or der[pos + 2] != 0x30 or der[pos + 4] != 0x06 or set_len >= 0x80 or v_len >= 0x80
                    or set_len != seq_len + 2 or seq_len != oid_len + v_len + 4 or stop > end):
                return None
            key = _OID_CONTENTS.get(der[pos + 6 : v_tag_at])
            if key is None:
                return None
            raw = der[v_tag_at + 2 : stop]
            if tag == _UTF8:
                value = raw.decode("utf-8")
            elif (tag == _PRINTABLE and _PRINTABLE_CHARS.issuperset(raw)) or (tag == _IA5 and raw.isascii()):
                value = raw.decode("ascii")
            else:
                return None
            if (key == "CN" and not 0 < v_len <= 64) or (key == "C" and v_len != 2):
                return None  # pyca warns about these lengths when it decodes them
            if key in attrs:
                attrs[key].append(value)
            else:
                attrs[key] = [value]
            texts.append(f"{key}={rfc4514_value(value)}")
            pos = stop
    except (IndexError, UnicodeDecodeError):
        return None
    texts.reverse()
    return attrs, ",".join(texts)
