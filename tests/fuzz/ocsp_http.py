"""Fuzz harness: raw HTTP request bytes into the OCSP responder's aiohttp application (in process).

Input: the bytes a client sends on one connection (one or more requests, possibly truncated). They go
through aiohttp's real request parser and our handler on an in-memory transport; the harness then
reads every answer the server wrote. Property: each answer is an HTTP response we mean to give (200 with
an OCSPResponse that is not ``internalError``, or 100 / 400 / 405 / 408 / 413 / 417 / 503), never a 500, nothing
logged at ERROR by our code or aiohttp, no exception; every input is done well within a second.

Interface (the shared runner's, ``tests/fuzz/_harness.py``): ``TestOneInput(data: bytes) -> None``,
``seeds() -> dict[str, bytes]`` and ``ALLOWED`` (empty: nothing may escape).
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from ocppsec.pki._http import HttpLimits, HttpServer
from ocppsec.pki.keys import LocalKey
from ocppsec.pki.ledger import CertificateRecord, CertificateStatus
from ocppsec.pki.revocation.ocsp import CertId, OcspAuthority, OcspResponder
from ocppsec.pki.revocation.ocsp_client_core import build_request
from ocppsec.pki.revocation.server import OcspHttpServer

from ._http_wire import ErrorRecords, exchange, responses

__all__ = ["ALLOWED", "TestOneInput", "seeds"]

ALLOWED: tuple[type[BaseException], ...] = ()
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
EXPECTED_STATUSES = {100, 200, 400, 405, 408, 413, 417, 503}


# -- the responder ----------------------------------------------------------------------------------------------
class _Ledger:
    def __init__(self, records: Sequence[CertificateRecord]) -> None:
        self.records = list(records)

    def find_serial(self, serial: str, issuer_ca: str | None = None) -> list[CertificateRecord]:
        return [r for r in self.records if r.serial == serial and issuer_ca in (None, r.issuer_ca)]

    def revoked(self, issuer_ca: str) -> list[CertificateRecord]:
        return [r for r in self.records if r.issuer_ca == issuer_ca and r.status == CertificateStatus.REVOKED]

    def all(self) -> list[CertificateRecord]:
        return list(self.records)


class _Setup:
    def __init__(self) -> None:
        key = ec.derive_private_key(0x0C5B_F022_5EED, ec.SECP256R1())  # fixed: the seeds stay the same bytes
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fuzz OCSP CA")])
        self.ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(1).not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=365))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
        pem = self.ca.public_bytes(Encoding.PEM).decode()
        records = [CertificateRecord(serial=format(serial, "x"), issuer_ca="fuzz-ca", role="charging-station",
                                     subject="CN=x", not_before=NOW - timedelta(days=1), not_after=NOW + timedelta(days=30),
                                     issued_at=NOW, fingerprint=str(serial), pem=pem, status=status,
                                     revoked_at=NOW if status is CertificateStatus.REVOKED else None,
                                     revocation_reason="keyCompromise" if status is CertificateStatus.REVOKED else None)
                   for serial, status in ((0x1001, CertificateStatus.VALID), (0x1002, CertificateStatus.REVOKED))]
        authority = OcspAuthority("fuzz-ca", self.ca, self.ca, LocalKey(key, "fuzz-ca"))
        self.responder = OcspResponder([authority], _Ledger(records))
        self.responder.preproduce(at=NOW)
        self.server = OcspHttpServer(("127.0.0.1", 0), self.responder, clock=lambda: NOW, refresh_interval=None,
                                     max_request_bytes=4096, offload_on_demand=False)
        self.http = HttpServer(self.server.application(), limits=HttpLimits(header_timeout=0.2, body_timeout=0.2,
                                                                             lingering_time=0.05, max_line_size=16384))
        self.loop = asyncio.new_event_loop()
        self.factory = self.loop.run_until_complete(self.http.prepare())
        self.errors = ErrorRecords()
        for logger in ("ocppsec", "aiohttp"):
            logging.getLogger(logger).addHandler(self.errors)

    def cert_id(self, serial: int, algorithm: str = "sha256") -> CertId:
        name_hash, key_hash = _issuer_hashes(self.ca, algorithm)
        return CertId(algorithm, name_hash, key_hash, serial)


def _issuer_hashes(ca: x509.Certificate, algorithm: str) -> tuple[bytes, bytes]:
    from ocppsec.pki.revocation.ocsp import issuer_hashes

    return issuer_hashes(ca, algorithm)


@cache
def _setup() -> _Setup:
    return _Setup()


def TestOneInput(data: bytes) -> None:
    setup = _setup()
    setup.errors.records.clear()
    out = setup.loop.run_until_complete(exchange(setup.factory, data))
    assert not setup.errors.records, f"logged: {setup.errors.records[0].getMessage()}"
    for status, headers, body in responses(out):
        assert status in EXPECTED_STATUSES, f"HTTP {status} answered"
        if status == 200:
            assert headers.get("content-type") == "application/ocsp-response", headers
            answer = ocsp.load_der_ocsp_response(body)
            assert answer.response_status is not ocsp.OCSPResponseStatus.INTERNAL_ERROR, "internalError answered"


def _post(body: bytes, extra: bytes = b"") -> bytes:
    return (b"POST /fuzz-ca HTTP/1.1\r\nHost: ocsp.example\r\nContent-Type: application/ocsp-request\r\n" + extra
            + b"Content-Length: %d\r\n\r\n" % len(body) + body)


def seeds() -> dict[str, bytes]:
    setup = _setup()
    good, _ = build_request(setup.cert_id(0x1001), with_nonce=False)
    nonce, _ = build_request(setup.cert_id(0x1002, "sha1"), nonce=b"0123456789abcdef")
    unknown, _ = build_request(setup.cert_id(0x77), nonce=b"fuzz")
    b64 = base64.b64encode(good).decode()
    assert good.count(b"\x02\x02\x10\x01") == 1
    negative = good.replace(b"\x02\x02\x10\x01", b"\x02\x02\x90\x01")  # serial -0x6fff: once an internalError
    return {
        "post-preproduced": _post(good),
        "post-nonce": _post(nonce),
        "post-unknown": _post(unknown),
        "get-negative-serial": f"GET /{base64.b64encode(negative).decode()} HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
        "get-base64": f"GET /fuzz-ca/{b64.replace('/', '%2F')} HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
        "get-raw-slashes": f"GET /{b64} HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
        "pipelined": _post(good) + _post(nonce) + f"GET /{b64} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode(),
        "chunked": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % len(good) + good
                   + b"\r\n0\r\n\r\n",
        "smuggle-cl-te": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET",
        "chunk-negative": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n" + good,
        "length-superscript": "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ²\r\n\r\n".encode() + good,
        "oversized": _post(b"\x30" * 5000),
        "expect": _post(good, b"Expect: 100-continue\r\n"),
        "expect-too-large": _post(b"\x30" * 5000, b"Expect: 100-continue\r\n"),
        "expect-unknown": _post(good, b"Expect: 100-\xee\r\n"),  # once a 500 from aiohttp's own expect handler
        "truncated-body": _post(good)[:-10],
        "not-der": _post(b"\x30\x82\xff\xff garbage"),
        "method": b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    }

