"""Write each harness' seeds (made by the toolkit) into ``tests/fuzz/corpus/<name>/seed-<label>``.

    python -m tests.fuzz.seed            # every harness
    python -m tests.fuzz.seed csr events # some

Seeds are regenerated, not accumulated: old ``seed-*`` files of a harness are replaced. Other corpus
files (inputs a campaign found worth keeping, named by what they exercise) are left alone.
"""

from __future__ import annotations

import sys

from ._harness import CORPUS, harness_names, load_harness


def write_seeds(name: str) -> int:
    module = load_harness(name)
    folder = CORPUS / name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("seed-*"):
        old.unlink()
    made = module.seeds()
    for label, data in made.items():
        (folder / f"seed-{label}").write_bytes(data)
    return len(made)


def main(argv: list[str]) -> int:
    for name in argv or harness_names():
        print(f"{name}: {write_seeds(name)} seeds")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
