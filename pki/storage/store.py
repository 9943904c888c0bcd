"""What every SQL store has in common: its database, its schema component, where it lives, closing."""

from __future__ import annotations

from typing import ClassVar

from ocppsec.pki.storage.database import Database
from ocppsec.pki.storage.migrations import Schema, schema_version
from ocppsec.pki.storage.url import Dialect

__all__ = ["SqlStore"]


class SqlStore:
    """Base of the ledger, inventory, registry and event store implementations (one :class:`Database` each)."""

    SCHEMA: ClassVar[Schema]

    def __init__(self, database: Database) -> None:
        self.database = database

    @property
    def location(self) -> str:
        """The file path or the URL without its password."""
        return self.database.location

    @property
    def dialect(self) -> Dialect:
        return self.database.dialect

    def schema_version(self) -> int:
        return schema_version(self.database, self.SCHEMA.component)

    def close(self) -> None:
        self.database.close()
