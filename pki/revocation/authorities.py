"""The CAs an OCSP responder answers for, from a PKI directory, each with a current delegated responder.

:func:`load_authorities` opens the CAs of a PKI directory and makes sure each has a current delegated
responder certificate (issued, key written 0600 and encrypted, recorded in the ledger with role
``ocsp-responder``), renewing it ``renew_before`` ahead of expiry. No HTTP here: the responder's HTTP
adapter is :mod:`ocppsec.pki.revocation.server`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from ocppsec.pki.builder import new_serial
from ocppsec.pki.directory import PkiDirectory
from ocppsec.pki.errors import DuplicateError
from ocppsec.pki.keys import LocalKey, generate_key
from ocppsec.pki.ledger import CertificateRecord, record_for
from ocppsec.pki.revocation.ocsp import (
    OCSP_RESPONDER_ROLE,
    OcspAuthority,
    issue_responder_certificate,
    responder_key_spec,
)

__all__ = ["ensure_responder", "load_authorities"]


def _current_responder(pki: PkiDirectory, ca_name: str, at: datetime, renew_before: timedelta) -> CertificateRecord | None:
    best: CertificateRecord | None = None
    for rec in pki.ledger.all():
        if (rec.role == OCSP_RESPONDER_ROLE and rec.issuer_ca == ca_name and rec.status == "valid"
                and rec.key_ref is not None and rec.not_before <= at and rec.not_after - renew_before > at
                and (best is None or rec.not_after > best.not_after)):
            best = rec
    return best


def ensure_responder(
    pki: PkiDirectory, ca_name: str, *, at: datetime, validity: timedelta = timedelta(days=30),
    renew_before: timedelta = timedelta(days=7),
) -> OcspAuthority:
    """The CA with a current delegated responder, issuing (and recording) a new one when needed."""
    ca = pki.ca(ca_name)
    rec = _current_responder(pki, ca_name, at, renew_before)
    if rec is None:
        spec = responder_key_spec(ca.key)
        for _attempt in range(3):
            serial = new_serial()
            private = generate_key(spec)
            key = LocalKey(private, f"ocsp-responder {ca_name}")
            cert = issue_responder_certificate(ca.certificate, ca.key, key, at=at, validity=validity, serial=serial,
                                               family=ca.profile.family)
            key_ref = pki.store_key(f"ocsp-responder-{ca_name}-{serial:x}", private)
            rec = record_for(cert, issuer_ca=ca_name, role=OCSP_RESPONDER_ROLE, issued_at=at, key_ref=key_ref)
            try:
                pki.ledger.add([rec])
            except DuplicateError:
                continue
            break
        else:
            raise DuplicateError(f"could not record an OCSP responder certificate for {ca_name}")
    assert rec.key_ref is not None
    return OcspAuthority(ca_name, ca.certificate, rec.certificate(), pki.signing_key(rec.key_ref))


def load_authorities(
    pki: PkiDirectory, ca_names: Sequence[str] = (), *, at: datetime, delegated: bool = True,
    responder_validity: timedelta = timedelta(days=30), renew_before: timedelta = timedelta(days=7),
) -> list[OcspAuthority]:
    """The CAs to serve (all CAs of the directory when ``ca_names`` is empty)."""
    names = list(ca_names) or [r.name for r in pki.ledger.all()
                               if r.is_ca and r.name is not None and r.retired_at is None]  # a retired CA's key is gone
    out = []
    for name in names:
        if delegated:
            out.append(ensure_responder(pki, name, at=at, validity=responder_validity, renew_before=renew_before))
        else:
            ca = pki.ca(name)
            out.append(OcspAuthority(name, ca.certificate, ca.certificate, ca.key))
    return out
