"""Profile 3 (mutual TLS): what the CSMS checks in a station's client certificate (A00.FR.403-408).

The TLS layer has already validated the path to a trusted CSO root (A00.FR.403); the stdlib gives us
only the leaf. Here: the subject O contains the CSO name (A00.FR.404), the subject CN equals the
station's serial number (A00.FR.405) as registered for the identity in the URL (so a valid certificate
of another station is refused), and the certificate is inside its validity period at ``at``.
Optionally, when the chain is known (library use), the path is validated again with
:func:`ocppsec.pki.chain.verify_chain`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cryptography import x509
from cryptography.x509.oid import NameOID

from ocppsec.pki.chain import verify_chain
from ocppsec.pki.errors import ChainError, PolicyError, Violation

__all__ = ["EVENT", "check_station_certificate", "verify_station_certificate"]

EVENT = "InvalidChargingStationCertificate"


_O, _CN = NameOID.ORGANIZATION_NAME, NameOID.COMMON_NAME


def _o_and_cn(name: x509.Name) -> tuple[list[str], list[str]]:
    """The subject's O and CN values, in one pass (identity binding needs nothing else)."""
    orgs: list[str] = []
    cns: list[str] = []
    for attr in name:
        oid = attr.oid
        if oid in (_O, _CN):
            value = attr.value if isinstance(attr.value, str) else attr.value.decode("latin-1")
            (orgs if oid == _O else cns).append(value)
    return orgs, cns


def check_station_certificate(
    cert: x509.Certificate, *, cso_name: str | None, serial: str, at: datetime,
) -> tuple[Violation, ...]:
    """Every profile-3 rule ``cert`` breaks for a station with serial number ``serial``."""
    out: list[Violation] = []
    orgs, cns = _o_and_cn(cert.subject)
    if cso_name is not None and not any(cso_name in o for o in orgs):
        found = orgs[0] if orgs else "(none)"
        out.append(Violation("A00.FR.404", f"subject O {found!r} does not contain the CSO name {cso_name!r}"))
    if cns != [serial]:
        found = ", ".join(cns) or "(none)"
        out.append(Violation("A00.FR.405", f"subject CN {found!r} is not the station's serial number {serial!r}"))
    not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
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
