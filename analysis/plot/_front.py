"""The data of a front figure: which trials are on the front, dominated or infeasible, and how to draw them.

:func:`front_plot` turns :class:`~analysis.results.RunFront` objects (one run, or several compared
against one reference point) into a :class:`FrontPlot`: per run a :class:`FrontSeries` with the
points, the staircase that connects the front, the knee, the hover text of every trial and the
candidates refused before training; and for the figure the axis labels (:func:`metric_label`),
log or linear axes, limits and title. Which constraints an infeasible trial breaks is decided by
:func:`search.spec.feasible`, as everywhere else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from analysis.results import ReferencePoint, RunFront, numeric_column
from search.spec import feasible
from trainables.registry import metric_table
from trainables.report import format_number

__all__ = ["FrontPlot", "FrontSeries", "front_plot", "metric_label"]

#: Other metrics shown when hovering a trial, when the run has them and they are not objectives.
_HOVER_METRICS = ("val_accuracy", "test_accuracy", "energy_uj", "macs", "synops", "params", "density", "spike_rate", "train_time_s")
#: An objective spanning more than this factor (all positive) is drawn on a log axis.
_LOG_AXIS_RATIO = 100.0


def metric_label(metric: str, mode: str | None = None) -> str:
    """Axis label of a metric (its declared label and unit) and, given its mode, which way is better."""
    declared = metric_table().get(metric)
    label = declared.axis_label if declared is not None else metric
    if mode is None:
        return label
    return f"{label}  {'↑' if mode == 'max' else '↓'} better"


@dataclass(frozen=True, eq=False)
class FrontSeries:
    """One run's trials on a front figure.

    Attributes:
        label: The run's name.
        trial_ids: Ids of the competing (completed, full-budget, finite) trials.
        points: ``(n, m)`` objective values of those trials.
        on_front: Trials on the Pareto front.
        feasible: Trials satisfying the spec's constraints (the others are marked, never on
            the front).
        knee: Index of the knee point, or ``None``.
        front_path: ``(k, m)`` vertices connecting the front. In 2-D, the staircase bounding
            the dominated region, from the reference level of the second objective to the
            reference level of the first; in 3-D, the front points (renderers triangulate).
        hover: Per trial: id, status, objectives, other metrics and the config.
        hypervolume: Hypervolume of the run's feasible trials.
        excluded: Trials not drawn, by reason (``"stopped early"``, …).
        constraints: The run's constraints (what makes a trial infeasible).
        refused: Objectives of the candidates refused before training (known costs; NaN for
            what was never learnt).
        warm: Objectives of the trials an earlier sweep trained to its full budget, told to this
            one by a warm start (context: never on this run's front).
        warm_sources: The earlier run dirs they came from.
    """

    label: str
    trial_ids: tuple[str, ...]
    points: np.ndarray
    on_front: np.ndarray
    feasible: np.ndarray
    knee: int | None
    front_path: np.ndarray
    hover: tuple[str, ...]
    hypervolume: float
    excluded: Mapping[str, int]
    constraints: tuple[str, ...] = ()
    refused: np.ndarray | None = None
    warm: np.ndarray | None = None
    warm_sources: tuple[str, ...] = ()

    @property
    def warm_label(self) -> str:
        """Legend entry of the warm start's trials (trained by earlier sweeps)."""
        n = 0 if self.warm is None else len(self.warm)
        return f"warm start: {n} trials of {', '.join(self.warm_sources) or 'an earlier sweep'} (not this sweep's)"

    @property
    def refused_label(self) -> str:
        """Legend entry of the candidates refused before training (their costs broke a constraint)."""
        n = 0 if self.refused is None else len(self.refused)
        return f"refused before training ({n}; costs broke {', '.join(self.constraints) or 'a constraint'})"

    @property
    def infeasible_label(self) -> str:
        """Legend entry of the infeasible trials: how many, and which constraints they break."""
        n = int((~self.feasible).sum())
        return f"infeasible ({n}; constraints {', '.join(self.constraints)})" if self.constraints else f"infeasible ({n})"

    @property
    def dominated(self) -> np.ndarray:
        """Feasible trials off the front (drawn faded)."""
        return self.feasible & ~self.on_front


@dataclass(frozen=True, eq=False)
class FrontPlot:
    """Everything a renderer needs to draw one front figure; plain data.

    Attributes:
        objectives: Objective names (2 or 3).
        directions: ``"max"``/``"min"`` per objective.
        axis_labels: Axis label per objective (units, which way is better).
        log_axes: Per objective, whether its axis is logarithmic.
        limits: ``(m, 2)`` axis limits (low, high), from the drawn points.
        reference: The hypervolume reference shared by every series.
        series: One :class:`FrontSeries` per run.
        title: The figure title (run names, hypervolume, reference).
        note: A footnote: where the reference point comes from.
    """

    objectives: tuple[str, ...]
    directions: tuple[str, ...]
    axis_labels: tuple[str, ...]
    log_axes: tuple[bool, ...]
    limits: np.ndarray
    reference: ReferencePoint
    series: tuple[FrontSeries, ...]
    title: str
    note: str = ""

    @property
    def dimensions(self) -> int:
        """Number of objectives drawn (2 or 3)."""
        return len(self.objectives)


def _staircase(points: np.ndarray, directions: Sequence[str], reference: Sequence[float]) -> np.ndarray:
    """The boundary of the region ``points`` dominate, up to ``reference`` (2-D, original units)."""
    if len(points) == 0:
        return np.empty((0, 2))
    sign = np.array([-1.0 if d == "max" else 1.0 for d in directions])
    z = points * sign
    ref = np.asarray(reference, dtype=np.float64) * sign
    z = z[np.lexsort((z[:, 1], z[:, 0]))]
    vertices = [(z[0, 0], max(ref[1], z[0, 1]))]
    for i, point in enumerate(z):
        if i > 0:
            vertices.append((point[0], z[i - 1, 1]))  # across, then down to the next point
        vertices.append(tuple(point))
    vertices.append((max(ref[0], z[-1, 0]), z[-1, 1]))
    return np.array(vertices) * sign


def _status(front: RunFront, index: int) -> str:
    if not front.feasible[index]:
        row = front.row(index)
        broken = [c.text for c in front.run.spec.constraints if not feasible(row, [c])]
        return "infeasible: violates " + ", ".join(broken)
    if index == front.knee:
        return "on the front (knee)"
    if front.ranks[index] == 0:
        return "on the front"
    return f"dominated (rank {int(front.ranks[index])})"


def _hover_texts(front: RunFront) -> tuple[str, ...]:
    names = front.names
    searched = list(front.run.spec.space)
    rows = front.trials.to_pylist()
    texts = []
    for i, row in enumerate(rows):
        lines = [f"<b>{front.run.name} · trial {row['trial_id']}</b>", _status(front, i)]
        lines += [f"{name} = {format_number(row.get(name))}" for name in names]
        lines += [f"{name} = {format_number(row.get(name))}" for name in _HOVER_METRICS if name not in names and name in row]
        config = [f"{name} = {format_number(row.get(name))}" for name in searched if row.get(name) is not None]
        if config:
            lines += ["<i>config</i>", *config]
        texts.append("<br>".join(lines))
    return tuple(texts)


def _refused_points(front: RunFront) -> np.ndarray:
    """The objectives of candidates refused before training: their static costs, NaN for what was never learnt."""
    from trainables.report import REFUSED_STATE

    table = front.run.trials
    if "state" not in table.column_names:
        return np.empty((0, len(front.names)))
    rows = np.asarray([s == REFUSED_STATE for s in table.column("state").to_pylist()], dtype=bool)
    if not rows.any():
        return np.empty((0, len(front.names)))
    columns = [numeric_column(table, name)[rows] if name in table.column_names else np.full(int(rows.sum()), np.nan) for name in front.names]
    return np.column_stack(columns)


def _warm_points(front: RunFront) -> tuple[np.ndarray | None, tuple[str, ...]]:
    """The objectives of the warm start's trials that ran their own sweep's full budget, and where they came from.

    Those told as finished, and, from an earlier sweep with a shorter budget, those that reached
    its last epoch (told as stopped early, at that fraction of this sweep's budget).
    """
    table, sources = front.run.warm_start()
    if table is None or not all(name in table.column_names for name in front.names):
        return None, ()
    told_as, source, epoch = (table.column(c).to_pylist() for c in ("told_as", "source", "epoch"))
    last: dict[str, int] = {}
    for s, e in zip(source, epoch):
        last[s] = max(last.get(s, 0), int(e or 0))
    told = np.asarray([t == "COMPLETE" or (t == "PRUNED" and int(e or 0) == last[s]) for t, s, e in zip(told_as, source, epoch)], dtype=bool)
    points = np.column_stack([numeric_column(table, name)[told] for name in front.names])
    return points[np.isfinite(points).all(axis=1)], tuple(str(s.get("run_dir")) for s in sources)


def _excluded_note(excluded: Mapping[str, int]) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in sorted(excluded.items()))


def front_plot(fronts: Sequence[RunFront], title: str | None = None) -> FrontPlot:
    """The data of a front figure for one run, or several compared on one figure.

    Args:
        fronts: One :class:`RunFront` per run, all with the same objectives and the same
            reference point (compute them with a common reference to compare runs).
        title: A title; by default the run name(s), hypervolume and reference.

    Returns:
        A :class:`FrontPlot`.

    Raises:
        ValueError: Without fronts, with 1 or more than 3 objectives, or when the fronts
            differ in objectives or reference.
    """
    if not fronts:
        raise ValueError("front_plot needs at least one run")
    first = fronts[0]
    m = len(first.objectives)
    if m not in (2, 3):
        raise ValueError(f"a front figure shows 2 or 3 objectives, got {m} ({', '.join(first.names)}); the table and hypervolume work for any number")
    for other in fronts[1:]:
        if other.objectives != first.objectives:
            raise ValueError("runs on one figure must share their objectives")
        if other.reference.values != first.reference.values:
            raise ValueError("runs on one figure must share one reference point (see analysis.results.common_reference)")
    series = []
    for front in fronts:
        warm, warm_sources = _warm_points(front)
        path = (
            _staircase(front.points[front.front], front.directions, front.reference.values)
            if m == 2
            else front.points[front.front]
        )
        series.append(
            FrontSeries(
                label=front.run.name,
                trial_ids=tuple(front.trial_ids),
                points=front.points,
                on_front=front.on_front,
                feasible=front.feasible.copy(),
                knee=front.knee,
                front_path=path,
                hover=_hover_texts(front),
                hypervolume=front.hypervolume,
                excluded=dict(front.excluded),
                constraints=tuple(c.text for c in front.run.spec.constraints),
                refused=_refused_points(front),
                warm=warm,
                warm_sources=warm_sources,
            )
        )
    everything = np.vstack([s.points for s in series]) if any(len(s.points) for s in series) else np.empty((0, m))
    log_axes, limits = [], []
    refused = [s.refused for s in series if s.refused is not None and len(s.refused)]
    for j in range(m):
        column = everything[:, j]
        if refused:  # refused candidates' known costs are drawn too (as ticks on the edge)
            extra = np.concatenate([r[:, j] for r in refused])
            column = np.concatenate([column, extra[np.isfinite(extra)]])
        warm = [s.warm[:, j] for s in series if s.warm is not None and len(s.warm)]
        if warm:  # so are the warm start's trials
            column = np.concatenate([column, *warm])
        log = bool(len(column)) and bool((column > 0).all()) and column.max() / column.min() > _LOG_AXIS_RATIO
        log_axes.append(log)
        limits.append(_limits(column, log))
    if title is None:
        if len(series) == 1:
            s = series[0]
            note = _excluded_note({k: v for k, v in s.excluded.items() if k != "refused" or s.refused is None})  # refused ones are drawn
            title = (
                f"{s.label}: Pareto front of {len(s.points)} full-budget trials"
                + (f" ({note}: not shown)" if note else "")
                + f"\nhypervolume {s.hypervolume:.4g}, reference point ({_reference_values(first.reference)})"
                + (f"\nwarm-started from {', '.join(s.warm_sources)}" if s.warm_sources else "")
            )
        else:
            title = (
                " vs ".join(s.label for s in series)
                + ": Pareto fronts of full-budget trials"
                + f"\nhypervolumes against one reference point ({_reference_values(first.reference)})"
            )
    return FrontPlot(
        objectives=first.names,
        directions=first.directions,
        axis_labels=tuple(metric_label(o.metric, o.mode) for o in first.objectives),
        log_axes=tuple(log_axes),
        limits=np.array(limits, dtype=np.float64).reshape(m, 2),
        reference=first.reference,
        series=tuple(series),
        title=title,
        note=f"reference point: {first.reference.source}",
    )


def _reference_values(reference: ReferencePoint) -> str:
    return ", ".join(f"{name} {format_number(value)}" for name, value in zip(reference.objectives, reference.values))


def _limits(values: np.ndarray, log: bool) -> tuple[float, float]:
    if len(values) == 0:
        return (0.0, 1.0)
    if log:
        low, high = np.log10(values.min()), np.log10(values.max())
        pad = 0.06 * (high - low)
        return (10 ** (low - pad), 10 ** (high + pad))
    low, high = float(values.min()), float(values.max())
    pad = 0.06 * (high - low) if high > low else max(abs(high) * 0.05, 0.05)
    return (low - pad, high + pad)
