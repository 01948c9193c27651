"""One number formatter: :func:`trainables.report.format_number`, and the outputs its callers rely on.

An AST scan of ``search``, ``trainables`` and ``analysis`` finds one function that formats a
number for display: by its name (``format_…number``/``value``), by its shape (a function that
returns a bare formatted value, ``f"{x:.4g}"``, ``format(x, ".4g")``, ``"%.4g" % x``) and with
no alias bound to it under another name. Cards and selection tables pass
:data:`analysis.card.CARD_STYLE`; figures, progress lines and the front table use the defaults.
"""

from __future__ import annotations

import ast
import math
import re
from pathlib import Path

import numpy as np

from trainables.report import format_number

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("search", "trainables", "analysis")
NAME = re.compile(r"_?(format|fmt)_?\w*(number|num|value|float)s?$")


def _returns_a_formatted_value(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    for node in ast.walk(function):
        if not isinstance(node, ast.Return) or node.value is None:
            continue
        value = node.value
        if isinstance(value, ast.JoinedStr) and len(value.values) == 1:
            (part,) = value.values
            if isinstance(part, ast.FormattedValue) and part.format_spec is not None:
                return True  # return f"{x:.4g}"
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "format" and len(value.args) == 2:
            return True  # return format(x, ".4g")
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "format":
            if isinstance(value.func.value, ast.Constant) and re.fullmatch(r"\{[^{}]*:[^{}]+\}", str(value.func.value.value)):
                return True  # return "{:.4g}".format(x)
        if isinstance(value, ast.BinOp) and isinstance(value.op, ast.Mod) and isinstance(value.left, ast.Constant):
            if re.fullmatch(r"%[-+ #0]*\d*(\.\d+)?[gGeEf]", str(value.left.value)):
                return True  # return "%.4g" % x
    return False


def number_formatters(paths: list[Path]) -> tuple[set[str], set[str]]:
    """``module:function`` of the functions that format a number, and of the aliases of ``format_number``."""
    functions, aliases = set(), set()
    for path in paths:
        tree = ast.parse(path.read_text(), str(path))
        where = path.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".") if path.is_relative_to(ROOT) else path.stem
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and (NAME.match(node.name) or _returns_a_formatted_value(node)):
                functions.add(f"{where}:{node.name}")
            elif isinstance(node, ast.Assign):
                # format_value = format_number, or partial(format_number, ...): a second name for it.
                value = node.value
                if isinstance(value, ast.Call) and value.args:
                    value = value.args[0]
                if isinstance(value, (ast.Name, ast.Attribute)) and ast.unparse(value).endswith("format_number"):
                    aliases.update(f"{where}:{ast.unparse(t)}" for t in node.targets)
    return functions, aliases


def test_the_packages_define_one_number_formatter():
    paths = [path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))]
    functions, aliases = number_formatters(paths)
    assert functions == {"trainables.report:format_number"}
    assert aliases == set()


def test_the_scan_finds_formatters_by_name_shape_and_alias(tmp_path):
    source = tmp_path / "mod.py"
    source.write_text(
        "def format_card_value(v):\n    return format_number(v, missing='-')\n"
        "def _fmt(x):\n    return f'{x:.3g}'\n"
        "def pct(x):\n    return '%.1f' % x\n"
        "def sci(x):\n    return format(x, '.2e')\n"
        "def title(x):\n    return f'run {x}'\n"
        "format_value = format_number\n"
        "short = functools.partial(report.format_number, missing='')\n"
    )
    functions, aliases = number_formatters([source])
    assert functions == {"mod:format_card_value", "mod:_fmt", "mod:pct", "mod:sci"}
    assert aliases == {"mod:format_value", "mod:short"}


def test_figures_progress_lines_and_tables_read_as_before():
    # Hover text, titles, progress lines and the front table (the defaults).
    values = (None, 16220, 15104.0, 0.975609, 7.3e-05, 2.5e8, math.nan, "mixer", True, np.int64(3), np.float32(0.5), 0.0, -1234.5)
    assert [format_number(v) for v in values] == [
        "-", "16220", "15104", "0.9756", "7.3e-05", "2.5e+08", "nan", "mixer", "True", "3", "0.5", "0", "-1234",
    ]
    assert format_number(math.inf) == "inf" and format_number(None, missing="") == ""


def test_cards_and_selection_tables_write_missing_values_as_an_en_dash():
    from analysis.card import CARD_STYLE

    values = (None, math.nan, math.inf, 16220, 0.975609, 7.3e-05, "tpe")
    assert [format_number(v, **CARD_STYLE) for v in values] == ["–", "–", "–", "16220", "0.9756", "7.3e-05", "tpe"]


def test_the_old_names_are_gone():
    import analysis.card
    import analysis.plot

    assert not hasattr(analysis.plot, "format_value")
    assert not hasattr(analysis.card, "format_card_value")
