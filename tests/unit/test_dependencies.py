"""``pyproject.toml`` declares what the packages import, and nothing else (AST; nothing is imported).

Every third-party import of ``search``, ``trainables`` and ``analysis`` counts, wherever it stands
(top level, inside a function, under ``try``), and so does ``importlib.import_module("name")``
with a constant name, directly or through a module's own wrapper around it. Import names are
mapped to distributions by :func:`importlib.metadata.packages_distributions` (``yaml`` is
``pyyaml``, ``sklearn`` is ``scikit-learn``).

The rules:

* the distributions the packages need are exactly ``[project].dependencies``;
* a distribution declared only in an extra (``deploy``: onnx, nir, snntorch …) is an optional
  feature: imported inside a function or under ``try``/``except ImportError``, never where
  importing a module would fail without it;
* a distribution installed by hand outside pip's resolver (:data:`UNDECLARED`) is named in
  ``pyproject.toml`` (a comment says how to install it) and imported like an optional one.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("search", "trainables", "analysis")

#: Imported but declared in no list, with why: pip must not resolve their own requirements.
UNDECLARED = {"neurobench": "pip install --no-deps neurobench: its declared torchaudio would replace torch"}


@dataclass(frozen=True)
class ImportSite:
    """One import of a third-party module: where, and whether importing the module runs it unguarded."""

    module: str  # the top-level import name
    path: Path
    line: int
    eager: bool  # at module level and not under try/except ImportError: the module needs it to import


def normalize(name: str) -> str:
    """A distribution name as PEP 503 compares them (``PyYAML`` is ``pyyaml``, ``scikit_learn`` is ``scikit-learn``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    """The distribution of a requirement string: ``ray[tune]>=2.50,<2.61`` is ``ray``."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, requirement
    return normalize(match.group(1))


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    names = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return handler.type is None or any(isinstance(k, ast.Name) and k.id in names for k in kinds)


def _is_import_module(func: ast.expr) -> bool:
    return (isinstance(func, ast.Attribute) and func.attr == "import_module") or (isinstance(func, ast.Name) and func.id == "import_module")


def _constant_name(call: ast.Call) -> str | None:
    if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value
    return None


def import_sites(path: Path) -> list[ImportSite]:
    """The third-party and first-party imports of one file, by top-level name (stdlib left out)."""
    tree = ast.parse(path.read_text(), str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    # Functions of this file that import the module named by their first parameter (a wrapper
    # that turns a missing optional package into a message): calls with a constant name count.
    wrappers = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.args.args:
            first = node.args.args[0].arg
            for call in ast.walk(node):
                if isinstance(call, ast.Call) and _is_import_module(call.func) and call.args and isinstance(call.args[0], ast.Name) and call.args[0].id == first:
                    wrappers.add(node.name)

    def eager(node: ast.AST) -> bool:
        while node in parents:
            parent = parents[node]
            if isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                return False
            if isinstance(parent, ast.Try) and node in parent.body and any(_catches_import_error(h) for h in parent.handlers):
                return False
            node = parent
        return True

    sites = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Call) and (_is_import_module(node.func) or (isinstance(node.func, ast.Name) and node.func.id in wrappers)):
            name = _constant_name(node)
            names = [name] if name else []
        for name in names:
            top = name.split(".")[0]
            if top in sys.stdlib_module_names or top == "__future__":
                continue
            sites.append(ImportSite(top, path, node.lineno, eager(node)))
    return sites


@functools.cache
def third_party_sites() -> tuple[ImportSite, ...]:
    sites = [site for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py")) for site in import_sites(path)]
    return tuple(site for site in sites if site.module not in PACKAGES)


@functools.cache
def installed() -> dict[str, list[str]]:
    """Import name -> the installed distributions that provide it (a walk over every installed one)."""
    return importlib.metadata.packages_distributions()


def distribution(module: str) -> str:
    """The distribution that installs the import name ``module`` (its own name when none installed says so)."""
    found = installed().get(module, [])
    names = set(map(normalize, found))
    if len(names) > 1 and all(n == normalize(module) or n.startswith(normalize(module) + "-") for n in names):
        return normalize(module)  # one project shipped in parts (mlflow, mlflow-skinny, mlflow-tracing)
    assert len(names) <= 1, f"{module} is installed by several distributions: {found}"
    return normalize(found[0]) if found else normalize(module)


def declared() -> tuple[set[str], dict[str, set[str]]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = {extra: {requirement_name(r) for r in reqs} for extra, reqs in project.get("optional-dependencies", {}).items()}
    return {requirement_name(r) for r in project["dependencies"]}, extras


def test_the_dependencies_are_exactly_what_the_packages_need():
    dependencies, extras = declared()
    optional = set().union(*extras.values()) - dependencies
    imported = {distribution(site.module) for site in third_party_sites()}
    assert {"numpy", "torch", "pyyaml", "scikit-learn"} <= imported  # the scan found imports and mapped their names
    needed = imported - optional - set(UNDECLARED)
    assert needed - dependencies == set(), "imported but not declared in [project].dependencies"
    assert dependencies - needed == set(), "declared in [project].dependencies but imported nowhere"


def test_optional_distributions_are_imported_only_where_their_feature_runs():
    dependencies, extras = declared()
    optional = (set().union(*extras.values()) | set(UNDECLARED)) - dependencies
    eager = [f"{site.path.relative_to(ROOT)}:{site.line} {site.module}" for site in third_party_sites() if site.eager and distribution(site.module) in optional]
    assert eager == [], "an optional distribution imported at module level: the module fails to import without it"
    deploy = {distribution(site.module) for site in third_party_sites()} & extras["deploy"]
    assert {"onnx", "snntorch", "nir"} <= deploy  # the deploy extra's imports are seen (inside functions, via import_module)


def test_undeclared_distributions_are_documented_in_pyproject_and_still_imported():
    text = (ROOT / "pyproject.toml").read_text()
    imported = {distribution(site.module) for site in third_party_sites()}
    for name, why in UNDECLARED.items():
        assert f"pip install --no-deps {name}" in text, why
        assert name in imported, f"{name} is imported nowhere: drop it from UNDECLARED"


def test_the_scan_sees_every_kind_of_import(tmp_path):
    source = tmp_path / "mod.py"
    source.write_text(
        "import os\nimport numpy as np\nfrom yaml import safe_load\n"
        "try:\n    import onnx\nexcept ImportError:\n    onnx = None\n"
        "def f():\n    import sklearn.datasets\n    return importlib.import_module('scipy.stats')\n"
        "def _require(module):\n    return importlib.import_module(module)\n"
        "def g():\n    return _require('nir')\n"
    )
    sites = {(site.module, site.eager) for site in import_sites(source)}
    assert sites == {("numpy", True), ("yaml", True), ("onnx", False), ("sklearn", False), ("scipy", False), ("nir", False)}
    assert distribution("yaml") == "pyyaml" and distribution("sklearn") == "scikit-learn"
    assert requirement_name("ray[tune]>=2.50,<2.61") == "ray" and requirement_name("moto[server]>=5.0") == "moto"
