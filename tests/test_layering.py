"""The package layering the README's Layout section describes, checked on the source.

Every ``import`` is read from the syntax tree (those inside functions too), so a lazy import
cannot hide a dependency:

- each package imports only the packages below it (:data:`ALLOWED`);
- ``simulators`` is imported only by the training and evaluation data sources (the
  microscope reaches it through ``demo.cfg``, not through an import);
- no two modules import each other, directly or through others.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("yamlconfig", "hardware", "simulators", "inference", "acquisition", "gui")

#: package -> the project packages it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "yamlconfig": set(),
    "hardware": {"yamlconfig"},
    # the simulated optics measure photons as the evaluation does (inference.metrics)
    "simulators": {"yamlconfig", "inference"},
    "inference": {"yamlconfig", "simulators"},
    "acquisition": {"yamlconfig", "hardware", "inference"},
    "gui": {"yamlconfig", "hardware", "inference", "acquisition"},
}
#: the only modules outside ``simulators`` that may import it: the simulated data sources
SIMULATOR_USERS = {
    "inference.training.bank",
    "inference.training.simulated",
    "inference.training.heldout",
    "inference.evaluation.sources",
}
#: what ``simulators`` may use of ``inference``: measurements shared with the evaluation
SIMULATORS_MAY_USE = ("inference.metrics",)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> Iterator[str]:
    """Project modules imported by ``name`` (relative imports resolved)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target.split(".")[0] in PACKAGES:
                yield target


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: set(_imports(name, path, known)) - {name} for name, path in modules.items()}


def test_each_package_imports_only_those_below_it(graph: dict[str, set[str]]) -> None:
    wrong = sorted(f"{name} imports {target}" for name, targets in graph.items()
                   for target in targets
                   if (top := target.split(".")[0]) != name.split(".")[0]
                   and top not in ALLOWED[name.split(".")[0]])
    assert not wrong, "\n".join(wrong)


def test_simulators_is_imported_only_by_the_simulated_data_sources(
        graph: dict[str, set[str]]) -> None:
    wrong = sorted(f"{name} imports {target}" for name, targets in graph.items()
                   for target in targets
                   if target.split(".")[0] == "simulators"
                   and name.split(".")[0] != "simulators" and name not in SIMULATOR_USERS)
    assert not wrong, "\n".join(wrong)
    reverse = sorted(f"{name} imports {target}" for name, targets in graph.items()
                     if name.split(".")[0] == "simulators" for target in targets
                     if target.split(".")[0] == "inference"
                     and not target.startswith(SIMULATORS_MAY_USE))
    assert not reverse, "\n".join(reverse)


def test_no_import_cycle(graph: dict[str, set[str]]) -> None:
    """Tarjan's strongly connected components: every component is a single module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            # a package's __init__ re-exporting its own modules is not a cycle of jobs
            if node == target.rpartition(".")[0] or target == node.rpartition(".")[0]:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert not cycles, "import cycles: " + "; ".join(" ↔ ".join(c) for c in cycles)
