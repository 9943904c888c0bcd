"""Certificate lifecycle across a fleet: expiry, renewal planning in bounded batches, root rollover.

The pure core: :mod:`.expiry` (what needs action and when), :mod:`.renewal` (actions, batches,
executors), :mod:`.rollover` (M05 root rollover). Adapters live apart: :mod:`.executor` sends the
station triggers on an asyncio loop, :mod:`.inventory_file` reads the station inventory store.
"""

from __future__ import annotations

from ocppsec.pki.lifecycle.expiry import ExpiringItem, ExpiryPolicy, InventoryItem, find_expiring
from ocppsec.pki.lifecycle.renewal import (
    Action,
    PlanItem,
    ProgressReporter,
    RenewalExecutor,
    RenewalOutcome,
    RenewalReport,
    plan_renewals,
    run_renewals,
)
from ocppsec.pki.lifecycle.rollover import (
    RootRollover,
    StationImpact,
    install_plan,
    prepare_rollover,
    retire_plan,
    rollover_dry_run,
)

__all__ = [
    "Action",
    "ExpiringItem",
    "ExpiryPolicy",
    "InventoryItem",
    "PlanItem",
    "ProgressReporter",
    "RenewalExecutor",
    "RenewalOutcome",
    "RenewalReport",
    "RootRollover",
    "StationImpact",
    "find_expiring",
    "install_plan",
    "plan_renewals",
    "prepare_rollover",
    "retire_plan",
    "rollover_dry_run",
    "run_renewals",
]
