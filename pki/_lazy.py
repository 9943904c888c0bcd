"""Package namespaces whose public names are imported on first use.

A package ``__init__`` that re-exports names from its modules would otherwise import all of them (and
what they import: pyca's x509, websockets, the ``ocpp`` package...) as soon as any one of its modules is
imported. The packages list their public names with the module each comes from and import them here
on first attribute access; type checkers see the same names through ``if TYPE_CHECKING:`` imports.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, names: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``names`` maps each public name to its module.

    A name is imported on first access and then stored in ``namespace`` (the package's ``globals()``),
    so later accesses are plain attribute reads. A name mapped to ``package.name`` is that submodule.
    """

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        imported = importlib.import_module(module)
        value = imported if module == f"{package}.{name}" else getattr(imported, name)  # a submodule
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *names})

    return __getattr__, __dir__
