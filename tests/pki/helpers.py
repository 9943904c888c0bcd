"""Shared test data: a correct subject and issuing CA for every end-entity profile."""

from __future__ import annotations

from collections.abc import Mapping

from ocppsec.pki import PROFILES, Hierarchy, IssuedCertificate, KeySpec

from .corpus import AT, CSO

_ISO_LEAVES: Mapping[str, tuple[str, Mapping[str, str]]] = {
    "secc": ("cpo-sub-ca-2", {"C": "DE", "O": CSO, "DC": "CPO", "CN": "DE*EXA*E1234567"}),
    "cps-leaf": ("cps-sub-ca-2", {"C": "DE", "O": CSO, "DC": "CPS", "CN": "CPS Leaf"}),
    "contract": ("mo-sub-ca-2", {"C": "DE", "O": "Example MO", "DC": "MO", "CN": "DEEXAC12345678"}),
    "oem-provisioning": ("oem-sub-ca-2", {"DC": "OEM", "CN": "WMIEXAMPLE1234567"}),
}

LEAVES: Mapping[str, tuple[str, Mapping[str, str]]] = {
    "charging-station": ("csms-root", {"O": CSO, "CN": "SN-0001"}),
    "csms-server-rsa": ("csms-root", {"O": CSO, "CN": "csms.example.com"}),
    "csms-server-ecdsa": ("csms-root", {"O": CSO, "CN": "csms.example.com"}),
    "firmware-signing": ("manufacturer-root", {"O": "Example Manufacturer", "CN": "Firmware Signing"}),
    **_ISO_LEAVES,
    **{f"{name}-20": (f"{ca}-20", subject) for name, (ca, subject) in _ISO_LEAVES.items()},
}
assert set(LEAVES) == {n for n, p in PROFILES.items() if not p.is_ca}


def iso20_key(h: Hierarchy) -> KeySpec:
    """The key type the -20 twins of ``h`` were built with."""
    return next(e.key for e in h.plan.cas if e.name == "v2g-root-20")


def issue(h: Hierarchy, profile: str, **kw: object) -> IssuedCertificate:
    """A fresh, correct end-entity certificate of ``profile`` (the -20 ones with the twins' key type)."""
    ca, subject = LEAVES[profile]
    key = iso20_key(h) if profile.endswith("-20") else None
    return h.issue_leaf(profile, ca=ca, subject=subject, at=kw.pop("at", AT), key=key, **kw)  # type: ignore[arg-type]
