"""Draw front and progress figures with matplotlib, and write them as PNG.

The renderers take the plain data of :class:`~analysis.plot.FrontPlot` and
:class:`~analysis.plot.ProgressPlot` and build a matplotlib ``Figure`` (no pyplot state).
:func:`place_labels` (pure) and :func:`annotate_without_overlap` put trial labels where they
cover neither another label nor a point.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from analysis.plot._front import FrontPlot, FrontSeries
from analysis.plot._progress import ProgressPlot

__all__ = [
    "annotate_without_overlap",
    "place_labels",
    "render_front_matplotlib",
    "render_progress_matplotlib",
    "write_png",
]

#: Front points labelled with their trial id in a single-run 2-D figure, at most.
_MAX_POINT_LABELS = 12


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
        if s.warm is not None and len(s.warm):
            ax.scatter(*s.warm.T, s=34, marker="D", facecolors="none", edgecolors="0.55" if single else colour, linewidths=0.9, alpha=0.8, label=prefix + s.warm_label)
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
        if s.warm is not None and len(s.warm):
            ax.scatter(*coords(s.warm), s=28, marker="D", facecolors="none", edgecolors="0.55" if single else colour, depthshade=False, label=prefix + s.warm_label)
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
