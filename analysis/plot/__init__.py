"""Pareto-front and search-progress figures: PNG (matplotlib) and interactive HTML (plotly).

Compute and render are separate, as in Optuna's ``visualization`` package: :func:`front_plot`
and :func:`progress_plot` turn :class:`~analysis.results.RunFront` /
:class:`~analysis.results.HypervolumeTrace` objects into plain data (:class:`FrontPlot`,
:class:`ProgressPlot`) — which points are on the front, dominated or infeasible, the staircase
that connects the front, the hover text of every trial, titles and axis labels — and thin
renderers draw that data. Tests check the data, not pixels.

Two or three objectives can be drawn; several runs (e.g. TPE vs random) share one figure, each
in its own colour, with their hypervolumes computed against one common reference point.

One private module per job, imported from here (``__all__``): ``_front`` and ``_progress``
compute the data of the two figures, ``_matplotlib`` and ``_plotly`` render it and write the
files.
"""

from __future__ import annotations

from analysis.plot._front import FrontPlot, FrontSeries, front_plot, metric_label
from analysis.plot._matplotlib import (
    annotate_without_overlap,
    place_labels,
    render_front_matplotlib,
    render_progress_matplotlib,
    write_png,
)
from analysis.plot._plotly import render_front_plotly, render_progress_plotly, write_html
from analysis.plot._progress import ProgressPlot, progress_plot

__all__ = [
    "annotate_without_overlap",
    "place_labels",
    "FrontPlot",
    "FrontSeries",
    "ProgressPlot",
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
