"""The gateway process's cyclic garbage collector: what survived a full pass is left out of the next ones.

A gateway holds its whole fleet in memory: about 125 gc-tracked objects per relayed station, 2.2 million at
10,000 stations in a renewal campaign. CPython's full collections walk every one of them and stop the event
loop while they do: 8 full passes took 18 s of a 10,000-station campaign (ADR 23), and found nothing to
free, since a closed station leaves no reference cycle (``serve()``'s ``_unhook``, the splice's ``stop``).

:class:`FrozenSurvivors` moves the survivors of each full pass into the permanent generation (``gc.freeze()``),
so the next full pass walks only what was allocated since. Every ``thaw_every``-th full pass unfreezes them
first, so a reference cycle that forms among frozen objects is still collected, ``thaw_every`` full passes
late at most: an extra, older generation, not a leak. Reference counting, which frees almost everything,
is not affected. Only the process that owns its heap installs it (:class:`~.service.GatewayService`);
``serve()`` as a library leaves the caller's collector alone.
"""

from __future__ import annotations

import gc
from typing import Any

__all__ = ["FrozenSurvivors"]

_OLDEST = len(gc.get_threshold()) - 1  # CPython 3.11-3.13: generation 2, the full pass


class FrozenSurvivors:
    """Freeze the survivors of every full collection; unfreeze at every ``thaw_every``-th (see the module docstring)."""

    def __init__(self, thaw_every: int = 8) -> None:
        if thaw_every < 1:
            raise ValueError("thaw_every must be at least 1")
        self.thaw_every = thaw_every
        self.full_passes = 0
        self.thaws = 0
        self._installed = False

    def install(self) -> None:
        if not self._installed:
            gc.callbacks.append(self._after_collection)
            self._installed = True

    def uninstall(self) -> None:
        """Stop freezing and hand every frozen object back to the collector."""
        if self._installed:
            gc.callbacks.remove(self._after_collection)
            self._installed = False
            gc.unfreeze()

    def _after_collection(self, phase: str, info: dict[str, Any]) -> None:
        if phase != "stop" or info.get("generation") != _OLDEST:
            return
        self.full_passes += 1
        if self.full_passes % self.thaw_every == 0:
            gc.unfreeze()  # the next full pass walks everything again
            self.thaws += 1
        else:
            gc.freeze()  # the young generations are empty after a full pass: only its survivors are frozen
