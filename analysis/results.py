"""A run dir as tables: trials and per-epoch history, filters, and the Pareto front of a sweep.

Everything here reads what a sweep writes (``spec.yaml``, ``trials.parquet``,
``epochs.parquet``; see :mod:`search.rundir` for the layout) and nothing else, so it works the
same for every trainable family, on a local path or a pyarrow-filesystem URI
(``s3://bucket/runs/quickstart``), and on a sweep that is still running: the recorder rewrites
``trials.parquet`` atomically every few seconds and each call here reads the latest copy.

The one file analysis writes into a run dir is ``analysis.json``: the hypervolume reference
point of each objective set, derived once (or given) and reused afterwards, so the hypervolume
of a growing sweep is comparable from one look to the next.

Compute/render split: :func:`run_front` returns a :class:`RunFront` (plain data: the trials
that compete, which are feasible, the front, ranks, knee and hypervolume) and
:func:`hypervolume_trace` a :class:`HypervolumeTrace`; ``analysis.plot`` draws them and
``analysis.select`` picks from them.

The definitions used here live with what they describe: the trial-state names and what makes a
trial compete on a front (completed, full budget) in :mod:`trainables.report`
(:func:`~trainables.report.is_competing`), feasibility in :func:`search.spec.feasible`.
"""

from __future__ import annotations

import json
import math
import os
import posixpath
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
from numpy.typing import ArrayLike

from analysis.pareto import ParetoFront, compute_front, hypervolume_progress, reference_point
from search.rundir import ANALYSIS_FILE, EPOCHS_FILE, PROGRESS_FILE, SPEC_FILE, TRIALS_FILE, RunDirError, RunLocation, open_run_dir
from search.spec import Constraint, Objective, Spec, SpecError, feasible, load_yaml, parse_spec
from trainables.files import write_atomic
from trainables.registry import metric_table
from trainables.report import COMPLETED_STATE, ERROR_STATE, FINAL_STATES, is_competing, is_full_budget

__all__ = [
    "ANALYSIS_FILE",
    "COMPLETED_STATE",
    "HypervolumeTrace",
    "ReferencePoint",
    "ResultsError",
    "RunFront",
    "RunResults",
    "analyze_run",
    "common_reference",
    "competing_mask",
    "completed_mask",
    "feasible_mask",
    "filter_trials",
    "finite_mask",
    "fix_reference",
    "full_budget_mask",
    "hypervolume_trace",
    "load_epochs",
    "load_run",
    "load_trials",
    "numeric_column",
    "parse_objectives",
    "recorded_reference",
    "run_front",
]

#: Margin of a derived reference point beyond the worst value, as a fraction of the range.
_REFERENCE_MARGIN = 0.1


class ResultsError(Exception):
    """A user-facing problem with a run dir (missing, not a sweep, unknown metric): one line."""


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def _location(run_dir: str | os.PathLike[str]) -> RunLocation:
    try:
        location = open_run_dir(run_dir)
        location.filesystem  # noqa: B018 - a malformed URI fails here, with one line
    except RunDirError as exc:
        raise ResultsError(str(exc)) from None
    return location


@dataclass(frozen=True, eq=False)
class RunResults:
    """One sweep's results as read from its run dir.

    Attributes:
        location: The run dir as given (path or URI).
        name: The run's name (the run dir's last component).
        spec: The resolved spec the sweep ran with (``spec.yaml``).
        trials: One row per trial (``trials.parquet``): ``trial_id``, ``state``, ``optuna_trial``,
            one column per searched or fixed dotted parameter, the report metrics, ``error``,
            ``retries``, ``checkpoint`` and ``trial_dir``.
        epochs: One row per report (``epochs.parquet``), or ``None`` before the first report.
        filesystem: The pyarrow filesystem of the run dir.
        root: The run dir's path on ``filesystem``.
    """

    location: str
    name: str
    spec: Spec
    trials: pa.Table
    epochs: pa.Table | None
    filesystem: pafs.FileSystem = field(repr=False)
    root: str

    def path(self, *parts: str) -> str:
        """A path inside the run dir, on :attr:`filesystem`."""
        return posixpath.join(self.root, *parts)

    @property
    def param_names(self) -> list[str]:
        """The dotted parameter columns: searched ones first, then fixed ones."""
        return [name for name in (*self.spec.space, *self.spec.fixed) if name in self.trials.column_names]

    def trial_params(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters of one trial row; inactive conditional parameters (null) left out."""
        return {name: row[name] for name in self.param_names if row.get(name) is not None}


def _load_spec(location: RunLocation, shown: str) -> Spec:
    if not location.exists(SPEC_FILE):
        raise ResultsError(f"{shown}: not a run dir (no {SPEC_FILE}); pass the directory a sweep wrote, STORAGE/NAME")
    try:
        raw = load_yaml(location.read_text(SPEC_FILE))
    except Exception as exc:  # noqa: BLE001 - any unreadable spec is one user-facing line
        raise ResultsError(f"{shown}/{SPEC_FILE}: cannot read the saved spec ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    try:
        return parse_spec(raw, f"{shown}/{SPEC_FILE}", check_sampler=False)
    except SpecError as exc:
        raise ResultsError(str(exc)) from None


def _read_table(location: RunLocation, name: str, shown: str, required: bool) -> pa.Table | None:
    try:
        table = location.read_table(name)
    except RunDirError as exc:
        raise ResultsError(f"{exc}; the sweep may still be writing it (try again), or the file is damaged") from None
    if table is None and required:
        raise ResultsError(f"{shown}: no {name} yet (no trial of this sweep has finished or reported)")
    return table


def load_trials(run_dir: str | os.PathLike[str]) -> pa.Table:
    """The latest ``trials.parquet`` of a run dir (path or URI).

    Raises:
        ResultsError: If the run dir has no trials table yet, or it cannot be read.
    """
    return _read_table(_location(run_dir), TRIALS_FILE, os.fspath(run_dir), required=True)  # type: ignore[return-value]


def load_epochs(run_dir: str | os.PathLike[str]) -> pa.Table | None:
    """The latest ``epochs.parquet`` of a run dir, or ``None`` when no trial has reported yet."""
    return _read_table(_location(run_dir), EPOCHS_FILE, os.fspath(run_dir), required=False)


def load_run(run_dir: str | os.PathLike[str]) -> RunResults:
    """Read a run dir: its spec, trials and per-epoch history.

    Args:
        run_dir: A local path or a pyarrow-filesystem URI (``s3://…``, ``gs://…``, ``file://…``).

    Returns:
        A :class:`RunResults` with the latest tables (a running sweep is read as it stands).

    Raises:
        ResultsError: If the run dir does not exist, holds no sweep, or no trial has finished.
    """
    shown = os.fspath(run_dir)
    location = _location(shown)
    if not location.is_dir():
        raise ResultsError(f"{shown}: no such run dir")
    spec = _load_spec(location, shown)
    trials = _read_table(location, TRIALS_FILE, shown, required=True)
    epochs = _read_table(location, EPOCHS_FILE, shown, required=False)
    fs, root = location.filesystem
    name = posixpath.basename(root.rstrip("/")) or shown
    return RunResults(location=shown, name=name, spec=spec, trials=trials, epochs=epochs, filesystem=fs, root=root)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Columns and filters (boolean masks over the rows of a trials table)
# --------------------------------------------------------------------------------------------


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


def completed_mask(trials: pa.Table) -> np.ndarray:
    """Trials that ran to their end (``COMPLETED_STATE``): at full budget or stopped by the scheduler."""
    return np.array([s == COMPLETED_STATE for s in trials.column("state").to_pylist()], dtype=bool)


def competing_mask(trials: pa.Table, include_partial: bool = False) -> np.ndarray:
    """Trials that compete on a front (:func:`trainables.report.is_competing`): completed and at
    full budget, or completed at any budget with ``include_partial``."""
    states = trials.column("state").to_pylist()
    return is_competing(states, numeric_column(trials, "budget_fraction"), include_partial=include_partial)


def full_budget_mask(trials: pa.Table) -> np.ndarray:
    """Trials whose last report was at full budget (``budget_fraction`` of 1).

    Trials an early-stopping scheduler (ASHA) stopped report partial-budget values that are not
    comparable with the others; they are never on a front by default.
    """
    return is_full_budget(numeric_column(trials, "budget_fraction"))


def finite_mask(trials: pa.Table, metrics: Sequence[str]) -> np.ndarray:
    """Trials with a finite value (not null, NaN or inf) for every one of ``metrics``."""
    mask = np.ones(trials.num_rows, dtype=bool)
    for metric in metrics:
        mask &= np.isfinite(numeric_column(trials, metric))
    return mask


def feasible_mask(trials: pa.Table, constraints: Sequence[Constraint | str]) -> np.ndarray:
    """Trials that satisfy every constraint (``"energy_uj <= 2"`` or :class:`Constraint`).

    A trial whose constrained metric is missing or not finite cannot be shown to satisfy it, so
    it counts as infeasible.
    """
    parsed = [c if isinstance(c, Constraint) else Constraint.parse(c) for c in constraints]
    result = feasible({c.metric: numeric_column(trials, c.metric) for c in parsed}, parsed)
    return np.broadcast_to(np.asarray(result, dtype=bool), (trials.num_rows,)).copy()


def filter_trials(
    trials: pa.Table,
    *,
    completed: bool = True,
    full_budget: bool = True,
    finite: Sequence[str] = (),
    constraints: Sequence[Constraint | str] = (),
) -> pa.Table:
    """The rows of a trials table that pass the chosen filters (all on by default but feasibility).

    Args:
        trials: A trials table (:func:`load_trials`).
        completed: Keep only trials that ran to their end (not running, not failed).
        full_budget: Keep only trials at full budget (drop scheduler-stopped ones).
        finite: Keep only trials with finite values of these metrics (e.g. the objectives).
        constraints: Keep only trials satisfying these (e.g. ``run.spec.constraints``).

    Returns:
        The filtered table, rows in their original order.
    """
    mask = np.ones(trials.num_rows, dtype=bool)
    if completed:
        mask &= competing_mask(trials, include_partial=not full_budget)
    elif full_budget:
        mask &= full_budget_mask(trials)
    mask &= finite_mask(trials, finite)
    mask &= feasible_mask(trials, constraints)
    return trials.filter(pa.array(mask))


# --------------------------------------------------------------------------------------------
# Objectives
# --------------------------------------------------------------------------------------------


def _default_mode(metric: str, spec: Spec) -> str | None:
    """The direction a metric's declaration gives it (``None``: not a quantity to optimise)."""
    declared = metric_table(spec.trainable).get(metric)
    return declared.mode if declared is not None else None


def parse_objectives(texts: Sequence[str] | None, spec: Spec) -> tuple[Objective, ...]:
    """Objectives from ``metric:mode`` strings, defaulting to the spec's.

    ``val_accuracy:max energy_uj:min``; a bare metric name takes its mode from the spec's
    objectives, or from its declaration in the report contract (costs, losses and times are
    minimised, accuracies maximised).

    Raises:
        ResultsError: On a malformed item, a mode other than ``max``/``min``, a metric listed
            twice, or a bare metric whose direction cannot be told.
    """
    if not texts:
        return tuple(spec.objectives)
    spec_modes = {o.metric: o.mode for o in spec.objectives}
    objectives: list[Objective] = []
    for text in texts:
        metric, _, mode = text.partition(":")
        metric, mode = metric.strip(), mode.strip()
        if not metric:
            raise ResultsError(f"--objectives: expected metric:max or metric:min, got {text!r}")
        if not mode:
            mode = spec_modes.get(metric) or _default_mode(metric, spec) or ""
            if not mode:
                raise ResultsError(f"--objectives: say whether {metric} is maximised or minimised ({metric}:max or {metric}:min)")
        if mode not in ("max", "min"):
            raise ResultsError(f"--objectives: the mode of {metric} must be max or min, got {mode!r}")
        objectives.append(Objective(metric=metric, mode=mode))
    names = [o.metric for o in objectives]
    if len(set(names)) != len(names):
        raise ResultsError(f"--objectives: a metric is listed twice ({' '.join(texts)})")
    return tuple(objectives)


def _check_metrics(run: RunResults, metrics: Sequence[str]) -> None:
    missing = [m for m in metrics if m not in run.trials.column_names]
    if missing:
        numeric = [
            name
            for name in run.trials.column_names
            if name not in run.param_names and (pa.types.is_integer(run.trials.schema.field(name).type) or pa.types.is_floating(run.trials.schema.field(name).type))
        ]
        raise ResultsError(f"{run.location}: no metric {', '.join(missing)} in this sweep (its metrics: {', '.join(numeric)})")


# --------------------------------------------------------------------------------------------
# Reference point, recorded once per objective set in analysis.json
# --------------------------------------------------------------------------------------------


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


def _read_analysis_file(run: RunResults) -> dict[str, Any]:
    path = run.path(ANALYSIS_FILE)
    if run.filesystem.get_file_info(path).type != pafs.FileType.File:
        return {"references": []}
    with run.filesystem.open_input_stream(path) as stream:
        try:
            data = json.loads(stream.read().decode())
        except json.JSONDecodeError:
            raise ResultsError(f"{path}: not valid JSON; delete it to derive the reference point again") from None
    data.setdefault("references", [])
    return data


def recorded_reference(run: RunResults, objectives: Sequence[Objective]) -> ReferencePoint | None:
    """The reference point recorded in the run dir for exactly these objectives and modes."""
    names = [o.metric for o in objectives]
    modes = [o.mode for o in objectives]
    for entry in _read_analysis_file(run)["references"]:
        if entry.get("objectives") == names and entry.get("directions") == modes:
            return ReferencePoint(tuple(names), tuple(modes), tuple(float(v) for v in entry["reference"]), f"recorded in {ANALYSIS_FILE}")
    return None


def _progress_reference(run: RunResults, names: Sequence[str]) -> tuple[float, ...] | None:
    """The reference the sweep's progress lines fixed (``progress.json``), if it is for exactly ``names``."""
    path = run.path(PROGRESS_FILE)
    try:
        if run.filesystem.get_file_info(path).type != pafs.FileType.File:
            return None
        with run.filesystem.open_input_stream(path) as stream:
            reference = json.loads(stream.read().decode()).get("hypervolume_reference") or {}
    except (OSError, json.JSONDecodeError, AttributeError):
        return None
    if list(reference) != list(names):
        return None
    try:
        values = tuple(float(reference[n]) for n in names)
    except (TypeError, ValueError):
        return None
    return values if all(np.isfinite(values)) else None


def _write_analysis_file(run: RunResults, data: Mapping[str, Any]) -> None:
    text = (json.dumps(data, indent=2) + "\n").encode()
    write_atomic(run.path(ANALYSIS_FILE), lambda out: out.write(text), filesystem=run.filesystem)


def fix_reference(
    run: RunResults,
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
            raise ResultsError(f"--reference needs {len(names)} finite numbers, one per objective ({', '.join(names)})")
        point = ReferencePoint(names, modes, tuple(float(v) for v in values), "given")
        source = "given on the command line"
    elif recorded is not None:
        return recorded
    elif list(modes) == list(run.spec.modes) and (progress := _progress_reference(run, names)) is not None:
        # The reference the sweep's progress lines used: the same hypervolume in both places.
        point = ReferencePoint(names, modes, progress, f"the sweep's progress lines' reference ({PROGRESS_FILE})")
        source = point.source
    else:
        _check_metrics(run, names)
        points = np.column_stack([numeric_column(run.trials, name) for name in names])
        valid = np.isfinite(points).all(axis=1)
        if not valid.any():
            raise ResultsError(f"{run.location}: no trial has finite {', '.join(names)} yet; nothing to derive a reference point from")
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
                point = ReferencePoint(names, modes, point.values, f"{source}; recorded in {ANALYSIS_FILE}")
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


# --------------------------------------------------------------------------------------------
# The front of a run
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RunFront:
    """The Pareto analysis of one run; plain data for renderers and selectors.

    Competing trials (:attr:`trials`) are the completed, full-budget trials with finite
    objective values (``include_partial`` adds the scheduler-stopped ones). Of those, only the
    feasible ones (the spec's constraints) are ranked: infeasible trials are never on the front
    and have rank ``-1``. Indices (:attr:`front`, :attr:`knee`) are row numbers of :attr:`trials`.

    Attributes:
        run: The run the trials come from.
        objectives: The objectives (metric and mode), in order.
        trials: The competing trials, in ``trials.parquet`` order.
        points: ``(n, m)`` objective values of :attr:`trials`, original units.
        feasible: Per competing trial, whether it satisfies the spec's constraints.
        pareto: The :class:`~analysis.pareto.ParetoFront` of the feasible trials only (its
            indices are into ``points[feasible]``; prefer the mapped attributes below).
        front: Indices of the front, best first objective first (ties kept).
        ranks: Non-dominated rank per competing trial (0 = front; -1 = infeasible).
        knee: Index of the knee point, or ``None`` without feasible trials.
        reference: The hypervolume reference and where it came from.
        hypervolume: Hypervolume of the feasible trials with respect to :attr:`reference`.
        excluded: Trials of the run that do not compete, by reason (``"stopped early"``,
            ``"running"``, ``"error"``, ``"non-finite objectives"``, …).
    """

    run: RunResults
    objectives: tuple[Objective, ...]
    trials: pa.Table
    points: np.ndarray
    feasible: np.ndarray
    pareto: ParetoFront
    front: np.ndarray
    ranks: np.ndarray
    knee: int | None
    reference: ReferencePoint
    hypervolume: float
    excluded: Mapping[str, int]

    @property
    def names(self) -> tuple[str, ...]:
        """Objective metric names."""
        return tuple(o.metric for o in self.objectives)

    @property
    def directions(self) -> tuple[str, ...]:
        """``"max"``/``"min"`` per objective."""
        return tuple(o.mode for o in self.objectives)

    @property
    def trial_ids(self) -> list[str]:
        """The competing trials' ids."""
        return self.trials.column("trial_id").to_pylist()

    @property
    def on_front(self) -> np.ndarray:
        """Boolean mask of the competing trials on the front."""
        mask = np.zeros(len(self.points), dtype=bool)
        mask[self.front] = True
        return mask

    def row(self, index: int) -> dict[str, Any]:
        """One competing trial as a dict (a row of ``trials.parquet``)."""
        return self.trials.slice(index, 1).to_pylist()[0]


def run_front(
    run: RunResults,
    objectives: Sequence[Objective] | None = None,
    reference: ReferencePoint | None = None,
    include_partial: bool = False,
    constraints: Sequence[Constraint | str] | None = None,
) -> RunFront:
    """Compute the Pareto front of a run.

    Args:
        run: The run (:func:`load_run`).
        objectives: Objectives (default: the spec's).
        reference: The hypervolume reference; ``None`` uses :func:`fix_reference` (which may
            record one in the run dir).
        include_partial: Let scheduler-stopped (partial-budget) trials compete. Off by default:
            their values describe a shorter training and would pollute the front.
        constraints: Constraints deciding feasibility (default: the spec's).

    Returns:
        A :class:`RunFront`.

    Raises:
        ResultsError: If an objective is not a metric of the run.
    """
    objectives = tuple(objectives or run.spec.objectives)
    names = [o.metric for o in objectives]
    modes = [o.mode for o in objectives]
    _check_metrics(run, names)
    if reference is None:
        reference = fix_reference(run, objectives)
    elif list(reference.objectives) != names or list(reference.directions) != modes:
        raise ValueError(f"reference is for {reference.objectives} {reference.directions}, not {names} {modes}")
    constraints = run.spec.constraints if constraints is None else constraints
    table = run.trials
    states = table.column("state").to_pylist()
    completed = completed_mask(table)
    full = full_budget_mask(table)
    competing = competing_mask(table, include_partial) & finite_mask(table, names)
    excluded: dict[str, int] = {}
    for i, state in enumerate(states):
        if competing[i]:
            continue
        if state == ERROR_STATE:
            reason = "error"
        elif not completed[i]:
            reason = str(state).lower()  # running, pending, paused
        elif not full[i] and not include_partial:
            reason = "stopped early"
        else:
            reason = "non-finite objectives"
        excluded[reason] = excluded.get(reason, 0) + 1
    trials = table.filter(pa.array(competing))
    points = np.column_stack([numeric_column(trials, name) for name in names]) if names else np.empty((0, 0))
    feasible = feasible_mask(trials, constraints)
    pareto = compute_front(points[feasible], names, modes, reference.values)
    feasible_index = np.flatnonzero(feasible)
    ranks = np.full(len(points), -1, dtype=np.int64)
    ranks[feasible_index] = pareto.ranks
    return RunFront(
        run=run,
        objectives=objectives,
        trials=trials,
        points=points,
        feasible=feasible,
        pareto=pareto,
        front=feasible_index[pareto.front],
        ranks=ranks,
        knee=None if pareto.knee is None else int(feasible_index[pareto.knee]),
        reference=reference,
        hypervolume=pareto.hypervolume,
        excluded=excluded,
    )


def analyze_run(
    run_dir: str | os.PathLike[str] | RunResults,
    objectives: Sequence[str] | None = None,
    reference: ArrayLike | None = None,
    include_partial: bool = False,
) -> RunFront:
    """Load a run dir and compute its front in one call (the reference is fixed and recorded).

    Args:
        run_dir: A run dir (path or URI), or an already loaded :class:`RunResults`.
        objectives: ``metric:mode`` strings (default: the spec's objectives).
        reference: An explicit reference point (default: recorded, or derived and recorded).
        include_partial: Let scheduler-stopped trials compete (see :func:`run_front`).
    """
    run = run_dir if isinstance(run_dir, RunResults) else load_run(run_dir)
    parsed = parse_objectives(objectives, run.spec)
    _check_metrics(run, [o.metric for o in parsed])
    return run_front(run, parsed, fix_reference(run, parsed, reference), include_partial=include_partial)


# --------------------------------------------------------------------------------------------
# Search progress
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class HypervolumeTrace:
    """Hypervolume of a run after each finished trial, in trial order: the search's progress.

    Attributes:
        run: The run's name.
        trial_ids: The finished trials (completed or failed), in Optuna trial order.
        counts: ``1..n``, the number of finished trials (the x axis).
        hypervolume: Hypervolume of the competing, feasible trials among the first ``i``.
        reference: The reference used.
    """

    run: str
    trial_ids: tuple[str, ...]
    counts: np.ndarray
    hypervolume: np.ndarray
    reference: ReferencePoint


def hypervolume_trace(
    run: RunResults,
    objectives: Sequence[Objective] | None = None,
    reference: ReferencePoint | None = None,
    include_partial: bool = False,
) -> HypervolumeTrace:
    """Hypervolume after each finished trial, in the order Optuna proposed the trials.

    A trial counts once it has finished; the ones that cannot be on a front (stopped early,
    failed, infeasible, non-finite) add a step with no gain, so the curve shows how many trials
    it took to reach each level.

    Args:
        run: The run.
        objectives: Objectives (default: the spec's).
        reference: The reference (default: :func:`fix_reference`).
        include_partial: Let scheduler-stopped trials count (see :func:`run_front`).
    """
    objectives = tuple(objectives or run.spec.objectives)
    names = [o.metric for o in objectives]
    _check_metrics(run, names)
    if reference is None:
        reference = fix_reference(run, objectives)
    table = run.trials
    states = table.column("state").to_pylist()
    finished = np.array([s in FINAL_STATES for s in states], dtype=bool)
    eligible = competing_mask(table, include_partial) & finite_mask(table, names) & feasible_mask(table, run.spec.constraints)
    numbers = numeric_column(table, "optuna_trial")
    ids = table.column("trial_id").to_pylist()
    order = sorted(np.flatnonzero(finished), key=lambda i: (not math.isfinite(numbers[i]), numbers[i] if math.isfinite(numbers[i]) else 0, ids[i]))
    order_arr = np.array(order, dtype=np.int64)
    points = np.column_stack([numeric_column(table, name) for name in names])[order_arr]
    points[~eligible[order_arr]] = np.nan
    progress = hypervolume_progress(points, [o.mode for o in objectives], reference.values)
    return HypervolumeTrace(
        run=run.name,
        trial_ids=tuple(ids[i] for i in order),
        counts=np.arange(1, len(order) + 1),
        hypervolume=progress,
        reference=reference,
    )
