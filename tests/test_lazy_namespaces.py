"""The package namespaces that import their public names on first use (ocppsec.pki._lazy) give the same
objects an eager ``from module import name`` would, before and after their submodules are imported."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import types

import pytest

LAZY = ["ocppsec.pki", "ocppsec.eventlog", "ocppsec.security_profiles", "ocppsec.firmware_signing",
        "ocppsec.pki.certmgmt", "ocppsec.pki.events", "ocppsec.pki.lifecycle"]


@pytest.mark.parametrize("package", LAZY)
def test_every_public_name_resolves_to_what_its_module_defines(package: str) -> None:
    module = importlib.import_module(package)
    for sub in pkgutil.iter_modules(module.__path__):  # a submodule named like a public name would shadow it
        if not sub.name.startswith("_") and sub.name not in ("v16", "v201", "v21"):
            importlib.import_module(f"{package}.{sub.name}")
    for name in module.__all__:
        value = getattr(module, name)
        if isinstance(value, types.ModuleType):
            assert value.__name__ == f"{package}.{name}", (package, name)
        else:
            assert getattr(value, "__name__", name) == name or not callable(value), (package, name, value)
    assert set(module.__all__) <= set(dir(module))
    with pytest.raises(AttributeError, match="no attribute"):
        module.no_such_name  # noqa: B018


@pytest.mark.parametrize("package", LAZY)
def test_importing_the_package_imports_none_of_its_modules(package: str) -> None:
    code = (f"import sys, {package}\n"
            f"print(sorted(m for m in sys.modules if m.startswith('{package}.') and m != 'ocppsec.pki._lazy'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60).stdout
    assert out.strip() == "[]", out
