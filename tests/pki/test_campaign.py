"""The pure campaign core (transitions, rate limit, retries and the station's own signing back-off,
resume after a restart) and its SQL record on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ocppsec.pki.certmgmt.model import CertificateUse, RootType
from ocppsec.pki.errors import InputError, NotFoundError, UsageError
from ocppsec.pki.lifecycle.campaign import (
    IN_FLIGHT,
    TRANSITIONS,
    CampaignKind,
    CampaignOptions,
    CampaignStatus,
    CommandAction,
    RowState,
    Signal,
    StationProgress,
    apply,
    expire,
    new_campaign,
    next_commands,
    progress,
    resume_rows,
    skip,
)
from ocppsec.pki.lifecycle.campaign_sql import open_campaigns

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
RENEW = CampaignKind.RENEW


def _run(row: StationProgress, *signals: Signal, options: CampaignOptions | None = None,
         kind: CampaignKind = RENEW, at: datetime = T0) -> StationProgress:
    for s in signals:
        row = apply(row, s, kind=kind, options=options or CampaignOptions(), at=at)
    return row


def test_renewal_happy_path_ends_done_only_on_reconnect_with_the_new_certificate() -> None:
    row = StationProgress("CS-1")
    row = _run(row, Signal.SENT)
    assert row.state is RowState.TRIGGERED and row.attempts == 1 and row.deadline == T0 + timedelta(seconds=60)
    row = _run(row, Signal.TRIGGER_ACCEPTED, Signal.CSR)
    assert row.state is RowState.CSR_RECEIVED and row.csr_at == T0
    row = apply(row, Signal.CERT_SENT, kind=RENEW, options=CampaignOptions(), at=T0, expected="ab" * 32)
    assert row.state is RowState.SIGNED and row.expected == "ab" * 32
    row = _run(row, Signal.CERT_ACCEPTED)
    assert row.state is RowState.AWAITING_RECONNECT and row.deadline == T0 + timedelta(seconds=300)
    assert _run(row, Signal.DISCARDED).state is RowState.FAILED  # A02.FR.28-29
    done = _run(row, Signal.RECONNECTED_NEW)
    assert done.state is RowState.DONE and done.terminal and done.deadline is None
    # a terminal row ignores everything, a late answer included
    assert all(_run(done, s) == done for s in Signal)


def test_v2g_renewal_needs_no_reconnect() -> None:
    options = CampaignOptions(use=CertificateUse.V2G)
    row = _run(StationProgress("CS-1"), Signal.SENT, Signal.CSR, Signal.CERT_SENT, Signal.CERT_ACCEPTED, options=options)
    assert row.state is RowState.DONE


def test_signals_the_table_does_not_list_change_nothing() -> None:
    row = _run(StationProgress("CS-1"), Signal.SENT)
    for signal in (Signal.CERT_ACCEPTED, Signal.INSTALL_ACCEPTED, Signal.CONFIRMED, Signal.DELETE_ACCEPTED):
        assert (row.state, signal) not in TRANSITIONS
        assert _run(row, signal) == row
    assert _run(StationProgress("CS-1"), Signal.TIMEOUT) == StationProgress("CS-1")  # nothing out: no timeout


def test_rollover_and_retirement_paths() -> None:
    row = _run(StationProgress("CS-1"), Signal.SENT, kind=CampaignKind.ROLLOVER)
    assert row.state is RowState.INSTALLING
    row = _run(row, Signal.INSTALL_ACCEPTED, kind=CampaignKind.ROLLOVER)
    assert row.state is RowState.CONFIRMING
    assert _run(row, Signal.CONFIRMED, kind=CampaignKind.ROLLOVER).state is RowState.DONE
    refused = _run(StationProgress("CS-2"), Signal.SENT, kind=CampaignKind.ROLLOVER)
    refused = apply(refused, Signal.INSTALL_REFUSED, kind=CampaignKind.ROLLOVER, options=CampaignOptions(), at=T0,
                    reason="InstallCertificate Rejected")
    assert refused.state is RowState.FAILED and refused.reason == "InstallCertificate Rejected"  # not retried
    retire = _run(StationProgress("CS-3"), Signal.SENT, kind=CampaignKind.RETIRE)
    assert retire.state is RowState.DELETING
    assert _run(retire, Signal.DELETE_ACCEPTED, kind=CampaignKind.RETIRE).state is RowState.DONE


def test_timeouts_are_retried_after_the_delay_then_fail_with_the_attempts_counted() -> None:
    options = CampaignOptions(max_attempts=2, retry_delay=30)
    row = _run(StationProgress("CS-1"), Signal.SENT, options=options)
    row = apply(row, Signal.TIMEOUT, kind=RENEW, options=options, at=T0 + timedelta(seconds=60))
    assert row.state is RowState.PENDING and row.next_at == T0 + timedelta(seconds=90) and row.reason == "timeout"
    assert next_commands(RENEW, [row], options, connected={"CS-1"}, at=T0 + timedelta(seconds=89)) == []
    assert len(next_commands(RENEW, [row], options, connected={"CS-1"}, at=T0 + timedelta(seconds=90))) == 1
    row = apply(row, Signal.SENT, kind=RENEW, options=options, at=T0 + timedelta(seconds=90))
    assert row.attempts == 2
    row = apply(row, Signal.TRIGGER_REFUSED, kind=RENEW, options=options, at=T0 + timedelta(seconds=91),
                reason="TriggerMessage Rejected")
    assert row.state is RowState.FAILED and row.reason == "TriggerMessage Rejected (after 2 attempts)"


def test_an_unsupported_trigger_fails_at_once() -> None:
    row = _run(StationProgress("CS-1"), Signal.SENT, Signal.TRIGGER_UNSUPPORTED)
    assert row.state is RowState.FAILED and row.attempts == 1


def test_the_station_own_signing_backoff_holds_the_retrigger() -> None:
    """CertSigningWaitMinimum 60 s, CertSigningRepeatTimes 3: the station resends at +60, +180, +420 s after its
    CSR (A02/A03.FR.17-19); a lost CertificateSigned is not triggered again before the last resend is over."""
    options = CampaignOptions(station_wait_minimum=60, station_repeat_times=3, retry_delay=10, max_attempts=3)
    row = _run(StationProgress("CS-1"), Signal.SENT, Signal.CSR, Signal.CERT_SENT, options=options)
    row = apply(row, Signal.CERT_REFUSED, kind=RENEW, options=options, at=T0 + timedelta(seconds=5))
    assert row.state is RowState.PENDING and row.next_at == T0 + timedelta(seconds=420)
    assert next_commands(RENEW, [row], options, connected={"CS-1"}, at=T0 + timedelta(seconds=419)) == []
    # the station's own resend in the meantime is taken up
    resent = apply(row, Signal.CSR, kind=RENEW, options=options, at=T0 + timedelta(seconds=60))
    assert resent.state is RowState.CSR_RECEIVED and resent.csr_at == T0 + timedelta(seconds=60)
    # without the station's back-off only the campaign's delay applies
    plain = CampaignOptions(retry_delay=10)
    row = _run(StationProgress("CS-1"), Signal.SENT, Signal.CSR, Signal.CERT_SENT, options=plain)
    row = apply(row, Signal.CERT_REFUSED, kind=RENEW, options=plain, at=T0 + timedelta(seconds=5))
    assert row.next_at == T0 + timedelta(seconds=15)


def test_rate_limit_counts_calls_in_flight_and_only_connected_due_stations() -> None:
    options = CampaignOptions(max_in_flight=3)
    rows = [StationProgress(f"CS-{i}") for i in range(10)]
    rows[0] = _run(rows[0], Signal.SENT)
    rows[1] = _run(rows[1], Signal.SENT, Signal.CSR)
    rows[2] = _run(rows[2], Signal.SENT, Signal.CSR, Signal.CERT_SENT, Signal.CERT_ACCEPTED)  # awaiting: not in flight
    assert rows[2].state not in IN_FLIGHT
    online = {f"CS-{i}" for i in range(10)} - {"CS-3"}
    commands = next_commands(RENEW, rows, options, connected=online, at=T0)
    assert [(c.station_id, c.action) for c in commands] == [("CS-4", CommandAction.TRIGGER)]
    assert next_commands(RENEW, rows, CampaignOptions(max_in_flight=2), connected=online, at=T0) == []
    assert len(next_commands(RENEW, rows, CampaignOptions(max_in_flight=100), connected=online, at=T0)) == 6
    assert [c.action for c in next_commands(CampaignKind.ROLLOVER, [StationProgress("A")], options, connected=["A"],
                                            at=T0)] == [CommandAction.INSTALL]


def test_expire_lists_overdue_rows() -> None:
    options = CampaignOptions(timeout=10)
    out = _run(StationProgress("CS-1"), Signal.SENT, options=options)
    awaiting = _run(StationProgress("CS-2"), Signal.SENT, Signal.CSR, Signal.CERT_SENT, Signal.CERT_ACCEPTED,
                    options=options)
    rows = [out, awaiting, StationProgress("CS-3")]
    assert expire(rows, at=T0 + timedelta(seconds=9)) == []
    assert expire(rows, at=T0 + timedelta(seconds=10)) == ["CS-1"]
    assert expire(rows, at=T0 + timedelta(seconds=300)) == ["CS-1", "CS-2"]


def test_resume_puts_interrupted_calls_back_and_keeps_reconnect_waits() -> None:
    signed = apply(_run(StationProgress("E"), Signal.SENT, Signal.CSR), Signal.CERT_SENT, kind=RENEW,
                   options=CampaignOptions(), at=T0, expected="ef" * 32)
    rows = [_run(StationProgress("A"), Signal.SENT),
            _run(StationProgress("B"), Signal.SENT, Signal.CSR, Signal.CERT_SENT, Signal.CERT_ACCEPTED),
            _run(StationProgress("C"), Signal.SENT, Signal.TRIGGER_UNSUPPORTED), StationProgress("D"), signed]
    later = T0 + timedelta(hours=1)
    a, b, c, d, e = resume_rows(rows, at=later, options=CampaignOptions(reconnect_timeout=60))
    assert a.state is RowState.PENDING and a.attempts == 1 and a.reason == "interrupted by a gateway restart"
    assert a.deadline is None and a.updated_at == later
    assert (b, c, d) == (rows[1], rows[2], rows[3])
    # the CertificateSigned went out: the station may hold it, so its reconnect is awaited (not a new trigger)
    assert e.state is RowState.AWAITING_RECONNECT and e.deadline == later + timedelta(seconds=60)
    assert _run(e, Signal.RECONNECTED_NEW).state is RowState.DONE
    # a retry planned already does not stop the station's reconnect with the certificate from counting
    assert _run(a, Signal.RECONNECTED_NEW).state is RowState.DONE


def test_skip_and_progress() -> None:
    rows = [skip(StationProgress("A"), "1.6 has no V2G20", at=T0), _run(StationProgress("B"), Signal.SENT),
            _run(StationProgress("C"), Signal.SENT, Signal.TRIGGER_UNSUPPORTED)]
    p = progress(rows)
    assert (p.total, p.finished, p.done, p.failed, p.complete) == (3, 2, 0, 1, False)
    assert p.to_json()["states"] == {"failed": 1, "skipped": 1, "triggered": 1}


def test_options_from_json_refuse_bad_input() -> None:
    options = CampaignOptions(max_in_flight=5, use=CertificateUse.V2G, stations=("A",), root_type=RootType.V2G)
    assert CampaignOptions.from_json(options.to_json()) == options
    for bad, words in (({"max_in_flight": 0}, "at least 1"), ({"nope": 1}, "unknown"), ({"use": "x"}, "bad"),
                       ({"force": 1}, "true or false"), ({"timeout": "1"}, "number"), ({"stations": "A"}, "list"),
                       ({"max_attempts": 1.5}, "integer")):
        with pytest.raises(InputError, match=words):
            CampaignOptions.from_json(bad)
    with pytest.raises(UsageError):
        CampaignOptions(station_repeat_times=-1)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_sql_record_resumes_a_campaign(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = str(tmp_path / "campaigns.db") if backend == "sqlite" else request.getfixturevalue("pg_url")
    options = CampaignOptions(max_in_flight=2, station_wait_minimum=30, station_repeat_times=2)
    campaign = new_campaign(RENEW, options, at=T0, detail={"note": "x"})
    rows = [StationProgress(f"CS-{i}", updated_at=T0) for i in range(3)]
    store = open_campaigns(url)
    try:
        store.create(campaign, rows)
        moved = [apply(rows[0], Signal.SENT, kind=RENEW, options=options, at=T0),
                 _run(rows[1], Signal.SENT, Signal.CSR, Signal.CERT_SENT, options=options)]
        moved[1] = apply(moved[1], Signal.CERT_ACCEPTED, kind=RENEW, options=options, at=T0, expected="cd" * 32)
        store.save_rows(campaign.id, moved)
        store.set_status(campaign)
    finally:
        store.close()
    store = open_campaigns(url)  # a restarted gateway
    try:
        (again,) = store.campaigns()
        assert again.id == campaign.id and again.options == options and again.status is CampaignStatus.RUNNING
        assert again.detail == {"note": "x"} and again.created_at == T0
        back = store.rows(campaign.id)
        assert [r.state for r in back] == [RowState.TRIGGERED, RowState.AWAITING_RECONNECT, RowState.PENDING]
        assert back[1].csr_at == T0 and back[1].deadline == T0 + timedelta(seconds=300)
        resumed = resume_rows(back, at=T0 + timedelta(minutes=5))
        assert [r.state for r in resumed] == [RowState.PENDING, RowState.AWAITING_RECONNECT, RowState.PENDING]
        assert [c.station_id for c in next_commands(RENEW, resumed, options, connected={"CS-0", "CS-1", "CS-2"},
                                                     at=T0 + timedelta(minutes=5))] == ["CS-0", "CS-2"]
        with pytest.raises(NotFoundError):
            store.get("renew-nope")
    finally:
        store.close()
