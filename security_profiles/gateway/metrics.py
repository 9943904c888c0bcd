"""The gateway's Prometheus metrics (the admin listener's ``/metrics``).

Nothing is counted on the relay's path: the gateway keeps plain integer counts (:class:`~.core.GatewayStats`,
the splice's per-connection counts, the server's handshake counts) and :meth:`GatewayMetrics.sync` turns
them into Prometheus values, at each scrape and every 5 seconds (so that, with ``--workers``, the values the
supervisor reads from the workers' files are at most that old). A sync walks the connected stations
(about 2 µs each: 20 ms for 10,000 stations, 0.4 % of a core at one sync per 5 s; ADR 22).

=============================================== ====================================================================
metric                                          what
=============================================== ====================================================================
``ocppsec_gateway_connections``                 stations relayed now, by ``profile`` and ``version``
``ocppsec_gateway_handshakes_total``            handshakes by ``outcome`` (accepted, refused, tls_failed; closed:
                                                control_frame_flood) and ``reason`` (a closed set: requirement IDs,
                                                event types, the server's reasons; never an identity)
``ocppsec_gateway_frames_relayed_total``        WebSocket messages relayed, by ``direction`` (up: to the CSMS)
``ocppsec_gateway_upstream_failures_total``     stations closed with 1011 because the upstream was unavailable
``ocppsec_gateway_station_events_total``        SecurityEventNotifications recorded on their way through
``ocppsec_gateway_guard_closed_total``          connected stations closed by the guard (1008), by ``event``
``ocppsec_gateway_event_queue_depth``           events waiting in the event sink's queue (if it has one)
``ocppsec_gateway_event_spool_depth``           events waiting in its spool file
``ocppsec_gateway_events_dropped_total``        events lost (queue full and spool not writable)
``ocppsec_gateway_station_certificates``        connected stations' certificates by ``expires_in`` (days)
``ocppsec_gateway_reloads_total``               reloads (SIGHUP) by ``outcome`` (ok, failed)
``ocppsec_gateway_campaign_stations``           stations of each campaign by ``campaign``, ``kind`` and ``state``
``ocppsec_gateway_campaign_finished_total``     campaign rows that ended, by ``kind`` and ``outcome`` (done, failed,
                                                skipped)
``ocppsec_gateway_campaign_calls_total``        calls the gateway sent to stations for its campaigns
=============================================== ====================================================================

With ``--workers`` every worker writes its values to ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's
multiprocess mode; gauges summed over live workers) and the supervisor serves their sum
(:func:`multiprocess_registry`).

The event sink's depths come from any sink with ``counters()`` returning an object with ``in_queue``,
``in_spool`` and ``dropped`` (:class:`SinkCounterView`), without importing the sink's module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from ocppsec.security_profiles.gateway._certfacts import CertFacts, certificate_facts

if TYPE_CHECKING:
    from ocppsec.security_profiles.gateway.core import Gateway, RelaySession
    from ocppsec.security_profiles.gateway.guard import StationGuard
    from ocppsec.security_profiles.gateway.reload import Reloader

__all__ = [
    "EXPIRY_BUCKETS",
    "CertFacts",
    "CountingSink",
    "GatewayMetrics",
    "SinkCounterView",
    "expiry_bucket",
    "multiprocess_registry",
    "sink_counters",
    "station_certificate",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
EXPIRY_BUCKETS = ((0, "expired"), (7, "0-7d"), (30, "7-30d"), (90, "30-90d"), (365, "90-365d"))
_OVER = "365d+"


@runtime_checkable
class SinkCounterView(Protocol):
    """What the metrics read from an event sink's counters (``ocppsec.eventlog.queued.SinkCounters`` has it)."""

    @property
    def in_queue(self) -> int: ...

    @property
    def in_spool(self) -> int: ...

    @property
    def dropped(self) -> int: ...


@runtime_checkable
class CountingSink(Protocol):
    """An event sink that keeps counters."""

    def counters(self) -> SinkCounterView: ...


def sink_counters(sink: object) -> SinkCounterView | None:
    """The counters of ``sink`` (through a :class:`~ocppsec.pki.events.sink.SafeSink`), or None without any."""
    inner = getattr(sink, "inner", sink)
    if not isinstance(inner, CountingSink):
        return None
    value = inner.counters()
    return value if isinstance(value, SinkCounterView) else None


def _certificate_der(session: RelaySession) -> bytes | None:
    held = session.station.context.get("station_certificate")  # the guard's StationCertificate, when it ran
    der = getattr(held, "der", None)
    if isinstance(der, bytes):
        return der
    ssl_object = session.station.websocket.transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    got = ssl_object.getpeercert(binary_form=True)
    return got if isinstance(got, bytes) else None


def station_certificate(session: RelaySession) -> CertFacts | None:
    """The facts of the certificate ``session``'s station presented (None: none, or one pyca cannot read).
    Parsed once per certificate (:func:`~._certfacts.certificate_facts`)."""
    der = _certificate_der(session)
    return None if der is None else certificate_facts(der)


def expiry_bucket(not_after: datetime, at: datetime) -> str:
    """The ``expires_in`` label of a certificate valid until ``not_after``, at ``at``."""
    days = (not_after - at).total_seconds() / 86400
    for limit, label in EXPIRY_BUCKETS:
        if days < limit:
            return label
    return _OVER


def _labels(names: Iterable[str]) -> list[str]:
    return list(names)


class GatewayMetrics:
    """The gateway's metrics in ``registry`` (a private one by default, so two gateways in one process do
    not collide); :meth:`sync` brings them up to date from the gateway's counts."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.connections = Gauge("ocppsec_gateway_connections", "Stations relayed now", _labels(("profile", "version")),
                                 registry=r, multiprocess_mode="livesum")
        self.handshakes = Counter("ocppsec_gateway_handshakes", "Station handshakes by outcome and reason",
                                  _labels(("outcome", "reason")), registry=r)
        self.frames = Counter("ocppsec_gateway_frames_relayed", "WebSocket messages relayed", ["direction"], registry=r)
        self.upstream_failures = Counter("ocppsec_gateway_upstream_failures",
                                         "Stations closed because the upstream CSMS was unavailable", registry=r)
        self.station_events = Counter("ocppsec_gateway_station_events",
                                      "SecurityEventNotifications recorded on their way through", registry=r)
        self.guard_closed = Counter("ocppsec_gateway_guard_closed", "Connected stations closed by the guard (1008)",
                                    ["event"], registry=r)
        self.event_queue = Gauge("ocppsec_gateway_event_queue_depth", "Events waiting in the event sink's queue",
                                 registry=r, multiprocess_mode="livesum")
        self.event_spool = Gauge("ocppsec_gateway_event_spool_depth", "Events waiting in the event spool",
                                 registry=r, multiprocess_mode="livesum")
        self.events_dropped = Counter("ocppsec_gateway_events_dropped", "Events lost (queue full, spool not writable)",
                                      registry=r)
        self.certificates = Gauge("ocppsec_gateway_station_certificates",
                                  "Connected stations' certificates by days to expiry", ["expires_in"],
                                  registry=r, multiprocess_mode="livesum")
        self.reloads = Counter("ocppsec_gateway_reloads", "Reloads (SIGHUP) by outcome", ["outcome"], registry=r)
        self.campaign_stations = Gauge("ocppsec_gateway_campaign_stations", "Campaign stations by campaign, kind and state",
                                       ["campaign", "kind", "state"], registry=r, multiprocess_mode="livesum")
        self.campaign_finished = Counter("ocppsec_gateway_campaign_finished", "Campaign rows that ended, by outcome",
                                         ["kind", "outcome"], registry=r)
        self.campaign_calls = Counter("ocppsec_gateway_campaign_calls", "Calls sent to stations for campaigns",
                                      registry=r)
        self._last: dict[tuple[str, ...], float] = {}
        self._gauge_labels: dict[str, set[tuple[str, ...]]] = {}

    def _add(self, counter: Counter, key: tuple[str, ...], total: float, labels: tuple[str, ...] = ()) -> None:
        """Advance ``counter`` (with ``labels``) to ``total`` (counts only grow; a smaller total is ignored)."""
        last = self._last.get(key, 0)
        if total > last:
            (counter.labels(*labels) if labels else counter).inc(total - last)
            self._last[key] = total

    def _set_all(self, name: str, gauge: Gauge, values: Mapping[tuple[str, ...], float]) -> None:
        """Set ``gauge`` per label set; label sets seen before and absent now go to 0."""
        seen = self._gauge_labels.setdefault(name, set())
        for labels in seen - values.keys():
            gauge.labels(*labels).set(0)
        for labels, value in values.items():
            gauge.labels(*labels).set(value)
        seen |= values.keys()

    def sync(self, gateway: Gateway, *, guard: StationGuard | None = None, reloader: Reloader | None = None,
             at: datetime | None = None) -> None:
        """Bring every metric up to date from ``gateway``'s counts (call on the gateway's loop)."""
        at = at or datetime.now(UTC)
        stats = gateway.stats
        connections: dict[tuple[str, ...], float] = {}
        certs: dict[tuple[str, ...], float] = {}
        for session in list(gateway.sessions):
            station = session.station
            key = (str(station.profile), station.version.value)
            connections[key] = connections.get(key, 0) + 1
            if station.profile == 3:
                facts = station_certificate(session)
                if facts is not None:
                    bucket = (expiry_bucket(facts.not_after, at),)
                    certs[bucket] = certs.get(bucket, 0) + 1
        self._set_all("connections", self.connections, connections)
        self._set_all("certificates", self.certificates, certs)
        for (outcome, reason), total in handshake_totals(gateway).items():
            self._add(self.handshakes, ("handshakes", outcome, reason), total, (outcome, reason))
        up, down = gateway.relayed()
        self._add(self.frames, ("frames", "up"), up, ("up",))
        self._add(self.frames, ("frames", "down"), down, ("down",))
        self._add(self.upstream_failures, ("upstream_failures",), stats.upstream_failures)
        self._add(self.station_events, ("station_events",), stats.station_events)
        if guard is not None:
            for event, total in guard.stats.closed.items():
                self._add(self.guard_closed, ("guard_closed", event), total, (event,))
        counters = sink_counters(gateway.sink)
        if counters is not None:
            self.event_queue.set(counters.in_queue)
            self.event_spool.set(counters.in_spool)
            self._add(self.events_dropped, ("events_dropped",), counters.dropped)
        engine = getattr(gateway, "campaign_engine", None)
        if engine is not None:
            counts = engine.state_counts()
            self._set_all("campaign_stations", self.campaign_stations, {k: float(v) for k, v in counts.items()})
            for (kind, outcome), total in engine.finished_counts().items():
                self._add(self.campaign_finished, ("campaign_finished", kind, outcome), total, (kind, outcome))
            self._add(self.campaign_calls, ("campaign_calls",), engine.counters.get("calls", 0))
        if reloader is not None:
            self._add(self.reloads, ("reloads", "ok"), reloader.stats.ok, ("ok",))
            self._add(self.reloads, ("reloads", "failed"), reloader.stats.failed, ("failed",))

    def render(self) -> bytes:
        """The registry in Prometheus' text format."""
        return bytes(generate_latest(self.registry))


def handshake_totals(gateway: Gateway) -> dict[tuple[str, str], int]:
    """The running server's handshake counts (:meth:`~.core.Gateway.handshake_counters`) as
    ``{(outcome, reason): total}``: accepted, refused per reason, TLS failures."""
    counts = gateway.handshake_counters()
    if not counts:
        return {}
    out: dict[tuple[str, str], int] = {}
    by_reason = 0
    for key, value in counts.items():
        if key.startswith("refused:"):
            out[("refused", key.split(":", 1)[1])] = int(value)
            by_reason += int(value)
    out[("accepted", "")] = int(counts.get("accepted", 0))
    out[("tls_failed", "tls")] = int(counts.get("tls_failures", 0))
    out[("closed", "control_frame_flood")] = int(counts.get("control_floods", 0))
    rest = int(counts.get("refused", 0)) - by_reason
    if rest > 0:
        out[("refused", "other")] = rest
    return out


def multiprocess_registry(path: str) -> CollectorRegistry:
    """A registry serving the sum of the values every process wrote under ``path`` (the supervisor's)."""
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return bytes(generate_latest(registry))
