"""Profile 3 (mutual TLS): what the CSMS checks in a station's client certificate (A00.FR.403-408).

The TLS layer has already validated the path to a trusted CSO root (A00.FR.403); the stdlib gives us
only the leaf. Here: the subject O contains the CSO name (A00.FR.404), the subject CN equals the
station's serial number (A00.FR.405) as registered for the identity in the URL (so a valid certificate
of another station is refused), and the certificate is inside its validity period at ``at``.
Optionally, when the chain is known (library use), the path is validated again with
:func:`ocppsec.pki.chain.verify_chain`.

The checks read only a :class:`LeafIdentity` (subject O and CN values, validity period). ``serve()``
builds it from the dict the stdlib already decoded for a verified peer (``getpeercert()``, which
asyncio fetches at the end of every handshake), so a handshake needs no pyca parse of the leaf;
library callers pass an :class:`~cryptography.x509.Certificate`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from ocppsec.pki.chain import verify_chain
from ocppsec.pki.errors import ChainError, PolicyError, Violation

__all__ = ["EVENT", "LeafIdentity", "check_station_certificate", "verify_station_certificate"]

EVENT = "InvalidChargingStationCertificate"


_O, _CN = NameOID.ORGANIZATION_NAME, NameOID.COMMON_NAME
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}


def _o_and_cn(name: x509.Name) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The subject's O and CN values, in one pass (identity binding needs nothing else)."""
    orgs: list[str] = []
    cns: list[str] = []
    for attr in name:
        oid = attr.oid
        if oid in (_O, _CN):
            value = attr.value if isinstance(attr.value, str) else attr.value.decode("latin-1")
            (orgs if oid == _O else cns).append(value)
    return tuple(orgs), tuple(cns)


def _ssl_time(text: str) -> datetime:
    """OpenSSL's printed time (``'Nov  3 20:46:09 2026 GMT'``, seconds may carry a fraction) as aware UTC."""
    mon, day, hms, year, zone = text.split()
    if zone != "GMT":
        raise ValueError(text)
    h, m, sec = hms.split(":")
    return datetime(int(year), _MONTHS[mon], int(day), int(h), int(m), int(sec.split(".")[0]), tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class LeafIdentity:
    """What the profile-3 rules read from a station's leaf certificate."""

    organizations: tuple[str, ...]
    common_names: tuple[str, ...]
    not_before: datetime
    not_after: datetime

    @classmethod
    def from_certificate(cls, cert: x509.Certificate) -> LeafIdentity:
        orgs, cns = _o_and_cn(cert.subject)
        return cls(orgs, cns, cert.not_valid_before_utc, cert.not_valid_after_utc)

    @classmethod
    def from_peercert(cls, peercert: Mapping[str, Any]) -> LeafIdentity:
        """From the stdlib's decoded form of a *verified* peer certificate (``SSLObject.getpeercert()``);
        raises ``ValueError``/``KeyError`` if it is not in the expected shape (then parse the DER instead)."""
        orgs: list[str] = []
        cns: list[str] = []
        for rdn in peercert["subject"]:
            for key, value in rdn:
                if key == "organizationName":
                    orgs.append(value)
                elif key == "commonName":
                    cns.append(value)
        return cls(tuple(orgs), tuple(cns), _ssl_time(peercert["notBefore"]), _ssl_time(peercert["notAfter"]))


def check_station_certificate(
    cert: x509.Certificate | LeafIdentity, *, cso_name: str | None, serial: str, at: datetime,
) -> tuple[Violation, ...]:
    """Every profile-3 rule ``cert`` breaks for a station with serial number ``serial``."""
    out: list[Violation] = []
    leaf = cert if isinstance(cert, LeafIdentity) else LeafIdentity.from_certificate(cert)
    orgs, cns = leaf.organizations, leaf.common_names
    if cso_name is not None and not any(cso_name in o for o in orgs):
        found = orgs[0] if orgs else "(none)"
        out.append(Violation("A00.FR.404", f"subject O {found!r} does not contain the CSO name {cso_name!r}"))
    if cns != (serial,):
        found = ", ".join(cns) or "(none)"
        out.append(Violation("A00.FR.405", f"subject CN {found!r} is not the station's serial number {serial!r}"))
    not_before, not_after = leaf.not_before, leaf.not_after
    if not not_before <= at <= not_after:
        span = f"{not_before:%Y-%m-%d} to {not_after:%Y-%m-%d}"
        out.append(Violation("A00.FR.403", f"the certificate is not valid at {at:%Y-%m-%dT%H:%M:%SZ} (valid {span})"))
    return tuple(out)


def verify_station_certificate(
    cert: x509.Certificate, *, cso_name: str | None, serial: str, at: datetime,
    intermediates: Sequence[x509.Certificate] = (), roots: Sequence[x509.Certificate] = (),
) -> None:
    """Raise :class:`PolicyError` (security event InvalidChargingStationCertificate) on any violation.

    With ``roots`` the path is validated too (raises :class:`ChainError` with the same event).
    """
    if roots:
        try:
            verify_chain(cert, intermediates, roots, at=at)
        except ChainError as exc:
            raise ChainError(exc.message, requirement="A00.FR.403", security_event=EVENT) from None
    violations = check_station_certificate(cert, cso_name=cso_name, serial=serial, at=at)
    if violations:
        raise PolicyError("the charging station certificate is not acceptable", violations, security_event=EVENT)
