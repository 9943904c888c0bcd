"""GetLog (logType SecurityLog) on the station side, as a pure state machine (N01).

The machine is an immutable value; every input returns the next machine and the *actions* an adapter
must carry out (send a LogStatusNotification, start an upload attempt, wake me at a time). It never
does I/O and never reads a clock: time comes in as ``at``.

==========================  ======================================================================
input                       effect
==========================  ======================================================================
request, not SecurityLog    reply Rejected
request, bad remoteLocation reply Rejected (nothing to upload to)
request, no log in window   reply Rejected, no filename (N01.FR.05)
request, scheme not http(s) reply Accepted + filename, then NotSupportedOperation
request while busy          old job cancelled: LogStatusNotification AcceptedCanceled for the old
                            requestId (N01.FR.20), reply AcceptedCanceled (N01.FR.12), new job starts
request, otherwise          reply Accepted + filename (N01.FR.01), Uploading (N01.FR.08), upload #1
upload ok                   Uploaded (N01.FR.09), idle
upload failed, retries left wait retryInterval, then the next attempt (no status in between)
upload failed, no retries   the failure status of the last attempt (N01.FR.10: only after retries)
result of a stale attempt   ignored (the job was cancelled or already moved on)
==========================  ======================================================================

The same requestId is used throughout (N01.FR.07). Whether a version can express a status (1.6 has no
AcceptedCanceled LogStatusNotification) is decided by the version adapters, not here.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from urllib.parse import quote, urlsplit

__all__ = [
    "Action",
    "GetLogMachine",
    "GetLogPolicy",
    "GetLogReply",
    "GetLogRequest",
    "GetLogStatus",
    "Job",
    "LogStatus",
    "SendStatus",
    "StartUpload",
    "UploadOutcome",
    "WakeAt",
    "log_filename",
]


class GetLogStatus(enum.Enum):
    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    ACCEPTED_CANCELED = "AcceptedCanceled"


class LogStatus(enum.Enum):
    """UploadLogStatusEnumType."""

    BAD_MESSAGE = "BadMessage"
    IDLE = "Idle"
    NOT_SUPPORTED_OPERATION = "NotSupportedOperation"
    PERMISSION_DENIED = "PermissionDenied"
    UPLOADED = "Uploaded"
    UPLOAD_FAILURE = "UploadFailure"
    UPLOADING = "Uploading"
    ACCEPTED_CANCELED = "AcceptedCanceled"


class UploadOutcome(enum.Enum):
    """What one upload attempt ended with (the adapter classifies the transport result)."""

    OK = "ok"
    FAILURE = "failure"  # network error, timeout, 5xx: UploadFailure
    BAD_MESSAGE = "bad-message"  # the server called our request malformed (400, 413, 415 ...)
    PERMISSION_DENIED = "permission-denied"  # 401, 403
    NOT_SUPPORTED = "not-supported"  # scheme or method the server/station cannot do: no retry

    @property
    def final_status(self) -> LogStatus:
        return {
            UploadOutcome.OK: LogStatus.UPLOADED,
            UploadOutcome.FAILURE: LogStatus.UPLOAD_FAILURE,
            UploadOutcome.BAD_MESSAGE: LogStatus.BAD_MESSAGE,
            UploadOutcome.PERMISSION_DENIED: LogStatus.PERMISSION_DENIED,
            UploadOutcome.NOT_SUPPORTED: LogStatus.NOT_SUPPORTED_OPERATION,
        }[self]


@dataclass(frozen=True, slots=True)
class GetLogRequest:
    """A GetLog request, version-neutral (the adapters translate payloads)."""

    log_type: str
    request_id: int
    remote_location: str
    oldest: datetime | None = None
    latest: datetime | None = None
    retries: int | None = None
    retry_interval: int | None = None


@dataclass(frozen=True, slots=True)
class GetLogReply:
    status: GetLogStatus
    filename: str | None = None


@dataclass(frozen=True, slots=True)
class SendStatus:
    status: LogStatus
    request_id: int


@dataclass(frozen=True, slots=True)
class StartUpload:
    request_id: int
    attempt: int
    url: str
    filename: str


@dataclass(frozen=True, slots=True)
class WakeAt:
    """Call :meth:`GetLogMachine.on_timer` at (or after) ``at``."""

    request_id: int
    at: datetime


Action = SendStatus | StartUpload | WakeAt


@dataclass(frozen=True, slots=True)
class GetLogPolicy:
    """The station's choices where the request leaves them open."""

    default_retries: int = 2
    default_retry_interval: int = 30
    supported_log_types: frozenset[str] = frozenset({"SecurityLog"})
    supported_schemes: frozenset[str] = frozenset({"http", "https"})
    append_filename_to_directory_url: bool = False
    """2.1 N01.FR.21: a remoteLocation ending in "/" gets the file name appended."""


@dataclass(frozen=True, slots=True)
class Job:
    request: GetLogRequest
    filename: str
    url: str
    attempt: int
    waiting_until: datetime | None = None

    @property
    def max_attempts(self) -> int:
        return 1 + (self.request.retries or 0)


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def log_filename(station_id: str, request_id: int, at: datetime) -> str:
    """``<station>-SecurityLog-<requestId>-<UTC time>.log`` with only safe characters (<= 255)."""
    station = _SAFE.sub("_", station_id)[:150] or "station"
    return f"{station}-SecurityLog-{request_id}-{at.strftime('%Y%m%dT%H%M%SZ')}.log"


@dataclass(frozen=True, slots=True)
class GetLogMachine:
    policy: GetLogPolicy = field(default_factory=GetLogPolicy)
    job: Job | None = None

    @property
    def busy(self) -> bool:
        return self.job is not None

    def on_request(
        self, request: GetLogRequest, *, at: datetime, filename: str | None
    ) -> tuple[GetLogMachine, GetLogReply, list[Action]]:
        """A GetLog arrived. ``filename`` is the file produced for its window (None: no log there)."""
        if request.log_type not in self.policy.supported_log_types:
            return self, GetLogReply(GetLogStatus.REJECTED), []
        parts = urlsplit(request.remote_location)
        if not parts.scheme or not parts.netloc:
            return self, GetLogReply(GetLogStatus.REJECTED), []
        if filename is None:
            return self, GetLogReply(GetLogStatus.REJECTED), []
        actions: list[Action] = []
        status = GetLogStatus.ACCEPTED
        if self.job is not None:
            actions.append(SendStatus(LogStatus.ACCEPTED_CANCELED, self.job.request.request_id))
            status = GetLogStatus.ACCEPTED_CANCELED
        retries = request.retries if request.retries is not None else self.policy.default_retries
        interval = request.retry_interval if request.retry_interval is not None else self.policy.default_retry_interval
        request = replace(request, retries=max(0, retries), retry_interval=max(0, interval))
        if parts.scheme.lower() not in self.policy.supported_schemes:
            actions.append(SendStatus(LogStatus.NOT_SUPPORTED_OPERATION, request.request_id))
            return replace(self, job=None), GetLogReply(status, filename), actions
        url = request.remote_location
        if self.policy.append_filename_to_directory_url and url.endswith("/"):
            url += quote(filename)
        job = Job(request, filename, url, attempt=1)
        actions.append(SendStatus(LogStatus.UPLOADING, request.request_id))
        actions.append(StartUpload(request.request_id, 1, url, filename))
        return replace(self, job=job), GetLogReply(status, filename), actions

    def on_upload_result(
        self, request_id: int, attempt: int, outcome: UploadOutcome, *, at: datetime
    ) -> tuple[GetLogMachine, list[Action]]:
        job = self.job
        if job is None or job.request.request_id != request_id or job.attempt != attempt or job.waiting_until:
            return self, []
        if outcome is UploadOutcome.OK:
            return replace(self, job=None), [SendStatus(LogStatus.UPLOADED, request_id)]
        if outcome is UploadOutcome.NOT_SUPPORTED or attempt >= job.max_attempts:
            return replace(self, job=None), [SendStatus(outcome.final_status, request_id)]
        wake = at + timedelta(seconds=job.request.retry_interval or 0)
        return replace(self, job=replace(job, waiting_until=wake)), [WakeAt(request_id, wake)]

    def on_timer(self, request_id: int, *, at: datetime) -> tuple[GetLogMachine, list[Action]]:
        job = self.job
        if job is None or job.request.request_id != request_id:
            return self, []
        if job.waiting_until is None or at < job.waiting_until:
            return self, []
        nxt = replace(job, attempt=job.attempt + 1, waiting_until=None)
        return replace(self, job=nxt), [StartUpload(job.request.request_id, nxt.attempt, job.url, job.filename)]
