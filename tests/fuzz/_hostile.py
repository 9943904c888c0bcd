"""One hostile input per class of input that broke the contract, made from the toolkit's own output.

The unit tests in ``test_hostile_inputs.py`` use them directly; ``python -m tests.fuzz._hostile`` writes
each that is not saved yet, in its harness' input format, to ``findings/<harness>/<class>`` (the
minimised findings the replay test runs). Each function says what it changes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ocppsec.pki.certmgmt import CertificateUse
from ocppsec.pki.csr import make_csr
from ocppsec.pki.keys import generate_key
from ocppsec.pki.keys.base import KeySpec
from ocppsec.pki.profiles import get_profile
from ocppsec.pki.revocation.client import build_request
from ocppsec.pki.revocation.ocsp import CertId

from . import _material as m
from ._harness import FINDINGS, join


def _replace_once(data: bytes, old: bytes, new: bytes) -> bytes:
    assert data.count(old) >= 1, (old, data.hex())
    return data.replace(old, new, 1)


def _pem(label: str, der: bytes) -> bytes:
    import base64

    body = base64.encodebytes(der).replace(b"\n", b"")
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return b"-----BEGIN " + label.encode() + b"-----\n" + b"\n".join(lines) + b"\n-----END " + label.encode() + b"-----\n"


@cache
def _csr_der() -> bytes:
    """A station CSR with keyUsage and basicConstraints extensions (P-256, ecdsa-with-SHA256)."""
    csr = make_csr(generate_key(KeySpec.P256), {"O": m.CSO, "CN": m.SERIAL}, get_profile("charging-station"))
    return csr.public_bytes(Encoding.DER)


def csr_invalid_version() -> bytes:
    """PKCS#10 version 5 (pyca: InvalidVersion, not a ValueError)."""
    return _pem("CERTIFICATE REQUEST", _replace_once(_csr_der(), b"\x02\x01\x00", b"\x02\x01\x05"))


def csr_duplicate_extension() -> bytes:
    """basicConstraints' OID turned into keyUsage's: two keyUsage extensions (pyca: DuplicateExtension)."""
    return _pem("CERTIFICATE REQUEST", _replace_once(_csr_der(), bytes.fromhex("551d13"), bytes.fromhex("551d0f")))


def csr_unknown_signature_algorithm() -> bytes:
    """Signature algorithm 1.2.840.10045.4.3.9 (pyca: UnsupportedAlgorithm from signature_hash_algorithm)."""
    return _pem("CERTIFICATE REQUEST", _replace_once(_csr_der(), bytes.fromhex("2a8648ce3d040302"), bytes.fromhex("2a8648ce3d040309")))


def root_with_unparseable_issuer() -> bytes:
    """The CSMS root with its issuer C turned into a UTF8String that is not UTF-8: loads, ``.issuer`` raises later."""
    der = m.hierarchy().ca("csms-root").certificate.public_bytes(Encoding.DER)
    return _pem("CERTIFICATE", _replace_once(der, b"\x13\x02DE", b"\x0c\x02\xff\xfe"))


def leaf_with_unparseable_extension() -> bytes:
    """The station certificate with its basicConstraints value truncated (SEQUENCE length 1, no content) (``.extensions`` raises later)."""
    leaf = x509.load_pem_x509_certificate(m.station_base().chains[CertificateUse.CHARGING_STATION].encode())
    der = leaf.public_bytes(Encoding.DER)
    return _pem("CERTIFICATE", _replace_once(der, bytes.fromhex("551d130101ff04023000"), bytes.fromhex("551d130101ff04023001")))


def timestamp_year1_positive_offset() -> dict[str, str]:
    return {"type": "StartupOfTheDevice", "timestamp": "0001-01-01T00:00:00+01:00"}


def timestamp_year9999_negative_offset() -> dict[str, str]:
    return {"type": "StartupOfTheDevice", "timestamp": "9999-12-31T23:59:59-01:00"}


def lone_surrogate_event() -> str:
    """A SecurityEventNotification whose type and techInfo hold lone surrogates (legal JSON escapes, not UTF-8)."""
    return '{"type": "Tamper\\ud800", "timestamp": "2026-11-23T11:00:00Z", "techInfo": "x\\udc00y"}'


def chain_with_lone_surrogate() -> str:
    """The station's CertificateSigned chain with a lone surrogate in its base64 (JSON can carry "\\udf15")."""
    chain = m.station_base().chains[CertificateUse.CHARGING_STATION]
    return chain[:40] + "\udf15" + chain[40:]


MALFORMED_PATH = "//[?"


def ocsp_request_negative_serial() -> bytes:
    """A request for serial -1 under the CSMS root (pyca's builder refuses negatives; the DER is edited)."""
    setup = m.ocsp_setup()
    good = CertId.for_certificate(setup.good, setup.root)
    der, _ = build_request(CertId(good.hash_algorithm, good.issuer_name_hash, good.issuer_key_hash, 0x7F), with_nonce=False)
    return _replace_once(der, b"\x02\x01\x7f", b"\x02\x01\xff")


def _revoked_response() -> bytes:
    setup = m.ocsp_setup()
    request, _ = build_request(CertId.for_certificate(setup.revoked, setup.root), with_nonce=False)
    return setup.responder.respond(request, at=m.NOW)


def ocsp_response_year0() -> bytes:
    """The revoked answer with thisUpdate in year 0 (GeneralizedTime 0000...; pyca raises reading it)."""
    this_update = b"\x18\x0f" + m.NOW.strftime("%Y%m%d%H%M%SZ").encode()
    return _replace_once(_revoked_response(), this_update, b"\x18\x0f" + m.NOW.strftime("0000%m%d%H%M%SZ").encode())


def ocsp_response_unknown_reason() -> bytes:
    """The revoked answer with CRLReason 7 (unassigned in RFC 5280; pyca raises reading it)."""
    return _replace_once(_revoked_response(), bytes.fromhex("a0030a0101"), bytes.fromhex("a0030a0107"))


HIERARCHY_SUBJECT_NUMBER = b'[[ca]]\nname = "csms-root"\nsubject = 3\n'
HIERARCHY_STRAY_BRACE = b'[network]\ncso_name = "X"\n[[ca]]\nname = "csms-root"\nsubject = { CN = "{cso_name Root" }\n'
HIERARCHY_ATTRIBUTE_LOOKUP = b'[network]\ncso_name = "X"\n[[ca]]\nname = "csms-root"\nsubject = { CN = "{cso_name.__class__}" }\n'
HIERARCHY_NOT_UTF8 = b'[network]\ncso_name = "\xff\xfe"\n'


def findings() -> dict[str, dict[str, bytes]]:
    """Every hostile input in its harness' input format: ``{harness: {class: input}}``."""
    cs_chain = m.station_base().chains[CertificateUse.CHARGING_STATION]
    root_hd = '{"hashAlgorithm":"SHA256","issuerNameHash":"00","issuerKeyHash":"00","serialNumber":"1"}'
    return {
        "csr": {f"csr-{name}": b"\x00" + fn() for name, fn in (
            ("invalid-version", csr_invalid_version), ("duplicate-extension", csr_duplicate_extension),
            ("unknown-signature-algorithm", csr_unknown_signature_algorithm))},
        "certificates": {"cert-unparseable-issuer": b"\x00" + root_with_unparseable_issuer(),
                         "cert-unparseable-extension": b"\x00" + leaf_with_unparseable_extension()},
        "hashdata": {"hashdata-unparseable-issuer": join(root_hd, root_with_unparseable_issuer(), b"")},
        "station": {
            "install-root-unparseable-issuer": join(b"\x01" + root_with_unparseable_issuer(), b"\x03"),
            "certificate-signed-unparseable-extension": join(b"\x04" + leaf_with_unparseable_extension()),
            "certificate-signed-lone-surrogate": join(b"\x04" + chain_with_lone_surrogate().encode("utf-8", "surrogatepass")),
            "install-root-lone-surrogate": join(b"\x01" + chain_with_lone_surrogate().encode("utf-8", "surrogatepass")),
            "certificate-signed-then-unparseable-root": join(b"\x04" + cs_chain.encode(),
                                                             bytes([1 | (3 << 2)]) + root_with_unparseable_issuer()),
        },
        "events": {
            "timestamp-year1-positive-offset": b"\x09" + json.dumps([timestamp_year1_positive_offset(),
                                                                    {"type": "x", "timestamp": "2026-01-01T00:00:00Z"}]).encode(),
            "timestamp-year9999-negative-offset": b"\x0a" + json.dumps(timestamp_year9999_negative_offset()).encode(),
            "lone-surrogate-batch": b"\x09[" + lone_surrogate_event().encode() + b"]",
            "lone-surrogate-frame": b"\x08" + f'[2, "1", "SecurityEventNotification", {lone_surrogate_event()}]'.encode(),
        },
        "logs": {"log-lone-surrogate-and-year1": _log_with(lone_surrogate_event(), json.dumps(timestamp_year1_positive_offset()))},
        "handshake": {"path-unclosed-ipv6": join(b"\x00", MALFORMED_PATH, b"", b"", b"", b"")},
        "ocsp_request": {"ocsp-request-negative-serial": ocsp_request_negative_serial()},
        "ocsp_response": {"ocsp-response-year0": b"\x01" + ocsp_response_year0(),
                          "ocsp-response-unknown-reason": b"\x01" + ocsp_response_unknown_reason()},
        "hierarchy": {"hierarchy-subject-number": HIERARCHY_SUBJECT_NUMBER, "hierarchy-stray-brace": HIERARCHY_STRAY_BRACE,
                      "hierarchy-attribute-lookup": HIERARCHY_ATTRIBUTE_LOOKUP, "hierarchy-not-utf8": HIERARCHY_NOT_UTF8},
    }


def _log_with(*lines: str) -> bytes:
    from ocppsec.eventlog.logfile import render_log

    header = render_log([], station_id=m.STATION, at=m.NOW).split(b"\n")[0]
    return b"\x01" + header + b"\n" + b"\n".join(line.encode() for line in lines) + b"\n"


def write_findings(select: Callable[[str], bool] = lambda name: True) -> int:
    """Write the findings that are not saved yet (saved ones stay as they are: ECDSA signatures differ per run)."""
    written = 0
    for harness_name, inputs in findings().items():
        if not select(harness_name):
            continue
        folder = FINDINGS / harness_name
        folder.mkdir(parents=True, exist_ok=True)
        for label, data in inputs.items():
            if not (folder / label).exists():
                (folder / label).write_bytes(data)
                written += 1
    return written


if __name__ == "__main__":
    print(f"{write_findings()} findings written to {FINDINGS}")
