"""HTTP adapter of the OCSP responder (RFC 6960 Appendix A: POST and GET) and its PKI-directory wiring.

- ``POST <any path>`` with the DER request as body (``application/ocsp-request``);
- ``GET <prefix>/<base64 DER request, URL-encoded>`` — the prefix may be a CA name, because issued
  certificates carry ``http://host/{issuer}`` as their AIA OCSP URL;
- answers are ``application/ocsp-response``; GET answers carry ``Cache-Control: max-age`` up to the
  response's nextUpdate (RFC 5019 §6).

HTTP-level problems (body over ``max_request_bytes``, bad base64, missing Content-Length, unknown method)
get HTTP 400 with a ``malformedRequest`` OCSPResponse; problems inside a well-delivered request are
answered by the core (:mod:`ocppsec.pki.revocation.ocsp`) with HTTP 200 and the OCSP error status. A handler
never lets an exception escape (HTTP 500 + ``internalError``), and slow clients time out.

:func:`load_authorities` opens the CAs of a PKI directory and makes sure each has a current delegated
responder certificate (issued, key written 0600 and encrypted, recorded in the ledger with role
``ocsp-responder``), renewing it ``renew_before`` ahead of expiry.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from cryptography.x509 import ocsp

from ocppsec.pki.builder import new_serial
from ocppsec.pki.directory import PkiDirectory
from ocppsec.pki.errors import DuplicateError, UsageError
from ocppsec.pki.keys import LocalKey, generate_key
from ocppsec.pki.ledger import CertificateRecord, record_for
from ocppsec.pki.revocation.ocsp import (
    OCSP_RESPONDER_ROLE,
    OcspAuthority,
    OcspResponder,
    issue_responder_certificate,
    responder_key_spec,
)

__all__ = ["OcspHttpServer", "ensure_responder", "load_authorities", "parse_listen"]

MAX_REQUEST_BYTES = 8192
CONTENT_TYPE = "application/ocsp-response"


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6) → (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"cannot read --listen {text!r}", hint="use HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]") or "127.0.0.1", int(port)


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


def _decode_get_path(path: str) -> bytes | None:
    """The DER request in a GET path: the whole path, or what follows a first segment (a CA name)."""
    raw = path.split("?", 1)[0].lstrip("/")
    candidates = [raw]
    if "/" in raw:
        candidates.append(raw.split("/", 1)[1])
    for candidate in candidates:
        text = unquote(candidate)
        if not text or len(text) > MAX_REQUEST_BYTES * 2:
            continue
        try:
            der = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            try:
                der = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            except (binascii.Error, ValueError):
                continue
        if der[:1] == b"\x30":
            return der
    return None


class _Handler(BaseHTTPRequestHandler):
    server: OcspHttpServer
    timeout = 10  # seconds a client may take to send its request
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        if self.server.access_log is not None:
            self.server.access_log(f"{self.client_address[0]} {format % args}")

    def _send(self, code: int, body: bytes, max_age: int | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        if max_age is not None and code == 200:
            self.send_header("Cache-Control", f"max-age={max_age}, public, no-transform, must-revalidate")
        self.end_headers()
        self.wfile.write(body)

    def _bad(self, code: int = 400) -> None:
        self.close_connection = True
        self._send(code, OcspResponder.unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST))

    def _answer(self, der: bytes, *, cacheable: bool) -> None:
        at = self.server.clock()
        body = self.server.responder.respond(der, at=at)
        max_age = None
        if cacheable:
            max_age = max(0, int((self.server.responder.validity - self.server.responder.refresh_before).total_seconds()))
        self._send(200, body, max_age)

    def do_POST(self) -> None:
        try:
            length_text = self.headers.get("Content-Length")
            if length_text is None or not length_text.isdigit():
                self._bad(411 if length_text is None else 400)
                return
            length = int(length_text)
            if length > self.server.max_request_bytes:
                self._bad(400)  # do not read the oversized body
                return
            body = self.rfile.read(length)
            if len(body) != length:
                self._bad(400)
                return
            self._answer(body, cacheable=False)
        except (TimeoutError, ConnectionError):
            self.close_connection = True
        except Exception:
            self._internal_error()

    def do_GET(self) -> None:
        try:
            if len(self.path) > self.server.max_request_bytes * 2:
                self._bad(400)
                return
            der = _decode_get_path(self.path)
            if der is None:
                self._bad(400)
                return
            self._answer(der, cacheable=True)
        except (TimeoutError, ConnectionError):
            self.close_connection = True
        except Exception:
            self._internal_error()

    def _internal_error(self) -> None:
        self.close_connection = True
        with contextlib.suppress(Exception):
            self._send(500, OcspResponder.unsuccessful(ocsp.OCSPResponseStatus.INTERNAL_ERROR))

    def _other(self) -> None:
        self.close_connection = True
        with contextlib.suppress(Exception):
            self.send_response(405)
            self.send_header("Allow", "GET, POST")
            self.send_header("Content-Length", "0")
            self.end_headers()

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _other


class OcspHttpServer(ThreadingHTTPServer):
    """A threaded HTTP server around an :class:`OcspResponder`; ``refresh_interval`` re-signs in the background."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], responder: OcspResponder, *, max_request_bytes: int = MAX_REQUEST_BYTES,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC), refresh_interval: float | None = 60.0,
        access_log: Callable[[str], None] | None = None,
    ) -> None:
        self.responder = responder
        self.max_request_bytes = max_request_bytes
        self.clock = clock
        self.access_log = access_log
        self._stop = threading.Event()
        self._refresher: threading.Thread | None = None
        self.refresh_interval = refresh_interval
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host_text = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://{host_text}:{port}"

    def handle_error(self, request: object, client_address: object) -> None:
        """Never print tracebacks for a client's misbehaviour; the handler already answered."""

    def start(self) -> threading.Thread:
        """Serve in a background thread (tests, embedding); returns the thread."""
        thread = threading.Thread(target=self.serve_forever, name="ocsp-http", daemon=True)
        thread.start()
        self._start_refresher()
        return thread

    def _start_refresher(self) -> None:
        if self.refresh_interval is None or self._refresher is not None:
            return

        def loop() -> None:
            while not self._stop.wait(self.refresh_interval):
                with contextlib.suppress(Exception):  # a ledger hiccup must not end the refresher
                    self.responder.refresh(at=self.clock())

        self._refresher = threading.Thread(target=loop, name="ocsp-refresh", daemon=True)
        self._refresher.start()

    def serve(self) -> None:
        """Serve in this thread until interrupted (the CLI)."""
        self._start_refresher()
        try:
            self.serve_forever()
        finally:
            self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        self.shutdown()
        self.server_close()
