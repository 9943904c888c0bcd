"""TLS contexts for profiles 2 and 3, built to the OCPP rules (A00.FR.306-323, 409-426).

- TLS 1.2 or 1.3 only (A00.FR.313/416); TLS 1.2 suites exactly the four mandatory ones
  (:data:`MANDATORY_TLS12_SUITES`, A00.FR.318/421) unless more are asked for; TLS 1.3 suites from
  OpenSSL's default set; no compression (A00.FR.321/424); server cipher preference.
- The CSMS loads both an RSA and an ECDSA certificate chain (the four suites need both).
- Profile 3: the server asks for a client certificate and validates it against the CSO root(s);
  ``client_cert="optional"`` asks without requiring it (mixed profile 2/3 ports).
- Client side: the CSMS certificate is checked against the installed CSMS root(s) by OpenSSL and its
  subject CN against the FQDN by :func:`verify_server_identity` after the handshake (these
  certificates carry no subjectAltName; wildcards only with ``allow_wildcards``).
- :func:`classify_tls_failure` names the security event for a failed server-side handshake.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from ocppsec.pki._untrusted import PYCA_INPUT_ERRORS, read_certificate
from ocppsec.pki.chain import check_cn
from ocppsec.pki.errors import ChainError, InputError, UsageError, VerificationError

__all__ = [
    "ALLOWED_TLS_VERSIONS",
    "MANDATORY_TLS12_SUITES",
    "TLS13_SUITES",
    "CertChain",
    "TlsFailure",
    "classify_tls_failure",
    "client_context",
    "load_cert_chain",
    "load_roots",
    "peer_certificate",
    "server_certificate",
    "server_context",
    "verify_server_identity",
]

MANDATORY_TLS12_SUITES = (
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
)
TLS13_SUITES = ("TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256")
ALLOWED_TLS_VERSIONS = frozenset({"TLSv1.2", "TLSv1.3"})


@dataclass(frozen=True, slots=True)
class CertChain:
    """A certificate chain file (leaf first) and its key file (``password`` for an encrypted key)."""

    certfile: str | Path
    keyfile: str | Path
    password: bytes | None = None


def load_cert_chain(ctx: ssl.SSLContext, chain: CertChain, *, what: str = "server") -> None:
    """Load ``chain`` into ``ctx`` with errors that say what to do, and without any OpenSSL prompt.

    The key is read here first (our loader: a wrong passphrase, a file that holds no key, certificates
    and key in one PEM file), then the certificate file, and the pair is checked to match, naming both
    files if not. Only then does OpenSSL load both files, the passphrase handed over through a callback
    (so it never prompts on the terminal, and the key is never written anywhere in the clear)."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from ocppsec.pki._io import read_bounded
    from ocppsec.pki.keys.files import load_key_file
    from ocppsec.pki.pem import load_certificates

    certfile, keyfile = str(chain.certfile), str(chain.keyfile)
    key = load_key_file(keyfile, chain.password)
    certs = load_certificates(read_bounded(certfile, what=f"{what} certificate", limit=1 << 20),
                              what=f"{what} certificate {certfile}")
    spki = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    if certs[0].public_key().public_bytes(*spki) != key.public_key().public_bytes(*spki):
        raise UsageError(
            f"{what} certificate {certfile} and key {keyfile} do not match: the key is not the one of "
            f"{certs[0].subject.rfc4514_string()}",
            hint="give each certificate with its own key, at the same position (--server-cert A --server-key A.key)",
        )
    password = chain.password or b""
    try:
        ctx.load_cert_chain(certfile, keyfile, password=lambda: password)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot load {what} certificate {certfile} / key {keyfile}: {exc}") from None


def _cipher_string(extra: Sequence[str]) -> str:
    # SECLEVEL=1: some builds disable the static-RSA suites at level 2; they are mandatory here.
    return ":".join((*MANDATORY_TLS12_SUITES, *extra)) + ":@SECLEVEL=1"


# Root files parsed before, by content: a station builds a context on every connection attempt, and
# checking its CSMS root file's certificates each time was ~10 % of a simulated station's CPU per
# reconnect (benchmarks/lifecycle.py). The file is still read each time (so a changed file is seen at
# once); only the parse of bytes seen before is skipped.
_ROOT_FILES: dict[bytes, tuple[x509.Certificate, ...]] = {}
_ROOT_FILES_LIMIT = 64


def _root_file(root: str | Path, what: str) -> tuple[x509.Certificate, ...]:
    from ocppsec.pki._io import read_bounded
    from ocppsec.pki.pem import load_certificates

    data = read_bounded(root, what=what, limit=1 << 20)
    cached = _ROOT_FILES.get(data)
    if cached is None:
        cached = tuple(load_certificates(data, what=f"{what} {root}"))
        if len(_ROOT_FILES) >= _ROOT_FILES_LIMIT:
            _ROOT_FILES.pop(next(iter(_ROOT_FILES)))
        _ROOT_FILES[data] = cached
    return cached


def load_roots(ctx: ssl.SSLContext, roots: Sequence[str | Path | x509.Certificate], *,
               what: str = "trusted root file") -> None:
    """Trust ``roots`` (files read by our PEM reader: bounded, regular files only, errors naming the file;
    the certificates of a file read before with the same bytes are not parsed again)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    for root in roots:
        certs = (root,) if isinstance(root, x509.Certificate) else _root_file(root, what)
        for cert in certs:
            try:
                ctx.load_verify_locations(cadata=cert.public_bytes(Encoding.PEM).decode("ascii"))
            except ssl.SSLError as exc:
                raise UsageError(f"cannot use trusted root {cert.subject.rfc4514_string()}"
                                 f"{'' if isinstance(root, x509.Certificate) else ' from ' + str(root)}: {exc}") from None


def _base(purpose: int, extra_suites: Sequence[str]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if purpose == 0 else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    ctx.set_ciphers(_cipher_string(extra_suites))
    return ctx


def server_context(
    chains: Sequence[CertChain],
    *,
    client_roots: Sequence[str | Path | x509.Certificate] = (),
    client_cert: str = "none",
    extra_suites: Sequence[str] = (),
) -> ssl.SSLContext:
    """A CSMS-side context. ``chains``: the RSA and the ECDSA server chains (both are needed for the
    four mandatory suites). ``client_cert``: ``none`` (profile 2), ``required`` (profile 3) or
    ``optional`` (a mixed 2/3 port: asked, validated if sent, not required)."""
    if not chains:
        raise UsageError("a TLS server needs at least one certificate chain",
                         hint="pass the RSA and the ECDSA CSMS certificate (--server-cert/--server-key twice)")
    if client_cert not in ("none", "required", "optional"):
        raise UsageError(f"client_cert must be none, required or optional, not {client_cert!r}")
    ctx = _base(0, extra_suites)
    ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_TICKET
    # No TLS 1.3 session tickets either: OCPP connections are long-lived, so resumption saves little, while
    # OpenSSL's server-side session cache grows by ~10 KB per handshake (up to 20,480 sessions) and a
    # resumed session would skip re-checking the station's certificate against the current trust store.
    ctx.num_tickets = 0
    for chain in chains:
        load_cert_chain(ctx, chain, what="server")
    if client_cert != "none":
        if not client_roots:
            raise UsageError("profile 3 needs the CSO root certificate(s) to validate station certificates",
                             hint="pass --trust CSO_ROOT")
        load_roots(ctx, client_roots)
        ctx.verify_mode = ssl.CERT_REQUIRED if client_cert == "required" else ssl.CERT_OPTIONAL
    return ctx


def client_context(
    csms_roots: Sequence[str | Path | x509.Certificate],
    *,
    client_chain: CertChain | None = None,
    suites: Sequence[str] | None = None,
) -> ssl.SSLContext:
    """A station-side context: the CSMS certificate must chain to ``csms_roots`` (A00.FR.308/411).
    The CN check is :func:`verify_server_identity`, after the handshake. ``client_chain`` for profile 3."""
    if not csms_roots:
        raise UsageError("a station needs the CSMS root certificate(s) to check the CSMS", hint="pass --csms-root")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    ctx.set_ciphers(":".join(suites) + ":@SECLEVEL=1" if suites else _cipher_string(()))
    ctx.check_hostname = False  # no SAN in OCPP certificates: CN = FQDN is checked by verify_server_identity
    ctx.verify_mode = ssl.CERT_REQUIRED
    load_roots(ctx, csms_roots)
    if client_chain is not None:
        load_cert_chain(ctx, client_chain, what="station")
    return ctx


def peer_certificate(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> x509.Certificate | None:
    """The peer's leaf certificate, or ``None`` when it sent none or one pyca cannot parse whole.

    OpenSSL's parser is more lenient than pyca's: a certificate it accepted can still fail in pyca on
    load or on the first read of a field, so it is read whole here (the profile-3 step then refuses a
    station without a usable certificate)."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    try:
        cert = x509.load_der_x509_certificate(der)
    except PYCA_INPUT_ERRORS:
        return None
    try:
        return read_certificate(cert, what="peer certificate")
    except InputError:
        return None


# The CSMS certificates a station process has parsed, by DER: a station reconnects to the same CSMS again and
# again (and a simulated fleet in one process, benchmarks/lifecycle.py, to the same gateway thousands of times;
# the parse was ~2 % of its CPU). A few entries are enough: a station talks to one CSMS at a time.
_SERVER_CERTIFICATES: dict[bytes, x509.Certificate | None] = {}
_SERVER_CERTIFICATES_MAX = 8


def server_certificate(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> x509.Certificate | None:
    """:func:`peer_certificate` for the station's side of a connection: a CSMS certificate with the same DER
    as one seen before is not parsed again (the objects are immutable)."""
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not der:
        return None
    try:
        return _SERVER_CERTIFICATES[der]
    except KeyError:
        pass
    cert = peer_certificate(ssl_object)
    if len(_SERVER_CERTIFICATES) >= _SERVER_CERTIFICATES_MAX:
        _SERVER_CERTIFICATES.clear()
    _SERVER_CERTIFICATES[der] = cert
    return cert


def verify_server_identity(cert: x509.Certificate | None, fqdn: str, *, allow_wildcards: bool = False) -> None:
    """CSMS certificate CN must be the FQDN (A00.FR.309/412, A00.FR.510); raise with InvalidCsmsCertificate."""
    if cert is None:
        raise VerificationError("the CSMS sent no certificate", security_event="InvalidCsmsCertificate",
                                requirement="A00.FR.308")
    try:
        check_cn(cert, fqdn, allow_wildcard=allow_wildcards)
    except ChainError as exc:
        hint = None
        cn = exc.message
        if "'*." in cn and not allow_wildcards:
            hint = "wildcard CSMS certificates are refused unless AllowCSMSTLSWildcards is set"
        raise VerificationError(exc.message, hint=hint, requirement="A00.FR.412",
                                security_event="InvalidCsmsCertificate") from None


@dataclass(frozen=True, slots=True)
class TlsFailure:
    """Why a server-side TLS handshake failed and which security event that is (``None``: not security)."""

    reason: str
    security_event: str | None
    requirement: str | None = None


_VERSION_REASONS = ("UNSUPPORTED_PROTOCOL", "WRONG_VERSION_NUMBER", "TLSV1_ALERT_PROTOCOL_VERSION",
                    "VERSION_TOO_LOW", "NO_PROTOCOLS_AVAILABLE")
_CIPHER_REASONS = ("NO_SHARED_CIPHER", "NO_CIPHERS_AVAILABLE", "NO_SUITABLE_SIGNATURE_ALGORITHM",
                   "TLSV1_ALERT_INSUFFICIENT_SECURITY")
_NO_CERT_REASONS = ("PEER_DID_NOT_RETURN_A_CERTIFICATE", "TLSV13_ALERT_CERTIFICATE_REQUIRED")
_CERT_REASONS = ("CERTIFICATE_VERIFY_FAILED", "SSLV3_ALERT_BAD_CERTIFICATE", "TLSV1_ALERT_UNKNOWN_CA",
                 "SSLV3_ALERT_CERTIFICATE_EXPIRED")


def classify_tls_failure(exc: BaseException) -> TlsFailure:
    """Map a server-side handshake exception to the security event the spec names for it."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return TlsFailure(f"client certificate rejected: {exc.verify_message}", "InvalidChargingStationCertificate",
                          "A00.FR.407")
    if isinstance(exc, ssl.SSLError):
        reason = (exc.reason or "").upper()
        text = f"{exc.reason or exc.__class__.__name__}: {exc.strerror or exc}"
        if reason in _VERSION_REASONS:
            return TlsFailure(f"TLS version refused ({text})", "InvalidTLSVersion", "A00.FR.418")
        if reason in _CIPHER_REASONS:
            return TlsFailure(f"no acceptable cipher suite ({text})", "InvalidTLSCipherSuite", "A00.FR.425")
        if reason in _NO_CERT_REASONS:
            return TlsFailure(f"no client certificate ({text})", "FailedToAuthenticateAtCsms", "A00.FR.402")
        if reason in _CERT_REASONS:
            return TlsFailure(f"client certificate missing or rejected ({text})", "InvalidChargingStationCertificate",
                              "A00.FR.407")
        return TlsFailure(f"TLS handshake failed ({text})", None)
    if isinstance(exc, ConnectionAbortedError | TimeoutError):
        return TlsFailure("TLS handshake timed out", None)
    return TlsFailure(f"TLS handshake failed ({exc.__class__.__name__}: {exc})", None)
