"""The rows of ``trials.parquet`` and ``epochs.parquet``: one builder each, and their Arrow tables.

``trials.parquet`` has one row per trial (and per candidate refused before training); its
columns, in order: ``trial_id``, ``state``, ``optuna_trial``, the searched and fixed parameters
(dotted names), the report keys, then ``error``, ``retries``, ``checkpoint``, ``trial_dir``.
``epochs.parquet`` has one row per report: ``trial_id``, the report keys, ``epoch``,
``timestamp``. A report key a row lacks is ``None`` for the information keys
(:data:`trainables.report.INFO_KEYS`), ``0`` for ``epoch`` and NaN for every metric.

:func:`trial_row` and :func:`epoch_row` are the only places rows are built; the results recorder
(live trials), the searcher (refused candidates) and a resume (rows rebuilt from the record) all
call them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from trainables.report import INFO_KEYS

__all__ = ["EPOCH_COLUMN_DOCS", "TRIAL_COLUMN_DOCS", "SealedRows", "epoch_columns", "epoch_row", "missing_value", "rows_table", "trial_columns", "trial_row"]


#: The columns of ``trials.parquet`` besides the report keys, in order, and what each holds
#: (``PARAMETERS`` stands for one column per searched and fixed parameter, by dotted name).
TRIAL_COLUMN_DOCS: tuple[tuple[str, str], ...] = (
    ("trial_id", "the trial's id (Ray Tune's; `refused-N` for the candidate refused before training as Optuna trial N)"),
    ("state", "`TERMINATED` (at full budget, or stopped early: see `budget_fraction`), `ERROR`, `RUNNING`, `PENDING` or `REFUSED`"),
    ("optuna_trial", "the number of its trial in the Optuna study"),
    ("PARAMETERS", "one column per searched and fixed parameter, by dotted name (`model.width`); null when a conditional parameter was inactive"),
    ("REPORT KEYS", "the trial's last report: every report key of its family (see the report keys); a candidate refused before training "
     "holds its costs known before training, NaN for the others"),
    ("error", "why it failed (one line), or why it was refused before training"),
    ("retries", "how many times it was retried after a failure"),
    ("checkpoint", "its latest checkpoint (path or URI)"),
    ("trial_dir", "its Ray Tune trial dir"),
)
#: The columns of ``epochs.parquet``, in order.
EPOCH_COLUMN_DOCS: tuple[tuple[str, str], ...] = (
    ("trial_id", "the trial the report is of"),
    ("REPORT KEYS", "every report key of the family, at that epoch"),
    ("epoch", "the epoch (1-based)"),
    ("timestamp", "when the driver received the report (seconds since the epoch)"),
)


def missing_value(key: str) -> Any:
    """What a row holds for a report key it has no value of."""
    return None if key in INFO_KEYS else 0 if key == "epoch" else math.nan


def trial_row(
    previous: Mapping[str, Any] | None,
    *,
    trial_id: str,
    state: str,
    params: Mapping[str, Any],
    report: Mapping[str, Any],
    metric_keys: Sequence[str],
    error: str | None = None,
    optuna_trial: int | None = None,
    retries: int = 0,
    checkpoint: str | None = None,
    trial_dir: str | None = None,
) -> dict[str, Any]:
    """One ``trials.parquet`` row: ``previous`` (the trial's row so far, if any) brought up to date.

    ``report`` is the trial's last report (or a refused candidate's static costs): its values of
    ``metric_keys`` replace the row's, keys it lacks keep the row's value or
    :func:`missing_value`. A row keeps the Optuna trial number it was first given.
    """
    row = dict(previous or {})
    kept = row.get("optuna_trial")
    row.update({"trial_id": trial_id, "state": state, "error": error, "optuna_trial": optuna_trial if kept is None else kept, **params})
    for key in metric_keys:
        if key in report:
            row[key] = report[key]
        else:
            row.setdefault(key, missing_value(key))
    row.update(retries=retries, checkpoint=checkpoint, trial_dir=trial_dir)
    return row


def epoch_row(trial_id: str, epoch: int, report: Mapping[str, Any], metric_keys: Sequence[str], timestamp: float | None) -> dict[str, Any]:
    """One ``epochs.parquet`` row: the report's values of ``metric_keys`` at ``epoch``."""
    row = {"trial_id": trial_id, **{key: report[key] for key in metric_keys if key in report}}
    row["epoch"] = int(epoch)
    row["timestamp"] = timestamp
    return row


def trial_columns(param_names: Sequence[str], metric_keys: Sequence[str]) -> list[str]:
    """The leading columns of ``trials.parquet``, in order."""
    return ["trial_id", "state", "optuna_trial", *param_names, *metric_keys]


def epoch_columns(metric_keys: Sequence[str]) -> list[str]:
    """The leading columns of ``epochs.parquet``, in order."""
    return ["trial_id", *metric_keys]


def _column(values: list[Any]) -> pa.Array:
    """An Arrow column from Python values; mixed non-numeric types fall back to strings."""
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def rows_table(rows: Sequence[Mapping[str, Any]], first: Sequence[str]) -> pa.Table:
    """Rows as one Arrow table: ``first`` columns first, then the others as they appear."""
    return _table(rows, first)


def _table(rows: Sequence[Mapping[str, Any]], first: Sequence[str]) -> pa.Table:
    names: list[str] = list(first)
    for row in rows:
        names += [k for k in row if k not in names]
    return pa.table({name: _column([row.get(name) for row in rows]) for name in names})


class SealedRows:
    """The Arrow form of rows that no longer change, so a refresh converts only the others.

    A finished trial's row and its epoch rows are final: they are converted to Arrow once, when
    first written after the trial ended, and appended to one cached table. Converting Python
    rows dominates a refresh (~30 µs a row), so without this the driver's cost per finished
    trial would grow with the number of trials.
    """

    def __init__(self) -> None:
        self.keys: set[Any] = set()
        self.cached: pa.Table | None = None

    def clear(self) -> None:
        self.keys, self.cached = set(), None

    def table(self, rows: Mapping[Any, Mapping[str, Any]], sealed: Sequence[Any], first: Sequence[str], sort: Sequence[str]) -> pa.Table:
        """Every row of ``rows`` as one table sorted by ``sort``; ``sealed`` keys are final."""
        try:
            new = [k for k in sealed if k not in self.keys and k in rows]
            if new:
                part = _table([rows[k] for k in new], first)
                self.cached = part if self.cached is None else pa.concat_tables([self.cached, part], promote_options="permissive").combine_chunks()
                self.keys.update(new)
            live = [rows[k] for k in rows if k not in self.keys] if len(self.keys) < len(rows) else []
            parts = [t for t in (self.cached, _table(live, first) if live else None) if t is not None]
            table = pa.concat_tables(parts, promote_options="permissive") if len(parts) > 1 else parts[0]
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            # Rows disagree on a column's type (e.g. numbers in some, text in others): convert
            # everything together, which falls back to text for that column.
            self.clear()
            table = _table(list(rows.values()), first)
        names = list(first) + [n for n in table.column_names if n not in first]
        table = table.select([n for n in names if n in table.column_names])
        return table.sort_by([(key, "ascending") for key in sort])
