"""Shared fixtures. Each area adds its own fixtures in its test modules or in helper modules under tests/."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
VECTORS = SHARED / "vectors"


@pytest.fixture
def at() -> datetime:
    """A fixed 'now' for sans-I/O tests (core functions take time as an argument)."""
    return datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def vectors() -> Path:
    if not VECTORS.is_dir():
        pytest.fail(f"conformance vectors not found at {VECTORS}: CI must have shared/ beside the checkout")
    return VECTORS
