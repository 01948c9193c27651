"""``analysis.plot``: the data of front and progress figures, and the files the renderers write.

As in Optuna's visualisation tests, the data objects are checked, not pixels; the renderers are
checked for what they must produce (a PNG, a self-contained HTML whose hover names the trials).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from analysis.pareto import hypervolume
from analysis.plot import (
    front_plot,
    metric_label,
    progress_plot,
    render_front_matplotlib,
    render_front_plotly,
    render_progress_matplotlib,
    render_progress_plotly,
    write_html,
    write_png,
)
from analysis.results import HypervolumeTrace, ReferencePoint, analyze_run, hypervolume_trace, load_run, run_front
from tests.unit.test_analysis_results import mixed_trials, report, synth_spec, trial, write_run
from trainables.report import format_number

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def polygon_area(vertices: np.ndarray) -> float:
    x, y = vertices[:, 0], vertices[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def test_front_plot_sorts_trials_into_front_dominated_and_infeasible(tmp_path):
    run_dir = write_run(tmp_path, mixed_trials(), synth_spec(constraints=["val_accuracy >= 0.92"]))
    front = analyze_run(run_dir)
    data = front_plot([front])
    (series,) = data.series
    ids = np.array(series.trial_ids)
    assert set(ids[series.on_front]) == {"a1", "a2", "a4"}
    assert set(ids[series.dominated]) == {"a3"}
    assert set(ids[~series.feasible]) == {"a0"}
    assert series.infeasible_label == "infeasible (1; constraints val_accuracy >= 0.92)"
    assert not (series.on_front & ~series.feasible).any()
    assert "p0" not in ids  # stopped early: not drawn, and said so in the title
    assert "1 stopped early" in data.title and f"{front.hypervolume:.4g}" in data.title
    assert data.axis_labels == ("validation accuracy  ↑ better", "energy per inference (µJ)  ↓ better")
    assert "recorded" in data.note


def test_hover_names_the_trial_its_status_metrics_and_config(tmp_path):
    run_dir = write_run(tmp_path, mixed_trials(), synth_spec(constraints=["val_accuracy >= 0.92"]))
    data = front_plot([analyze_run(run_dir)])
    hover = dict(zip(data.series[0].trial_ids, data.series[0].hover))
    assert "trial a0" in hover["a0"] and "infeasible: violates val_accuracy >= 0.92" in hover["a0"]
    assert "dominated (rank 1)" in hover["a3"]
    assert "on the front" in hover["a2"]
    assert "val_accuracy = 0.97" in hover["a2"] and "energy_uj = 4" in hover["a2"]
    assert "test_accuracy = 0.96" in hover["a2"] and "macs = 40000" in hover["a2"]
    assert "model.width = 32" in hover["a2"] and "optim.lr = 0.003" in hover["a2"]


def test_the_front_staircase_bounds_exactly_the_hypervolume(tmp_path):
    trials = [trial(f"t{i}", report(acc, energy)) for i, (acc, energy) in enumerate([(0.80, 1.0), (0.90, 2.5), (0.95, 4.0), (0.85, 3.0), (0.90, 2.5)])]
    front = analyze_run(write_run(tmp_path, trials), reference=[0.5, 5.0])
    path = front_plot([front]).series[0].front_path
    # Every front point is a vertex, the path starts and ends on the reference levels, and the
    # region it closes with the reference corner has the front's hypervolume as its area.
    for i in front.front:
        assert any(np.allclose(vertex, front.points[i]) for vertex in path)
    assert path[0][1] == 5.0 and path[-1][0] == 0.5
    assert np.all(np.diff(path[:, 0]) <= 0) and np.all(np.diff(path[:, 1]) <= 0)  # accuracy ↓, energy ↓ along it
    area = polygon_area(np.vstack([path, [0.5, 5.0]]))
    assert area == pytest.approx(front.hypervolume)
    assert area == pytest.approx(hypervolume(front.points, ["max", "min"], [0.5, 5.0]))


def test_three_objectives_draw_a_surface_and_four_are_refused(tmp_path):
    rng = np.random.default_rng(0)
    trials = []
    for i in range(12):
        energy = float(rng.uniform(0.5, 4.0))
        trials.append(trial(f"t{i}", report(float(rng.uniform(0.8, 0.99)), energy, train_time_s=float(rng.uniform(1, 9)))))
    run_dir = write_run(tmp_path, trials)
    front = analyze_run(run_dir, ["val_accuracy", "energy_uj", "train_time_s"])
    data = front_plot([front])
    assert data.dimensions == 3 and data.axis_labels[2] == "training time (s)  ↓ better"
    assert len(data.series[0].front_path) == len(front.front) >= 3
    figure = render_front_plotly(data)
    assert {type(t).__name__ for t in figure.data} >= {"Scatter3d", "Mesh3d"}
    write_png(render_front_matplotlib(data), tmp_path / "front3d.png")
    assert (tmp_path / "front3d.png").read_bytes()[:8] == PNG_MAGIC
    four = analyze_run(run_dir, ["val_accuracy", "energy_uj", "train_time_s", "macs"])
    with pytest.raises(ValueError, match="2 or 3 objectives"):
        front_plot([four])


def test_runs_compared_on_one_figure_must_share_one_reference(tmp_path):
    a = analyze_run(write_run(tmp_path, mixed_trials(), name="tpe"))
    b = analyze_run(write_run(tmp_path, [trial("b0", report(0.96, 1.5)), trial("b1", report(0.91, 0.8))], name="random"))
    with pytest.raises(ValueError, match="one reference"):
        front_plot([a, b])
    reference = ReferencePoint(a.names, a.directions, (0.5, 6.0), "given")
    a, b = (run_front(f.run, reference=reference) for f in (a, b))
    data = front_plot([a, b])
    assert [s.label for s in data.series] == ["tpe", "random"]
    assert "tpe vs random" in data.title
    names = [t.name for t in render_front_plotly(data).data]
    assert any(n.startswith("tpe: Pareto front") for n in names) and any(n.startswith("random: Pareto front") for n in names)
    # Axis limits cover both runs' points.
    every = np.vstack([a.points, b.points])
    assert data.limits[0][0] < every[:, 0].min() and data.limits[0][1] > every[:, 0].max()


def test_wide_positive_ranges_get_a_log_axis(tmp_path):
    trials = [trial(f"t{i}", report(0.8 + 0.03 * i, energy)) for i, energy in enumerate([0.01, 0.3, 8.0])]
    data = front_plot([analyze_run(write_run(tmp_path, trials))])
    assert data.log_axes == (False, True)
    low, high = data.limits[1]
    assert low < 0.01 and high > 8.0


def test_progress_plot_zooms_on_a_flat_tail_only():
    ref = ReferencePoint(("val_accuracy", "energy_uj"), ("max", "min"), (0.0, 1.0), "given")
    counts = np.arange(1, 21)
    flat_a = np.concatenate([np.linspace(0, 0.95, 5), np.linspace(0.96, 0.97, 15)])
    flat_b = np.concatenate([np.linspace(0, 0.92, 8), np.full(12, 0.965)])
    traces = [HypervolumeTrace(name, tuple(f"t{i}" for i in counts), counts, hv, ref) for name, hv in (("a", flat_a), ("b", flat_b))]
    data = progress_plot(traces)
    assert data.zoom is not None
    x0, x1, y0, y1 = data.zoom
    assert x0 == pytest.approx(7.5)  # by trial 8 both runs reached 90 % of the best final value
    assert x1 == pytest.approx(20.5)
    assert y0 < min(flat_a[7], flat_b[7]) and y1 > 0.97
    assert "final hypervolume a 0.97, b 0.965" in data.title
    steep = [HypervolumeTrace("c", tuple(f"t{i}" for i in counts), counts, np.linspace(0, 1, 20), ref)]
    assert progress_plot(steep).zoom is None
    other = replace(ref, values=(0.1, 1.0))
    with pytest.raises(ValueError, match="one reference"):
        progress_plot([traces[0], replace(traces[1], reference=other)])


def test_renderers_write_a_png_and_a_self_contained_html(tmp_path):
    run = load_run(write_run(tmp_path, mixed_trials()))
    front = run_front(run)
    data = front_plot([front])
    png = write_png(render_front_matplotlib(data), tmp_path / "out" / "front.png")
    html = write_html(render_front_plotly(data), tmp_path / "out" / "front.html")
    assert png.read_bytes()[:8] == PNG_MAGIC
    text = html.read_text()
    assert "<script src=\"http" not in text and "plotly.js" in text.lower()  # plotly.js embedded
    for tid in ("a0", "a1", "a2", "a3", "a4"):
        assert f"trial {tid}" in text  # hover text of every drawn trial
    progress = progress_plot([hypervolume_trace(run, reference=front.reference)])
    assert write_png(render_progress_matplotlib(progress), tmp_path / "hv.png").read_bytes()[:8] == PNG_MAGIC
    figure = render_progress_plotly(progress)
    assert list(figure.data[0].y) == pytest.approx(list(progress.traces[0].hypervolume))


def test_labels_and_values_read_well():
    assert metric_label("energy_uj") == "energy per inference (µJ)"
    assert metric_label("macs", "min") == "MACs per inference  ↓ better"
    assert metric_label("my_metric", "max") == "my_metric  ↑ better"
    assert [format_number(v) for v in (None, 16220, 15104.0, 0.975609, 7.3e-05, 2.5e8, math.nan, "mixer")] == [
        "-", "16220", "15104", "0.9756", "7.3e-05", "2.5e+08", "nan", "mixer",
    ]


def test_point_labels_never_overlap_each_other_or_a_point():
    """Issue 24: trial labels were drawn over each other and over neighbouring points."""
    from analysis.plot import place_labels

    rng = np.random.default_rng(0)
    points = np.vstack([[[100.0, 100.0], [104.0, 101.0], [108.0, 99.0], [103.0, 94.0]], rng.uniform(0, 300, (20, 2))])
    sizes = [(40.0, 8.0)] * len(points)
    offsets = place_labels(points, sizes, points, radius=4.0)
    boxes = []
    for (x, y), (w, h), offset in zip(points, sizes, offsets):
        if offset is None:
            continue
        dx, dy = offset
        x0 = x + dx if dx > 0 else (x + dx - w if dx < 0 else x - w / 2)
        boxes.append((x0, y + dy, x0 + w, y + dy + h))
    assert len(boxes) >= len(points) // 2  # most find room; the crowded ones are left out, not overlapped
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)
        inside = (points[:, 0] >= a[0] - 4) & (points[:, 0] <= a[2] + 4) & (points[:, 1] >= a[1] - 4) & (points[:, 1] <= a[3] + 4)
        assert not inside.any(), a


def test_front_png_labels_do_not_overlap(tmp_path):
    from analysis.plot import front_plot, render_front_matplotlib

    # A tight front (close in display space) next to far, dominated points that set the axes.
    trials = [trial(f"t{i}", report(0.80 + 0.004 * i, 1.0 + 0.01 * i)) for i in range(8)]
    trials += [trial(f"d{i}", report(0.30 + 0.05 * i, 3.0 + 0.2 * i)) for i in range(4)]
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = render_front_matplotlib(front_plot([analyze_run(write_run(tmp_path, trials))]))
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    ax = fig.axes[0]
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    assert len(boxes) >= 4
    points = ax.transData.transform([[0.80 + 0.004 * i, 1.0 + 0.01 * i] for i in range(8)])
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b), (a, b)
        assert not any(a.x0 - 2 <= x <= a.x1 + 2 and a.y0 - 2 <= y <= a.y1 + 2 for x, y in points), a  # no label covers a point


def test_candidates_refused_before_training_are_drawn_as_refused_not_on_the_front(tmp_path):
    """Issue 23: a refused candidate has costs but no accuracy: ticks on the accuracy axis's edge."""
    from types import SimpleNamespace

    from analysis.plot import front_plot, render_front_matplotlib
    from search.recorder import ResultsRecorder
    from trainables.registry import get_trainable
    from trainables.report import BASE_KEYS, INFO_KEYS

    run_dir = write_run(tmp_path, mixed_trials())
    spec = load_run(run_dir).spec
    recorder = ResultsRecorder(str(run_dir), param_names=[*spec.space, *spec.fixed], metric_keys=[*BASE_KEYS, *get_trainable(spec.trainable).extra_report_keys, *INFO_KEYS],
                               searcher=SimpleNamespace(optuna_number=lambda trial_id: None), flush_interval_s=0.0)
    for i, energy in enumerate([9.0, 12.0]):
        recorder.add_refused({"trial_id": f"refused-{20 + i}", "state": "REFUSED", "error": "refused before training: macs breaks macs <= 5", "optuna_trial": 20 + i, "macs": energy * 1e4, "energy_uj": energy})
    front = analyze_run(run_dir)
    assert "refused-20" not in front.trial_ids and front.excluded.get("refused") == 2
    data = front_plot([front])
    refused = data.series[0].refused
    assert refused.shape == (2, 2) and np.isnan(refused[:, 0]).all() and sorted(refused[:, 1]) == [9.0, 12.0]
    assert data.limits[1][1] >= 12.0  # their costs are inside the axes
    fig = render_front_matplotlib(data)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(label.startswith("refused before training (2;") for label in labels), labels
