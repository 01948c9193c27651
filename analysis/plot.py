"""Pareto-front and search-progress figures: PNG (matplotlib) and interactive HTML (plotly).

Compute and render are separate, as in Optuna's ``visualization`` package: :func:`front_plot`
and :func:`progress_plot` turn :class:`~analysis.results.RunFront` /
:class:`~analysis.results.HypervolumeTrace` objects into plain data (:class:`FrontPlot`,
:class:`ProgressPlot`) — which points are on the front, dominated or infeasible, the staircase
that connects the front, the hover text of every trial, titles and axis labels — and thin
renderers draw that data. Tests check the data, not pixels. Which constraints an infeasible
trial breaks is decided by :func:`search.spec.feasible`, as everywhere else.

Two or three objectives can be drawn; several runs (e.g. TPE vs random) share one figure, each
in its own colour, with their hypervolumes computed against one common reference point.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from analysis.results import HypervolumeTrace, ReferencePoint, RunFront, numeric_column
from search.spec import feasible
from trainables.registry import metric_table
from trainables.report import format_number

__all__ = [
    "annotate_without_overlap",
    "place_labels",
    "FrontPlot",
    "FrontSeries",
    "ProgressPlot",
    "format_value",
    "front_plot",
    "metric_label",
    "progress_plot",
    "render_front_matplotlib",
    "render_front_plotly",
    "render_progress_matplotlib",
    "render_progress_plotly",
    "write_html",
    "write_png",
]

#: Other metrics shown when hovering a trial, when the run has them and they are not objectives.
_HOVER_METRICS = ("val_accuracy", "test_accuracy", "energy_uj", "macs", "synops", "params", "density", "spike_rate", "train_time_s")
#: An objective spanning more than this factor (all positive) is drawn on a log axis.
_LOG_AXIS_RATIO = 100.0
#: Front points labelled with their trial id in a single-run 2-D figure, at most.
_MAX_POINT_LABELS = 12


def metric_label(metric: str, mode: str | None = None) -> str:
    """Axis label of a metric (its declared label and unit) and, given its mode, which way is better."""
    declared = metric_table().get(metric)
    label = declared.axis_label if declared is not None else metric
    if mode is None:
        return label
    return f"{label}  {'↑' if mode == 'max' else '↓'} better"


#: A metric or parameter value for tables, cards and hover text (the project's one formatter).
format_value = format_number


# --------------------------------------------------------------------------------------------
# Compute: the front
# --------------------------------------------------------------------------------------------


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
        lines += [f"{name} = {format_value(row.get(name))}" for name in names]
        lines += [f"{name} = {format_value(row.get(name))}" for name in _HOVER_METRICS if name not in names and name in row]
        config = [f"{name} = {format_value(row.get(name))}" for name in searched if row.get(name) is not None]
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
    return ", ".join(f"{name} {format_value(value)}" for name, value in zip(reference.objectives, reference.values))


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


# --------------------------------------------------------------------------------------------
# Compute: search progress
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ProgressPlot:
    """The data of a hypervolume-vs-trials figure; plain data.

    Attributes:
        traces: One :class:`~analysis.results.HypervolumeTrace` per run (same reference).
        reference: The shared reference point.
        title: The figure title.
        ylabel: The y axis label (the hypervolume's units).
        note: A footnote: where the reference point comes from.
        zoom: ``(x0, x1, y0, y1)`` of an inset on the late, flat part of the curves, where runs
            differ by little compared with the whole scale; ``None`` when not needed.
    """

    traces: tuple[HypervolumeTrace, ...]
    reference: ReferencePoint
    title: str
    ylabel: str
    zoom: tuple[float, float, float, float] | None = None
    note: str = ""


def progress_plot(traces: Sequence[HypervolumeTrace], title: str | None = None) -> ProgressPlot:
    """The data of a hypervolume-vs-trials figure for one run or several.

    Raises:
        ValueError: Without traces, or when they differ in reference point.
    """
    if not traces:
        raise ValueError("progress_plot needs at least one run")
    reference = traces[0].reference
    for trace in traces[1:]:
        if trace.reference.values != reference.values or trace.reference.objectives != reference.objectives:
            raise ValueError("runs on one figure must share one reference point")
    if title is None:
        runs = " vs ".join(t.run for t in traces)
        finals = ", ".join(f"{t.run} {t.hypervolume[-1]:.4g}" if len(t.hypervolume) else f"{t.run} -" for t in traces)
        title = f"{runs}: search progress\nfinal hypervolume {finals}; reference point ({_reference_values(reference)})"
    units = [metric_label(name) for name in reference.objectives]
    ylabel = "hypervolume  (" + " × ".join(units) + ")"
    return ProgressPlot(traces=tuple(traces), reference=reference, title=title, ylabel=ylabel, zoom=_progress_zoom(traces), note=f"reference point: {reference.source}")


def _progress_zoom(traces: Sequence[HypervolumeTrace]) -> tuple[float, float, float, float] | None:
    """The window on the tail of the curves: from the trial by which every run reached 90 % of
    the best final hypervolume, when that tail is long (a third of the trials or more) and
    spans less than a fifth of the scale."""
    finals = [t.hypervolume[-1] for t in traces if len(t.hypervolume)]
    if not finals or max(finals) <= 0:
        return None
    top = max(finals)
    starts = []
    for trace in traces:
        reached = np.flatnonzero(trace.hypervolume >= 0.9 * top)
        if not len(reached):
            return None  # a run far below the others: the full scale already shows the gap
        starts.append(int(trace.counts[reached[0]]))
    x0 = max(starts)
    x1 = max(int(t.counts[-1]) for t in traces if len(t.counts))
    # Each run's hypervolume once x0 trials had finished (its last value if it has fewer).
    low = min(float(t.hypervolume[min(x0, len(t.counts)) - 1]) for t in traces if len(t.counts))
    if x1 - x0 < x1 / 3 or top - low >= 0.2 * top or top == low:
        return None
    pad = 0.08 * (top - low)
    return (float(x0) - 0.5, float(x1) + 0.5, low - pad, top + pad)


# --------------------------------------------------------------------------------------------
# Render: matplotlib
# --------------------------------------------------------------------------------------------


def _colour(k: int, single: bool) -> str:
    return "tab:blue" if single else f"C{k % 10}"


def render_front_matplotlib(data: FrontPlot) -> Any:
    """Draw a :class:`FrontPlot` as a matplotlib ``Figure`` (no pyplot state involved)."""
    from matplotlib.figure import Figure

    if data.dimensions == 3:
        return _render_front_matplotlib_3d(data)
    fig = Figure(figsize=(9, 6.2), layout="constrained")
    ax = fig.add_subplot()
    single = len(data.series) == 1
    for k, s in enumerate(data.series):
        colour = _colour(k, single)
        prefix = "" if single else f"{s.label}: "
        if single and len(s.front_path):
            # The region the front dominates, up to the reference: its area is the hypervolume.
            ref = np.array(data.reference.values)
            polygon = np.vstack([s.front_path, [ref[0], ref[1]]])
            ax.fill(polygon[:, 0], polygon[:, 1], color=colour, alpha=0.07, linewidth=0, label="dominated region (hypervolume)")
        dominated = s.dominated
        if dominated.any():
            ax.scatter(*s.points[dominated].T, s=28, color="0.45" if single else colour, alpha=0.35, linewidths=0, label=f"{prefix}dominated ({int(dominated.sum())})")
        infeasible = ~s.feasible
        if infeasible.any():
            ax.scatter(*s.points[infeasible].T, s=40, marker="x", color="tab:red" if single else colour, alpha=0.8, label=prefix + s.infeasible_label)
        if s.refused is not None and len(s.refused):
            _draw_refused(ax, s, data, "tab:red" if single else colour, prefix)
        if len(s.front_path):
            ax.plot(*s.front_path.T, color=colour, linewidth=1.6, alpha=0.9)
        front = s.points[s.on_front]
        label = f"{prefix}Pareto front ({len(front)})" + ("" if single else f", hypervolume {s.hypervolume:.4g}")
        ax.scatter(*front.T, s=55, color=colour, edgecolors="black", linewidths=0.7, zorder=3, label=label)
        if s.knee is not None:
            ax.scatter(*s.points[s.knee], s=260, marker="*", color="gold" if single else colour, edgecolors="black", linewidths=0.8, zorder=4, label=f"{prefix}knee ({s.trial_ids[s.knee]})")
    _apply_axes_2d(ax, data)  # the scales first: labels are placed in display space
    for s in data.series:
        front_idx = np.flatnonzero(s.on_front)
        if single and 0 < len(front_idx) <= _MAX_POINT_LABELS:
            everything = np.concatenate([series.points for series in data.series])
            everything = everything[np.isfinite(everything).all(axis=1)]
            annotate_without_overlap(ax, fig, s.points[front_idx], [s.trial_ids[i] for i in front_idx], everything, 7.5)
    ax.set_title(data.title, fontsize=10.5)
    _footnote(fig, data.note)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8.5, loc="best", framealpha=0.9)
    return fig


#: Offsets (points) tried for a point's label, in order: right-above, right-below, left-above, left-below, above, below.
_LABEL_OFFSETS = ((6, 4), (6, -12), (-8, 4), (-8, -12), (0, 9), (0, -17))


def place_labels(
    points: np.ndarray, sizes: Sequence[tuple[float, float]], obstacles: np.ndarray | None = None, radius: float = 5.0
) -> list[tuple[float, float] | None]:
    """Label offsets that keep labels off each other and off the plotted points (display units).

    Pure: ``points`` are the labelled points' display coordinates (``(n, 2)``, y up), ``sizes``
    each label's ``(width, height)``, ``obstacles`` every plotted point (a label must not cover
    one, within ``radius``). Each label takes the first of :data:`_LABEL_OFFSETS` (its lower-left
    corner's offset from the point; a negative x offset puts the label's right end there) whose
    box overlaps no label placed before and no obstacle; a label with no free place gets None
    (left out rather than drawn over another).
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    obstacles = points if obstacles is None else np.asarray(obstacles, dtype=np.float64).reshape(-1, 2)
    placed: list[tuple[float, float, float, float]] = []
    out: list[tuple[float, float] | None] = []
    for (x, y), (w, h) in zip(points, sizes):
        choice = None
        for dx, dy in _LABEL_OFFSETS:
            x0 = x + dx if dx >= 0 else x + dx - w
            x0 = x0 - w / 2 if dx == 0 else x0
            box = (x0, y + dy, x0 + w, y + dy + h)
            clear = all(box[2] <= b[0] or b[2] <= box[0] or box[3] <= b[1] or b[3] <= box[1] for b in placed)
            near = (obstacles[:, 0] >= box[0] - radius) & (obstacles[:, 0] <= box[2] + radius) & (obstacles[:, 1] >= box[1] - radius) & (obstacles[:, 1] <= box[3] + radius)
            if clear and not near.any():
                choice = (dx, dy)
                placed.append(box)
                break
        out.append(choice)
    return out


def annotate_without_overlap(ax: Any, fig: Any, points: np.ndarray, texts: Sequence[str], everything: np.ndarray, fontsize: float) -> None:
    """Annotate ``points`` with ``texts`` where :func:`place_labels` finds room (offsets in points)."""
    fig.draw_without_rendering()  # the final layout (constrained, tight) before measuring
    to_pt = 72.0 / fig.dpi
    display = ax.transData.transform(np.asarray(points, dtype=np.float64)) * to_pt
    obstacles = ax.transData.transform(np.asarray(everything, dtype=np.float64)) * to_pt
    sizes = [(0.6 * fontsize * len(t), fontsize) for t in texts]  # a label's box, in points
    for point, text, offset in zip(points, texts, place_labels(display, sizes, obstacles)):
        if offset is not None:
            dx, dy = offset
            ha = "left" if dx > 0 else "right" if dx < 0 else "center"
            ax.annotate(text, point, xytext=(dx, dy), textcoords="offset points", fontsize=fontsize, color="0.2", ha=ha, va="bottom")


def _draw_refused(ax: Any, s: FrontSeries, data: FrontPlot, colour: str, prefix: str) -> None:
    """Refused candidates as ticks on the edge of the objective they never learnt, at their known costs."""
    points = np.array(s.refused, dtype=np.float64)
    known = np.isfinite(points)
    if not known.any():
        return
    for j in range(2):  # put an unknown coordinate on the axis's low edge, marked by the tick's shape
        points[~known[:, j], j] = data.limits[j][0]
    marker = ">" if not known[:, 0].all() else "^" if not known[:, 1].all() else "x"
    shown = known.any(axis=1)
    ax.scatter(*points[shown].T, s=30, marker=marker, color=colour, alpha=0.6, linewidths=0, clip_on=False, label=prefix + s.refused_label)


def _footnote(fig: Any, text: str) -> None:
    if text:
        # A figure-level x label: the constrained layout keeps room for it below the axes.
        fig.supxlabel(text, x=0.995, ha="right", fontsize=7, color="0.4")


def _apply_axes_2d(ax: Any, data: FrontPlot) -> None:
    ax.set_xlabel(data.axis_labels[0])
    ax.set_ylabel(data.axis_labels[1])
    if data.log_axes[0]:
        ax.set_xscale("log")
    if data.log_axes[1]:
        ax.set_yscale("log")
    ax.set_xlim(*data.limits[0])
    ax.set_ylim(*data.limits[1])


def _render_front_matplotlib_3d(data: FrontPlot) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 7.5), layout="constrained")
    ax = fig.add_subplot(projection="3d")
    single = len(data.series) == 1
    log = data.log_axes

    def coords(points: np.ndarray) -> list[np.ndarray]:
        # mplot3d has no reliable log axes: draw log10 of a log axis and say so in its label.
        return [np.log10(points[:, j]) if log[j] else points[:, j] for j in range(3)]

    for k, s in enumerate(data.series):
        colour = _colour(k, single)
        prefix = "" if single else f"{s.label}: "
        dominated = s.dominated
        if dominated.any():
            ax.scatter(*coords(s.points[dominated]), s=22, color="0.4" if single else colour, alpha=0.5, depthshade=False, label=f"{prefix}dominated ({int(dominated.sum())})")
        infeasible = ~s.feasible
        if infeasible.any():
            ax.scatter(*coords(s.points[infeasible]), s=35, marker="x", color="tab:red" if single else colour, label=prefix + s.infeasible_label)
        front = s.points[s.on_front]
        if len(front) >= 3:
            x, y, z = coords(front)
            try:  # a surface through the front (Delaunay in the first two objectives)
                ax.plot_trisurf(x, y, z, color=colour, alpha=0.18, linewidth=0.3, edgecolor=colour)
            except (RuntimeError, ValueError):
                pass  # collinear front points: no surface to draw
        label = f"{prefix}Pareto front ({len(front)})" + ("" if single else f", hypervolume {s.hypervolume:.4g}")
        ax.scatter(*coords(front), s=45, color=colour, edgecolors="black", linewidths=0.6, depthshade=False, label=label)
        if s.knee is not None:
            ax.scatter(*coords(s.points[[s.knee]]), s=220, marker="*", color="gold" if single else colour, edgecolors="black", depthshade=False, label=f"{prefix}knee ({s.trial_ids[s.knee]})")
    labels = [f"log10 {label}" if log[j] else label for j, label in enumerate(data.axis_labels)]
    ax.set_xlabel(labels[0], fontsize=8.5)
    ax.set_ylabel(labels[1], fontsize=8.5)
    ax.set_zlabel(labels[2], fontsize=8.5)
    ax.set_title(data.title, fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    _footnote(fig, data.note)
    return fig


def render_progress_matplotlib(data: ProgressPlot) -> Any:
    """Draw a :class:`ProgressPlot` as a matplotlib ``Figure``: hypervolume after each trial."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 5.2), layout="constrained")
    ax = fig.add_subplot()
    for k, trace in enumerate(data.traces):
        colour = _colour(k, len(data.traces) == 1)
        if not len(trace.counts):
            continue
        ax.step(trace.counts, trace.hypervolume, where="post", color=colour, linewidth=1.8, label=f"{trace.run} (final {trace.hypervolume[-1]:.4g})")
        gains = np.flatnonzero(np.diff(np.concatenate(([0.0], trace.hypervolume))) > 0)
        ax.scatter(trace.counts[gains], trace.hypervolume[gains], s=22, color=colour, zorder=3)
    ax.set_xlabel("trials finished (in the order the sampler proposed them)")
    ax.set_ylabel(data.ylabel)
    ax.set_title(data.title, fontsize=10.5)
    _footnote(fig, data.note)
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    if data.zoom is not None:
        # The runs differ by little next to the whole scale: magnify the tail of the curves.
        x0, x1, y0, y1 = data.zoom
        inset = ax.inset_axes((0.42, 0.1, 0.55, 0.5))
        for k, trace in enumerate(data.traces):
            if len(trace.counts):
                inset.step(trace.counts, trace.hypervolume, where="post", color=_colour(k, len(data.traces) == 1), linewidth=1.6)
        inset.set_xlim(x0, x1)
        inset.set_ylim(y0, y1)
        inset.tick_params(labelsize=7.5)
        inset.grid(alpha=0.3)
        inset.set_title("zoom on the tail", fontsize=8)
        ax.indicate_inset_zoom(inset, edgecolor="0.4")
        ax.legend(fontsize=9, loc="upper left")
    else:
        ax.legend(fontsize=9, loc="lower right")
    return fig


def write_png(figure: Any, path: str | os.PathLike[str], dpi: int = 150) -> Path:
    """Save a matplotlib figure as PNG (parent folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi)
    return path


# --------------------------------------------------------------------------------------------
# Render: plotly
# --------------------------------------------------------------------------------------------

_PLOTLY_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def render_front_plotly(data: FrontPlot) -> Any:
    """Draw a :class:`FrontPlot` as a plotly ``Figure``; hovering a point shows its trial."""
    import plotly.graph_objects as go

    fig = go.Figure()
    single = len(data.series) == 1
    three = data.dimensions == 3
    scatter = go.Scatter3d if three else go.Scatter

    def xyz(points: np.ndarray) -> dict[str, Any]:
        keys = ("x", "y", "z")[: data.dimensions]
        return {key: points[:, j] for j, key in enumerate(keys)}

    for k, s in enumerate(data.series):
        colour = _PLOTLY_COLOURS[0 if single else k % len(_PLOTLY_COLOURS)]
        prefix = "" if single else f"{s.label}: "
        hover = np.array(s.hover, dtype=object)
        size = 6 if three else 9
        dominated = s.dominated
        if dominated.any():
            fig.add_trace(scatter(**xyz(s.points[dominated]), mode="markers", name=f"{prefix}dominated", legendgroup=s.label, marker={"size": size, "color": "#888888" if single else colour, "opacity": 0.35}, hovertext=hover[dominated], hoverinfo="text"))
        infeasible = ~s.feasible
        if infeasible.any():
            fig.add_trace(scatter(**xyz(s.points[infeasible]), mode="markers", name=prefix + s.infeasible_label, legendgroup=s.label, marker={"size": size, "color": "#d62728" if single else colour, "symbol": "x"}, hovertext=hover[infeasible], hoverinfo="text"))
        if three:
            front = s.points[s.on_front]
            if len(front) >= 3:
                fig.add_trace(go.Mesh3d(**xyz(front), color=colour, opacity=0.2, alphahull=-1, name=f"{prefix}front surface", hoverinfo="skip", showlegend=False))
        elif len(s.front_path):
            fig.add_trace(go.Scatter(**xyz(s.front_path), mode="lines", line={"color": colour, "width": 2}, name=f"{prefix}front line", legendgroup=s.label, hoverinfo="skip", showlegend=False))
        on = s.on_front
        name = f"{prefix}Pareto front ({int(on.sum())})" + ("" if single else f", hypervolume {s.hypervolume:.4g}")
        fig.add_trace(scatter(**xyz(s.points[on]), mode="markers", name=name, legendgroup=s.label, marker={"size": size + 2, "color": colour, "line": {"color": "black", "width": 1}}, hovertext=hover[on], hoverinfo="text"))
        if s.knee is not None:
            fig.add_trace(scatter(**xyz(s.points[[s.knee]]), mode="markers", name=f"{prefix}knee ({s.trial_ids[s.knee]})", legendgroup=s.label, marker={"size": 18 if not three else 9, "color": "gold" if single else colour, "symbol": "star" if not three else "diamond", "line": {"color": "black", "width": 1}}, hovertext=hover[[s.knee]], hoverinfo="text"))
    title = {"text": data.title.replace("\n", "<br><sup>") + ("</sup>" if "\n" in data.title else ""), "x": 0.5}
    if three:
        axes = {f"{axis}axis": {"title": {"text": label}, "type": "log" if log else "linear"} for axis, label, log in zip(("x", "y", "z"), data.axis_labels, data.log_axes)}
        fig.update_layout(scene=axes, title=title, legend={"itemsizing": "constant"}, height=750)
    else:
        for j, update in enumerate((fig.update_xaxes, fig.update_yaxes)):
            low, high = data.limits[j]
            rng = [np.log10(low), np.log10(high)] if data.log_axes[j] else [low, high]
            update(title_text=data.axis_labels[j], type="log" if data.log_axes[j] else "linear", range=rng)
        fig.update_layout(title=title, hoverlabel={"align": "left"}, template="plotly_white", height=620)
    _plotly_footnote(fig, data.note, y=0.0 if three else -0.13)
    return fig


def _plotly_footnote(fig: Any, text: str, y: float = -0.13) -> None:
    if text:
        fig.add_annotation(text=text, xref="paper", yref="paper", x=1.0, y=y, xanchor="right", showarrow=False, font={"size": 10, "color": "#666666"})


def render_progress_plotly(data: ProgressPlot) -> Any:
    """Draw a :class:`ProgressPlot` as a plotly ``Figure``; hover shows the trial that finished."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for k, trace in enumerate(data.traces):
        colour = _PLOTLY_COLOURS[k % len(_PLOTLY_COLOURS)]
        hover = [f"{trace.run}<br>{n} trials finished<br>last: {tid}<br>hypervolume {hv:.4g}" for n, tid, hv in zip(trace.counts, trace.trial_ids, trace.hypervolume)]
        fig.add_trace(go.Scatter(x=trace.counts, y=trace.hypervolume, mode="lines+markers", line={"shape": "hv", "color": colour}, marker={"size": 5}, name=trace.run, hovertext=hover, hoverinfo="text"))
    title = {"text": data.title.replace("\n", "<br><sup>") + ("</sup>" if "\n" in data.title else ""), "x": 0.5}
    fig.update_layout(title=title, template="plotly_white", xaxis_title="trials finished (in the order the sampler proposed them)", yaxis_title=data.ylabel, height=520)
    _plotly_footnote(fig, data.note)
    return fig


def write_html(figure: Any, path: str | os.PathLike[str]) -> Path:
    """Save a plotly figure as one self-contained HTML file (plotly.js embedded, works offline)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.write_html(str(path), include_plotlyjs=True, full_html=True)
    return path
