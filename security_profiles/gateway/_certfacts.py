"""What the gateway shows of a station's certificate, parsed once per certificate.

The upstream's request headers (:func:`~.upstream.station_headers`) and the admin listener's station list
(:func:`~.metrics.station_certificate`) both show a station certificate's serial, notAfter and subject.
pyca builds the subject's Python objects on first access and ``rfc4514_string`` walks them in Python: in
a renewal campaign that was about 4 % of the gateway's Python time (benchmarks/lifecycle.py, py-spy), each
new certificate parsed twice. Here it is parsed once per DER, kept in a bounded cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ocppsec.pki._untrusted import pyca_input
from ocppsec.pki.errors import InputError

__all__ = ["CertFacts", "certificate_facts"]


@dataclass(frozen=True, slots=True)
class CertFacts:
    """A station certificate as the gateway shows it."""

    serial_hex: str
    not_after: datetime
    subject: str  # RFC 4514, as pyca writes it


_CACHE: dict[bytes, CertFacts | None] = {}
_CACHE_MAX = 32_768


def certificate_facts(der: bytes) -> CertFacts | None:
    """The facts of the certificate ``der``; None when pyca cannot read it whole (the TLS layer verified it,
    so this is no reason to refuse the station: what shows it leaves the facts out)."""
    try:
        return _CACHE[der]
    except KeyError:
        pass
    facts: CertFacts | None
    try:
        with pyca_input("the station certificate cannot be parsed"):
            from cryptography import x509

            cert = x509.load_der_x509_certificate(der)
            facts = CertFacts(format(cert.serial_number, "x"), cert.not_valid_after_utc, cert.subject.rfc4514_string())
    except InputError:
        facts = None
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    _CACHE[der] = facts
    return facts
