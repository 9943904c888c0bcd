"""The engine's index of the rows a step can move gives what the kernel gives over every row."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from ocppsec.pki.lifecycle.campaign import CampaignKind, CampaignOptions, RowState, StationProgress, expire, next_commands
from ocppsec.security_profiles.gateway.campaigns.engine import _Moving

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _random_row(rng: random.Random, sid: str) -> StationProgress:
    state = rng.choice(list(RowState))
    later = NOW + timedelta(seconds=rng.choice([-30, 30]))
    return StationProgress(sid, state, next_at=later if state is RowState.PENDING and rng.random() < 0.3 else None,
                           deadline=later if state not in (RowState.PENDING, RowState.DONE, RowState.FAILED,
                                                           RowState.SKIPPED) else None)


def test_the_moving_rows_give_the_same_commands_and_timeouts_as_every_row() -> None:
    rng = random.Random(7)
    options = CampaignOptions(max_in_flight=rng.randint(1, 20))
    for _ in range(200):
        rows = {f"CS-{i:03}": _random_row(rng, f"CS-{i:03}") for i in range(rng.randint(0, 60))}
        moving = _Moving(list(rows.values()))
        for _ in range(rng.randint(0, 40)):  # rows change, as _put tells the index
            if not rows:
                break
            sid = rng.choice(list(rows))
            new = replace(_random_row(rng, sid), station_id=sid)
            moving.put(rows[sid], new)
            rows[sid] = new
        online = {sid for sid in rows if rng.random() < 0.8}
        assert moving.open == sum(not r.terminal for r in rows.values())
        assert sorted(expire(list(moving.active.values()), at=NOW)) == sorted(expire(rows.values(), at=NOW))
        active = list(moving.active.values())
        flying = sum(1 for r in active if r.state not in (RowState.AWAITING_RECONNECT,))
        due = moving.due(options.max_in_flight - flying, dict.fromkeys(online), NOW)
        ours = next_commands(CampaignKind.RENEW, [*active, *due], options, connected={r.station_id for r in due}, at=NOW)
        # the pending rows in the order they became pending: the same rows when that is the table's order
        ordered = [rows[sid] for sid in moving.pending] + [r for r in rows.values() if r.state is not RowState.PENDING]
        full = next_commands(CampaignKind.RENEW, ordered, options, connected=online, at=NOW)
        assert ours == full
