"""Certificate, chain and PEM loading: ``pem_blocks``, ``load_certificates`` (strict and not), chain validation, lint.

Input: one byte of options (strict PEM, which roots), then a PEM bundle or a DER certificate. Whatever
loads must be usable: every field read, the chain validated, the profile linted, the hash data made.
"""

from __future__ import annotations

from contextlib import suppress

from cryptography.hazmat.primitives.serialization import Encoding

from ocppsec.pki.certmgmt import CertificateUse
from ocppsec.pki.chain import order_chain, verify_chain, verify_issued_chain
from ocppsec.pki.errors import OcppsecError
from ocppsec.pki.hashdata import CertificateHashDataChain, compute_hash_data
from ocppsec.pki.lint import guess_profile, lint_certificate
from ocppsec.pki.pem import certificates_to_pem, load_certificate, load_certificates, pem_blocks

from . import _material as m
from ._harness import harness

ALLOWED = (OcppsecError,)


@harness(ALLOWED)
def TestOneInput(data: bytes) -> None:
    options = data[0] if data else 0
    body = data[1:]
    pem_blocks(body)
    certs = load_certificates(body, strict=bool(options & 1))
    h = m.hierarchy()
    roots = [h.ca("csms-root").certificate, h.ca("v2g-root").certificate]
    ordered = order_chain(certs)
    certificates_to_pem(certs)
    for n, cert in enumerate(ordered):  # each step on its own: a refusal of one must not hide the others
        with suppress(*ALLOWED):
            lint_certificate(cert, guess_profile(cert)).to_json()
        with suppress(*ALLOWED):
            compute_hash_data(cert, ordered[n + 1] if n + 1 < len(ordered) else cert)
    with suppress(*ALLOWED):
        CertificateHashDataChain.for_chain("V2GCertificateChain", ordered, roots[0] if options & 4 else None).to_ocpp()
    with suppress(*ALLOWED):
        verify_issued_chain(certs, roots, at=m.NOW, expected_cn=m.SERIAL if options & 8 else None)
    with suppress(*ALLOWED):
        verify_chain(ordered[0], ordered[1:], roots, at=m.NOW, max_depth=options >> 5)
    load_certificate(body)


def seeds() -> dict[str, bytes]:
    h = m.hierarchy()
    base = m.station_base()
    out = {
        "station-chain-strict": b"\x0b" + base.chains[CertificateUse.CHARGING_STATION].encode(),
        "v2g-chain": b"\x06" + base.chains[CertificateUse.V2G].encode(),
        "root-der": b"\x00" + h.ca("csms-root").certificate.public_bytes(Encoding.DER),
        "server-rsa-chain": b"\x02" + h.certificates["csms-server-rsa"].chain_pem().encode(),
        "firmware-signing": b"\x00" + m.pem(h.certificates["firmware-signing"].certificate).encode(),
        "text-around": b"\x00junk before\n" + m.pem(h.ca("mo-root").certificate).encode() + b"junk after\n",
    }
    return out
