"""The report contract: the keys every ``tune.report`` of every trainable carries, and what they mean.

Each key is declared once, as a :class:`Metric` (direction, label, unit, kind); families add
their own in their registry entry. The searcher, the progress display, the analysis and the
plots read these declarations and never guess from a key's name. :func:`is_full_budget` is the
one definition of "a result at full budget", :func:`is_competing` the one of "a trial that
competes on a front" (completed, at full budget), and :func:`format_number` the one way a metric
value is printed. The names of a recorded trial's ``state`` (``TERMINATED_STATE``,
``ERROR_STATE``, ``FINAL_STATES`` …) are defined here too, once, for the recorder that writes
them and everything that reads them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = [
    "Metric",
    "StaticCost",
    "BASE_METRICS",
    "BASE_KEYS",
    "COST_KEYS",
    "INFO_KEYS",
    "FULL_BUDGET_TOL",
    "PENDING_STATE",
    "RUNNING_STATE",
    "TERMINATED_STATE",
    "ERROR_STATE",
    "FINAL_STATES",
    "REFUSED_STATE",
    "SETTLED_STATES",
    "is_full_budget",
    "is_competing",
    "format_number",
    "make_report",
    "missing_keys",
]


@dataclass(frozen=True)
class Metric:
    """One report key.

    Attributes:
        name: The key.
        mode: ``max``/``min`` when it makes sense as an objective or a bound; ``None`` otherwise.
        label: Human-readable name (axes, cards, tables).
        unit: Unit shown after values (``µJ``, ``s``); empty when dimensionless.
        kind: ``quality`` (accuracy-like), ``cost`` (compute, energy, size), ``progress``
            (epochs, time, budget) or ``info`` (descriptive, never an objective).
    """

    name: str
    mode: Literal["max", "min"] | None
    label: str
    unit: str = ""
    kind: Literal["quality", "cost", "progress", "info"] = "info"

    @property
    def axis_label(self) -> str:
        """``label (unit)`` for plot axes."""
        return f"{self.label} ({self.unit})" if self.unit else self.label


@dataclass(frozen=True)
class StaticCost:
    """A report value known before training, from a config and the data's shape alone.

    Attributes:
        value: The value the trial's cost code gives for the untrained network.
        relation: How every report of the trained trial relates to it: ``exact`` (equal),
            ``upper`` (the report is at most ``value``: e.g. G2G MACs under dynamic sparse
            training, where regrown edges start at zero weight) or ``lower`` (at least ``value``:
            e.g. a spiking net's energy with no spike at all).
        tight: For a bound, whether reports stay close to it, so that it also serves as an
            estimate of the value (G2G under dynamic sparse training: within a fraction of a
            percent in practice), not only as a proof that a constraint is broken.
        span: For a lower bound, what the report adds at most per unit of a learnt rate: the
            report is about ``value + span * rate``, the rate learnt by training (a spiking
            net's energy: its real-valued MACs, known, plus its synaptic operations at a spike
            rate of 1, times the measured rate). ``None``: no such structure is known.
    """

    value: float
    relation: Literal["exact", "upper", "lower"] = "exact"
    tight: bool = False
    span: float | None = None

    @property
    def known(self) -> bool:
        """Whether the value can stand for what the trained trial will report (exact, or a tight bound)."""
        return self.relation == "exact" or self.tight

    def holds_for(self, reported: float, within: float | None = None) -> bool:
        """Whether a reported value keeps the relation (and, with ``within``, is no further than that fraction of ``value`` from it)."""
        tol = 1e-9 * max(1.0, abs(self.value))
        if self.relation == "exact":
            return abs(reported - self.value) <= tol
        kept = reported <= self.value + tol if self.relation == "upper" else reported >= self.value - tol
        return kept and (within is None or abs(reported - self.value) <= within * abs(self.value) + tol)


#: Keys present in every report of every trainable.
BASE_METRICS: tuple[Metric, ...] = (
    Metric("epoch", None, "epoch", kind="progress"),  # 1-based epoch just finished
    Metric("val_accuracy", "max", "validation accuracy", kind="quality"),  # split carved from the training set
    Metric("val_loss", "min", "validation loss", kind="quality"),
    Metric("macs", "min", "MACs per inference", kind="cost"),  # inference multiply-accumulates, active connections only
    Metric("energy_uj", "min", "energy per inference", "µJ", kind="cost"),  # modelled inference energy
    Metric("params", "min", "active parameters", kind="cost"),  # non-zero parameters
    Metric("density", "min", "weight density", kind="cost"),  # active / dense weights of the sparse layers; 1.0 when dense
    Metric("train_time_s", "min", "training time", "s", kind="progress"),  # cumulative wall time of this trial
    Metric("budget_fraction", None, "budget fraction", kind="progress"),  # epoch / epochs
    Metric("test_accuracy", "max", "test accuracy", kind="quality"),  # at full budget only; NaN before (never an objective)
    Metric("latency_ms", "min", "latency at batch 1", "ms", kind="cost"),  # measured with cost.latency; NaN otherwise
    Metric("throughput_sps", "max", "throughput at batch 256", "samples / s", kind="cost"),  # likewise
)
BASE_KEYS: tuple[str, ...] = tuple(m.name for m in BASE_METRICS)

#: Where a report was made (not metrics): the Ray node that ran the trial, and the device
#: that ``latency_ms`` was measured on (None without ``cost.latency``).
INFO_KEYS: tuple[str, ...] = ("node_id", "latency_device")

#: Contract keys a trainable may leave out of a report: NaN then (measured only sometimes).
OPTIONAL_KEYS: tuple[str, ...] = ("test_accuracy", "latency_ms", "throughput_sps")

#: The contract's cost keys (lower is better).
COST_KEYS: tuple[str, ...] = tuple(m.name for m in BASE_METRICS if m.kind == "cost")

#: A result is at full budget when ``budget_fraction >= 1 - FULL_BUDGET_TOL``.
FULL_BUDGET_TOL = 1e-9


def is_full_budget(budget_fraction: Any) -> Any:
    """Whether results are at full budget: a bool for a scalar, a boolean array for an array.

    Missing values (``None``, NaN) are not at full budget.
    """
    if budget_fraction is None:
        return False
    values = np.asarray(budget_fraction, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        mask = values >= 1.0 - FULL_BUDGET_TOL
    return bool(mask) if mask.ndim == 0 else mask


# A trial's ``state`` in the run dir's record (``trials.parquet``), in Ray Tune's words.
#: Waiting to run again (a trial of an interrupted sweep that a resumed one continues).
PENDING_STATE = "PENDING"
#: Started and not finished.
RUNNING_STATE = "RUNNING"
#: Ended without an error: at full budget, or stopped early by the scheduler (Ray Tune's word for
#: both). Which one is ``budget_fraction``'s to say (:func:`is_full_budget`); a trial that competes
#: on a front is both TERMINATED and at full budget (:func:`is_competing`).
TERMINATED_STATE = "TERMINATED"
#: Failed, after its retries.
ERROR_STATE = "ERROR"
#: The states after which a trial never runs again.
FINAL_STATES: tuple[str, ...] = (TERMINATED_STATE, ERROR_STATE)
#: A candidate never trained: its costs known before training broke a constraint. Its row holds
#: those costs and the reason (``error``); it is not a trial of the sweep's ``num_samples``.
REFUSED_STATE = "REFUSED"
#: Rows of the record that never change again.
SETTLED_STATES: tuple[str, ...] = (*FINAL_STATES, REFUSED_STATE)


def is_competing(state: Any, budget_fraction: Any, include_partial: bool = False) -> Any:
    """Whether trials compete on a front: terminated (``TERMINATED_STATE``) and at full budget.

    The one definition of a "competing trial". ``state`` and ``budget_fraction`` are one
    trial's (a bool back) or equally long sequences of a table's (a boolean array back).
    ``include_partial`` lets completed trials that the scheduler stopped early compete too.
    Feasibility, which depends on a spec's constraints, is :func:`search.spec.feasible`'s:
    callers that want it as well ``and`` it in.
    """
    completed = np.asarray(state, dtype=object) == TERMINATED_STATE
    mask = completed if include_partial else completed & is_full_budget(budget_fraction)
    return bool(mask) if np.ndim(mask) == 0 else np.asarray(mask, dtype=bool)


def format_number(value: Any, missing: str = "-", nan_is_missing: bool = False) -> str:
    """A metric or parameter value for tables, cards, progress lines and hover text.

    Integers stay whole (``16220``), floats get four significant digits (``0.9756``), very
    large or small floats scientific notation; a missing value is ``missing`` (NaN too, with
    ``nan_is_missing``).
    """
    if value is None:
        return missing
    if isinstance(value, (bool, str)):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(value):
        return missing if nan_is_missing else str(value)
    if value == 0 or 1e-3 <= abs(value) < 1e4:
        return f"{value:.4g}"
    if 1e4 <= abs(value) < 1e7:
        return f"{value:.0f}"
    return f"{value:.3g}"


def make_report(values: Mapping[str, Any], extra_keys: Sequence[str] = ()) -> dict[str, Any]:
    """Build a report dict with every contract key, converting tensors/numpy scalars to floats.

    Args:
        values: The metrics of this epoch. Must contain every key of ``BASE_KEYS`` except
            those of ``OPTIONAL_KEYS`` (``test_accuracy``, ``latency_ms``, ``throughput_sps``),
            which default to NaN, and every key of ``extra_keys``.
        extra_keys: The trainable family's own keys (e.g. ``spike_rate``).

    Raises:
        KeyError: if a contract key is missing (a programming error in a trainable).
    """
    report: dict[str, Any] = {}
    for key in (*BASE_KEYS, *extra_keys):
        if key not in values:
            if key in OPTIONAL_KEYS:
                report[key] = math.nan
                continue
            raise KeyError(f"report is missing contract key {key!r}")
        value = values[key]
        report[key] = value if isinstance(value, (str, bool)) else _to_number(value)
    report["node_id"] = _node_id()
    report["latency_device"] = values.get("latency_device")
    return report


def missing_keys(report: Mapping[str, Any], extra_keys: Sequence[str] = ()) -> list[str]:
    """Return the contract keys absent from ``report`` (empty when the report conforms)."""
    return [k for k in (*BASE_KEYS, *extra_keys) if k not in report]


def _node_id() -> str | None:
    import ray

    if not ray.is_initialized():
        return None
    return ray.get_runtime_context().get_node_id()


def _to_number(value: Any) -> int | float:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, int):
        return value
    return float(value)
