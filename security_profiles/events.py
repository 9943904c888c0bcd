"""The security events this package raises, delivered to an :class:`~ocppsec.eventlog.sink.EventSink`.

Names are the 2.0.1 / 2.1 spellings (the event log maps 1.6 names). Events raised by the CSMS side
about a station carry that station's identity when it is known, else ``peer:<address>``; their source
is :data:`~ocppsec.eventlog.model.Source.LOCAL`.
"""

from __future__ import annotations

import logging
from datetime import datetime

from ocppsec.eventlog.model import SecurityEvent, Source, normalize_event
from ocppsec.eventlog.sink import EventSink, MemorySink
from ocppsec.pki.versions import OcppVersion

__all__ = [
    "CSMS_FAILED_TO_AUTHENTICATE",
    "FAILED_TO_AUTHENTICATE",
    "INVALID_CSMS_CERTIFICATE",
    "INVALID_CS_CERTIFICATE",
    "INVALID_TLS_CIPHER_SUITE",
    "INVALID_TLS_VERSION",
    "EventSink",
    "MemorySink",
    "NullSink",
    "SafeSink",
    "local_event",
    "peer_station_id",
]

FAILED_TO_AUTHENTICATE = "FailedToAuthenticateAtCsms"
CSMS_FAILED_TO_AUTHENTICATE = "CsmsFailedToAuthenticate"
INVALID_CS_CERTIFICATE = "InvalidChargingStationCertificate"
INVALID_CSMS_CERTIFICATE = "InvalidCsmsCertificate"
INVALID_TLS_VERSION = "InvalidTLSVersion"
INVALID_TLS_CIPHER_SUITE = "InvalidTLSCipherSuite"

_log = logging.getLogger("ocppsec.security_profiles")


class NullSink:
    """Discards events (when no event store is configured)."""

    def record(self, event: SecurityEvent) -> None:
        return None


class SafeSink:
    """Wraps a sink so that a failing store never breaks a connection: errors are logged, not raised."""

    def __init__(self, inner: EventSink) -> None:
        self.inner = inner

    def record(self, event: SecurityEvent) -> None:
        try:
            self.inner.record(event)
        except Exception:  # a broken store must not stop the gateway from serving other stations
            _log.exception("could not record security event %s for %s", event.type, event.station_id)


def peer_station_id(identity: str | None, peer: str) -> str:
    """The station id to file an event under: the identity, or ``peer:<address>`` before it is known."""
    return identity if identity else f"peer:{peer}"


def local_event(
    type: str, *, station_id: str, tech_info: str | None, at: datetime, version: OcppVersion | None = None,
) -> SecurityEvent:
    """An event raised by our own components (techInfo cut to 255 characters, flagged if cut)."""
    return normalize_event(
        station_id=station_id[:255], type=type, timestamp=at, tech_info=tech_info, at=at,
        ocpp_version=version, source=Source.LOCAL,
    )
