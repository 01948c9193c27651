"""A candidate's improvement weighed by its chance past the scheduler's first rung.

``MultiObjectiveASHA.rung_tests`` answer as ``on_trial_result`` would; ``surviving`` weighs
scores by the model's chance of passing, exactly where it matters for the argmax; the sampler
uses them when the sweep wires the rungs in.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import optuna
import pytest
from ray.tune.schedulers import TrialScheduler
from scipy.stats import norm

from search.costaware import CostAwareSampler
from search.schedulers.mo_asha import MultiObjectiveASHA
from search.spec import Constraint
from search.surrogate import KnownModel, surviving


def _scheduler(constraints=()):
    return MultiObjectiveASHA(["acc", "energy"], ["max", "min"], list(constraints), max_t=12, grace_period=4, reduction_factor=2)


def test_the_first_rung_test_agrees_with_the_schedulers_own_decision():
    rng = np.random.default_rng(3)
    rows = [{"trial_id": f"t{i}", "epoch": 4, "acc": float(a), "energy": float(e)} for i, (a, e) in enumerate(rng.uniform(0, 1, (9, 2)))]
    for acc, energy in rng.uniform(0, 1, (40, 2)):
        sched = _scheduler()
        sched.seed(rows)
        (milestone, passes), (later, _) = sched.rung_tests()
        decision = sched.on_trial_result(None, SimpleNamespace(trial_id="new"), {"epoch": 4, "acc": float(acc), "energy": float(energy)})
        assert (milestone, later) == (4, 8)
        assert passes([float(acc), float(energy)]) == (decision == TrialScheduler.CONTINUE)


def test_the_rung_test_is_a_snapshot_and_counts_only_constraints_on_its_metrics():
    sched = _scheduler([Constraint.parse("macs <= 100"), Constraint.parse("energy <= 0.5")])
    _, empty = sched.rung_tests()[0]
    assert empty([0.0, 0.4])  # nothing recorded: the first result continues
    sched.seed([{"trial_id": f"t{i}", "epoch": 4, "acc": 0.9 - 0.1 * i, "energy": 0.1 + 0.05 * i, "macs": 50} for i in range(4)])
    assert empty([0.0, 0.4])  # taken before the rung filled
    _, passes = sched.rung_tests()[0]
    assert not passes([0.0, 0.4])  # dominated by all four
    assert passes([0.95, 0.05])
    # "macs" is not an objective: a candidate has no value for it and is not ranked as infeasible;
    # "energy <= 0.5" is, and a dominating but infeasible result ranks last.
    assert not passes([0.99, 0.6])
    assert MultiObjectiveASHA(["acc"], ["max"], max_t=4, grace_period=4).rung_tests() == []  # no rung below the budget


class _FixedGP:
    """A model whose prediction at the rung's fidelity is given per candidate (by its first input)."""

    def __init__(self, mu, sd):
        self.mu, self.sd, self.asked = np.asarray(mu), np.asarray(sd), []

    def predict(self, x, return_std=False):
        self.asked.append(x.copy())
        i = x[:, 0].astype(int)
        return self.mu[i], self.sd[i]


def _model(mu, sd):
    pool = [({"i": i}, (None, float(i))) for i in range(len(mu))]
    model = KnownModel(
        gp=_FixedGP(mu, sd), pool=pool, features=lambda p, c: np.array([[p["i"], 1.0]]), cost_sign=1.0, known=1,
        front=np.zeros((0, 2)), reference=(10.0, 0.0), full=12,
    )
    return model, pool


def test_scores_are_weighed_by_the_chance_of_passing_at_the_rungs_fidelity():
    model, pool = _model(mu=[0.5, 0.9, 0.2], sd=[0.1, 0.1, 0.05])
    bar = 0.6  # a result passes at 0.6 or more, whatever its cost
    out = surviving(model, pool, np.array([3.0, 2.0, 1.0]), [(0.5, lambda v, c: v >= bar)])
    assert all((x[:, -1] == 0.5).all() for x in model.gp.asked)  # predicted at the rung, not the full budget
    expected = [3.0 * norm.sf((bar - 0.5) / 0.1), 2.0 * norm.sf((bar - 0.9) / 0.1), 1.0 * norm.sf((bar - 0.2) / 0.05)]
    np.testing.assert_allclose(out, expected, rtol=0.02, atol=1e-12)
    assert int(np.argmax(out)) == 1  # the best-scored candidate is likely stopped: the second wins


def test_the_hardest_rung_decides_each_at_its_own_fidelity():
    model, pool = _model(mu=[0.5], sd=[0.1])
    seen = []
    rungs = [(0.3, lambda v, c: seen.append(0.3) or v >= 0.4), (0.7, lambda v, c: seen.append(0.7) or v >= 0.6)]
    (out,) = surviving(model, pool, np.array([1.0]), rungs)
    assert [x[0, -1] for x in model.gp.asked] == [0.3, 0.7] and set(seen) == {0.3, 0.7}
    assert out == pytest.approx(norm.sf((0.6 - 0.5) / 0.1), rel=0.02)  # the harder of sf(-1) and sf(1)


def test_only_as_many_candidates_are_weighed_as_the_argmax_needs():
    n = 40
    model, pool = _model(mu=[1.0] * n, sd=[0.01] * n)  # every candidate passes for sure
    scores = np.linspace(2.0, 1.0, n)
    out = surviving(model, pool, scores, [(0.5, lambda v, c: v >= 0.0)], batch=8)
    np.testing.assert_array_equal(out, scores)
    assert sum(len(x) for x in model.gp.asked) == 8  # the first batch's best already beats the rest
    # A cost the rank never lets through (e.g. dominated whatever its value): weight 0.
    model, pool = _model(mu=[1.0, 0.5], sd=[0.01, 0.01])
    out = surviving(model, pool, np.array([2.0, 1.0]), [(0.5, lambda v, c: c > 0.5)])
    assert out[0] == 0.0 and out[1] == pytest.approx(1.0)


def _toy(trial):
    w = trial.suggest_int("w", 1, 20)
    return 1.0 - 1.0 / w + 0.01 * trial.suggest_float("x", 0.0, 1.0), float(w)


def test_the_sampler_asks_the_rung_when_it_is_wired_and_never_proposes_what_surely_stops():
    asked = []

    def rungs():
        asked.append(1)
        return [(4, lambda values: True), (8, lambda values: values[1] <= 5.0)]  # the second lets only cheap results through

    sampler = CostAwareSampler(lambda p: [None, float(p["w"])], n_startup_trials=4, seed=0, rungs=rungs)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    dists = {"w": optuna.distributions.IntDistribution(1, 20), "x": optuna.distributions.FloatDistribution(0.0, 1.0)}
    for w in (2, 7, 12, 18):  # trained before, with learning curves up to the full budget
        acc = 1.0 - 1.0 / w
        curve = {epoch: acc * epoch / 12 for epoch in (1, 2, 4, 8, 12)}
        study.add_trial(optuna.trial.create_trial(params={"w": w, "x": 0.5}, distributions=dists, intermediate_values=curve, values=[acc, float(w)]))
    chosen = []
    for _ in range(4):
        trial = study.ask()
        values = _toy(trial)
        chosen.append(trial.params["w"])
        study.tell(trial, values)
    assert len(asked) == 4  # once per modelled suggestion
    assert all(w <= 5 for w in chosen), chosen


@pytest.mark.parametrize("scheduler", ["mo_asha", "none"])
def test_the_sweep_wires_mo_ashas_rungs_into_the_cost_aware_sampler(tmp_path, monkeypatch, scheduler):
    from tests.unit.test_mo_asha import built_quickstart

    tuner, made = built_quickstart(tmp_path, monkeypatch, [f"scheduler.name={scheduler}"])  # as --set types it
    sampler = tuner.searcher.study.sampler
    assert isinstance(sampler, CostAwareSampler)
    if scheduler == "mo_asha":
        assert sampler.rungs == made.rung_tests and [m for m, _ in sampler.rungs()] == [4, 8]
    else:
        assert sampler.rungs is None
