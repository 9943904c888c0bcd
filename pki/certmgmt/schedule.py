"""Pure timing rules of the station side: signing back-off (A02/A03.FR.17-19) and renewal (A03.FR.02)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ocppsec.pki.errors import UsageError

__all__ = ["DEFAULT_RENEW_BEFORE", "RetrySchedule", "renewal_due", "signing_retry_delays"]

DEFAULT_RENEW_BEFORE = timedelta(days=30)  # "will expire in one month" (A03.FR.02)


def signing_retry_delays(wait_minimum: int, repeat_times: int) -> tuple[int, ...]:
    """Seconds to wait before each resend of SignCertificate when no CertificateSigned arrives.

    Wait ``CertSigningWaitMinimum`` seconds, resend, double the wait each time, and stop after
    ``CertSigningRepeatTimes`` resends until triggered again. Negative values are refused (PNC16 §9.3-9.4);
    ``0`` for either means no automatic resend.
    """
    if wait_minimum < 0 or repeat_times < 0:
        raise UsageError("CertSigningWaitMinimum and CertSigningRepeatTimes must not be negative")
    if wait_minimum == 0 or repeat_times == 0:
        return ()
    return tuple(wait_minimum * 2**n for n in range(repeat_times))


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """When the n-th resend is due after the first SignCertificate at ``first_sent``."""

    first_sent: datetime
    delays: tuple[int, ...]

    @classmethod
    def start(cls, first_sent: datetime, wait_minimum: int, repeat_times: int) -> RetrySchedule:
        return cls(first_sent, signing_retry_delays(wait_minimum, repeat_times))

    def resend_times(self) -> tuple[datetime, ...]:
        out = []
        t = self.first_sent
        for d in self.delays:
            t = t + timedelta(seconds=d)
            out.append(t)
        return tuple(out)

    def due(self, sent_so_far: int, at: datetime) -> bool:
        """True when resend number ``sent_so_far + 1`` is due at ``at`` (False once all are used up)."""
        times = self.resend_times()
        return sent_so_far < len(times) and at >= times[sent_so_far]


def renewal_due(not_after: datetime, at: datetime, renew_before: timedelta = DEFAULT_RENEW_BEFORE) -> bool:
    """A certificate is renewed once it enters its last ``renew_before`` (default one month)."""
    return not_after - at <= renew_before
