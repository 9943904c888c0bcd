"""The HTTP fuzz harnesses (OCSP responder, GetLog receiver) over their seeds and a few hundred mutations of
them, so that more than the saved corpus runs in every test run (a campaign is ``python -m tests.fuzz.run``)."""

from __future__ import annotations

import random
import time

import pytest

from ._harness import load_harness

MUTATIONS = 300


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
    harness = load_harness(name)
    pool = list(harness.seeds().values())
    assert len(pool) >= 10 and all(isinstance(s, bytes) for s in pool)
    rnd = random.Random(f"{name}-2026")
    inputs = pool + [mutate(rnd, rnd.choice(pool), pool) for _ in range(MUTATIONS)]
    slowest = 0.0
    for data in inputs:
        start = time.monotonic()
        harness.TestOneInput(data)
        slowest = max(slowest, time.monotonic() - start)
    assert slowest < 1.0, f"an input took {slowest:.2f} s"
