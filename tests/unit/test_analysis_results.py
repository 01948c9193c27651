"""``analysis.results``: run dirs → tables, filters, fronts, recorded reference points.

Run dirs here are synthetic but real in layout: ``spec.yaml`` comes from a parsed spec and
``trials.parquet``/``epochs.parquet`` are written by the sweep's own ``ResultsRecorder``, fed the
way Ray Tune feeds it. The helpers below are shared with the other ``test_analysis_*`` modules.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from analysis.pareto import compute_front, front_summary, hypervolume, pareto_front
from analysis.results import (
    ReferencePoint,
    ResultsError,
    analyze_run,
    common_reference,
    completed_mask,
    feasible_mask,
    filter_trials,
    finite_mask,
    fix_reference,
    full_budget_mask,
    hypervolume_trace,
    load_run,
    parse_objectives,
    run_front,
)
from search.recorder import ResultsRecorder
from search.rundir.records import ANALYSIS_FILE
from search.spec import Objective, parse_spec, spec_to_yaml
from tests.conftest import tiny_spec
from trainables.registry import get_trainable
from trainables.report import BASE_KEYS, INFO_KEYS

# ---------------------------------------------------------------------------------------------
# Synthetic run dirs with the real layout (shared helpers)
# ---------------------------------------------------------------------------------------------


def synth_spec(**sections: Any) -> dict:
    """A raw g2g spec on digits with objectives val_accuracy (max) and energy_uj (min)."""
    raw = tiny_spec(
        objectives=[{"metric": "val_accuracy", "mode": "max"}, {"metric": "energy_uj", "mode": "min"}],
        space={"model.width": {"choice": [16, 32, 64]}, "optim.lr": {"log": [1e-3, 1e-2]}},
        fixed={"model.depth": 1, "optim.batch_size": 128},
        budget={"epochs": 4},
    )
    raw.update(sections)
    return raw


def report(val_accuracy: float, energy_uj: float, budget: float = 1.0, epochs: int = 4, **extra: Any) -> dict:
    """A report with every contract key, as a trainable's last ``tune.report``."""
    epoch = max(1, round(budget * epochs))
    macs = int(energy_uj * 1e4) if math.isfinite(energy_uj) else math.nan
    values = {
        "epoch": epoch,
        "val_accuracy": val_accuracy,
        "val_loss": 1.0 - val_accuracy,
        "macs": macs,
        "energy_uj": energy_uj,
        "params": macs + 10,
        "density": 0.5,
        "train_time_s": float(epoch),
        "budget_fraction": epoch / epochs,
        "test_accuracy": val_accuracy - 0.01 if epoch == epochs else math.nan,
    }
    values.update(extra)
    return values


def trial(tid: str, result: Mapping[str, Any] | None, state: str = "TERMINATED", params: Mapping[str, Any] | None = None, checkpoint: str | None = None) -> dict:
    """One trial for :func:`write_run`."""
    return {"id": tid, "result": result, "state": state, "params": dict(params or {"model.width": 32, "optim.lr": 3e-3}), "checkpoint": checkpoint}


def write_run(parent: Path, trials: Sequence[Mapping[str, Any]], raw_spec: Mapping[str, Any] | None = None, name: str = "synth") -> Path:
    """Write a run dir: ``spec.yaml`` and the tables the sweep's recorder writes for ``trials``.

    Trials are fed to a real :class:`search.recorder.ResultsRecorder` through Ray Tune's
    callback hooks: a report per epoch up to the last one, then complete/error (or nothing for
    a running trial). Their Optuna numbers follow the list order. Calling it again on the
    same run dir rewrites the tables, as a running sweep does.
    """
    spec = parse_spec(dict(raw_spec or synth_spec()))
    run_dir = parent / name
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "spec.yaml").write_text(spec_to_yaml(spec))
    entry = get_trainable(spec.trainable)
    numbers = {t["id"]: i for i, t in enumerate(trials)}
    searcher = SimpleNamespace(optuna_number=numbers.get)
    recorder = ResultsRecorder(
        str(run_dir),
        param_names=[*spec.space, *spec.fixed],
        metric_keys=[*BASE_KEYS, *entry.extra_report_keys, *INFO_KEYS],
        searcher=searcher,
        flush_interval_s=0.0,
    )
    recorder.trials.clear()  # a rewrite, not a resume: forget what an earlier call wrote
    recorder.epochs.clear()
    for t in trials:
        config = {**spec.fixed, **t["params"]}
        checkpoint = SimpleNamespace(path=t["checkpoint"]) if t["checkpoint"] else None
        fake = SimpleNamespace(trial_id=t["id"], config=config, last_result=None, num_failures=0, checkpoint=checkpoint, path=str(run_dir / f"trial_{t['id']}"), status=t["state"])
        recorder.on_trial_start(0, [], fake)
        result = t["result"]
        if result is not None:
            for epoch in range(1, int(result["epoch"]) + 1):
                fake.last_result = {**result, "epoch": epoch}
                recorder.on_trial_result(0, [], fake, fake.last_result)
        if t["state"] == "TERMINATED":
            recorder.on_trial_complete(0, [], fake)
        elif t["state"] == "ERROR":
            fake.get_pickled_error = lambda: RuntimeError("training diverged at epoch 2: loss is nan")
            recorder.on_trial_error(0, [], fake)
    recorder.flush()
    return run_dir


def mixed_trials() -> list[dict]:
    """Full-budget trials with a clear front, one ASHA-stopped trial that would dominate them,
    a failed one and a running one."""
    return [
        trial("a0", report(0.90, 1.0)),
        trial("a1", report(0.95, 2.0)),
        trial("a2", report(0.97, 4.0)),
        trial("a3", report(0.93, 3.0)),  # dominated by a1
        trial("a4", report(0.95, 2.0)),  # a tie with a1: both on the front
        trial("p0", report(0.99, 0.5, budget=0.25)),  # stopped early by ASHA
        trial("e0", report(math.nan, math.nan, budget=0.5), state="ERROR"),
        trial("r0", report(0.98, 0.7, budget=0.5), state="RUNNING"),
    ]


# ---------------------------------------------------------------------------------------------
# Loading and filters
# ---------------------------------------------------------------------------------------------


def test_load_run_reads_spec_trials_and_history(tmp_path):
    run = load_run(write_run(tmp_path, mixed_trials()))
    assert run.name == "synth"
    assert run.spec.metrics == ["val_accuracy", "energy_uj"]
    assert run.trials.num_rows == 8
    assert run.trials.column("trial_id").to_pylist() == sorted(t["id"] for t in mixed_trials())
    assert run.param_names == ["model.width", "optim.lr", "model.depth", "optim.batch_size"]
    # One history row per report: 4 epochs for each full-budget trial, fewer for the others.
    assert run.epochs is not None and run.epochs.num_rows == 5 * 4 + 1 + 2 + 2
    row = run.trials.to_pylist()[0]
    assert run.trial_params(row) == {"model.width": 32, "optim.lr": 3e-3, "model.depth": 1, "optim.batch_size": 128}


def test_filters_select_exactly_the_trials_they_name(tmp_path):
    run = load_run(write_run(tmp_path, mixed_trials()))
    ids = np.array(run.trials.column("trial_id").to_pylist())
    assert set(ids[completed_mask(run.trials)]) == {"a0", "a1", "a2", "a3", "a4", "p0"}
    assert set(ids[full_budget_mask(run.trials)]) == {"a0", "a1", "a2", "a3", "a4"}
    assert set(ids[~finite_mask(run.trials, ["val_accuracy", "energy_uj"])]) == {"e0"}
    assert set(ids[feasible_mask(run.trials, ["energy_uj <= 2"])]) == {"a0", "a1", "a4", "p0", "r0"}
    assert set(ids[feasible_mask(run.trials, ["energy_uj <= 2", "val_accuracy >= 0.92"])]) == {"a1", "a4", "p0", "r0"}
    kept = filter_trials(run.trials, finite=["val_accuracy"], constraints=["energy_uj <= 2"])
    assert kept.column("trial_id").to_pylist() == ["a0", "a1", "a4"]


def test_asha_stopped_trials_never_appear_on_a_front_by_default(tmp_path):
    run = load_run(write_run(tmp_path, mixed_trials()))
    front = run_front(run)
    # p0 (budget 0.25) dominates every full-budget trial, yet it does not even compete.
    assert "p0" not in front.trial_ids
    assert sorted(front.trial_ids[i] for i in front.front) == ["a0", "a1", "a2", "a4"]
    assert dict(front.excluded) == {"stopped early": 1, "error": 1, "running": 1}
    assert (np.asarray(front.trials.column("budget_fraction").to_pylist()) == 1.0).all()
    trace = hypervolume_trace(run, reference=front.reference)
    assert trace.hypervolume[-1] == pytest.approx(front.hypervolume)
    # Asked for explicitly, the partial-budget trial competes and takes the whole front.
    partial = run_front(run, reference=front.reference, include_partial=True)
    assert [partial.trial_ids[i] for i in partial.front] == ["p0"]


def test_front_ties_ranks_and_knee_match_the_pure_functions(tmp_path):
    run = load_run(write_run(tmp_path, mixed_trials()))
    front = run_front(run)
    points = front.points
    assert sorted(front.front.tolist()) == sorted(pareto_front(points, ["max", "min"]).tolist())
    ranks = dict(zip(front.trial_ids, front.ranks.tolist()))
    assert ranks == {"a0": 0, "a1": 0, "a2": 0, "a3": 1, "a4": 0}
    assert front.hypervolume == pytest.approx(hypervolume(points, ["max", "min"], front.reference.values))
    assert front.trial_ids[front.knee] in {"a1", "a4"}  # the bend of 0.90/1 - 0.95/2 - 0.97/4


def test_infeasible_trials_are_marked_and_never_on_the_front(tmp_path):
    raw = synth_spec(constraints=["val_accuracy >= 0.94"])
    run = load_run(write_run(tmp_path, mixed_trials(), raw))
    front = run_front(run)
    index = front.trial_ids.index("a0")  # the cheapest trial: on the front without the constraint
    assert not front.feasible[index] and front.ranks[index] == -1
    assert index not in front.front
    assert {front.trial_ids[i] for i in np.flatnonzero(~front.feasible)} == {"a0", "a3"}
    assert {front.trial_ids[i] for i in front.front} == {"a1", "a4", "a2"}
    feasible = front.points[front.feasible]
    assert front.hypervolume == pytest.approx(hypervolume(feasible, ["max", "min"], front.reference.values))


# ---------------------------------------------------------------------------------------------
# Reference point: derived once, recorded, reused
# ---------------------------------------------------------------------------------------------


def test_reference_is_derived_once_recorded_and_reused_as_the_sweep_grows(tmp_path):
    trials = mixed_trials()
    run_dir = write_run(tmp_path, trials)
    first = analyze_run(run_dir)
    record = json.loads((run_dir / ANALYSIS_FILE).read_text())["references"]
    assert [r["objectives"] for r in record] == [["val_accuracy", "energy_uj"]]
    assert tuple(record[0]["reference"]) == first.reference.values
    # Derived from every trial with finite objectives (stopped and running ones included):
    # the worst value, pushed out by a tenth of the range (accuracy 0.90..0.99, energy 0.5..4).
    assert first.reference.values == pytest.approx((0.90 - 0.1 * 0.09, 4.0 + 0.1 * 3.5))

    # The sweep goes on: a far worse trial lands. The recorded reference is kept.
    trials.append(trial("a5", report(0.20, 9.0)))
    write_run(tmp_path, trials)
    second = analyze_run(run_dir)
    assert second.reference.values == first.reference.values
    assert "recorded" in second.reference.source
    assert second.hypervolume == pytest.approx(first.hypervolume)  # a5 lies beyond the reference
    assert len(json.loads((run_dir / ANALYSIS_FILE).read_text())["references"]) == 1

    # Other objectives get a reference of their own; a given reference wins but does not replace.
    analyze_run(run_dir, ["val_accuracy:max", "macs:min"])
    assert len(json.loads((run_dir / ANALYSIS_FILE).read_text())["references"]) == 2
    given = analyze_run(run_dir, reference=[0.0, 10.0])
    assert given.reference.values == (0.0, 10.0) and given.reference.source == "given"
    assert recorded_values(run_dir, ["val_accuracy", "energy_uj"]) == list(first.reference.values)


def recorded_values(run_dir: Path, objectives: list[str]) -> list[float]:
    entries = json.loads((run_dir / ANALYSIS_FILE).read_text())["references"]
    return next(e["reference"] for e in entries if e["objectives"] == objectives)


def test_common_reference_is_the_worst_per_objective():
    a = ReferencePoint(("val_accuracy", "energy_uj"), ("max", "min"), (0.5, 3.0), "a")
    b = ReferencePoint(("val_accuracy", "energy_uj"), ("max", "min"), (0.3, 2.0), "b")
    common = common_reference([a, b])
    assert common.values == (0.3, 3.0)
    with pytest.raises(ValueError, match="share"):
        common_reference([a, ReferencePoint(("val_accuracy",), ("max",), (0.1,), "c")])


def test_the_sweeps_progress_reference_is_the_runs_reference(tmp_path):
    """The progress lines and ``analysis pareto`` report one hypervolume for one sweep."""
    from search.progress import ProgressPrinter
    from search.rundir import RunDir
    from search.rundir.records import PROGRESS_FILE

    trials = mixed_trials()
    run_dir = write_run(tmp_path, trials)
    spec = load_run(run_dir).spec
    printer = ProgressPrinter(len(trials), spec.metrics, spec.modes, 12, records=RunDir(str(run_dir)))
    printer._reference = [0.5, 5.0]  # as fixed from the first finished trials
    printer._save_reference()
    assert (run_dir / PROGRESS_FILE).exists()
    front = analyze_run(run_dir)
    assert front.reference.values == (0.5, 5.0) and PROGRESS_FILE in front.reference.source
    assert recorded_values(run_dir, list(spec.metrics)) == [0.5, 5.0]  # recorded: later runs agree
    other = analyze_run(run_dir, ["val_accuracy:max", "macs:min"])  # not the sweep's objectives: derived
    assert PROGRESS_FILE not in other.reference.source


def test_a_bad_given_reference_is_a_one_line_error(tmp_path):
    run = load_run(write_run(tmp_path, mixed_trials()))
    with pytest.raises(ResultsError, match="2 finite numbers"):
        fix_reference(run, run.spec.objectives, [0.1])


# ---------------------------------------------------------------------------------------------
# Running sweeps, URIs, progress, objectives, errors
# ---------------------------------------------------------------------------------------------


def test_a_running_sweep_is_read_as_it_stands(tmp_path):
    trials = mixed_trials()
    run_dir = write_run(tmp_path, trials)
    before = analyze_run(run_dir)
    assert before.excluded["running"] == 1 and "r0" not in before.trial_ids
    trials[-1] = trial("r0", report(0.96, 0.7))  # the running trial finishes at full budget
    write_run(tmp_path, trials)
    after = analyze_run(run_dir)
    assert "running" not in after.excluded
    assert {after.trial_ids[i] for i in after.front} == {"r0", "a2"}  # r0 dominates a0, a1, a4


def test_a_pyarrow_uri_reads_the_same_run(tmp_path):
    run_dir = write_run(tmp_path, mixed_trials())
    by_path = analyze_run(run_dir)
    by_uri = analyze_run(f"file://{run_dir}")
    assert by_uri.trial_ids == by_path.trial_ids
    assert by_uri.hypervolume == by_path.hypervolume
    assert by_uri.reference.values == by_path.reference.values


def test_hypervolume_trace_follows_optuna_order_and_equals_prefix_hypervolumes(tmp_path):
    trials = mixed_trials()
    run = load_run(write_run(tmp_path, trials))
    trace = hypervolume_trace(run)
    finished = [t for t in trials if t["state"] != "RUNNING"]
    assert trace.trial_ids == tuple(t["id"] for t in finished)
    ref = trace.reference.values
    for i in range(len(finished)):
        points = [
            (t["result"]["val_accuracy"], t["result"]["energy_uj"])
            for t in finished[: i + 1]
            if t["state"] == "TERMINATED" and t["result"]["budget_fraction"] == 1.0
        ]
        expected = hypervolume(np.array(points).reshape(-1, 2), ["max", "min"], ref)
        assert trace.hypervolume[i] == pytest.approx(expected)
    assert (np.diff(trace.hypervolume) >= 0).all()


def test_parse_objectives_takes_modes_from_the_spec_or_the_metric_kind(tmp_path):
    spec = parse_spec(synth_spec())
    assert parse_objectives(None, spec) == tuple(spec.objectives)
    parsed = parse_objectives(["val_accuracy", "macs", "params:max"], spec)
    assert [(o.metric, o.mode) for o in parsed] == [("val_accuracy", "max"), ("macs", "min"), ("params", "max")]
    with pytest.raises(ResultsError, match="maximised or minimised"):
        parse_objectives(["dst_updates"], spec)
    with pytest.raises(ResultsError, match="max or min"):
        parse_objectives(["val_accuracy:up"], spec)
    with pytest.raises(ResultsError, match="twice"):
        parse_objectives(["macs", "macs:min"], spec)


def test_user_errors_are_one_line(tmp_path):
    with pytest.raises(ResultsError, match="no such run dir") as missing:
        load_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResultsError, match="not a run dir") as empty:
        load_run(tmp_path / "empty")
    run_dir = write_run(tmp_path, mixed_trials())
    shutil.copy(run_dir / "spec.yaml", tmp_path / "empty" / "spec.yaml")
    with pytest.raises(ResultsError, match="no trials.parquet yet") as fresh:
        load_run(tmp_path / "empty")
    with pytest.raises(ResultsError, match="no metric spike_rate") as metric:
        analyze_run(run_dir, ["val_accuracy:max", "spike_rate:min"])
    for err in (missing, empty, fresh, metric):
        assert "\n" not in str(err.value)


def test_front_summary_counts_the_front_and_its_hypervolume():
    rng = np.random.default_rng(3)
    points = rng.random((40, 3))
    points[5] = np.nan  # a failed trial
    directions = ["max", "min", "min"]
    reference = [0.0, 1.0, 1.0]
    size, volume = front_summary(points, directions, reference)
    full = compute_front(points, ["a", "b", "c"], directions, reference)
    assert size == len(full.front) and volume == pytest.approx(full.hypervolume)
    assert front_summary(np.empty((0, 2)), ["max", "min"], [0.0, 1.0]) == (0, 0.0)


def test_run_front_with_other_objectives_uses_their_own_reference(tmp_path):
    run = load_run(write_run(tmp_path, mixed_trials()))
    objectives = (Objective(metric="val_accuracy", mode="max"), Objective(metric="macs", mode="min"))
    front = run_front(run, objectives)
    assert front.names == ("val_accuracy", "macs")
    assert front.reference.objectives == ("val_accuracy", "macs")
    with pytest.raises(ValueError, match="reference is for"):
        run_front(run, run.spec.objectives, reference=front.reference)
