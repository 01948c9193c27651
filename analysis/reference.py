"""The hypervolume reference point of a run: given, recorded in the run dir, or derived once and recorded.

For the sweep's own objectives the reference its progress lines fixed is taken, so both report
the same hypervolume. Otherwise it is derived the first time a run is analysed for an objective
set and recorded in the run dir (:meth:`search.rundir.RunDir.write_analysis`), so hypervolumes of
a growing sweep stay comparable from one look to the next.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from analysis.columns import ResultsError, check_metrics, numeric_column
from analysis.pareto import reference_point
from search.rundir import RunDir, RunDirError
from search.spec import Objective

__all__ = ["ReferencePoint", "common_reference", "fix_reference", "recorded_reference"]

#: Margin of a derived reference point beyond the worst value, as a fraction of the range.
_REFERENCE_MARGIN = 0.1
_RECORDED_IN = RunDir.file_name("analysis")
_PROGRESS_IN = RunDir.file_name("progress")

@dataclass(frozen=True)
class ReferencePoint:
    """A hypervolume reference point and where it came from.

    Attributes:
        objectives: Objective names, in order.
        directions: ``"max"``/``"min"`` per objective.
        values: The reference, original units, one per objective.
        source: How it was obtained (``"recorded in analysis.json"``, ``"derived from …"``,
            ``"given"``, ``"common: …"``), for printing next to the hypervolume.
    """

    objectives: tuple[str, ...]
    directions: tuple[str, ...]
    values: tuple[float, ...]
    source: str

    def describe(self) -> str:
        """``val_accuracy=0.31, energy_uj=0.39 (recorded in analysis.json)``."""
        pairs = ", ".join(f"{name}={value:.4g}" for name, value in zip(self.objectives, self.values))
        return f"{pairs} ({self.source})"


def _read_analysis_file(run: Any) -> dict[str, Any]:
    try:
        return run.records.read_analysis()
    except RunDirError as exc:
        raise _error(str(exc)) from None


def recorded_reference(run: Any, objectives: Sequence[Objective]) -> ReferencePoint | None:
    """The reference point recorded in the run dir for exactly these objectives and modes."""
    names = [o.metric for o in objectives]
    modes = [o.mode for o in objectives]
    for entry in _read_analysis_file(run)["references"]:
        if entry.get("objectives") == names and entry.get("directions") == modes:
            return ReferencePoint(tuple(names), tuple(modes), tuple(float(v) for v in entry["reference"]), f"recorded in {_RECORDED_IN}")
    return None


def _progress_reference(run: Any, names: Sequence[str]) -> tuple[float, ...] | None:
    """The reference the sweep's progress lines fixed, if it is for exactly ``names``."""
    reference = run.records.read_progress_reference() or {}
    if list(reference) != list(names):
        return None
    try:
        values = tuple(float(reference[n]) for n in names)
    except (TypeError, ValueError):
        return None
    return values if all(np.isfinite(values)) else None


def _write_analysis_file(run: Any, data: Mapping[str, Any]) -> None:
    run.records.write_analysis(data)


def fix_reference(
    run: Any,
    objectives: Sequence[Objective],
    given: ArrayLike | None = None,
    record: bool = True,
) -> ReferencePoint:
    """The reference point of a run for these objectives: given, recorded, or derived and recorded.

    For the sweep's own objectives the reference its progress lines used (``progress.json``) is
    taken, so both report the same hypervolume. Otherwise, derivation, the first time a run is
    analysed for an objective set: the worst value per
    objective over all trials with finite objective values (scheduler-stopped and running ones
    included, so later full-budget trials almost always fall inside it), pushed 10 % of the
    range outwards (:func:`analysis.pareto.reference_point`). It is then recorded in
    ``analysis.json`` and reused, so hypervolumes of the same run stay comparable as it grows.

    Args:
        run: The run.
        objectives: The objectives, in order.
        given: An explicit reference (original units); used as is, and recorded only when the
            run has none for these objectives yet.
        record: Write a new reference to ``analysis.json`` (a failure to write, e.g. a
            read-only run dir, is not an error: the reference is then simply not kept).

    Raises:
        ResultsError: If the reference has the wrong length or is not finite, or if nothing
            is recorded and no trial has finite values to derive one from.
    """
    names = tuple(o.metric for o in objectives)
    modes = tuple(o.mode for o in objectives)
    recorded = recorded_reference(run, objectives)
    if given is not None:
        values = np.asarray(given, dtype=np.float64).reshape(-1)
        if values.shape != (len(names),) or not np.isfinite(values).all():
            raise _error(f"--reference needs {len(names)} finite numbers, one per objective ({', '.join(names)})")
        point = ReferencePoint(names, modes, tuple(float(v) for v in values), "given")
        source = "given on the command line"
    elif recorded is not None:
        return recorded
    elif list(modes) == list(run.spec.modes) and (progress := _progress_reference(run, names)) is not None:
        # The reference the sweep's progress lines used: the same hypervolume in both places.
        point = ReferencePoint(names, modes, progress, f"the sweep's progress lines' reference ({_PROGRESS_IN})")
        source = point.source
    else:
        check_metrics(run, names)
        points = np.column_stack([numeric_column(run.trials, name) for name in names])
        valid = np.isfinite(points).all(axis=1)
        if not valid.any():
            raise _error(f"{run.location}: no trial has finite {', '.join(names)} yet; nothing to derive a reference point from")
        values = reference_point(points[valid], modes, margin=_REFERENCE_MARGIN)
        source = f"derived from {int(valid.sum())} trials with finite objectives"
        point = ReferencePoint(names, modes, tuple(float(v) for v in values), source)
    if record and recorded is None:
        data = _read_analysis_file(run)
        data["references"].append(
            {
                "objectives": list(names),
                "directions": list(modes),
                "reference": list(point.values),
                "source": source,
                "recorded": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
        )
        try:
            _write_analysis_file(run, data)
            if given is None:
                point = ReferencePoint(names, modes, point.values, f"{source}; recorded in {_RECORDED_IN}")
        except OSError:
            pass  # a read-only run dir: the reference is used, just not kept
    return point


def common_reference(references: Sequence[ReferencePoint]) -> ReferencePoint:
    """One reference for comparing several runs: per objective, the worst of their references.

    Every run's points that count under its own reference also count under the common one, and
    the result is the same however often the runs are compared (their references are recorded).
    """
    if not references:
        raise ValueError("common_reference needs at least one reference point")
    first = references[0]
    for other in references[1:]:
        if other.objectives != first.objectives or other.directions != first.directions:
            raise ValueError("runs compared on one figure must share their objectives and directions")
    values = np.array([r.values for r in references], dtype=np.float64)
    worst = np.where(np.array(first.directions) == "max", values.min(axis=0), values.max(axis=0))
    source = "common: the worst of the runs' references" if len(references) > 1 else first.source
    return ReferencePoint(first.objectives, first.directions, tuple(float(v) for v in worst), source)


def _error(message: str) -> Exception:
    return ResultsError(message)
