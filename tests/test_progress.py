"""The sweep's progress lines: per-trial results, front size and hypervolume."""

from __future__ import annotations

import io
from types import SimpleNamespace

from analysis.pareto import front_summary, reference_point
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
