"""One conformance test over every entry of the scheduler table (search.schedulers.SCHEDULERS).

For each scheduler a spec may name: it is built from the spec, is one of Ray Tune's documented
scheduler classes, decides the same way twice on the same results (no hidden randomness), and a
copy refilled from the run dir's epoch rows (what ``--resume`` does) decides every later result
exactly as the uninterrupted scheduler does, never judging a continued trial again at a rung it
passed.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from ray.tune.schedulers import TrialScheduler

from search.schedulers import SCHEDULERS, make_scheduler
from search.spec import load_spec
from tests.conftest import ROOT

EPOCHS = 8


def _spec(name: str):
    return load_spec(ROOT / "spaces" / "quickstart.yaml", [f"scheduler.name={name}", f"budget.epochs={EPOCHS}", "scheduler.grace_period=1"])


class _Trial(SimpleNamespace):
    """A Tune trial as a scheduler sees it (hashable by identity, as Tune's are)."""

    __hash__ = object.__hash__


def _trial(trial_id: str, continues: str | None = None):
    runtime = {"continues": continues} if continues else {}
    return _Trial(trial_id=trial_id, config={"runtime": runtime}, status="RUNNING")


def _results(seed: int, n: int):
    """Learning curves of ``n`` trials: (trial id, epoch, result), interleaved as a sweep reports them."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        quality, energy = rng.uniform(0.3, 0.9), rng.uniform(0.01, 1.0)
        for epoch in range(1, EPOCHS + 1):
            acc = quality * (1 - 0.5 ** epoch)
            out.append((f"t{k}", epoch, {"epoch": epoch, "val_accuracy": acc, "val_loss": 1 - acc, "energy_uj": energy, "budget_fraction": epoch / EPOCHS}))
    order = rng.permutation(len(out))
    # keep each trial's epochs in order: sort by a random key per trial, then by epoch
    offsets = {f"t{k}": 0.75 * k + rng.uniform(0, 0.5) for k in range(n)}  # staggered starts, as with few workers
    return sorted(out, key=lambda r: (r[1] + offsets[r[0]], order[0]))


def _drive(scheduler, results, trials=None, stopped=None):
    """Feed results; a trial the scheduler stops reports nothing more. Returns every decision."""
    trials = {} if trials is None else trials
    stopped = set() if stopped is None else stopped
    decisions = []
    for trial_id, epoch, result in results:
        if trial_id in stopped:
            continue
        if trial_id not in trials:
            trials[trial_id] = _trial(trial_id)
            scheduler.on_trial_add(None, trials[trial_id])
        decision = scheduler.on_trial_result(None, trials[trial_id], result)
        decisions.append((trial_id, epoch, decision))
        if decision == TrialScheduler.STOP:
            stopped.add(trial_id)
            scheduler.on_trial_complete(None, trials[trial_id], result)
    return decisions


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_scheduler_conformance(name):
    spec = _spec(name)
    scheduler = make_scheduler(spec)
    assert isinstance(scheduler, TrialScheduler)
    results = _results(seed=0, n=16)

    first = _drive(scheduler, results)
    assert _drive(make_scheduler(spec), results) == first, "same results, same decisions"
    stops = [d for d in first if d[2] == TrialScheduler.STOP and d[1] < EPOCHS]
    if name == "none":
        assert not stops
    else:
        assert stops, "a scheduler with rungs stops some trials early on these curves"

    # Resume after the first half of the reports: a fresh scheduler refilled from the epoch rows.
    cut = len(results) // 2
    before, after = results[:cut], results[cut:]
    uninterrupted = make_scheduler(spec)
    trials, stopped = {}, set()
    reported = {(t, e) for t, e, _ in _drive(uninterrupted, before, trials, stopped)}
    stopped_before = set(stopped)
    expected = _drive(uninterrupted, after, trials, stopped)
    stopped = stopped_before

    resumed = make_scheduler(spec)
    rows = [{"trial_id": t, **r} for t, e, r in before if (t, e) in reported]  # the epoch rows the run dir holds
    if hasattr(resumed, "seed"):
        resumed.seed(rows)
    # Unfinished trials continue under new Ray trials that keep their run-dir ids.
    continued = {t: _trial(f"new-{t}", continues=t) for t in trials if t not in stopped and any(tt == t for tt, _, _ in before)}
    got = []
    seen_stop = set(stopped)
    for trial_id, epoch, result in after:
        if trial_id in seen_stop:
            continue
        trial = continued.get(trial_id)
        if trial is None:
            trial = continued[trial_id] = _trial(trial_id)
        if not getattr(trial, "added", False):
            resumed.on_trial_add(None, trial)
            trial.added = True
        decision = resumed.on_trial_result(None, trial, result)
        got.append((trial_id, epoch, decision))
        if decision == TrialScheduler.STOP:
            seen_stop.add(trial_id)
            resumed.on_trial_complete(None, trial, result)
    if name == "none" or hasattr(resumed, "seed"):
        assert got == expected, "a resumed scheduler decides as the uninterrupted one"
