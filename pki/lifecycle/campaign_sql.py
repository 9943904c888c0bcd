"""The campaign record in SQL (SQLite or PostgreSQL): campaigns and their per-station rows.

Two tables of the component ``campaigns`` of ``ocppsec_schema``: ``lifecycle_campaigns`` (one row per
campaign: kind, status, options and the driver's detail as JSON) and ``lifecycle_campaign_stations``
(one row per campaign and station: the :class:`~ocppsec.pki.lifecycle.campaign.StationProgress`).
A gateway writes the rows that changed in batches (one transaction each, :meth:`SqlCampaignStore.save_rows`),
so a restarted gateway resumes from the last batch. :func:`open_campaigns` takes a file path,
``sqlite:///path`` or a ``postgresql://`` URL, so the record can share a database with the ledger,
inventory, registry and event store. Timestamps are kept to the second.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from ocppsec.pki.errors import NotFoundError, StoreError
from ocppsec.pki.lifecycle.campaign import (
    Campaign,
    CampaignKind,
    CampaignOptions,
    CampaignStatus,
    RowState,
    StationProgress,
)
from ocppsec.pki.storage import Database, Migration, Schema, SqlStore, StoreUrl, connect

__all__ = ["SCHEMA", "SqlCampaignStore", "open_campaigns"]

SCHEMA = Schema("campaigns", "campaign record", (
    Migration("campaigns and their stations", (
        """CREATE TABLE lifecycle_campaigns (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            status TEXT NOT NULL,
            options TEXT NOT NULL,
            detail TEXT NOT NULL,
            created_at {TIMESTAMP} NOT NULL,
            updated_at {TIMESTAMP} NOT NULL
        )""",
        """CREATE TABLE lifecycle_campaign_stations (
            campaign_id TEXT NOT NULL REFERENCES lifecycle_campaigns(id) ON DELETE CASCADE,
            station_id TEXT NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            updated_at {TIMESTAMP},
            next_at {TIMESTAMP},
            deadline {TIMESTAMP},
            reason TEXT,
            expected TEXT,
            csr_at {TIMESTAMP},
            PRIMARY KEY (campaign_id, station_id)
        )""",
    )),
))

_ROW_COLS = "station_id, state, attempts, updated_at, next_at, deadline, reason, expected, csr_at"
_UPSERT_ROW = (
    f"INSERT INTO lifecycle_campaign_stations (campaign_id, {_ROW_COLS}) VALUES ({', '.join('?' * 10)}) "
    "ON CONFLICT (campaign_id, station_id) DO UPDATE SET state = excluded.state, attempts = excluded.attempts, "
    "updated_at = excluded.updated_at, next_at = excluded.next_at, deadline = excluded.deadline, "
    "reason = excluded.reason, expected = excluded.expected, csr_at = excluded.csr_at"
)
_STATES = {s.value: s for s in RowState}


class SqlCampaignStore(SqlStore):
    """The campaign record in one SQLite file or PostgreSQL database. Thread-safe."""

    SCHEMA = SCHEMA

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self._ts = database.timestamp
        self._dt = database.datetime

    def _campaign(self, r: Sequence[Any]) -> Campaign:
        cid, kind, status, options, detail, created, updated = r
        try:
            return Campaign(cid, CampaignKind(kind), CampaignOptions.from_json(json.loads(options)), CampaignStatus(status),
                            self._dt(created), self._dt(updated), json.loads(detail))  # type: ignore[arg-type]
        except (ValueError, TypeError) as exc:
            raise StoreError(f"campaign {cid!r} in {self.location} cannot be read: {exc}") from None

    def _row(self, r: Sequence[Any]) -> StationProgress:
        sid, state, attempts, upd, nxt, dl, reason, expected, csr_at = r
        return StationProgress(sid, _STATES[state], int(attempts), self._dt(upd), self._dt(nxt), self._dt(dl), reason,
                               expected, self._dt(csr_at))

    def _row_values(self, campaign_id: str, r: StationProgress) -> tuple[object, ...]:
        ts = self._ts
        return (campaign_id, r.station_id, r.state.value, r.attempts, ts(r.updated_at), ts(r.next_at), ts(r.deadline),
                r.reason, r.expected, ts(r.csr_at))

    def create(self, campaign: Campaign, rows: Sequence[StationProgress]) -> None:
        """Record a new campaign and its rows in one transaction."""
        with self.database.transaction() as tx:
            tx.execute("INSERT INTO lifecycle_campaigns (id, kind, status, options, detail, created_at, updated_at) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (campaign.id, campaign.kind.value, campaign.status.value, json.dumps(campaign.options.to_json()),
                        json.dumps(dict(campaign.detail)), self._ts(campaign.created_at), self._ts(campaign.updated_at)))
            if rows:
                tx.executemany(_UPSERT_ROW, [self._row_values(campaign.id, r) for r in rows])

    def campaigns(self) -> list[Campaign]:
        rows = self.database.fetchall("SELECT id, kind, status, options, detail, created_at, updated_at "
                                      "FROM lifecycle_campaigns ORDER BY created_at, id")
        return [self._campaign(r) for r in rows]

    def get(self, campaign_id: str) -> Campaign:
        row = self.database.fetchone("SELECT id, kind, status, options, detail, created_at, updated_at "
                                     "FROM lifecycle_campaigns WHERE id = ?", (campaign_id,))
        if row is None:
            raise NotFoundError(f"no campaign {campaign_id!r}", hint="`ocppsec campaign status` lists them")
        return self._campaign(row)

    def rows(self, campaign_id: str) -> list[StationProgress]:
        return [self._row(r) for r in self.database.fetchall(
            f"SELECT {_ROW_COLS} FROM lifecycle_campaign_stations WHERE campaign_id = ? ORDER BY station_id",
            (campaign_id,))]

    def save_rows(self, campaign_id: str, rows: Sequence[StationProgress]) -> None:
        """Write rows that changed (insert or replace), in one transaction."""
        if rows:
            with self.database.transaction() as tx:
                tx.executemany(_UPSERT_ROW, [self._row_values(campaign_id, r) for r in rows])

    def set_status(self, campaign: Campaign) -> None:
        self.database.execute("UPDATE lifecycle_campaigns SET status = ?, updated_at = ?, detail = ? WHERE id = ?",
                              (campaign.status.value, self._ts(campaign.updated_at), json.dumps(dict(campaign.detail)),
                               campaign.id))


def open_campaigns(spec: str | os.PathLike[str] | StoreUrl) -> SqlCampaignStore:
    """Open (creating and migrating if needed) the campaign record at a path, ``sqlite://`` or ``postgresql://`` URL."""
    return SqlCampaignStore(connect(spec, what="campaign record", schema=SCHEMA))
