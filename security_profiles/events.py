"""The names of the security events this package raises (the 2.0.1 / 2.1 spellings).

Events are recorded through the kernel's sink interface (:mod:`ocppsec.pki.events.sink`); the event
log maps the names to 1.6. Events raised by the CSMS side about a station carry that station's identity
when it is known, else ``peer:<address>``; their source is :data:`~ocppsec.pki.events.model.Source.LOCAL`.
"""

from __future__ import annotations

__all__ = [
    "CSMS_FAILED_TO_AUTHENTICATE",
    "FAILED_TO_AUTHENTICATE",
    "INVALID_CSMS_CERTIFICATE",
    "INVALID_CS_CERTIFICATE",
    "INVALID_TLS_CIPHER_SUITE",
    "INVALID_TLS_VERSION",
]

FAILED_TO_AUTHENTICATE = "FailedToAuthenticateAtCsms"
CSMS_FAILED_TO_AUTHENTICATE = "CsmsFailedToAuthenticate"
INVALID_CS_CERTIFICATE = "InvalidChargingStationCertificate"
INVALID_CSMS_CERTIFICATE = "InvalidCsmsCertificate"
INVALID_TLS_VERSION = "InvalidTLSVersion"
INVALID_TLS_CIPHER_SUITE = "InvalidTLSCipherSuite"
