"""The report contract: the keys every ``tune.report`` of every trainable carries.

Defined once here so the searcher, schedulers, results writer and analysis never guess.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["BASE_KEYS", "COST_KEYS", "INFO_KEYS", "make_report", "missing_keys"]

#: Keys present in every report of every trainable (see DESIGN.md, "the report contract").
BASE_KEYS: tuple[str, ...] = (
    "epoch",  # 1-based epoch just finished
    "val_accuracy",  # accuracy on the validation split carved from the training set
    "val_loss",
    "macs",  # inference multiply-accumulates per sample, active connections only
    "energy_uj",  # modelled inference energy per sample, microjoules
    "params",  # active (non-zero) parameters
    "density",  # active / dense weights of the sparse (maskable) layers; 1.0 when dense
    "train_time_s",  # cumulative training wall time of this trial
    "budget_fraction",  # epoch / epochs
    "test_accuracy",  # measured at full budget only; NaN before (never an objective)
)

#: Where a report was made (not a metric): the Ray node that ran the trial.
INFO_KEYS: tuple[str, ...] = ("node_id",)

#: Keys that describe cost; analysis treats them as "lower is better" by default.
COST_KEYS: tuple[str, ...] = ("macs", "energy_uj", "params", "density")


def make_report(values: Mapping[str, Any], extra_keys: tuple[str, ...] = ()) -> dict[str, Any]:
    """Build a report dict with every contract key, converting tensors/numpy scalars to floats.

    Args:
        values: The metrics of this epoch. Must contain every key of ``BASE_KEYS`` except
            ``test_accuracy``, which defaults to NaN, and every key of ``extra_keys``.
        extra_keys: The trainable family's own keys (e.g. ``spike_rate``).

    Raises:
        KeyError: if a contract key is missing (a programming error in a trainable).
    """
    report: dict[str, Any] = {}
    for key in (*BASE_KEYS, *extra_keys):
        if key not in values:
            if key == "test_accuracy":
                report[key] = math.nan
                continue
            raise KeyError(f"report is missing contract key {key!r}")
        value = values[key]
        report[key] = value if isinstance(value, (str, bool)) else _to_number(value)
    report["node_id"] = _node_id()
    return report


def missing_keys(report: Mapping[str, Any], extra_keys: tuple[str, ...] = ()) -> list[str]:
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
