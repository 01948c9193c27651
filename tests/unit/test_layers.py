"""The packages' import graph, read from the source (AST; nothing is imported).

Imports run one way, in layers: ``analysis`` → ``search`` → ``trainables``. Every ``import``
statement counts, wherever it stands (top level, inside a function, under ``if __name__ ==
"__main__"``), since each can run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("search", "trainables", "analysis")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}


def imported_modules(path: Path, name: str, modules: set[str]) -> set[str]:
    """The project modules that the file at ``path`` (module ``name``) imports by name."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in modules else base)
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imported_modules(path, name, set(modules)) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_circle_and_the_graph_sees_function_level_imports(tmp_path):
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    source = tmp_path / "pkg" / "mod.py"
    source.parent.mkdir()
    source.write_text("def f():\n    from . import other\n    import pkg.third\nif __name__ == '__main__':\n    from pkg.fourth import x\n")
    found = imported_modules(source, "pkg.mod", {"pkg", "pkg.mod", "pkg.other", "pkg.third", "pkg.fourth"})
    assert found == {"pkg.other", "pkg.third", "pkg.fourth"}


def test_no_import_circle_anywhere():
    graph = import_graph()
    assert len(graph) > 50  # every module of the three packages was read
    assert cycles(graph) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_run_one_way(package):
    graph = import_graph()
    for module, targets in graph.items():
        if not module.startswith(package):
            continue
        if package == "trainables":
            assert not {t for t in targets if t.split(".")[0] in ("search", "analysis")}, module
        if package == "search":
            assert {t for t in targets if t.split(".")[0] == "analysis"} <= {"analysis.pareto"}, module


def test_pareto_imports_nothing_of_the_project():
    graph = import_graph()
    pareto = {m for m in graph if m == "analysis.pareto" or m.startswith("analysis.pareto.")} - {"analysis.pareto.__main__"}
    assert all(graph[m] <= pareto for m in pareto)
