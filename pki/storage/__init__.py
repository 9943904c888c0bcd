"""The storage layer every ocppsec store is built on (ledger, station inventory, station registry, event store).

- :mod:`.url`: one parser for store paths and URLs (SQLite file / ``sqlite://`` / ``postgresql://``;
  other schemes refused) and one password redactor;
- :mod:`.database`: one connection wrapper for both dialects (thread-safe, transactions as context
  managers, busy timeout, WAL + ``synchronous=FULL``, driver errors mapped to
  :class:`~ocppsec.pki.errors.StoreError` subclasses, reconnection after a PostgreSQL restart);
- :mod:`.migrations`: one migration scheme (``ocppsec_schema``, numbered steps per component, applied
  under a lock so that concurrent first opens never race);
- :mod:`.store`: :class:`SqlStore`, the base of the four store implementations.
"""

from __future__ import annotations

import os

from ocppsec.pki.storage.database import Database, Transaction
from ocppsec.pki.storage.migrations import Migration, Schema, adopt_tables, migrate, schema_version, table_exists
from ocppsec.pki.storage.store import SqlStore
from ocppsec.pki.storage.url import Dialect, StoreUrl, parse_url, redact

__all__ = [
    "Database",
    "Dialect",
    "Migration",
    "Schema",
    "SqlStore",
    "StoreUrl",
    "Transaction",
    "adopt_tables",
    "connect",
    "migrate",
    "parse_url",
    "redact",
    "schema_version",
    "table_exists",
]


def connect(spec: str | os.PathLike[str] | StoreUrl, *, what: str, schema: Schema | None = None, page_size: int | None = None,
            cache_kib: int | None = None) -> Database:
    """Open the database ``spec`` names (see :func:`parse_url`) and, given a ``schema``, migrate it."""
    db = Database(parse_url(spec, what=what), what=what, page_size=page_size, cache_kib=cache_kib)
    if schema is not None:
        try:
            migrate(db, schema)
        except BaseException:
            db.close()
            raise
    return db
