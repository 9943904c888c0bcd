"""Our own security log file format (what a station uploads after GetLog), sans-I/O.

OCPP does not prescribe a log format. Ours is JSON Lines in UTF-8: a header line, then one event per
line, oldest first::

    {"format":"ocppsec-security-log","version":1,"stationId":"CS1","ocppVersion":"2.0.1",
     "generatedAt":"2026-11-23T12:00:00.000Z","oldest":null,"latest":null,"requestId":7}
    {"timestamp":"2026-11-23T11:59:00.000Z","type":"StartupOfTheDevice","critical":true}
    {"timestamp":"2026-11-23T11:59:01.000Z","type":"InvalidMessages","techInfo":"...","critical":false}

Parsing is tolerant per line: a bad line is reported (:class:`Rejection`) and the rest of the file is
kept; a file whose header is not ours raises :class:`LogFormatError`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ocppsec.pki.errors import InputError
from ocppsec.pki.events.model import (
    EventInputError,
    Rejection,
    SecurityEvent,
    Source,
    format_timestamp,
    normalize_event,
    parse_timestamp,
)
from ocppsec.pki.versions import OcppVersion

__all__ = ["FORMAT", "LogFormatError", "LogHeader", "ParsedLog", "parse_log", "render_log"]

FORMAT = "ocppsec-security-log"
VERSION = 1
MAX_LINE = 4096


class LogFormatError(InputError):
    """The data is not a security log in our format."""


@dataclass(frozen=True, slots=True)
class LogHeader:
    station_id: str
    ocpp_version: OcppVersion | None
    generated_at: datetime
    oldest: datetime | None
    latest: datetime | None
    request_id: int | None


@dataclass(frozen=True, slots=True)
class ParsedLog:
    header: LogHeader
    events: tuple[SecurityEvent, ...]
    rejections: tuple[Rejection, ...]


def _opt_time(value: datetime | None) -> str | None:
    return format_timestamp(value) if value is not None else None


def render_log(
    events: Iterable[SecurityEvent],
    *,
    station_id: str,
    at: datetime,
    ocpp_version: OcppVersion | None = None,
    oldest: datetime | None = None,
    latest: datetime | None = None,
    request_id: int | None = None,
) -> bytes:
    """The file for ``events`` (any order; written oldest first)."""
    header = {
        "format": FORMAT,
        "version": VERSION,
        "stationId": station_id,
        "ocppVersion": ocpp_version.value if ocpp_version else None,
        "generatedAt": format_timestamp(at),
        "oldest": _opt_time(oldest),
        "latest": _opt_time(latest),
        "requestId": request_id,
    }
    lines = [json.dumps(header, separators=(",", ":"))]
    for event in sorted(events, key=lambda e: e.timestamp):
        record: dict[str, Any] = {"timestamp": format_timestamp(event.timestamp), "type": event.type}
        if event.tech_info is not None:
            record["techInfo"] = event.tech_info
        record["critical"] = event.critical
        lines.append(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
    return ("\n".join(lines) + "\n").encode("utf-8")


def _header(line: bytes) -> LogHeader:
    try:
        data = json.loads(line)
    except ValueError:
        data = None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise LogFormatError(
            "not an ocppsec security log (the first line is not its header)",
            hint="only logs written by ocppsec stations are imported; the file itself is kept",
        )
    if data.get("version") != VERSION:
        raise LogFormatError(f"security log format version {data.get('version')!r} is not supported")
    station = data.get("stationId")
    if not isinstance(station, str) or not station:
        raise LogFormatError("security log header has no stationId")
    try:
        version = OcppVersion(data["ocppVersion"]) if data.get("ocppVersion") else None
        generated = parse_timestamp(data.get("generatedAt"))[0]
        oldest = parse_timestamp(data["oldest"])[0] if data.get("oldest") else None
        latest = parse_timestamp(data["latest"])[0] if data.get("latest") else None
    except (ValueError, EventInputError) as exc:
        raise LogFormatError(f"security log header is malformed: {exc}") from None
    request_id = data.get("requestId")
    if request_id is not None and not isinstance(request_id, int):
        raise LogFormatError("security log header requestId is not an integer")
    return LogHeader(station, version, generated, oldest, latest, request_id)


def parse_log(data: bytes, *, at: datetime, expected_station: str | None = None) -> ParsedLog:
    """Read a log file received at ``at``; events are normalised like notifications (repairs flagged).

    ``expected_station`` (the station the upload is attributed to) must match the header if given.
    """
    lines = data.split(b"\n")
    header = _header(lines[0].strip())
    if expected_station is not None and header.station_id != expected_station:
        raise LogFormatError(
            f"security log is for station {header.station_id!r}, uploaded as {expected_station!r}",
            hint="a station may upload only its own log",
        )
    events: list[SecurityEvent] = []
    rejections: list[Rejection] = []
    for number, raw in enumerate(lines[1:], start=2):
        if not raw.strip():
            continue
        if len(raw) > MAX_LINE:
            rejections.append(Rejection(number, f"line longer than {MAX_LINE} bytes"))
            continue
        try:
            record = json.loads(raw)
            if not isinstance(record, dict):
                raise EventInputError("line is not a JSON object")
            events.append(
                normalize_event(
                    station_id=header.station_id,
                    type=record.get("type"),
                    timestamp=record.get("timestamp"),
                    tech_info=record.get("techInfo"),
                    at=at,
                    ocpp_version=header.ocpp_version,
                    source=Source.UPLOAD,
                )
            )
        except (ValueError, EventInputError) as exc:
            rejections.append(Rejection(number, str(exc)))
    return ParsedLog(header, tuple(events), tuple(rejections))
