"""The data of a search-progress figure: the hypervolume after each finished trial, per run.

:func:`progress_plot` turns :class:`~analysis.results.HypervolumeTrace` objects (one per run, all
against one reference point) into a :class:`ProgressPlot`: title, axis label in the objectives'
units and, when the runs differ by little on the late part of the curves, a zoom window on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from analysis.plot._front import _reference_values, metric_label
from analysis.results import HypervolumeTrace, ReferencePoint

__all__ = ["ProgressPlot", "progress_plot"]


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
