"""The layout rules the code keeps, checked on its syntax trees (no import, no Ray).

- Only the run-dir package (``search/rundir/``) names the sweep-level run-dir files or their
  constants; the rest of ``search/`` and ``analysis/`` goes through its typed records.
- No private attribute of another object (Ray's, Optuna's or ours) is read or written, no
  private module of Ray or Optuna is imported, and Ray's ``OptunaSearch`` is not subclassed.
- No module is over 700 lines; at most two are over 500, and each says in its docstring why it
  is one job.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("search", "analysis", "trainables")
RUN_DIR_FILES = ("sweep.json", "progress.json", "trials.parquet", "epochs.parquet", "study.journal", "study.db", "analysis.json", "spec.yaml", "warm_start.parquet", "warm_epochs.parquet")
RUN_DIR_CONSTANTS = {"SWEEP_FILE", "PROGRESS_FILE", "TRIALS_FILE", "EPOCHS_FILE", "STUDY_FILE", "SQLITE_STUDY_FILE", "ANALYSIS_FILE", "SPEC_FILE", "TENSORBOARD_DIR", "WARM_TRIALS_FILE", "WARM_EPOCHS_FILE"}


def _modules(*packages: str) -> list[Path]:
    return sorted(p for package in packages for p in (ROOT / package).rglob("*.py"))


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings (of the module, classes, functions)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                out.add(id(first.value))
    return out


def run_dir_names(path: Path) -> list[str]:
    """Where a module names a sweep-level run-dir file: a string (docstrings aside) or a constant."""
    tree = ast.parse(path.read_text(), str(path))
    docs = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            found += [f"{path.name}:{node.lineno} {name!r}" for name in RUN_DIR_FILES if name in node.value]
        elif isinstance(node, ast.Name) and node.id in RUN_DIR_CONSTANTS:
            found.append(f"{path.name}:{node.lineno} {node.id}")
        elif isinstance(node, ast.Attribute) and node.attr in RUN_DIR_CONSTANTS:
            found.append(f"{path.name}:{node.lineno} .{node.attr}")
        elif isinstance(node, ast.alias) and node.name in RUN_DIR_CONSTANTS:
            found.append(f"{path.name}:{node.lineno} import {node.name}")
    return found


def private_uses(path: Path) -> list[str]:
    """Reads or writes of another object's private attribute; imports of private Ray/Optuna modules."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            owner = node.value
            own = isinstance(owner, ast.Name) and owner.id in ("self", "cls")
            parent = isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super"
            if not (own or parent):
                found.append(f"{path.name}:{node.lineno} .{node.attr}")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if isinstance(node, ast.ImportFrom) and node.module in ("ray", "optuna"):
                modules += [f"{node.module}.{a.name}" for a in node.names]
            for module in modules:
                parts = module.split(".")
                if parts[0] in ("ray", "optuna") and any(p.startswith("_") for p in parts[1:]):
                    found.append(f"{path.name}:{node.lineno} import {module}")
        elif isinstance(node, ast.ClassDef):
            bases = [ast.unparse(b) for b in node.bases]
            if any(b.split(".")[-1] == "OptunaSearch" for b in bases):
                found.append(f"{path.name}:{node.lineno} class {node.name}({', '.join(bases)})")
    return found


def test_only_the_run_dir_package_names_the_run_dir_files():
    outside = [p for p in _modules("search", "analysis") if "rundir" not in p.relative_to(ROOT).parts]
    assert len(outside) > 30
    found = [hit for path in outside for hit in run_dir_names(path)]
    assert not found, found
    inside = [hit for path in _modules("search/rundir") for hit in run_dir_names(path)]
    assert {name for name in RUN_DIR_FILES if any(repr(name) in hit for hit in inside)} == set(RUN_DIR_FILES)


def test_the_checks_see_what_they_look_for(tmp_path):
    """The two scans find a file name, a constant, a private attribute and a private import."""
    module = tmp_path / "m.py"
    module.write_text(
        '"""Docstrings may mention trials.parquet."""\n'
        "from search.rundir.records import TRIALS_FILE\n"
        "from ray._private import ray_constants\n"
        "from ray.tune.search.optuna import OptunaSearch\n"
        "class S(OptunaSearch):\n    pass\n"
        "def f(study, run):\n    x = run.location / 'sweep.json'\n    return study._storage, self_ok(), TRIALS_FILE\n"
    )
    assert len(run_dir_names(module)) == 3
    assert len(private_uses(module)) == 3


def test_no_private_attribute_or_module_of_ray_or_optuna():
    """Over the modules that use Ray and Optuna: every access; over all: private Ray/Optuna imports.

    (The trainables reach into a few PyTorch internals, e.g. a tensor's ``_version``; they never
    touch Ray's or Optuna's.)
    """
    found = [hit for path in _modules("search", "analysis") for hit in private_uses(path)]
    found += [hit for path in _modules("trainables") for hit in private_uses(path) if " import " in hit or " class " in hit]
    assert not found, found


def test_module_sizes():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in _modules(*PACKAGES)}
    assert max(sizes.values()) <= 700, {p: n for p, n in sizes.items() if n > 700}
    large = {p: n for p, n in sizes.items() if n > 500}
    assert len(large) <= 2, large
    for path in large:
        doc = ast.get_docstring(ast.parse((ROOT / path).read_text())) or ""
        assert "one job" in doc.lower(), f"{path} ({large[path]} lines) does not say in its docstring why it is one job"
