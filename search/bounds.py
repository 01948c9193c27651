"""Bounds on a numeric value, ``name OP number``: the one grammar and the one test.

Two things are written this way: a spec's constraints (:class:`search.spec.Constraint`: a
metric, ``<=`` or ``>=``) and the ``--where`` conditions of ``python -m analysis.select``
(:class:`analysis.select.Condition`: any numeric column, dotted parameters included, and
``<= < >= > ==``). Both read their text with :func:`parse_bound` and decide with
:func:`satisfies`; each allows its own operators and words its own error messages.

Only numpy is needed here.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

__all__ = ["OPERATORS", "BoundSyntaxError", "ParsedBound", "parse_bound", "satisfies"]

#: Every operator of the grammar, and the comparison it makes.
OPERATORS: dict[str, np.ufunc] = {
    "<=": np.less_equal,
    "<": np.less,
    ">=": np.greater_equal,
    ">": np.greater,
    "==": np.equal,
}


class BoundSyntaxError(ValueError):
    """Text that is not ``name OP number``.

    Attributes:
        text: The text.
        op: The operator, when only the number after it is wrong (``None`` otherwise).
        number: That number as written (``None`` when ``op`` is).
    """

    def __init__(self, text: str, op: str | None = None, number: str | None = None) -> None:
        self.text, self.op, self.number = text, op, number
        what = f"a number after {op!r}, got {number!r}" if op is not None else f"'name OP number', got {text.strip()!r}"
        super().__init__(f"expected {what}")


class ParsedBound(NamedTuple):
    """``name OP number`` read from text: the number as written and as a float."""

    name: str
    op: str
    number: str
    value: float


@functools.cache
def _pattern(ops: tuple[str, ...], dotted: bool) -> re.Pattern[str]:
    name = r"[A-Za-z_][A-Za-z0-9_.]*" if dotted else r"[A-Za-z_][A-Za-z0-9_]*"
    choices = "|".join(re.escape(op) for op in sorted(ops, key=len, reverse=True))  # "<=" before "<"
    return re.compile(rf"^\s*({name})\s*({choices})\s*(\S+)\s*$")


def parse_bound(text: str, ops: Sequence[str] = tuple(OPERATORS), dotted: bool = True) -> ParsedBound:
    """Read ``name OP number`` (spaces around the parts optional).

    Args:
        text: The text, e.g. ``"energy_uj <= 2"``.
        ops: The operators allowed (a subset of :data:`OPERATORS`).
        dotted: Whether the name may contain dots (``model.width``).

    Raises:
        BoundSyntaxError: Another shape, an operator not in ``ops``, or a number that is not
            one (then ``op`` and ``number`` say which).
    """
    unknown = [op for op in ops if op not in OPERATORS]
    if unknown:
        raise ValueError(f"unknown operators {unknown}; the grammar has {', '.join(OPERATORS)}")
    match = _pattern(tuple(ops), dotted).match(text)
    if not match:
        raise BoundSyntaxError(text)
    name, op, number = match.groups()
    try:
        value = float(number)
    except ValueError:
        raise BoundSyntaxError(text, op, number) from None
    return ParsedBound(name, op, number, value)


def satisfies(values: Any, op: str, bound: float) -> Any:
    """Whether values meet ``OP bound``: a bool for a scalar, a boolean array for an array.

    A missing (``None``) or non-finite value never does: it cannot be shown to.
    """
    array = np.asarray(np.nan if values is None else values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(array) & OPERATORS[op](array, bound)
    return bool(ok) if ok.ndim == 0 else ok
