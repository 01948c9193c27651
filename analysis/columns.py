"""The trials table's columns as numbers, and the one error of reading a run: :class:`ResultsError`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["ResultsError", "check_metrics", "numeric_column"]


class ResultsError(Exception):
    """A user-facing problem with a run dir (missing, not a sweep, unknown metric): one line."""


def numeric_column(trials: pa.Table, name: str) -> np.ndarray:
    """A column as float64, with nulls (and a missing column) as NaN.

    Raises:
        ResultsError: If the column exists but is not numeric.
    """
    if name not in trials.column_names:
        return np.full(trials.num_rows, np.nan)
    column = trials.column(name)
    if pa.types.is_null(column.type):
        return np.full(trials.num_rows, np.nan)
    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type) or pa.types.is_boolean(column.type)):
        raise ResultsError(f"column {name!r} is not numeric ({column.type}); it cannot be an objective or a bound")
    return pc.fill_null(pc.cast(column, pa.float64()), math.nan).to_numpy(zero_copy_only=False).astype(np.float64)


def check_metrics(run: Any, metrics: Sequence[str]) -> None:
    """Every metric must be a column of the run's trials (ResultsError naming the numeric ones otherwise)."""
    missing = [m for m in metrics if m not in run.trials.column_names]
    if missing:
        numeric = [
            name
            for name in run.trials.column_names
            if name not in run.param_names and (pa.types.is_integer(run.trials.schema.field(name).type) or pa.types.is_floating(run.trials.schema.field(name).type))
        ]
        raise ResultsError(f"{run.location}: no metric {', '.join(missing)} in this sweep (its metrics: {', '.join(numeric)})")
