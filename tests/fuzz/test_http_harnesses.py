"""The HTTP fuzz harnesses (OCSP responder, GetLog receiver) over their seeds and a few hundred mutations of
them, so that they run in every test run (a longer campaign is the atheris runner's job)."""

from __future__ import annotations

import importlib.util
import random
import time
from pathlib import Path
from types import ModuleType

import pytest

HERE = Path(__file__).resolve().parent
MUTATIONS = 300


def load(name: str) -> ModuleType:
    """The harness module by file (this folder need not be a package)."""
    spec = importlib.util.spec_from_file_location(f"http_harness_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mutate(rnd: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    """One to four byte-level edits: flip, insert, delete, duplicate a slice, splice with another seed, cut."""
    out = bytearray(data)
    for _ in range(rnd.randint(1, 4)):
        op = rnd.randrange(6)
        at = rnd.randrange(len(out) + 1)
        if op == 0 and out:
            out[min(at, len(out) - 1)] ^= 1 << rnd.randrange(8)
        elif op == 1:
            out[at:at] = rnd.choice([b"\r\n", b"-", b"\xc2\xb2", b"0", b"ffffffff", b";", b" ", b"\x00", b"%2F", b"+"])
        elif op == 2:
            del out[at:at + rnd.randint(1, 16)]
        elif op == 3:
            out[at:at] = out[at:at + rnd.randint(1, 64)]
        elif op == 4:
            other = rnd.choice(pool)
            cut = rnd.randrange(len(other) + 1)
            out = out[:at] + bytearray(other[cut:])
        else:
            out = out[:at]
    return bytes(out)


@pytest.mark.parametrize("name", ["ocsp_http", "getlog_http"])
def test_harness_over_seeds_and_mutations(name: str) -> None:
    harness = load(name)
    pool = list(harness.seeds())
    assert len(pool) >= 10 and all(isinstance(s, bytes) for s in pool)
    assert set(harness.named_seeds().values()) == set(pool)
    rnd = random.Random(f"{name}-2026")
    inputs = pool + [mutate(rnd, rnd.choice(pool), pool) for _ in range(MUTATIONS)]
    slowest = 0.0
    for data in inputs:
        start = time.monotonic()
        harness.TestOneInput(data)
        slowest = max(slowest, time.monotonic() - start)
    assert slowest < 1.0, f"an input took {slowest:.2f} s"
