"""Each package's public names are pinned in ``tests/public_api.txt``.

A name that appears in or disappears from a package's ``__all__`` fails this test until the pin is
updated, so a change to what users import is a deliberate, reviewed change (``python -m
tests.test_public_api --write`` rewrites the pin from the code). Every pinned name must also resolve:
``__all__`` naming something the package cannot give is an ImportError waiting for a user's
``from ocppsec.x import *``.

A package without ``__all__`` is a namespace of submodules only; it is pinned as such.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PIN = Path(__file__).with_name("public_api.txt")
FOLDERS = ("pki", "firmware_signing", "security_profiles", "eventlog", "cli")
SUBMODULES_ONLY = "(submodules only)"


def packages() -> list[str]:
    """Every package (folder with ``__init__.py``) of the five library folders, as ``ocppsec.`` names."""
    out = []
    for folder in FOLDERS:
        for init in sorted((REPO / folder).rglob("__init__.py")):
            parts = init.parent.relative_to(REPO).parts
            out.append(".".join(("ocppsec", *parts)))
    return sorted(out)


def public_names(package: str) -> list[str] | None:
    module = importlib.import_module(package)
    names = getattr(module, "__all__", None)
    return None if names is None else list(names)


def read_pin() -> dict[str, list[str] | None]:
    pinned: dict[str, list[str] | None] = {}
    current: str | None = None
    for raw in PIN.read_text("utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            pinned[current] = []
        elif current is not None and line == SUBMODULES_ONLY:
            pinned[current] = None
        elif current is not None:
            names = pinned[current]
            assert names is not None, f"{current}: names after {SUBMODULES_ONLY}"
            names.append(line)
    return pinned


def render() -> str:
    lines = ["# Public names of each package (its __all__), pinned by tests/test_public_api.py.",
             "# Rewrite with: python -m tests.test_public_api --write", ""]
    for package in packages():
        names = public_names(package)
        lines.append(f"[{package}]")
        lines.extend([SUBMODULES_ONLY] if names is None else sorted(names))
        lines.append("")
    return "\n".join(lines)


def test_every_package_is_pinned() -> None:
    assert sorted(read_pin()) == packages(), "a package was added or removed: rewrite tests/public_api.txt"


@pytest.mark.parametrize("package", packages())
def test_public_names_match_the_pin(package: str) -> None:
    pinned = read_pin().get(package)
    names = public_names(package)
    if pinned is None or names is None:
        assert names is None and pinned is None, f"{package}: __all__ {'added' if names is not None else 'removed'}"
        return
    assert len(names) == len(set(names)), f"{package}: __all__ names something twice"
    added, removed = sorted(set(names) - set(pinned)), sorted(set(pinned) - set(names))
    assert not added and not removed, f"{package}: added {added}, removed {removed} (rewrite the pin if meant)"


@pytest.mark.parametrize("package", packages())
def test_public_names_resolve(package: str) -> None:
    module = importlib.import_module(package)
    missing = [name for name in public_names(package) or [] if not hasattr(module, name)]
    assert not missing, f"{package}.__all__ names what it does not have: {missing}"


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        PIN.write_text(render(), "utf-8")
        print(f"wrote {PIN}")
    else:
        print(render())
