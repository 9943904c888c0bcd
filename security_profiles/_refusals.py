"""Refused handshakes for identities nobody registered: counted, and recorded as one event per window.

Any client can put any name into the URL (``curl -k https://gateway/health``). Recording one
FailedToAuthenticateAtCsms per such handshake under the name it chose would let anyone fill the security
log with stations of their choosing. So refusals whose identity is not registered (or is not a valid
identity at all) are counted per reason, and recorded as one event per ``window`` seconds for all peers:
the first at once, then one summary at the end of each window that saw more. The event is filed under
``peer:<host>`` (the peer with the most attempts); its techInfo gives the count, the number of peers
and a few of the names tried (quoted and cut). Refusals of registered stations are still recorded one by
one by the caller. Sans-I/O: time (``now``, monotonic seconds) is an argument.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["UnknownIdentities", "UnknownReason", "UnknownSummary"]

_SAMPLES = 3


class UnknownReason(StrEnum):
    UNREGISTERED = "unregistered identity"
    MALFORMED = "malformed identity"


@dataclass(frozen=True, slots=True)
class UnknownSummary:
    """What to record for a window: ``count`` refusals from ``peers`` hosts, ``top_peer`` the most frequent."""

    count: int
    peers: int
    top_peer: str
    samples: tuple[str, ...]
    seconds: float
    by_reason: tuple[tuple[UnknownReason, int], ...]

    @property
    def station_id(self) -> str:
        return f"peer:{self.top_peer}"

    @property
    def tech_info(self) -> str:
        reasons = ", ".join(f"{n} {reason.value}" for reason, n in self.by_reason)
        names = ", ".join(self.samples)
        return (f"{self.count} handshake(s) refused in {self.seconds:.0f} s from {self.peers} peer(s) ({reasons}); "
                f"e.g. {names}")[:255]


def _sample(identity: str | None) -> str:
    if identity is None:
        return "(none)"
    text = repr(identity[:24])
    return text if len(identity) <= 24 else text[:-1] + "...'"


class UnknownIdentities:
    """Counts refusals of unknown identities; yields at most one :class:`UnknownSummary` per window."""

    def __init__(self, window: float = 60.0) -> None:
        self.window = window
        self.totals: Counter[UnknownReason] = Counter()  # since start, per reason
        self._open_since: float | None = None  # start of the current window (None: quiet)
        self._count = 0
        self._peers: Counter[str] = Counter()
        self._reasons: Counter[UnknownReason] = Counter()
        self._samples: list[str] = []

    @property
    def pending(self) -> int:
        """Refusals counted but not yet summarised."""
        return self._count

    def note(self, reason: UnknownReason, identity: str | None, peer_host: str, now: float) -> UnknownSummary | None:
        """Count one refusal; the summary to record now if it opens a window (the first after a quiet one)."""
        self.totals[reason] += 1
        self._count += 1
        self._peers[peer_host] += 1
        self._reasons[reason] += 1
        if len(self._samples) < _SAMPLES:
            self._samples.append(_sample(identity))
        if self._open_since is None:
            self._open_since = now
            return self._summary(0.0)
        return None

    def next_due(self) -> float | None:
        """When :meth:`due` has something to say (monotonic seconds), or None while quiet."""
        return None if self._open_since is None else self._open_since + self.window

    def due(self, now: float) -> UnknownSummary | None:
        """At the end of a window: the summary of what came after its first refusal (None if nothing did)."""
        if self._open_since is None or now < self._open_since + self.window:
            return None
        seconds = now - self._open_since
        if not self._count:
            self._open_since = None  # quiet again: the next refusal is recorded at once
            return None
        self._open_since = now
        return self._summary(seconds)

    def _summary(self, seconds: float) -> UnknownSummary:
        top = self._peers.most_common(1)[0][0]
        summary = UnknownSummary(self._count, len(self._peers), top, tuple(self._samples), seconds,
                                 tuple(sorted(self._reasons.items())))
        self._count = 0
        self._peers.clear()
        self._reasons.clear()
        self._samples.clear()
        return summary
