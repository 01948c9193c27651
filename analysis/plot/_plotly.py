"""Draw front and progress figures with plotly, and write them as one self-contained HTML file.

Hovering a point shows its trial: id, status, objectives, other metrics and its config (the
hover text is computed with the figure's data, in :func:`~analysis.plot.front_plot`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from analysis.plot._front import FrontPlot
from analysis.plot._progress import ProgressPlot

__all__ = ["render_front_plotly", "render_progress_plotly", "write_html"]

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
        if s.warm is not None and len(s.warm):
            fig.add_trace(scatter(**xyz(s.warm), mode="markers", name=prefix + s.warm_label, legendgroup=s.label, marker={"size": size, "color": "rgba(0,0,0,0)", "symbol": "diamond-open", "line": {"color": "#8c8c8c" if single else colour, "width": 1}}, hoverinfo="skip"))
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
