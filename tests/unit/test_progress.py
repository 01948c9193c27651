"""The sweep's progress lines: per-trial results, front size and hypervolume."""

from __future__ import annotations

import io
import math
import pickle
from types import SimpleNamespace

import numpy as np
import pytest

from analysis.pareto import front_summary, pareto_mask, reference_point
from search.progress import ProgressPrinter
from search.spec import Constraint


def _trial(tid, acc, energy, epoch=4):
    return SimpleNamespace(trial_id=tid, status="TERMINATED", last_result={"val_accuracy": acc, "energy_uj": energy, "epoch": epoch, "budget_fraction": epoch / 4})


def test_lines_show_front_and_a_fixed_reference_hypervolume():
    out = io.StringIO()
    printer = ProgressPrinter(10, ["val_accuracy", "energy_uj"], ["max", "min"], epochs=4, out=out,
                              constraints=[Constraint.parse("energy_uj <= 5")])
    printer.REFERENCE_AFTER = 3
    trials = [_trial("a", 0.9, 2.0), _trial("b", 0.5, 1.0, epoch=2), _trial("c", 0.8, 1.0),
              _trial("d", 0.95, 9.0), _trial("e", 0.7, 3.0)]
    for t in trials:
        printer.on_trial_complete(0, [], t)
    lines = out.getvalue().splitlines()
    assert "stopped early at epoch 2/4" in lines[1] and lines[1].endswith("| front 1")
    # After three finished trials the reference is fixed from all finite ones seen so far.
    expected_ref = reference_point([[0.9, 2.0], [0.5, 1.0], [0.8, 1.0]], ["max", "min"])
    assert lines[2].startswith("hypervolume reference")
    size, hv = front_summary([[0.9, 2.0], [0.8, 1.0]], ["max", "min"], expected_ref)
    assert lines[3].endswith(f"| front {size}, hv {hv:.4g}") and size == 2
    # d is infeasible (energy 9 > 5) and e is dominated: the front is unchanged.
    assert lines[4].endswith(f"| front 2, hv {hv:.4g}") and lines[5].endswith(f"| front 2, hv {hv:.4g}")
    assert printer.best == {"val_accuracy": 0.9, "energy_uj": 1.0}, "the running best ignores infeasible trials"


def _expected_suffix(front_points, finite, reference_after, total, reference, modes):
    """The line's ``| front ...`` part recomputed from every point so far (the brute-force way)."""
    if not front_points:
        return "", reference
    if reference is None and len(finite) >= min(reference_after, total):
        reference = reference_point(finite, modes)
    if reference is None:
        return f"  | front {int(pareto_mask(front_points, modes).sum())}", reference
    size, hv = front_summary(front_points, modes, reference)
    return f"  | front {size}, hv {hv:.4g}", reference


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("modes", [("max", "min"), ("max", "min", "max")])
def test_incremental_front_prints_what_recomputing_from_every_trial_prints(seed, modes):
    # Ties (exact copies of front points), dominated, infeasible, early-stopped and NaN trials;
    # the kept front must count every copy and give the same hypervolume as all points do.
    rng = np.random.default_rng(seed)
    metrics = ["val_accuracy", "energy_uj", "throughput"][: len(modes)]
    total = 60
    out = io.StringIO()
    printer = ProgressPrinter(total, metrics, list(modes), epochs=4, out=out,
                              constraints=[Constraint.parse("energy_uj <= 3")])
    printer.REFERENCE_AFTER = 5
    front_points, finite, reference, expected = [], [], None, []
    for i in range(total):
        values = rng.choice([0.0, 1.0, 2.0, 3.0, 4.0], size=len(modes)).tolist()
        if rng.random() < 0.1:
            values[int(rng.integers(len(modes)))] = math.nan
        epoch = 4 if rng.random() < 0.8 else 2
        last = dict(zip(metrics, values), epoch=epoch, budget_fraction=epoch / 4)
        if i == 20:
            printer = pickle.loads(pickle.dumps(printer))  # Ray Tune pickles its callbacks
            printer.out = out
        printer.on_trial_complete(0, [], SimpleNamespace(trial_id=f"t{i}", config={}, last_result=last))
        if all(math.isfinite(v) for v in values):
            finite.append(values)
            if epoch == 4 and values[1] <= 3:
                front_points.append(values)
        suffix, reference = _expected_suffix(front_points, finite, 5, total, reference, list(modes))
        expected.append(suffix)
    lines = [line for line in out.getvalue().splitlines() if not line.startswith("hypervolume reference")]
    assert len(lines) == total
    for line, suffix in zip(lines, expected):
        assert line.endswith(suffix) and ("| front" in line) == bool(suffix), (line, suffix)
    np.testing.assert_array_equal(printer._reference, reference)
    assert printer._front_size == int(pareto_mask(front_points, list(modes)).sum())


def test_running_count_follows_starts_retries_and_finishes():
    out = io.StringIO()
    printer = ProgressPrinter(5, ["val_accuracy", "energy_uj"], ["max", "min"], epochs=4, out=out, heartbeat_s=0.0)

    def trial(tid, status="RUNNING", **runtime):
        return SimpleNamespace(trial_id=tid, status=status, config={"runtime": runtime},
                               last_result={"val_accuracy": 0.5, "energy_uj": 1.0, "epoch": 4, "budget_fraction": 1.0},
                               error_file=None)

    def running():
        printer.on_step_end(0, [])  # the trials argument is not looked at any more
        return int(out.getvalue().splitlines()[-1].split(" finished, ")[1].split(" running")[0])

    a, b, c = trial("a"), trial("b"), trial("c", continues="old_c", continue_from="/ckpt")
    for t in (a, b, c):
        printer.on_trial_start(0, [], t)
    assert running() == 3
    a.status = "PENDING"
    printer.on_trial_recover(0, [], a)  # a failed and waits for a retry: not running
    assert running() == 2
    a.status = "RUNNING"
    printer.on_trial_start(0, [], a)  # the retry starts it again: counted once
    printer.on_trial_start(0, [], a)
    assert running() == 3
    b.status = "PAUSED"  # a scheduler pause has no callback: the status check leaves it out
    assert running() == 2
    b.status = "TERMINATED"
    printer.on_trial_complete(0, [], b)
    printer.on_trial_complete(0, [], trial("d", status="PENDING"))  # stopped before it started
    assert running() == 2
    printer.stopping = lambda: True
    c.status = "ERROR"
    printer.on_trial_error(0, [], c)  # the sweep is stopping: no error line, but not running
    assert running() == 1 and printer.done == 2
    assert "old_c continues from its checkpoint" in out.getvalue()
