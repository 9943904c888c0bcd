"""Parsing certificates, CSRs and keys from bytes, with one clear error per kind of garbage.

Accepts PEM (one or several blocks, surrounding text allowed) and, where a single object is expected,
DER. Trailing garbage after the last PEM block is rejected where the caller asks for ``strict`` (OCPP
CertificateSigned carries only PEM blocks).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ocppsec.pki._untrusted import PYCA_INPUT_ERRORS, describe_pyca_error, read_certificate, read_csr
from ocppsec.pki.errors import InputError

__all__ = [
    "certificates_to_pem",
    "load_certificate",
    "load_certificates",
    "load_csr",
    "pem_blocks",
]

_HEADER = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n")


def _pem_spans(data: bytes) -> list[tuple[str, int, int]]:
    """``(label, start, end)`` of every PEM block: a ``-----BEGIN L-----`` line, then anything up to the first
    ``-----END L-----`` (and one line break after it). A header without its END line is not a block."""
    out: list[tuple[str, int, int]] = []
    pos = 0
    while (start := data.find(b"-----BEGIN ", pos)) >= 0:
        pos = start + 1
        header = _HEADER.match(data, start)
        if header is None:
            continue
        marker = b"-----END " + header.group(1) + b"-----"
        at = data.find(marker, header.end())
        if at < 0:
            continue
        end = at + len(marker)
        end += data.startswith(b"\r", end)
        end += data.startswith(b"\n", end)
        out.append((header.group(1).decode("ascii"), start, end))
        pos = end
    return out


def pem_blocks(data: bytes) -> list[tuple[str, bytes]]:
    """Every ``(label, whole_block)`` PEM block in ``data``, in order."""
    return [(label, data[start:end]) for label, start, end in _pem_spans(data)]


def _outside_blocks(data: bytes) -> bytes:
    """What ``data`` holds besides its PEM blocks."""
    pieces, pos = [], 0
    for _, start, end in _pem_spans(data):
        pieces.append(data[pos:start])
        pos = end
    pieces.append(data[pos:])
    return b"".join(pieces)


def _as_bytes(data: bytes | str, what: str) -> bytes:
    """``data`` as bytes; text that cannot be UTF-8 (a lone surrogate, which JSON can carry) is not PEM."""
    if not isinstance(data, str):
        return data
    try:
        return data.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(f"{what}: not text (an unpaired surrogate at character {exc.start})",
                         hint="PEM is ASCII text") from None


def _describe(data: bytes) -> str:
    if not data.strip():
        return "it is empty"
    if data[:1] == b"\x30":
        return "it looks like DER, not PEM"
    if b"-----BEGIN" in data:
        return "its PEM block is truncated or malformed"
    return "it contains no PEM block"


def load_certificates(data: bytes | str, *, what: str = "certificate", strict: bool = False) -> list[x509.Certificate]:
    """All certificates in a PEM bundle (or one DER certificate), in file order.

    Every certificate is read whole (:func:`~ocppsec.pki._untrusted.read_certificate`): one whose subject,
    issuer, extensions or key cannot be parsed is refused here, not when a caller reads that field later.

    ``strict``: only ``CERTIFICATE`` blocks and whitespace are allowed (the CertificateSigned format).
    """
    raw = _as_bytes(data, what)
    blocks = pem_blocks(raw)
    if not blocks:
        if raw[:1] == b"\x30" and not strict:
            try:
                return [read_certificate(x509.load_der_x509_certificate(raw), what=what)]
            except PYCA_INPUT_ERRORS as exc:
                raise InputError(f"{what}: DER data is not a valid X.509 certificate ({describe_pyca_error(exc)})") from None
        raise InputError(f"{what}: no certificate found, {_describe(raw)}", hint="expected PEM 'BEGIN CERTIFICATE' blocks")
    if strict:
        rest = _outside_blocks(raw)
        if rest.strip():
            raise InputError(f"{what}: unexpected data outside the PEM blocks", hint="send only PEM certificates")
    certs: list[x509.Certificate] = []
    for n, (label, block) in enumerate(blocks, 1):
        if label != "CERTIFICATE":
            if strict:
                raise InputError(f"{what}: block {n} is a {label}, not a CERTIFICATE")
            continue
        try:
            cert = x509.load_pem_x509_certificate(block)
        except PYCA_INPUT_ERRORS as exc:
            raise InputError(f"{what}: PEM block {n} is not a valid X.509 certificate ({describe_pyca_error(exc)})") from None
        certs.append(read_certificate(cert, what=f"{what}: PEM block {n}"))
    if not certs:
        raise InputError(f"{what}: the PEM data holds no CERTIFICATE block")
    return certs


def load_certificate(data: bytes | str, *, what: str = "certificate") -> x509.Certificate:
    """Exactly one certificate (PEM or DER)."""
    certs = load_certificates(data, what=what)
    if len(certs) != 1:
        raise InputError(f"{what}: expected one certificate, found {len(certs)}")
    return certs[0]


def load_csr(data: bytes | str, *, what: str = "CSR") -> x509.CertificateSigningRequest:
    """A PKCS#10 request, PEM (``CERTIFICATE REQUEST``) or DER."""
    raw = _as_bytes(data, what)
    blocks = [b for b in pem_blocks(raw) if b[0] in ("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST")]
    try:
        if blocks:
            if len(blocks) > 1:
                raise InputError(f"{what}: found {len(blocks)} requests, expected one")
            return read_csr(x509.load_pem_x509_csr(blocks[0][1]), what=what)
        if raw[:1] == b"\x30":
            return read_csr(x509.load_der_x509_csr(raw), what=what)
    except PYCA_INPUT_ERRORS as exc:
        raise InputError(f"{what}: not a valid PKCS#10 request ({describe_pyca_error(exc)})", requirement="A02.FR.03") from None
    found = [label for label, _ in pem_blocks(raw)]
    reason = f"it holds {', '.join(found)} instead" if found else _describe(raw)
    raise InputError(
        f"{what}: no certificate request found, {reason}",
        hint="expected PEM 'BEGIN CERTIFICATE REQUEST' (A02.FR.03)",
        requirement="A02.FR.03",
    )


def certificates_to_pem(certs: Sequence[x509.Certificate]) -> str:
    """PEM blocks concatenated in the given order."""
    return "".join(c.public_bytes(Encoding.PEM).decode("ascii") for c in certs)
