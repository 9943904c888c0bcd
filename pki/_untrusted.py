"""Untrusted certificates and requests: pyca's exceptions mapped once, lazily parsed fields read at load time.

pyca/cryptography signals malformed input with more than ``ValueError``: ``InvalidVersion``,
``DuplicateExtension``, ``UnsupportedGeneralNameType``, ``UnsupportedAlgorithm`` and, from some
accessors, ``TypeError`` or ``OverflowError``. :data:`PYCA_INPUT_ERRORS` names them all and
:func:`pyca_input` turns any of them into our :class:`~ocppsec.pki.errors.InputError`.

pyca also parses several fields of a certificate only when they are read (subject, issuer, extensions,
public key, signature algorithm): a certificate that loads can still fail on first use, long after the
code that accepted it returned. :func:`read_certificate` reads every such field once, so a certificate
that passed it can be used (and stored) without surprises later; :func:`read_csr` does the same for a
request's subject, attributes and extensions (its key and signature algorithm are policy matters that
:func:`~ocppsec.pki.csr.check_csr` reports as violations).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from ocppsec.pki.errors import InputError, OcppsecError

__all__ = ["PYCA_INPUT_ERRORS", "describe_pyca_error", "pyca_input", "read_certificate", "read_csr"]

PYCA_INPUT_ERRORS: tuple[type[Exception], ...] = (
    ValueError,  # includes UnicodeError
    TypeError,
    OverflowError,
    IndexError,  # our own DER slicing of what pyca accepted
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
    UnsupportedAlgorithm,
)


_FAQ = re.compile(r"\s*See https://cryptography\.io/\S* for more details\.")


def describe_pyca_error(exc: BaseException) -> str:
    """A one-line reason for a pyca parsing error (its message, or its class name when it has none)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = _FAQ.sub("", text)  # pyca's pointer to its FAQ says nothing about this input
    name = type(exc).__name__
    return f"{name}: {text}"[:300] if text else name


@contextmanager
def pyca_input(what: str, *, requirement: str | None = None, error: type[OcppsecError] = InputError) -> Iterator[None]:
    """Run pyca calls on untrusted data; any of :data:`PYCA_INPUT_ERRORS` becomes ``error`` naming ``what``."""
    try:
        yield
    except PYCA_INPUT_ERRORS as exc:
        raise error(f"{what}: {describe_pyca_error(exc)}", requirement=requirement) from None


def read_certificate(cert: x509.Certificate, *, what: str = "certificate") -> x509.Certificate:
    """Read every lazily parsed field of ``cert`` once; raise :class:`InputError` if one cannot be parsed."""
    with pyca_input(f"{what} cannot be parsed"):
        _ = cert.subject, cert.issuer  # pyca decodes every attribute value when it parses a Name
        for ext in cert.extensions:
            _ = ext.value
        cert.public_key()
        _ = cert.signature_hash_algorithm, cert.signature_algorithm_parameters
        _ = cert.not_valid_before_utc, cert.not_valid_after_utc, cert.serial_number, cert.version
    return cert


def read_csr(csr: x509.CertificateSigningRequest, *, what: str = "CSR") -> x509.CertificateSigningRequest:
    """Read a request's subject, attributes and extensions once; raise :class:`InputError` if one cannot be parsed."""
    with pyca_input(f"{what} cannot be parsed", requirement="A02.FR.03"):
        _ = csr.subject
        for ext in csr.extensions:
            _ = ext.value
        for attr in csr.attributes:
            _ = attr.value
    return csr
