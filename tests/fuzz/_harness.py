"""What every harness shares: the field separator, text decoding, the allowed-exception guard, discovery.

A harness is one module ``tests/fuzz/<name>.py`` with

- ``ALLOWED``: the exceptions its entry points may raise on hostile input (our own
  :class:`~ocppsec.pki.errors.OcppsecError` subclasses; empty for APIs that return an Outcome);
- ``TestOneInput(data: bytes) -> None``: feeds ``data`` to the parsers; made with :func:`harness`, which
  swallows the ``ALLOWED`` exceptions, so anything that reaches atheris (or the replay test) is a finding;
- ``seeds() -> dict[str, bytes]``: seed inputs made by the toolkit itself (``python -m tests.fuzz.seed``
  writes them to ``corpus/<name>/``).

This module imports nothing of ocppsec, so the runner can install atheris' instrumentation first.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import ParamSpec, TypeVar

__all__ = [
    "CORPUS",
    "FINDINGS",
    "SEP",
    "ContractViolation",
    "fields",
    "harness",
    "harness_names",
    "input_files",
    "join",
    "load_harness",
    "never_raises",
    "text",
]

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
FINDINGS = HERE / "findings"
SEP = b"\n#|\n"  # separates the fields of a structured input (seeds carry it; mutations mostly keep it)
_NOT_HARNESSES = {"__init__", "run", "seed"}

Entry = Callable[[bytes], None]
_P = ParamSpec("_P")
_R = TypeVar("_R")


def fields(data: bytes, n: int) -> list[bytes]:
    """``data`` split at :data:`SEP` into exactly ``n`` fields (the last keeps any further separators)."""
    parts = data.split(SEP, n - 1)
    return parts + [b""] * (n - len(parts))


def join(*parts: bytes | str) -> bytes:
    """The inverse of :func:`fields` (for seeds)."""
    return SEP.join(p.encode("utf-8", "surrogatepass") if isinstance(p, str) else p for p in parts)


def text(data: bytes) -> str:
    """Bytes as a station could send them in a JSON string: UTF-8, lone surrogates kept; else Latin-1."""
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def harness(allowed: Sequence[type[BaseException]]) -> Callable[[Entry], Entry]:
    """Make ``TestOneInput`` from a function: the ``allowed`` exceptions are the contract, anything else escapes."""
    allowed_tuple = tuple(allowed)

    def wrap(fn: Entry) -> Entry:
        def TestOneInput(data: bytes) -> None:
            with contextlib.suppress(*allowed_tuple):
                fn(data)

        TestOneInput.__doc__ = fn.__doc__
        TestOneInput.__wrapped__ = fn  # type: ignore[attr-defined]
        return TestOneInput

    return wrap


class ContractViolation(AssertionError):
    """An API documented never to raise (it returns an Outcome) raised; the cause is chained."""


def never_raises(fn: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs) -> _R:
    """Call an Outcome-returning API: any exception at all, ours included, becomes :class:`ContractViolation`."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        # ascii(): the message may hold what the input held (lone surrogates), and must still print
        raise ContractViolation(f"{getattr(fn, '__qualname__', fn)} raised {type(exc).__name__}: {str(exc)!a}") from exc


def harness_names() -> list[str]:
    """Every harness module in this folder, by name."""
    return sorted(p.stem for p in HERE.glob("*.py")
                  if not p.stem.startswith(("_", "test_")) and p.stem not in _NOT_HARNESSES)


def load_harness(name: str) -> ModuleType:
    if name not in harness_names():
        raise SystemExit(f"no fuzz harness {name!r}; harnesses: {', '.join(harness_names())}")
    return importlib.import_module(f"{__package__}.{name}")


def input_files(name: str) -> list[Path]:
    """The saved corpus entries and findings of a harness (what the replay test runs)."""
    out: list[Path] = []
    for base in (CORPUS / name, FINDINGS / name):
        if base.is_dir():
            out += sorted(p for p in base.iterdir() if p.is_file() and not p.name.startswith("."))
    return out
