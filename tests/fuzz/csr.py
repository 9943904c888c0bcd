"""CSR policy and issuance review: ``load_csr``, ``check_csr``, ``verify_csr``, ``CertificateService.review``.

Input: one byte choosing the certificate use (and so the profile), then the request (PEM or DER), as a
station sends it in SignCertificate. ``review`` must answer with an Outcome whatever it is sent.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

from ocppsec.pki.certmgmt import CertificateUse
from ocppsec.pki.certmgmt.model import SignRequest
from ocppsec.pki.csr import PolicyContext, check_csr, make_csr, verify_csr
from ocppsec.pki.errors import InputError, PolicyError
from ocppsec.pki.keys import LocalKey, generate_key
from ocppsec.pki.keys.base import KeySpec
from ocppsec.pki.pem import load_csr
from ocppsec.pki.profiles import get_profile

from . import _material as m
from ._harness import harness, never_raises, text

ALLOWED = (InputError, PolicyError)
_USES = (CertificateUse.CHARGING_STATION, CertificateUse.V2G, CertificateUse.COMBINED)
_PROFILES = {CertificateUse.CHARGING_STATION: "charging-station", CertificateUse.V2G: "secc",
             CertificateUse.COMBINED: "charging-station"}


@harness(ALLOWED)
def TestOneInput(data: bytes) -> None:
    use = _USES[data[0] % len(_USES)] if data else CertificateUse.CHARGING_STATION
    body = data[1:]
    decision = never_raises(m.service().review, m.STATION, SignRequest(text(body), use))
    assert decision.accepted == (decision.csr is not None)
    csr = load_csr(body)
    profile = get_profile(_PROFILES[use])
    report = check_csr(csr, profile, PolicyContext(cso_name=m.CSO, expected_cn=m.SERIAL))
    report.to_json()
    verify_csr(csr, profile)


def seeds() -> dict[str, bytes]:
    base = m.station_base()
    out: dict[str, bytes] = {}
    for n, use in enumerate(_USES[:2]):
        csr_pem = base.csrs[use].encode()
        out[f"{use.value}-pem"] = bytes([n]) + csr_pem
        out[f"{use.value}-der"] = bytes([n]) + load_csr(csr_pem).public_bytes(Encoding.DER)
    rsa_key = LocalKey(generate_key(KeySpec.RSA2048), "rsa")
    assert isinstance(rsa_key.private_key, rsa.RSAPrivateKey)
    subject = {"O": m.CSO, "CN": m.SERIAL}
    out["rsa-pem"] = b"\x00" + make_csr(rsa_key, subject, get_profile("charging-station")).public_bytes(Encoding.PEM)
    out["wrong-o"] = b"\x00" + make_csr(generate_key(KeySpec.P384), {"O": "Other", "CN": "http://x"}).public_bytes(Encoding.PEM)
    der = bytearray(load_csr(base.csrs[CertificateUse.CHARGING_STATION]).public_bytes(Encoding.DER))
    der[-5] ^= 0x01  # a signature that no longer verifies
    out["altered-signature"] = b"\x00" + bytes(der)
    return out
