"""OCSP responses as a responder (or anyone on the path) returns them: ``check_response`` in the OCSP client.

Input: one byte of options (which certificate was asked about, whether the signature is checked and a
nonce expected), then the DER OCSPResponse. Only our errors may come out.
"""

from __future__ import annotations

from datetime import timedelta

from ocppsec.pki.errors import OcppsecError
from ocppsec.pki.revocation.client import check_response
from ocppsec.pki.revocation.ocsp import CertId

from . import _material as m
from ._harness import harness

ALLOWED = (OcppsecError,)
NONCE = b"0123456789abcdef"


def _asked(options: int) -> CertId:
    setup = m.ocsp_setup()
    cert = (setup.good, setup.revoked, setup.root)[options % 3]
    return CertId.for_certificate(cert, setup.root, "sha384" if options & 4 else "sha256")


@harness(ALLOWED)
def TestOneInput(data: bytes) -> None:
    options = data[0] if data else 0
    setup = m.ocsp_setup()
    result = check_response(data[1:], _asked(options), at=m.NOW + timedelta(hours=options >> 5),
                            issuer=setup.root if options & 8 else None, nonce=NONCE if options & 16 else None)
    _ = result.status, result.reason, result.revoked_at, result.this_update, result.next_update


def seeds() -> dict[str, bytes]:
    from ocppsec.pki.revocation.client import build_request

    setup = m.ocsp_setup()
    out = {}
    for options, label in ((0 | 8 | 16, "good-checked-nonce"), (1 | 8, "revoked-checked"), (2, "root-unchecked"),
                           (0 | 4 | 8, "good-sha384")):
        request, _ = build_request(_asked(options), nonce=NONCE if options & 16 else None, with_nonce=bool(options & 16))
        out[label] = bytes([options]) + setup.responder.respond(request, at=m.NOW)
    out["malformed-request-answer"] = b"\x08" + setup.responder.respond(b"\x30\x00", at=m.NOW)
    return out
