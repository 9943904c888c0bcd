"""OCSP requests as a station or any HTTP client sends them: ``parse_request`` and ``OcspResponder.respond``.

Input: the DER OCSPRequest. ``respond`` never raises and answers every request it cannot serve with
``malformedRequest`` or ``unauthorized``: ``internalError`` (our bug) is a finding too.
"""

from __future__ import annotations

from cryptography.x509 import ocsp

from ocppsec.pki.revocation.client import build_request
from ocppsec.pki.revocation.ocsp import CertId, OcspRequestError, parse_request

from . import _material as m
from ._harness import harness, never_raises

ALLOWED = (OcspRequestError,)


@harness(ALLOWED)
def TestOneInput(data: bytes) -> None:
    setup = m.ocsp_setup()
    answer = never_raises(setup.responder.respond, data, at=m.NOW)
    status = ocsp.load_der_ocsp_response(answer).response_status
    assert status is not ocsp.OCSPResponseStatus.INTERNAL_ERROR, "internalError answered to a request"
    parse_request(data)


def seeds() -> dict[str, bytes]:
    setup = m.ocsp_setup()
    good = CertId.for_certificate(setup.good, setup.root)
    return {
        "good-with-nonce": build_request(good, nonce=b"0123456789abcdef")[0],
        "good-without-nonce": build_request(good, with_nonce=False)[0],
        "revoked-sha384": build_request(CertId.for_certificate(setup.revoked, setup.root, "sha384"), with_nonce=False)[0],
        "root-sha1": build_request(CertId.for_certificate(setup.root, setup.root, "sha1"), nonce=b"n")[0],
        "unknown-serial": build_request(CertId(good.hash_algorithm, good.issuer_name_hash, good.issuer_key_hash, 0x1234567))[0],
    }
