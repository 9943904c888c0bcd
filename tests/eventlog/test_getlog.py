"""The GetLog state machine, as a table of inputs and actions (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ocppsec.eventlog.getlog import (
    GetLogMachine,
    GetLogPolicy,
    GetLogRequest,
    GetLogStatus,
    LogStatus,
    SendStatus,
    StartUpload,
    UploadOutcome,
    WakeAt,
    log_filename,
)

AT = datetime(2026, 11, 23, 12, tzinfo=UTC)
URL = "https://csms.example/logs/CS1/7/"
FILE = "CS1-SecurityLog-7-20261123T120000Z.log"


def req(request_id: int = 7, **kw: object) -> GetLogRequest:
    args: dict[str, object] = {"log_type": "SecurityLog", "request_id": request_id, "remote_location": URL}
    args.update(kw)
    return GetLogRequest(**args)  # type: ignore[arg-type]


def test_accept_report_uploading_and_start() -> None:
    m, reply, actions = GetLogMachine().on_request(req(), at=AT, filename=FILE)
    assert reply.status is GetLogStatus.ACCEPTED and reply.filename == FILE
    assert actions == [SendStatus(LogStatus.UPLOADING, 7), StartUpload(7, 1, URL, FILE)]
    m, actions = m.on_upload_result(7, 1, UploadOutcome.OK, at=AT)
    assert actions == [SendStatus(LogStatus.UPLOADED, 7)]
    assert not m.busy


def test_rejections() -> None:
    m = GetLogMachine()
    assert m.on_request(req(log_type="DiagnosticsLog"), at=AT, filename=FILE)[1].status is GetLogStatus.REJECTED
    assert m.on_request(req(remote_location="not a url"), at=AT, filename=FILE)[1].status is GetLogStatus.REJECTED
    reply = m.on_request(req(), at=AT, filename=None)[1]  # nothing in the window
    assert reply.status is GetLogStatus.REJECTED and reply.filename is None


def test_unsupported_scheme_is_accepted_then_not_supported() -> None:
    m, reply, actions = GetLogMachine().on_request(req(remote_location="ftp://u:p@h/x"), at=AT, filename=FILE)
    assert reply.status is GetLogStatus.ACCEPTED
    assert actions == [SendStatus(LogStatus.NOT_SUPPORTED_OPERATION, 7)]
    assert not m.busy


def test_retries_then_final_failure_status_only_after_the_last_attempt() -> None:
    m, _, actions = GetLogMachine().on_request(req(retries=2, retry_interval=10), at=AT, filename=FILE)
    for attempt in (1, 2):
        m, actions = m.on_upload_result(7, attempt, UploadOutcome.FAILURE, at=AT)
        assert actions == [WakeAt(7, AT + timedelta(seconds=10))]
        assert m.on_timer(7, at=AT + timedelta(seconds=9))[1] == []  # too early
        m, actions = m.on_timer(7, at=AT + timedelta(seconds=10))
        assert actions == [StartUpload(7, attempt + 1, URL, FILE)]
    m, actions = m.on_upload_result(7, 3, UploadOutcome.PERMISSION_DENIED, at=AT)
    assert actions == [SendStatus(LogStatus.PERMISSION_DENIED, 7)]
    assert not m.busy


def test_zero_retries_means_one_attempt() -> None:
    m, _, _ = GetLogMachine().on_request(req(retries=0), at=AT, filename=FILE)
    m, actions = m.on_upload_result(7, 1, UploadOutcome.BAD_MESSAGE, at=AT)
    assert actions == [SendStatus(LogStatus.BAD_MESSAGE, 7)]


def test_default_retries_from_policy() -> None:
    m, _, _ = GetLogMachine(GetLogPolicy(default_retries=1, default_retry_interval=5)).on_request(
        req(), at=AT, filename=FILE
    )
    m, actions = m.on_upload_result(7, 1, UploadOutcome.FAILURE, at=AT)
    assert actions == [WakeAt(7, AT + timedelta(seconds=5))]


def test_not_supported_outcome_is_not_retried() -> None:
    m, _, _ = GetLogMachine().on_request(req(retries=5), at=AT, filename=FILE)
    m, actions = m.on_upload_result(7, 1, UploadOutcome.NOT_SUPPORTED, at=AT)
    assert actions == [SendStatus(LogStatus.NOT_SUPPORTED_OPERATION, 7)]


def test_new_request_cancels_the_running_one() -> None:
    m, _, _ = GetLogMachine().on_request(req(7), at=AT, filename=FILE)
    m, reply, actions = m.on_request(req(8), at=AT, filename="new.log")
    assert reply.status is GetLogStatus.ACCEPTED_CANCELED
    assert actions[0] == SendStatus(LogStatus.ACCEPTED_CANCELED, 7)
    assert actions[1:] == [SendStatus(LogStatus.UPLOADING, 8), StartUpload(8, 1, URL, "new.log")]
    # the cancelled upload finishing later changes nothing
    assert m.on_upload_result(7, 1, UploadOutcome.OK, at=AT) == (m, [])
    assert m.on_timer(7, at=AT + timedelta(days=1)) == (m, [])


def test_new_request_while_waiting_for_a_retry_also_cancels() -> None:
    m, _, _ = GetLogMachine().on_request(req(7, retries=1, retry_interval=60), at=AT, filename=FILE)
    m, _ = m.on_upload_result(7, 1, UploadOutcome.FAILURE, at=AT)
    m, reply, actions = m.on_request(req(8), at=AT, filename=FILE)
    assert reply.status is GetLogStatus.ACCEPTED_CANCELED
    assert actions[0] == SendStatus(LogStatus.ACCEPTED_CANCELED, 7)


def test_stale_attempt_results_are_ignored() -> None:
    m, _, _ = GetLogMachine().on_request(req(retries=1, retry_interval=0), at=AT, filename=FILE)
    m, _ = m.on_upload_result(7, 1, UploadOutcome.FAILURE, at=AT)
    assert m.on_upload_result(7, 1, UploadOutcome.OK, at=AT)[1] == []  # still waiting, attempt 1 is old


def test_21_policy_appends_the_filename_to_a_directory_url() -> None:
    policy = GetLogPolicy(append_filename_to_directory_url=True)
    _, _, actions = GetLogMachine(policy).on_request(req(), at=AT, filename=FILE)
    assert StartUpload(7, 1, URL + FILE, FILE) in actions
    _, _, actions = GetLogMachine(policy).on_request(req(remote_location="https://h/put-here"), at=AT, filename=FILE)
    assert StartUpload(7, 1, "https://h/put-here", FILE) in actions


def test_log_filename_is_safe() -> None:
    name = log_filename("../../CS 1;rm", 3, AT)
    assert "/" not in name and " " not in name and ";" not in name
    assert name.endswith("-SecurityLog-3-20261123T120000Z.log")
