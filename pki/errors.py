"""The one exception hierarchy of ocppsec.

Every error says what was wrong and what to do about it; the CLI catches :class:`OcppsecError` once,
prints ``error: <message>`` (one line, plus the hint) and exits with :attr:`OcppsecError.exit_code`.

::

    OcppsecError                      root; exit code 3 unless a subclass says otherwise
    ├── UsageError                    bad arguments or configuration (exit 2)
    ├── InputError                    malformed input: PEM/DER/CSR garbage, oversized fields (exit 1)
    ├── PolicyError                   a CSR or certificate breaks a profile rule (exit 1); lists violations
    ├── VerificationError             a chain, signature or identity did not verify (exit 1)
    │   ├── ChainError                path validation failed
    │   └── SignatureError            a signature did not verify
    ├── KeyError_                     private-key problems: wrong passphrase, unsupported key (exit 1)
    │   └── WrongPassphraseError
    ├── StoreError                    ledger / inventory / registry / event-store I/O (exit 3)
    │   ├── StoreUnavailableError     cannot be reached right now (server gone, lock held); a retry may succeed
    │   │   └── StoreBusyError        another connection holds the SQLite write lock past the timeout
    │   ├── StoreReadOnlyError        the database cannot be written (file permissions, read-only mount, standby)
    │   ├── StoreFullError            the disk (or the database) is full
    │   ├── DuplicateError            a unique constraint (serial, name) would be broken
    │   └── NotFoundError             a named record does not exist
    └── BackendError                  key backend (PKCS#11 token, file system) failed (exit 3)
        └── FileError                 a file, directory or socket address could not be used (missing, permission
                                      denied, a directory or FIFO where a file is expected, disk full, port taken)

Errors that come from a profile rule carry ``requirement`` (e.g. ``A00.FR.511``); errors that map to an
OCPP security event carry ``security_event`` (the 2.0.1 / 2.1 name, e.g.
``InvalidChargingStationCertificate``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "BackendError",
    "ChainError",
    "DuplicateError",
    "FileError",
    "InputError",
    "KeyError_",
    "NotFoundError",
    "OcppsecError",
    "PolicyError",
    "SignatureError",
    "StoreBusyError",
    "StoreError",
    "StoreFullError",
    "StoreReadOnlyError",
    "StoreUnavailableError",
    "UsageError",
    "VerificationError",
    "Violation",
    "WrongPassphraseError",
]


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: which requirement, and what was found."""

    requirement: str
    message: str

    def __str__(self) -> str:
        return f"[{self.requirement}] {self.message}"


class OcppsecError(Exception):
    """Root of every error ocppsec raises on purpose."""

    exit_code: int = 3

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        requirement: str | None = None,
        security_event: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.requirement = requirement
        self.security_event = security_event

    def __str__(self) -> str:
        prefix = f"[{self.requirement}] " if self.requirement else ""
        return f"{prefix}{self.message}"

    def to_json(self) -> dict[str, object]:
        """The error as ``--json`` output carries it (the ``"error"`` object): type, message (one line, without
        the requirement prefix), hint, exit code, requirement, security event."""
        message = " ".join(str(self).removeprefix(f"[{self.requirement}] ").split())
        return {"type": type(self).__name__, "message": message, "hint": " ".join(self.hint.split()) if self.hint else None,
                "exit_code": self.exit_code, "requirement": self.requirement, "security_event": self.security_event}

    def diagnostics(self) -> str:
        """A human explanation: the message, then what to do."""
        text = str(self)
        if self.security_event:
            text += f" (security event: {self.security_event})"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class UsageError(OcppsecError):
    """Arguments or configuration are wrong; nothing was attempted."""

    exit_code = 2


class InputError(OcppsecError):
    """Input could not be parsed or is out of bounds (bad PEM/DER, oversized field, bad base64)."""

    exit_code = 1


class PolicyError(OcppsecError):
    """One or more profile rules are broken. ``violations`` lists every one of them."""

    exit_code = 1

    def __init__(
        self,
        message: str,
        violations: Sequence[Violation],
        *,
        hint: str | None = None,
        security_event: str | None = None,
    ) -> None:
        first = violations[0].requirement if violations else None
        super().__init__(message, hint=hint, requirement=first, security_event=security_event)
        self.violations: tuple[Violation, ...] = tuple(violations)

    def __str__(self) -> str:
        if not self.violations:
            return self.message
        listed = "; ".join(str(v) for v in self.violations)
        return f"{self.message}: {listed}"


class VerificationError(OcppsecError):
    """Something did not verify: a chain, a signature, an identity binding."""

    exit_code = 1


class ChainError(VerificationError):
    """Certificate path validation failed."""


class SignatureError(VerificationError):
    """A signature did not verify over the given data."""


class KeyError_(OcppsecError):
    """A private key could not be used (unsupported type, unreadable)."""

    exit_code = 1


class WrongPassphraseError(KeyError_):
    """The passphrase does not decrypt the key."""


class StoreError(OcppsecError):
    """A ledger, event store or registry operation failed."""

    exit_code = 3


class StoreUnavailableError(StoreError):
    """The store cannot be reached right now (database down, network, a lock held); retrying later may succeed."""


class StoreBusyError(StoreUnavailableError):
    """Another connection held the SQLite write lock for longer than this one would wait."""


class StoreReadOnlyError(StoreError):
    """The store can be read but not written (file or directory permissions, read-only mount, standby server)."""


class StoreFullError(StoreError):
    """The disk holding the store (or the database's size limit) is full."""


class DuplicateError(StoreError):
    """A record with the same unique key exists already."""

    exit_code = 1


class NotFoundError(StoreError):
    """The named record does not exist."""

    exit_code = 1


class BackendError(OcppsecError):
    """A key backend (file system, PKCS#11 token) failed."""

    exit_code = 3


class FileError(BackendError):
    """A file, directory or listening address could not be used: it does not exist, permission is denied,
    it is a directory (or a FIFO, a device) where a regular file is expected, the disk is full, the port is
    taken. ``path`` names it (a path, or ``HOST:PORT``)."""

    def __init__(self, message: str, *, path: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.path = path


def collect(violations: Iterable[Violation]) -> tuple[Violation, ...]:
    """Freeze an iterable of violations (helper for report builders)."""
    return tuple(violations)
