"""Certificate lifecycle across a fleet: expiry, renewal planning in bounded batches, root rollover.

The pure core: :mod:`.expiry` (what needs action and when), :mod:`.renewal` (actions, batches,
executors), :mod:`.rollover` (M05 root rollover). Adapters live apart: :mod:`.executor` sends the
station triggers on an asyncio loop, :mod:`.inventory_file` reads the station inventory store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ocppsec.pki._lazy import lazy_exports

if TYPE_CHECKING:
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

# Imported on first use (ocppsec.pki._lazy): importing one module of this package does not import them all.
__getattr__, __dir__ = lazy_exports(__name__, {
    "Action": "ocppsec.pki.lifecycle.renewal",
    "ExpiringItem": "ocppsec.pki.lifecycle.expiry",
    "ExpiryPolicy": "ocppsec.pki.lifecycle.expiry",
    "InventoryItem": "ocppsec.pki.lifecycle.expiry",
    "PlanItem": "ocppsec.pki.lifecycle.renewal",
    "ProgressReporter": "ocppsec.pki.lifecycle.renewal",
    "RenewalExecutor": "ocppsec.pki.lifecycle.renewal",
    "RenewalOutcome": "ocppsec.pki.lifecycle.renewal",
    "RenewalReport": "ocppsec.pki.lifecycle.renewal",
    "RootRollover": "ocppsec.pki.lifecycle.rollover",
    "StationImpact": "ocppsec.pki.lifecycle.rollover",
    "find_expiring": "ocppsec.pki.lifecycle.expiry",
    "install_plan": "ocppsec.pki.lifecycle.rollover",
    "plan_renewals": "ocppsec.pki.lifecycle.renewal",
    "prepare_rollover": "ocppsec.pki.lifecycle.rollover",
    "retire_plan": "ocppsec.pki.lifecycle.rollover",
    "rollover_dry_run": "ocppsec.pki.lifecycle.rollover",
    "run_renewals": "ocppsec.pki.lifecycle.renewal",
}, globals())

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
