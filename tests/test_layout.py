"""The package layout: no import cycle in any package, security_profiles never imports the event log.

The graph is read from the source (every ``import`` and ``from ... import``, deferred ones inside functions
included; imports under ``if TYPE_CHECKING:`` are annotations only and left out), so a cycle hidden
behind a function-level import counts as well.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = {
    "pki": "ocppsec.pki",
    "firmware_signing": "ocppsec.firmware_signing",
    "security_profiles": "ocppsec.security_profiles",
    "eventlog": "ocppsec.eventlog",
    "cli": "ocppsec.cli",
}


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for folder, package in PACKAGES.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = [p for p in path.relative_to(REPO / folder).with_suffix("").parts if p != "__init__"]
            out[".".join([package, *parts])] = path
    return out


MODULES = _modules()


class _DropTypeChecking(ast.NodeTransformer):
    """Removes the bodies of ``if TYPE_CHECKING:`` blocks (imports there are for annotations only)."""

    def visit_If(self, node: ast.If) -> ast.AST:
        test = node.test
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
                isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"):
            node.body = [ast.Pass()]
        self.generic_visit(node)
        return node


def _imports(module: str, path: Path) -> set[str]:
    tree = _DropTypeChecking().visit(ast.parse(path.read_text("utf-8")))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in MODULES else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in MODULES and m != module}


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_graph_is_read() -> None:
    # a sanity check that the walker sees imports at all, deferred ones included
    assert "ocppsec.pki.errors" in GRAPH["ocppsec.pki.keys.base"]
    assert "ocppsec.pki.chargepoint.compose" in GRAPH["ocppsec.pki.chargepoint.classes"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    assert _cycles(GRAPH) == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("ocppsec.security_profiles")))
def test_security_profiles_records_through_the_kernel_sink_only(module: str) -> None:
    assert not {m for m in GRAPH[module] if m.startswith("ocppsec.eventlog")}


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("ocppsec.pki")))
def test_the_kernel_imports_no_other_package(module: str) -> None:
    others = ("ocppsec.eventlog", "ocppsec.security_profiles", "ocppsec.firmware_signing", "ocppsec.cli")
    assert not {m for m in GRAPH[module] if m.startswith(others)}
