"""The CSMS's SecurityEventNotification handler, as a part for :func:`ocppsec.pki.chargepoint.compose`.

Every event a station sends goes through the one parser (:func:`~ocppsec.pki.events.ingest.event_from_payload`)
into an :class:`~ocppsec.pki.events.sink.EventSink` (the event log's store, a ``BufferedSink``, a
``MemorySink``): ADR 7. The ``ocpp`` package's schema check is off for this action on purpose, so an
over-long techInfo is cut and flagged instead of refused; only an event without a usable type or
timestamp is answered with the version's CallError (FormatViolation; 1.6 FormationViolation). The sink
runs in a worker thread (stores write and sync); a sink that raises (a store that is down, with no
buffer) makes the answer a CallError, so the station keeps the event queued and sends it again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from ocppsec.pki.chargepoint.compose import Part, Side, on
from ocppsec.pki.chargepoint.glue import camel, format_error, ocpp_module
from ocppsec.pki.events.ingest import ACTION, event_from_payload
from ocppsec.pki.events.model import EventInputError
from ocppsec.pki.events.sink import EventSink, MemorySink
from ocppsec.pki.versions import OcppVersion

__all__ = ["PART_NAME", "csms_part"]

PART_NAME = "security events"
Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def csms_part(version: OcppVersion, sink: EventSink | None = None, *, clock: Clock = _utcnow) -> Part:
    """SecurityEventNotification into ``sink``.

    Constructor keywords: ``sink=`` (overrides the part's sink for one connection) and ``clock=``.
    Without either sink, each connection keeps its events in a :class:`MemorySink` of its own
    (``cp.event_sink.events``).
    """
    empty_result = ocpp_module(version).call_result.SecurityEventNotification

    class SecurityEventHandlers:
        id: str
        event_sink: EventSink
        security_event_clock: Clock

        @on(ACTION, skip_schema_validation=True)
        async def ocppsec_on_security_event_notification(self, **kwargs: Any) -> Any:
            try:
                event = event_from_payload(camel(kwargs), station_id=self.id, version=version,
                                           at=self.security_event_clock())
            except EventInputError as exc:
                raise format_error(version, str(exc)) from None
            await asyncio.to_thread(self.event_sink.record, event)  # a StoreError becomes a CallError
            return empty_result()

    def setup(cp: Any, options: Mapping[str, Any]) -> None:
        chosen = options.get("sink", sink)  # not `or`: an empty MemorySink is falsy
        cp.event_sink = chosen if chosen is not None else MemorySink()
        cp.security_event_clock = options.get("clock", clock)

    return Part(PART_NAME, version, Side.CSMS, SecurityEventHandlers, setup, frozenset({"sink", "clock"}))
