"""A run dir as tables: trials and per-epoch history, filters, and the Pareto front of a sweep.

Everything here reads what a sweep writes (its spec, trials and epoch rows, through the run
dir's typed records, :class:`search.rundir.RunDir`) and nothing else, so it works the
same for every trainable family, on a local path or a pyarrow-filesystem URI
(``s3://bucket/runs/quickstart``), and on a sweep that is still running: the recorder rewrites
``trials.parquet`` atomically every few seconds and each call here reads the latest copy.

The one record analysis writes into a run dir is the hypervolume reference point of each
objective set (:mod:`analysis.reference`), derived once (or given) and reused afterwards, so the
hypervolume of a growing sweep is comparable from one look to the next.

Compute/render split: :func:`run_front` returns a :class:`RunFront` (plain data: the trials
that compete, which are feasible, the front, ranks, knee and hypervolume) and
:func:`hypervolume_trace` a :class:`HypervolumeTrace`; ``analysis.plot`` draws them and
``analysis.select`` picks from them.

Why one module (one job): every analysis command starts from the same thing, a run dir read as
tables and the front of its trials; loading, the row filters and the front are that one job,
and they share the trial-state and feasibility rules below. The hypervolume reference point is
:mod:`analysis.reference`'s.

The definitions used here live with what they describe: the trial-state names and what makes a
trial compete on a front (completed, full budget) in :mod:`trainables.report`
(:func:`~trainables.report.is_competing`), feasibility in :func:`search.spec.feasible`.
"""

from __future__ import annotations

import math
import os
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
from numpy.typing import ArrayLike

from analysis.pareto import ParetoFront, compute_front, hypervolume_progress
from analysis.columns import ResultsError, check_metrics as _check_metrics, numeric_column
from analysis.reference import ReferencePoint, common_reference, fix_reference, recorded_reference
from search.rundir import RunDir, RunDirError
from search.spec import Constraint, Objective, Spec, SpecError, feasible, load_yaml, parse_spec
from trainables.registry import metric_table
from trainables.report import TERMINATED_STATE, ERROR_STATE, FINAL_STATES, is_competing, is_full_budget

__all__ = [
    "TERMINATED_STATE",
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


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def _records(run_dir: str | os.PathLike[str]) -> RunDir:
    try:
        records = RunDir(run_dir)
        records.location.filesystem  # noqa: B018 - a malformed URI fails here, with one line
    except RunDirError as exc:
        raise ResultsError(str(exc)) from None
    return records


@dataclass(frozen=True, eq=False)
class RunResults:
    """One sweep's results as read from its run dir.

    Attributes:
        location: The run dir as given (path or URI).
        name: The run's name (the run dir's last component).
        spec: The resolved spec the sweep ran with.
        trials: One row per trial: ``trial_id``, ``state``, ``optuna_trial``, one column per
            searched or fixed dotted parameter, the report metrics, ``error``, ``retries``,
            ``checkpoint`` and ``trial_dir`` (:mod:`search.rundir.tables`).
        epochs: One row per report, or ``None`` before the first report.
        filesystem: The pyarrow filesystem of the run dir.
        root: The run dir's path on ``filesystem``.
        records: The run dir's typed records (:class:`~search.rundir.RunDir`).
    """

    location: str
    name: str
    spec: Spec
    trials: pa.Table
    epochs: pa.Table | None
    filesystem: pafs.FileSystem = field(repr=False)
    root: str
    records: RunDir = field(repr=False)

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

    def warm_start(self) -> tuple[pa.Table | None, tuple[Mapping[str, Any], ...]]:
        """What a ``--warm-start`` told this sweep: the told trials and, per earlier run dir, what it gave.

        ``(None, ())`` for a sweep started cold (or whose warm-start record cannot be read:
        it only adds context to plots and cards). The told trials were trained by the earlier
        sweeps, not this one: they are never part of this run's :attr:`trials` or its front.
        """
        try:
            table, _ = self.records.read_warm_start()
            sources = self.records.read_meta().warm_start if table is not None else ()
        except RunDirError:
            return None, ()
        return table, tuple(sources)


def _load_spec(records: RunDir, shown: str) -> Spec:
    spec_file = records.file_name("spec")
    if not records.has_spec():
        raise ResultsError(f"{shown}: not a run dir (no {spec_file}); pass the directory a sweep wrote, STORAGE/NAME")
    try:
        raw = load_yaml(records.read_spec_text())
    except Exception as exc:  # noqa: BLE001 - any unreadable spec is one user-facing line
        raise ResultsError(f"{shown}/{spec_file}: cannot read the saved spec ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    try:
        return parse_spec(raw, f"{shown}/{spec_file}", check_sampler=False)
    except SpecError as exc:
        raise ResultsError(str(exc)) from None


def _read_table(records: RunDir, name: str, shown: str, required: bool) -> pa.Table | None:
    """``name`` is ``"trials"`` or ``"epochs"``."""
    try:
        table = records.read_trials() if name == "trials" else records.read_epochs()
    except RunDirError as exc:
        raise ResultsError(f"{exc}; the sweep may still be writing it (try again), or the file is damaged") from None
    if table is None and required:
        raise ResultsError(f"{shown}: no {records.file_name(name)} yet (no trial of this sweep has finished or reported)")
    return table


def load_trials(run_dir: str | os.PathLike[str]) -> pa.Table:
    """The latest trials table of a run dir (path or URI).

    Raises:
        ResultsError: If the run dir has no trials table yet, or it cannot be read.
    """
    return _read_table(_records(run_dir), "trials", os.fspath(run_dir), required=True)  # type: ignore[return-value]


def load_epochs(run_dir: str | os.PathLike[str]) -> pa.Table | None:
    """The latest epochs table of a run dir, or ``None`` when no trial has reported yet."""
    return _read_table(_records(run_dir), "epochs", os.fspath(run_dir), required=False)


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
    records = _records(shown)
    if not records.location.is_dir():
        raise ResultsError(f"{shown}: no such run dir")
    spec = _load_spec(records, shown)
    trials = _read_table(records, "trials", shown, required=True)
    epochs = _read_table(records, "epochs", shown, required=False)
    fs, root = records.location.filesystem
    name = posixpath.basename(root.rstrip("/")) or shown
    return RunResults(location=shown, name=name, spec=spec, trials=trials, epochs=epochs, filesystem=fs, root=root, records=records)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Columns and filters (boolean masks over the rows of a trials table)
# --------------------------------------------------------------------------------------------


def completed_mask(trials: pa.Table) -> np.ndarray:
    """Trials that ran to their end (``TERMINATED_STATE``): at full budget or stopped by the scheduler."""
    return np.array([s == TERMINATED_STATE for s in trials.column("state").to_pylist()], dtype=bool)


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
