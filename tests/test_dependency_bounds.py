"""The installed websockets and ocpp are inside ocppsec's dependency bounds, read from the installed
distribution's metadata (and that metadata is this checkout's pyproject.toml), and the gateway's splice
is verified on exactly the websockets range pyproject allows: an upgrade past what was verified, or a
bound widened without the splice, fails here."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from ocppsec.security_profiles import _splice

ROOT = Path(__file__).resolve().parents[1]


def installed_requirement(name: str, extra: str | None = None) -> Requirement:
    """ocppsec's requirement on ``name`` (for ``extra``, or a core one) as the installed metadata states it."""
    for text in metadata.requires("ocppsec") or ():
        req = Requirement(text)
        if req.name != name:
            continue
        in_extra = req.marker is not None and "extra" in str(req.marker)
        if extra is None and not in_extra:
            return req
        if extra is not None and in_extra and req.marker is not None and req.marker.evaluate({"extra": extra}):
            return req
    raise AssertionError(f"ocppsec's installed metadata has no requirement on {name} (extra {extra})")


def pyproject_requirement(name: str, extra: str | None = None) -> Requirement:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    texts = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    return next(r for r in map(Requirement, texts) if r.name == name)


def upper_bound(spec: SpecifierSet) -> Version | None:
    tops = [Version(s.version) for s in spec if s.operator == "<"]
    return min(tops) if tops else None


CASES = [("websockets", None), ("ocpp", None)]


@pytest.mark.parametrize(("name", "extra"), CASES)
def test_installed_metadata_is_this_checkouts_pyproject(name: str, extra: str | None) -> None:
    """A stale install (pyproject edited, not reinstalled) would make the other checks meaningless."""
    assert installed_requirement(name, extra).specifier == pyproject_requirement(name, extra).specifier


@pytest.mark.parametrize(("name", "extra"), CASES)
def test_installed_version_is_inside_the_bounds(name: str, extra: str | None) -> None:
    spec = installed_requirement(name, extra).specifier
    assert upper_bound(spec) is not None, f"{name} has no upper bound"
    installed = metadata.version(name)
    assert spec.contains(installed, prereleases=True), f"{name} {installed} is outside ocppsec's bounds {spec}"


def test_splice_is_verified_on_exactly_the_websockets_bounds() -> None:
    low, high = _splice.WEBSOCKETS_VERIFIED
    verified = SpecifierSet(f">={'.'.join(map(str, low))},<{'.'.join(map(str, high))}")
    assert installed_requirement("websockets").specifier == verified
    assert _splice.websockets_supported()  # the installed websockets: the gateway splices


@pytest.mark.parametrize(("version", "inside"), [
    ("14.0", False), ("14.1", True), ("15.0.1", True), ("17.4", True), ("17.99.1", True),
    ("18.0", False), ("18.0rc1", False), ("13.1", False), ("garbage", False),
])
def test_splice_version_check(version: str, inside: bool) -> None:
    assert _splice.websockets_supported(version) is inside
