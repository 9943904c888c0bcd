"""Every saved corpus entry and finding of every fuzz harness, replayed as a regression test.

Calls each harness' ``TestOneInput`` directly (no atheris needed) and checks the three properties of
the fuzzing contract: only the harness' allowed errors (our own) come out, no input takes over 1 s,
and the memory one input allocates stays bounded.
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest

from ._harness import harness_names, input_files, load_harness

TIME_LIMIT_S = 1.0
MEMORY_LIMIT_BYTES = 64 * 1024 * 1024

CASES = [pytest.param(name, path, id=f"{name}/{path.parent.parent.name}/{path.name}")
         for name in harness_names() for path in input_files(name)]


def test_every_harness_has_seeds_and_a_contract() -> None:
    names = harness_names()
    assert len(names) >= 9, names
    for name in names:
        module = load_harness(name)
        assert callable(module.TestOneInput) and callable(module.seeds), name
        assert all(issubclass(e, Exception) for e in module.ALLOWED), name
        assert input_files(name), f"{name} has no corpus: run python -m tests.fuzz.seed {name}"


@pytest.mark.parametrize(("name", "path"), CASES)
def test_replay(name: str, path: Path) -> None:
    entry = load_harness(name).TestOneInput
    data = path.read_bytes()
    entry(data)  # warm-up: caches built once per process (the PKI, the stores) are not the input's cost
    started = time.perf_counter()
    entry(data)
    elapsed = time.perf_counter() - started
    assert elapsed < TIME_LIMIT_S, f"{path.name} took {elapsed:.2f} s"
    tracemalloc.start()
    try:
        entry(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_LIMIT_BYTES, f"{path.name} allocated {peak / 1e6:.1f} MB at its peak"


def test_findings_are_named_after_their_class() -> None:
    """A minimised finding is saved under a name saying which class of input it is (not libFuzzer's crash-<sha1>)."""
    from ._harness import FINDINGS

    unnamed = [p for p in FINDINGS.rglob("*") if p.is_file() and p.name.startswith(("crash-", "timeout-", "oom-", "leak-"))]
    assert not unnamed, f"rename (and minimise) these findings: {unnamed}"
