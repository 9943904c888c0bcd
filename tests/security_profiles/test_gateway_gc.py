"""The gateway process's collector policy: survivors of a full pass are frozen, and a cycle among frozen
objects is still collected at the next thaw."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from ocppsec.security_profiles.gateway._gc import FrozenSurvivors


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def policy() -> Iterator[FrozenSurvivors]:
    p = FrozenSurvivors(thaw_every=3)
    p.install()
    try:
        yield p
    finally:
        p.uninstall()
    assert gc.get_freeze_count() == 0


def test_survivors_are_frozen_and_a_frozen_cycle_is_collected_at_the_thaw(policy: FrozenSurvivors) -> None:
    kept = [Node(), Node()]
    kept[0].other, kept[1].other = kept[1], kept[0]  # a cycle, alive while the list holds it
    gone = weakref.ref(kept[0])
    gc.collect()  # full pass 1: the survivors (the cycle among them) are frozen
    assert policy.full_passes == 1 and gc.get_freeze_count() > 0
    del kept  # now garbage, but frozen: the next full pass does not see it
    gc.collect()  # pass 2
    assert gone() is not None
    gc.collect()  # pass 3 thaws at its end
    assert policy.thaws == 1 and gc.get_freeze_count() == 0
    assert gone() is not None
    gc.collect()  # pass 4 walks everything again
    assert gone() is None


def test_young_collections_change_nothing(policy: FrozenSurvivors) -> None:
    gc.collect(0)
    gc.collect(1)
    assert policy.full_passes == 0


def test_uninstall_hands_everything_back() -> None:
    p = FrozenSurvivors()
    p.install()
    gc.collect()
    assert gc.get_freeze_count() > 0
    p.uninstall()
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert p.full_passes == 1  # no longer called
    with pytest.raises(ValueError, match="at least 1"):
        FrozenSurvivors(thaw_every=0)
