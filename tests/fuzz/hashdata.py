"""CertificateHashData: ``CertificateHashData.from_ocpp`` (DeleteCertificate, GetCertificateStatus, ...) and ``compute_hash_data``.

Input: three fields split at the separator: the hash data as JSON (what a CSMS sends), a certificate
and its issuer (PEM or DER, what a station holds). Hash data that parses must compare and round-trip.
"""

from __future__ import annotations

import json

from ocppsec.pki.certmgmt import CertificateUse
from ocppsec.pki.errors import OcppsecError
from ocppsec.pki.hashdata import CertificateHashData, compute_hash_data, find_matching
from ocppsec.pki.pem import load_certificate, load_certificates

from . import _material as m
from ._harness import fields, harness, join

ALLOWED = (OcppsecError,)


@harness(ALLOWED)
def TestOneInput(data: bytes) -> None:
    raw_json, raw_cert, raw_issuer = fields(data, 3)
    computed = None
    if raw_cert:
        cert = load_certificates(raw_cert)[0]
        issuer = load_certificate(raw_issuer) if raw_issuer else None
        computed = compute_hash_data(cert, issuer, "SHA256")
        assert CertificateHashData.from_ocpp(computed.to_ocpp()).matches(computed)
    try:
        payload = json.loads(raw_json)
    except ValueError:
        return
    if not isinstance(payload, dict):
        return
    wanted = CertificateHashData.from_ocpp(payload)
    again = CertificateHashData.from_ocpp(wanted.to_ocpp())
    assert again.matches(wanted)
    if computed is not None:
        find_matching(wanted, [computed])


def seeds() -> dict[str, bytes]:
    h = m.hierarchy()
    root = h.ca("csms-root").certificate
    leaf_pem = m.station_base().chains[CertificateUse.CHARGING_STATION]
    leaf = load_certificate(leaf_pem)
    hd = compute_hash_data(leaf, root)
    sub = h.ca("cpo-sub-ca-1")
    return {
        "leaf-and-root": join(json.dumps(hd.to_ocpp()), leaf_pem, m.pem(root)),
        "root-self": join(json.dumps(compute_hash_data(root, root, "SHA512").to_ocpp()), m.pem(root), b""),
        "sub-ca": join(json.dumps(compute_hash_data(sub.certificate, h.ca("v2g-root").certificate, "SHA384").to_ocpp()),
                       m.pem(sub.certificate), m.pem(h.ca("v2g-root").certificate)),
        "json-only": join('{"hashAlgorithm":"SHA256","issuerNameHash":"00ff","issuerKeyHash":"AB","serialNumber":"01"}'),
    }
