"""OCSP responder: sans-I/O answers, then `openssl ocsp` as the independent client over real HTTP."""

from __future__ import annotations

import base64
import socket
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from ocppsec.pki.directory import PkiDirectory
from ocppsec.pki.errors import VerificationError
from ocppsec.pki.revocation.authorities import load_authorities
from ocppsec.pki.revocation.client import build_request, check_response, fetch, query
from ocppsec.pki.revocation.ocsp import OCSP_RESPONDER_ROLE, CertId, CertStatus, OcspAuthority, OcspResponder, parse_request
from ocppsec.pki.revocation.server import OcspHttpServer, parse_listen
from revocation.conftest import AT, Issued, issue_station
from revocation.test_crl import ExternalKey


def _responder(pki: PkiDirectory, *, delegated: bool = True, at: datetime = AT) -> OcspResponder:
    return OcspResponder(load_authorities(pki, ["csms-root"], at=at, delegated=delegated), pki.ledger)


def _ask(responder: OcspResponder, cert: x509.Certificate, issuer: x509.Certificate, *, nonce: bool = True,
         at: datetime = AT, algorithm: str = "sha256") -> tuple[ocsp.OCSPResponse, bytes | None]:
    request, sent = build_request(CertId.for_certificate(cert, issuer, algorithm), with_nonce=nonce)
    return ocsp.load_der_ocsp_response(responder.respond(request, at=at)), sent


def test_good_revoked_unknown_sans_io(pki_dir: PkiDirectory, tmp_path: Path) -> None:
    root = pki_dir.ca_certificate("csms-root")
    good = issue_station(pki_dir, "SN-1", tmp_path)
    bad = issue_station(pki_dir, "SN-2", tmp_path)
    pki_dir.ledger.revoke(bad.serial, "csms-root", AT, "keyCompromise")
    responder = _responder(pki_dir)
    for issued, status in ((good, CertStatus.GOOD), (bad, CertStatus.REVOKED)):
        cert_id = CertId.for_certificate(issued.cert, root)
        request, nonce = build_request(cert_id)
        result = check_response(responder.respond(request, at=AT), cert_id, at=AT, issuer=root, nonce=nonce)
        assert result.status is status and result.signature_checked
        assert result.next_update == AT + timedelta(hours=24)
    resp, _ = _ask(responder, bad.cert, root)
    assert resp.revocation_reason is x509.ReasonFlags.key_compromise and resp.revocation_time_utc == AT
    unknown = CertId("sha256", *CertId.for_certificate(good.cert, root).issuer_key[1:], 0xDEADBEEF)
    request, nonce = build_request(unknown)
    assert check_response(responder.respond(request, at=AT), unknown, at=AT, issuer=root, nonce=nonce).status is CertStatus.UNKNOWN


def test_delegated_responder_certificate(pki_dir: PkiDirectory, tmp_path: Path) -> None:
    root = pki_dir.ca_certificate("csms-root")
    leaf = issue_station(pki_dir, "SN-D", tmp_path).cert
    resp, _ = _ask(_responder(pki_dir), leaf, root)
    (signer,) = resp.certificates
    assert signer.issuer == root.subject and signer != root
    assert ExtendedKeyUsageOID.OCSP_SIGNING in signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert isinstance(signer.extensions.get_extension_for_class(x509.OCSPNoCheck).value, x509.OCSPNoCheck)
    assert resp.responder_key_hash is not None
    recorded = [r for r in pki_dir.ledger.all() if r.role == OCSP_RESPONDER_ROLE]
    assert len(recorded) == 1 and recorded[0].key_ref and recorded[0].key_ref.startswith("file:")
    assert (pki_dir.path / recorded[0].key_ref[5:]).stat().st_mode & 0o077 == 0
    _responder(pki_dir)  # reused, not issued again
    assert len([r for r in pki_dir.ledger.all() if r.role == OCSP_RESPONDER_ROLE]) == 1
    _responder(pki_dir, at=AT + timedelta(days=25))  # inside the renewal window: a new one
    assert len([r for r in pki_dir.ledger.all() if r.role == OCSP_RESPONDER_ROLE]) == 2


def test_ca_signs_itself_and_external_key(pki_dir: PkiDirectory, tmp_path: Path) -> None:
    root = pki_dir.ca_certificate("csms-root")
    leaf = issue_station(pki_dir, "SN-E", tmp_path).cert
    ca = pki_dir.ca("csms-root")
    for key in (ca.key, ExternalKey(ca.key)):  # type: ignore[arg-type]
        responder = OcspResponder([OcspAuthority("csms-root", root, root, key)], pki_dir.ledger)  # type: ignore[arg-type]
        cert_id = CertId.for_certificate(leaf, root)
        request, nonce = build_request(cert_id)
        result = check_response(responder.respond(request, at=AT), cert_id, at=AT, issuer=root, nonce=nonce)
        assert result.status is CertStatus.GOOD
        assert not ocsp.load_der_ocsp_response(result.der).certificates


def test_preproduced_and_refresh(pki_dir: PkiDirectory, tmp_path: Path) -> None:
    root = pki_dir.ca_certificate("csms-root")
    leaf = issue_station(pki_dir, "SN-P", tmp_path)
    responder = _responder(pki_dir)
    assert responder.preproduce(at=AT) >= 2
    first, _ = _ask(responder, leaf.cert, root, nonce=False, at=AT + timedelta(hours=1))
    again, _ = _ask(responder, leaf.cert, root, nonce=False, at=AT + timedelta(hours=2), algorithm="sha1")
    assert first.this_update_utc == AT and again.this_update_utc == AT  # served from the cache
    assert responder.stats.preproduced_hits == 2 and responder.stats.on_demand == 0
    with_nonce, _ = _ask(responder, leaf.cert, root, nonce=True, at=AT + timedelta(hours=1))
    assert with_nonce.this_update_utc == AT + timedelta(hours=1)  # on demand
    # a revocation (possibly on another CSMS node) replaces the cached good answer at the next refresh
    pki_dir.ledger.revoke(leaf.serial, "csms-root", AT + timedelta(hours=3), "keyCompromise")
    assert responder.refresh(at=AT + timedelta(hours=3)) == 2  # sha1 + sha256 entries
    now, _ = _ask(responder, leaf.cert, root, nonce=False, at=AT + timedelta(hours=3))
    assert now.certificate_status is ocsp.OCSPCertStatus.REVOKED
    # entries are re-signed ahead of nextUpdate (validity 24 h, refresh 6 h before)
    assert responder.refresh(at=AT + timedelta(hours=10)) == 0
    assert responder.refresh(at=AT + timedelta(hours=18)) == responder.cached - 2  # the two re-signed at +3 h wait
    late, _ = _ask(responder, leaf.cert, root, nonce=False, at=AT + timedelta(hours=18))
    assert late.next_update_utc == AT + timedelta(hours=27)  # re-signed at +3 h, still served
    server_rec = pki_dir.ledger.get_named("csms-server-ecdsa")
    assert server_rec is not None
    server, _ = _ask(responder, server_rec.certificate(), root, nonce=False, at=AT + timedelta(hours=18))
    assert server.next_update_utc == AT + timedelta(hours=42)  # re-signed at +18 h


def test_malformed_and_unauthorized(pki_dir: PkiDirectory, tmp_path: Path) -> None:
    responder = _responder(pki_dir)
    for junk in (b"", b"\x30\x03\x02\x01\x01", b"garbage" * 50, b"\x30\x82\xff\xff"):
        assert ocsp.load_der_ocsp_response(responder.respond(junk, at=AT)).response_status is \
            ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    mfr = pki_dir.ca_certificate("manufacturer-root")
    fw = pki_dir.ledger.get_named("firmware-signing")
    assert fw is not None
    resp, _ = _ask(responder, fw.certificate(), mfr)
    assert resp.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED
    # a nonce longer than RFC 8954 allows
    root = pki_dir.ca_certificate("csms-root")
    leaf = issue_station(pki_dir, "SN-M", tmp_path).cert
    request, _ = build_request(CertId.for_certificate(leaf, root), nonce=b"x" * 33)
    assert ocsp.load_der_ocsp_response(responder.respond(request, at=AT)).response_status is \
        ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    with pytest.raises(Exception, match="OCSP request"):
        parse_request(b"\x00")


def test_client_rejects_bad_answers(pki_dir: PkiDirectory, tmp_path: Path) -> None:
    root = pki_dir.ca_certificate("csms-root")
    leaf = issue_station(pki_dir, "SN-C", tmp_path).cert
    other = issue_station(pki_dir, "SN-O", tmp_path).cert
    responder = _responder(pki_dir)
    cert_id = CertId.for_certificate(leaf, root)
    request, _nonce = build_request(cert_id)
    der = responder.respond(request, at=AT)
    with pytest.raises(VerificationError, match="nonce"):
        check_response(der, cert_id, at=AT, issuer=root, nonce=b"another nonce")
    with pytest.raises(VerificationError, match="another certificate"):
        check_response(der, CertId.for_certificate(other, root), at=AT, issuer=root)
    with pytest.raises(VerificationError, match="stale"):
        check_response(der, cert_id, at=AT + timedelta(days=2), issuer=root)
    with pytest.raises(VerificationError, match="neither"):
        check_response(der, cert_id, at=AT, issuer=pki_dir.ca_certificate("manufacturer-root"))


# -- over HTTP, openssl ocsp as the client ----------------------------------------------------------------
@pytest.fixture
def served(pki_dir: PkiDirectory, tmp_path: Path) -> Iterator[tuple[OcspHttpServer, dict[str, Issued]]]:
    good = issue_station(pki_dir, "SN-GOOD", tmp_path)
    bad = issue_station(pki_dir, "SN-REV", tmp_path)
    pki_dir.ledger.revoke(bad.serial, "csms-root", AT, "keyCompromise")
    now = datetime.now(UTC)
    responder = OcspResponder(load_authorities(pki_dir, ["csms-root"], at=now), pki_dir.ledger)
    responder.preproduce(at=now)
    server = OcspHttpServer(("127.0.0.1", 0), responder, refresh_interval=None)
    server.start()
    yield server, {"good": good, "revoked": bad}
    server.stop()


def _openssl_ocsp(server: OcspHttpServer, root_pem: Path, *args: str) -> str:
    res = subprocess.run(["openssl", "ocsp", "-issuer", str(root_pem), "-CAfile", str(root_pem),
                          "-url", server.url + "/csms-root", "-resp_text", *args],
                         capture_output=True, text=True, timeout=30)
    return res.stdout + res.stderr


def test_openssl_good_revoked_unknown_nonce(served: tuple[OcspHttpServer, dict[str, Issued]], root_pem: Path) -> None:
    server, certs = served
    out = _openssl_ocsp(server, root_pem, "-cert", str(certs["good"].path))
    assert "Response verify OK" in out and f"{certs['good'].path}: good" in out and "OCSP Nonce" in out
    out = _openssl_ocsp(server, root_pem, "-cert", str(certs["revoked"].path))
    assert "Response verify OK" in out and ": revoked" in out and "keyCompromise" in out
    out = _openssl_ocsp(server, root_pem, "-serial", "0x1234567")
    assert "Response verify OK" in out and "0x1234567: unknown" in out
    out = _openssl_ocsp(server, root_pem, "-cert", str(certs["good"].path), "-no_nonce")
    assert "Response verify OK" in out and ": good" in out and "OCSP Nonce" not in out
    out = _openssl_ocsp(server, root_pem, "-cert", str(certs["good"].path), "-cert", str(certs["revoked"].path))
    assert "Malformed" in out or "malformed" in out  # one certificate per request is what we answer
    assert server.responder.stats.errors == 0


def test_http_get_and_bad_requests(served: tuple[OcspHttpServer, dict[str, Issued]], pki_dir: PkiDirectory) -> None:
    server, certs = served
    root = pki_dir.ca_certificate("csms-root")
    cert_id = CertId.for_certificate(certs["good"].cert, root)
    now = datetime.now(UTC)
    result = query(server.url + "/csms-root", cert_id, at=now, issuer=root, method="GET", with_nonce=False)
    assert result.status is CertStatus.GOOD
    request, _ = build_request(cert_id, with_nonce=False)
    raw = base64.b64encode(request).decode()
    with urllib.request.urlopen(f"{server.url}/{urllib.parse.quote(raw, safe='')}", timeout=10) as resp:
        assert resp.headers["Content-Type"] == "application/ocsp-response"
        assert "max-age" in resp.headers["Cache-Control"]
    # oversized POST: HTTP 413, the body not read
    req = urllib.request.Request(server.url, data=b"\x30" * (server.max_request_bytes + 1), method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=10)
    assert info.value.code == 413
    # garbage GET path or POST body: HTTP 200 + malformedRequest (an OCSP answer, not an HTTP error)
    with urllib.request.urlopen(server.url + "/csms-root/!!notbase64!!", timeout=10) as resp:
        assert resp.status == 200
        assert ocsp.load_der_ocsp_response(resp.read()).response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    body = fetch(server.url, b"definitely not DER")
    assert ocsp.load_der_ocsp_response(body).response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    # raw socket abuse: lying Content-Length, then close; the server keeps answering
    with socket.create_connection(parse_listen(server.url.removeprefix("http://"))) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort")
    with socket.create_connection(parse_listen(server.url.removeprefix("http://"))) as s:
        s.sendall(b"BREW / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(100).split(b" ", 2)[1] == b"400"  # not an HTTP method: aiohttp's parser refuses it
    with socket.create_connection(parse_listen(server.url.removeprefix("http://"))) as s:
        s.sendall(b"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 405")
    assert query(server.url, cert_id, at=now, issuer=root).status is CertStatus.GOOD


def test_fingerprints_are_sha256(pki_dir: PkiDirectory) -> None:
    # the ledger fingerprint of the responder certificate is the SHA-256 of its DER, like every record
    responder = load_authorities(pki_dir, ["csms-root"], at=AT)[0]
    rec = next(r for r in pki_dir.ledger.all() if r.role == OCSP_RESPONDER_ROLE)
    assert rec.fingerprint == responder.signer_certificate.fingerprint(hashes.SHA256()).hex()
