"""Ready-made ChargePoint classes: everything ocppsec answers for a CSMS or a station, in one class per version.

:func:`csms_charge_point_class` composes the certificate-management part (with a
:class:`~ocppsec.pki.certmgmt.service.CertificateService`), the security-event part (always: a CSMS must
confirm SecurityEventNotification, A04.FR.03) and the certificate-status part (with a
:class:`~ocppsec.pki.revocation.status.CsmsRevocationService`); :func:`station_charge_point_class` the
station's certificate store and OCSP cache. Further parts (the event log's GetLog parts, your own) go in
``parts=``; :func:`~ocppsec.pki.chargepoint.compose.compose` refuses any two that handle the same action.
The area modules are imported when a class is built (they import the composer themselves).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ocppsec.pki.chargepoint.compose import Part, Side, compose
from ocppsec.pki.versions import OcppVersion

if TYPE_CHECKING:
    from ocppsec.pki.certmgmt.service import CertificateService
    from ocppsec.pki.certmgmt.station import StationCertificateStore
    from ocppsec.pki.events.sink import EventSink
    from ocppsec.pki.revocation.status import CsmsRevocationService, StationOcspCache

__all__ = ["csms_charge_point_class", "station_charge_point_class"]

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _version(version: OcppVersion | str) -> OcppVersion:
    return version if isinstance(version, OcppVersion) else OcppVersion.parse(version)


def csms_charge_point_class(
    version: OcppVersion | str,
    certificates: CertificateService | None = None,
    *,
    events: EventSink | None = None,
    status: CsmsRevocationService | None = None,
    parts: Iterable[Part] = (),
    clock: Clock = _utcnow,
) -> type:
    """The CSMS's ChargePoint class for ``version``: ``cls(station_id, connection)``.

    - ``certificates``: SignCertificate answered by the service, then CertificateSigned; the methods
      ``trigger``, ``install_root``, ``delete_certificate``, ``get_installed``; ``results`` / ``signed``;
    - ``events``: where SecurityEventNotification goes (a store, a ``BufferedSink``; default: a
      ``MemorySink`` per connection, ``cp.event_sink``); ``cls(..., sink=store)`` overrides it per connection;
    - ``status``: GetCertificateStatus (2.0.1, 2.1), GetCertificateChainStatus (2.1) and, in 1.6,
      DataTransfer with the Plug & Charge vendorId;
    - ``parts``: more parts for the same version and side, e.g. ``ocppsec.eventlog.v201.CSMS_LOG_PART``.
    """
    from ocppsec.pki.certmgmt import ocpp_handlers as certificate_handlers
    from ocppsec.pki.events import ocpp_handlers as event_handlers
    from ocppsec.pki.revocation import ocpp_handlers as status_handlers

    v = _version(version)
    chosen: list[Part] = []
    if certificates is not None:
        chosen.append(certificate_handlers.csms_part(v, certificates, clock=clock))
    chosen.append(event_handlers.csms_part(v, events, clock=clock))
    if status is not None:
        chosen.append(status_handlers.csms_part(v, status, clock=clock))
    chosen.extend(parts)
    return compose(v, Side.CSMS, chosen)


def station_charge_point_class(
    version: OcppVersion | str,
    certificates: StationCertificateStore | None = None,
    *,
    ocsp_cache: StationOcspCache | None = None,
    parts: Iterable[Part] = (),
    clock: Clock = _utcnow,
    request_ids: Iterator[int] | None = None,
) -> type:
    """The station's ChargePoint class for ``version``: ``cls(station_id, connection)``.

    - ``certificates``: CertificateSigned, InstallCertificate, DeleteCertificate, GetInstalledCertificateIds
      and the certificate triggers answered from the store; ``sign_certificate``; ``renewed``;
    - ``ocsp_cache``: ``refresh_certificate_status()`` asks the CSMS for the OCSP answers the cache needs;
    - ``parts``: more parts, e.g. ``ocppsec.eventlog.v201.STATION_LOG_PART`` (GetLog, queued events).
    """
    from ocppsec.pki.certmgmt import ocpp_handlers as certificate_handlers
    from ocppsec.pki.revocation import ocpp_handlers as status_handlers

    v = _version(version)
    chosen: list[Part] = []
    if certificates is not None:
        chosen.append(certificate_handlers.station_part(v, certificates, clock=clock,
                                                        request_ids=request_ids or itertools.count(1)))
    if ocsp_cache is not None:
        chosen.append(status_handlers.station_part(v, ocsp_cache, clock=clock))
    chosen.extend(parts)
    return compose(v, Side.STATION, chosen)
