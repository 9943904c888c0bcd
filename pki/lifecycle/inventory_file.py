"""Adapter: the station inventory store, read as :class:`~ocppsec.pki.lifecycle.expiry.InventoryItem` rows."""

from __future__ import annotations

from pathlib import Path

from ocppsec.pki.lifecycle.expiry import InventoryItem

__all__ = ["load_inventory_file"]


def load_inventory_file(path: Path | str) -> list[InventoryItem]:
    """Every row of a station inventory (:mod:`ocppsec.pki.certmgmt.inventory`), read through its store.

    ``path``: the SQLite file (``DIR/inventory.db``; a missing file is an empty inventory) or a
    ``postgresql://`` URL (the inventory shared by several CSMS nodes) — what
    :func:`~ocppsec.pki.certmgmt.inventory.inventory_location` answers for a PKI directory.
    """
    from ocppsec.pki.certmgmt.inventory_sql import open_inventory
    from ocppsec.pki.storage import parse_url

    url = parse_url(path, what="inventory")
    if url.path is not None and not url.path.is_file():
        return []
    store = open_inventory(url)
    try:
        entries = store.all()
    finally:
        store.close()
    return [InventoryItem(e.station_id, e.kind, e.serial, e.subject, e.not_after, e.state, e.hash_key, e.fingerprint)
            for e in entries]
