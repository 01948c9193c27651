"""MO-ASHA: the pure rung ranking against brute force, and the scheduler's bookkeeping."""

from __future__ import annotations

import itertools
import math
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ray.tune.schedulers import TrialScheduler

from search.schedulers.mo_asha import (
    MultiObjectiveASHA,
    crowding_distance,
    eps_net_order,
    promotes,
    rung_keys,
    rung_milestones,
    rung_position,
)
from search.spec import Constraint


def _dominates(a, b) -> bool:
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def _brute_layers(z) -> list[int]:
    """Pareto layers by peeling: layer L holds the points no remaining point dominates."""
    remaining, layer, out = set(range(len(z))), 0, [0] * len(z)
    while remaining:
        front = {i for i in remaining if not any(_dominates(z[j], z[i]) for j in remaining)}
        for i in front:
            out[i] = layer
        remaining -= front
        layer += 1
    return out


points = st.lists(
    st.tuples(*[st.integers(0, 5).map(float)] * 2), min_size=1, max_size=12
)  # small integer grid: many ties and duplicates


@settings(max_examples=200, deadline=None)
@given(points, st.sampled_from(["crowding", "eps_net"]))
def test_layers_of_feasible_results_match_brute_force(rows, tie_break):
    z = np.array(rows)
    keys = rung_keys(z, np.zeros(len(z)), tie_break)
    assert (keys[:, 0] == 0).all()
    assert keys[:, 2].astype(int).tolist() == _brute_layers(rows)


@settings(max_examples=200, deadline=None)
@given(points, st.tuples(st.integers(0, 5).map(float), st.integers(0, 5).map(float)), st.sampled_from([2.0, 3.0, 4.0]))
def test_promotion_follows_dominance_counts(rows, new, rf):
    """Dominated by enough recorded results: stopped. Dominated by none of them and on the front
    with few enough others: continues. Whatever the tie-break."""
    recorded = np.array(rows)
    k = len(rows) + 1
    quota = math.ceil(k / rf)
    dominators = sum(_dominates(r, new) for r in rows)
    for tie_break in ("crowding", "eps_net"):
        decision = promotes(recorded, np.zeros(len(rows)), np.array(new), 0.0, rf, tie_break)
        if dominators >= quota:
            assert not decision, f"{new} is dominated by {dominators} of {k} results (quota {quota})"
        layer0 = [r for r in rows if not any(_dominates(s, r) for s in [*rows, new])]
        if dominators == 0 and len(layer0) < quota:
            assert decision, f"{new} is on the front, which holds fewer than {quota} others"


def test_position_is_the_new_results_own_rank():
    """Minimising, [1,1] dominates [2,2]..[5,5]: it continues (Syne Tune 0.16 stopped it)."""
    recorded = np.array([[2, 2], [3, 3], [4, 4], [5, 5]], dtype=float)
    for tie_break in ("crowding", "eps_net"):
        assert promotes(recorded, np.zeros(4), np.array([1.0, 1.0]), 0.0, 2.0, tie_break)
        assert not promotes(recorded, np.zeros(4), np.array([6.0, 6.0]), 0.0, 2.0, tie_break)
        # Third of five on a chain: ceil(5/2) = 3 continue, so position 2 continues, 3 does not.
        assert promotes(recorded, np.zeros(4), np.array([3.5, 3.5]), 0.0, 2.0, tie_break)
        assert not promotes(recorded, np.zeros(4), np.array([4.5, 4.5]), 0.0, 2.0, tie_break)


def test_bottom_half_is_stopped_top_half_continues():
    rng = np.random.default_rng(0)
    recorded = rng.uniform(0, 1, size=(20, 3))
    best = recorded.min(axis=0) - 0.1  # dominates every recorded result
    worst = recorded.max(axis=0) + 0.1  # dominated by every recorded result
    assert promotes(recorded, np.zeros(20), best, 0.0, 2.0)
    assert not promotes(recorded, np.zeros(20), worst, 0.0, 2.0)


def test_infeasible_results_rank_after_feasible_ones():
    recorded = np.array([[5.0, 5.0], [6.0, 6.0], [7.0, 7.0]])
    feasible = np.zeros(3)
    # A new result dominating everything but violating a constraint ranks after the feasible
    # three: position 3 of 4, quota ceil(4/2) = 2: stopped.
    assert not promotes(recorded, feasible, np.array([0.0, 0.0]), 0.5, 2.0)
    # Among infeasible results, the smaller total violation ranks first, whatever the objectives.
    infeasible = np.array([1.0, 2.0, 3.0])
    assert promotes(recorded, infeasible, np.array([9.0, 9.0]), 0.1, 2.0)
    assert not promotes(recorded, infeasible, np.array([0.0, 0.0]), 2.5, 2.0)
    # A feasible result among infeasible ones continues even when it is dominated by all of them.
    assert promotes(recorded, infeasible, np.array([9.0, 9.0]), 0.0, 2.0)
    keys = rung_keys(np.vstack([recorded, [[9.0, 9.0]]]), np.append(infeasible, 0.0))
    assert rung_position(keys, 3) == 0
    assert [rung_position(keys, i) for i in range(3)] == [1, 2, 3]


def test_missing_objectives_are_never_promoted_and_rank_last():
    recorded = np.array([[5.0, 5.0], [6.0, 6.0]])
    assert not promotes(recorded, np.zeros(2), np.array([math.nan, 0.0]), 0.0, 2.0)
    assert not promotes(np.empty((0, 2)), np.zeros(0), np.array([math.inf, 0.0]), 0.0, 2.0)
    keys = rung_keys(np.array([[math.nan, 1.0], [9.0, 9.0]]), np.array([0.0, math.nan]))
    assert rung_position(keys, 1) == 0 and rung_position(keys, 0) == 1  # infeasible before missing


def test_first_result_at_a_rung_continues():
    assert promotes(np.empty((0, 2)), np.zeros(0), np.array([3.0, 3.0]), 0.0, 3.0)


def test_crowding_distance_matches_its_definition():
    z = np.array([[0.0, 4.0], [1.0, 2.0], [3.0, 1.0], [4.0, 0.0]])
    d = crowding_distance(z)
    assert np.isinf(d[[0, 3]]).all()
    # Point 1: neighbours 0 and 2; gaps (3-0)/4 in x and (4-1)/4 in y.
    assert d[1] == pytest.approx(3 / 4 + 3 / 4)
    assert d[2] == pytest.approx((4 - 1) / 4 + (2 - 0) / 4)
    assert np.isinf(crowding_distance(z[:2])).all()


def test_crowding_prefers_the_less_crowded_of_one_layer():
    # One layer of five; the new point sits in a gap (continues), or on top of another (stopped).
    front = np.array([[0.0, 10.0], [1.0, 9.0], [1.1, 8.9], [9.0, 1.0], [10.0, 0.0]])
    assert promotes(front, np.zeros(5), np.array([5.0, 5.0]), 0.0, 2.0, "crowding")
    assert not promotes(front, np.zeros(5), np.array([1.05, 8.95]), 0.0, 2.0, "crowding")


def test_eps_net_order_brute_force():
    rng = np.random.default_rng(3)
    for _ in range(20):
        z = rng.uniform(size=(6, 2))
        order = eps_net_order(z)
        assert sorted(order.tolist()) == list(range(6))
        f = (z - z.min(0)) / (z.max(0) - z.min(0))
        picked = [int(np.argmin(np.linalg.norm(f, axis=1)))]
        while len(picked) < 6:
            rest = [i for i in range(6) if i not in picked]
            picked.append(max(rest, key=lambda i: (min(np.linalg.norm(f[i] - f[j]) for j in picked), -i)))
        assert [int(np.flatnonzero(order == s)[0]) for s in range(6)] == picked


@pytest.mark.parametrize(("grace", "max_t", "rf", "expected"), [(4, 12, 2, [4, 8]), (1, 9, 3, [1, 3]), (2, 8, 2, [2, 4]), (5, 5, 2, [])])
def test_milestones_are_ashas(grace, max_t, rf, expected):
    assert rung_milestones(grace, max_t, rf) == expected


def _trial(tid):
    return SimpleNamespace(trial_id=tid)


def test_scheduler_stops_the_dominated_and_records_each_rung_once():
    constraint = Constraint.parse("macs <= 100")
    sched = MultiObjectiveASHA(["acc", "energy"], ["max", "min"], [constraint], max_t=9, grace_period=1, reduction_factor=3)
    assert sched.milestones == [1, 3]
    good = {"epoch": 1, "acc": 0.9, "energy": 1.0, "macs": 50}
    assert sched.on_trial_result(None, _trial("a"), good) == TrialScheduler.CONTINUE
    worse = {"epoch": 1, "acc": 0.5, "energy": 2.0, "macs": 50}
    assert sched.on_trial_result(None, _trial("b"), worse) == TrialScheduler.STOP
    # A trade-off point joins the front of two: ceil(3/3) = 1 quota, and 'a' is as good a
    # boundary point, so the position is 0 (ties share) and it continues.
    tradeoff = {"epoch": 1, "acc": 0.95, "energy": 3.0, "macs": 50}
    assert sched.on_trial_result(None, _trial("c"), tradeoff) == TrialScheduler.CONTINUE
    # Infeasible, though it dominates everything: stopped.
    assert sched.on_trial_result(None, _trial("d"), {"epoch": 1, "acc": 1.0, "energy": 0.1, "macs": 500}) == TrialScheduler.STOP
    # Epoch 2 is between rungs; 'a' passed rung 1 already: continue.
    assert sched.on_trial_result(None, _trial("a"), {**good, "epoch": 2}) == TrialScheduler.CONTINUE
    assert sched.on_trial_result(None, _trial("a"), {**good, "epoch": 1}) == TrialScheduler.CONTINUE  # retried: judged once
    assert set(sched.rungs[1]) == {"a", "b", "c", "d"}
    assert sched.on_trial_result(None, _trial("a"), {**good, "epoch": 9}) == TrialScheduler.STOP  # full budget
    assert sched.stopped == 2


def test_scheduler_seeded_from_epoch_rows_judges_against_them():
    sched = MultiObjectiveASHA(["acc", "energy"], ["max", "min"], max_t=8, grace_period=2, reduction_factor=2, trial_key=lambda t: t.alias)
    rows = [{"trial_id": f"t{i}", "epoch": 2, "acc": 0.9 - 0.1 * i, "energy": 1.0 + i} for i in range(4)]
    rows.append({"trial_id": "t0", "epoch": 1, "acc": 0.1, "energy": 9.0})  # not a rung: ignored
    sched.seed(rows)
    assert set(sched.rungs[2]) == {f"t{i}" for i in range(4)}
    # A continued trial (alias t1) already judged at epoch 2 is not judged again.
    assert sched.on_trial_result(None, SimpleNamespace(trial_id="new-ray-id", alias="t1"), {"epoch": 2, "acc": 0.0, "energy": 99.0}) == TrialScheduler.CONTINUE
    # A new trial worse than all four seeded results is stopped.
    assert sched.on_trial_result(None, SimpleNamespace(trial_id="x", alias="x"), {"epoch": 2, "acc": 0.0, "energy": 99.0}) == TrialScheduler.STOP


def test_invalid_arguments_are_named():
    with pytest.raises(ValueError, match="tie_break"):
        rung_keys(np.zeros((1, 2)), np.zeros(1), "nearest")
    with pytest.raises(ValueError, match="reduction_factor"):
        MultiObjectiveASHA(["a"], ["max"], reduction_factor=1.0)
    with pytest.raises(ValueError, match="grace_period"):
        MultiObjectiveASHA(["a"], ["max"], max_t=4, grace_period=5)


def test_promotion_is_independent_of_recorded_order():
    rng = np.random.default_rng(7)
    recorded = rng.integers(0, 4, size=(7, 2)).astype(float)
    new = np.array([1.0, 2.0])
    decisions = {
        promotes(recorded[list(p)], np.zeros(7), new, 0.0, 3.0, tb)
        for p in itertools.islice(itertools.permutations(range(7)), 50)
        for tb in ("crowding",)
    }
    assert len(decisions) == 1


def test_a_judge_keeps_what_the_rank_would_stop_and_stops_nothing_itself():
    verdicts = {"a": False, "b": True, "c": None, "d": False}
    seen = []

    def judge(trial, epoch, result):
        seen.append((trial.trial_id, epoch))
        return verdicts[trial.trial_id]

    sched = MultiObjectiveASHA(["acc", "energy"], ["max", "min"], max_t=8, grace_period=2, reduction_factor=2, judge=judge)
    # The first result at a rung continues by rank; the judge's "not worth it" does not stop it.
    assert sched.on_trial_result(None, _trial("a"), {"epoch": 2, "acc": 0.9, "energy": 1.0}) == TrialScheduler.CONTINUE
    # Dominated: the rank would stop it; the judge keeps it.
    assert sched.on_trial_result(None, _trial("b"), {"epoch": 2, "acc": 0.1, "energy": 9.0}) == TrialScheduler.CONTINUE
    # No verdict, or "not worth it": the rank stops a dominated result.
    assert sched.on_trial_result(None, _trial("c"), {"epoch": 2, "acc": 0.0, "energy": 99.0}) == TrialScheduler.STOP
    assert sched.on_trial_result(None, _trial("d"), {"epoch": 2, "acc": 0.0, "energy": 98.0}) == TrialScheduler.STOP
    assert sched.on_trial_result(None, _trial("b"), {"epoch": 3, "acc": 0.1, "energy": 9.0}) == TrialScheduler.CONTINUE  # between rungs
    assert seen == [("a", 2), ("b", 2), ("c", 2), ("d", 2)]  # asked at rungs only
    assert set(sched.rungs[2]) == {"a", "b", "c", "d"}  # every result recorded either way
    assert (sched.judged, sched.overruled, sched.stopped) == (3, 1, 2)
    assert "3 judged by the model (1 kept against the rank)" in sched.debug_string()


def test_a_failing_judge_costs_a_warning_and_the_rank_decides_from_then_on(caplog):
    calls = []

    def judge(trial, epoch, result):
        calls.append(trial.trial_id)
        raise RuntimeError("model broke")

    sched = MultiObjectiveASHA(["acc", "energy"], ["max", "min"], max_t=8, grace_period=2, reduction_factor=2, judge=judge)
    assert sched.on_trial_result(None, _trial("a"), {"epoch": 2, "acc": 0.9, "energy": 1.0}) == TrialScheduler.CONTINUE
    assert sched.on_trial_result(None, _trial("b"), {"epoch": 2, "acc": 0.1, "energy": 9.0}) == TrialScheduler.STOP
    assert calls == ["a"] and "ranking instead" in caplog.text


def test_an_infeasible_or_missing_result_is_ranked_not_judged():
    constraint = Constraint.parse("macs <= 100")
    sched = MultiObjectiveASHA(["acc", "energy"], ["max", "min"], [constraint], max_t=8, grace_period=2, reduction_factor=2, judge=lambda *a: True)
    assert sched.on_trial_result(None, _trial("a"), {"epoch": 2, "acc": 0.9, "energy": 1.0, "macs": 50}) == TrialScheduler.CONTINUE
    assert sched.on_trial_result(None, _trial("b"), {"epoch": 2, "acc": 1.0, "energy": 0.1, "macs": 500}) == TrialScheduler.STOP
    assert sched.on_trial_result(None, _trial("c"), {"epoch": 2, "acc": None, "energy": 0.1, "macs": 50}) == TrialScheduler.STOP
    assert sched.judged == 1


def built_quickstart(tmp_path, monkeypatch, overrides):
    """The quickstart's Tune run as ``build_tuner`` builds it (no Ray needed), and the scheduler it made."""
    import search.schedulers as schedulers
    from search.spec import load_spec
    from search.sweep import build_tuner, prepare_sweep
    from tests.conftest import ROOT

    built = []
    real = schedulers.make_scheduler
    monkeypatch.setattr(schedulers, "make_scheduler", lambda spec: built.append(real(spec)) or built[-1])
    spec = load_spec(ROOT / "spaces" / "quickstart.yaml", overrides)
    tuner = build_tuner(prepare_sweep(spec, storage=str(tmp_path), name="qs"), progress=False, max_concurrent=2)
    (scheduler,) = built
    return tuner, scheduler


@pytest.mark.parametrize("promote", ["rank", "ehvi"])
def test_the_sweep_lets_the_cost_aware_model_judge_at_a_rung_only_with_promote_ehvi(tmp_path, monkeypatch, promote):
    tuner, scheduler = built_quickstart(tmp_path, monkeypatch, [f"scheduler.promote={promote}"])  # as --set types it
    assert isinstance(scheduler, MultiObjectiveASHA)
    if promote == "rank":
        assert scheduler.judge is None
    else:
        assert scheduler.judge == tuner.searcher.worth_continuing  # the sweep's own searcher, hence its sampler


def test_a_misspelt_promotion_is_refused_with_its_choices():
    from search.spec import SpecError, load_spec
    from tests.conftest import ROOT

    with pytest.raises(SpecError, match="promote") as caught:
        load_spec(ROOT / "spaces" / "quickstart.yaml", ["scheduler.promote=ehv"])
    assert "ehvi" in str(caught.value) and "rank" in str(caught.value)
