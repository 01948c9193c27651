"""The cost-aware sampler: its acquisition, its use of known costs, and its wiring to specs."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest

from analysis.pareto import hypervolume
from search.costaware import Affine, CostAwareSampler, contains, ehvi_2d, random_candidates

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _improvement(front, point, reference):
    """Brute force: hypervolume gained by adding ``point`` (cost min, value max)."""
    directions = ["min", "max"]
    before = hypervolume(front, directions, np.array(reference)) if len(front) else 0.0
    return hypervolume([*front, point], directions, np.array(reference)) - before


def test_ehvi_without_noise_is_the_exact_hypervolume_improvement():
    rng = np.random.default_rng(0)
    reference = (10.0, 0.0)
    front = [[2.0, 0.5], [5.0, 0.8], [7.0, 0.6], [3.0, 0.4]]  # dominated points included
    cost = rng.uniform(0, 11, 200)
    mu = rng.uniform(-0.2, 1.0, 200)
    got = ehvi_2d(mu, np.zeros(200), cost, np.array(front), reference)
    want = [_improvement(front, [c, m], reference) if c < reference[0] and m > reference[1] else 0.0 for c, m in zip(cost, mu)]
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_ehvi_is_the_mean_improvement_under_the_gaussian():
    rng = np.random.default_rng(1)
    reference = (10.0, 0.0)
    front = np.array([[2.0, 0.5], [5.0, 0.8]])
    mu, sigma, cost = np.array([0.6, 0.3, 0.9]), np.array([0.2, 0.4, 0.05]), np.array([3.0, 1.0, 6.0])
    got = ehvi_2d(mu, sigma, cost, front, reference)
    draws = rng.normal(size=20000)
    for i in range(3):
        values = mu[i] + sigma[i] * draws
        # The improvement is piecewise linear in the value: integrate it on the samples.
        mc = np.mean([_improvement(front.tolist(), [cost[i], v], reference) if v > 0 else 0.0 for v in values[:4000]])
        assert got[i] == pytest.approx(mc, rel=0.05)
    assert ehvi_2d(mu, sigma, cost, np.empty((0, 2)), reference).shape == (3,)


def _toy(trial):
    w = trial.suggest_int("w", 8, 256, step=8)
    d = trial.suggest_int("d", 1, 4)
    lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    acc = 1 - math.exp(-w * d / 200) - 0.3 * (math.log10(lr) + 2) ** 2 / 4
    return acc, float(w * d)


def _toy_costs(params):
    return [None, float(params["w"] * params["d"])]


def _hv(study):
    return hypervolume([t.values for t in study.trials if t.values], ["max", "min"], np.array([0.0, 1024.0]))


def test_it_beats_random_search_on_a_problem_whose_cost_it_knows():
    for seed in range(2):
        ours = optuna.create_study(directions=["maximize", "minimize"], sampler=CostAwareSampler(_toy_costs, seed=seed))
        ours.optimize(_toy, n_trials=30)
        rand = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=seed))
        rand.optimize(_toy, n_trials=30)
        assert _hv(ours) > _hv(rand)


def _rate(params):
    return 0.4 * math.exp(-1.5 * (params["th"] - 0.5))


def _spiking_toy(trial):
    """A spiking net's shape: energy = known floor + known span x a rate that training reveals."""
    w = trial.suggest_int("w", 8, 256, step=8)
    d = trial.suggest_int("d", 1, 4)
    th = trial.suggest_float("th", 0.5, 2.0)
    rate = _rate(trial.params)
    acc = 1 - math.exp(-w * d * (rate + 0.05) / 40)
    return acc, 0.1 * w * d + w * d * rate


def _spiking_costs(params):
    return [None, Affine(0.1 * params["w"] * params["d"], float(params["w"] * params["d"]))]


def test_a_cost_known_up_to_a_learnt_rate_is_modelled_not_handed_to_the_black_box():
    rng_ref = np.array([0.0, 1.0 * 256 * 4 * 0.5])

    def hv(study):
        return hypervolume([t.values for t in study.trials if t.values], ["max", "min"], rng_ref)

    for seed in range(2):
        sampler = CostAwareSampler(_spiking_costs, n_startup_trials=6, seed=seed)
        modes = []
        original = sampler.before_trial

        def spy(study, trial, original=original, sampler=sampler, modes=modes):
            original(study, trial)
            modes.append(sampler._modes[trial.number])

        sampler.before_trial = spy
        ours = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
        ours.optimize(_spiking_toy, n_trials=30)
        assert modes == ["random"] * 6 + ["plan"] * 24
        rand = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=seed))
        rand.optimize(_spiking_toy, n_trials=30)
        assert hv(ours) > hv(rand)
    assert Affine(1.0, 4.0).rate_of(3.0) == 0.5 and Affine(1.0, 0.0).rate_of(3.0) is None


def test_same_seed_same_suggestions():
    def run():
        study = optuna.create_study(directions=["maximize", "minimize"], sampler=CostAwareSampler(_toy_costs, seed=3, n_startup_trials=4))
        study.optimize(_toy, n_trials=10)
        return [t.params for t in study.trials]

    assert run() == run()


def test_it_never_proposes_a_candidate_known_infeasible():
    sampler = CostAwareSampler(_toy_costs, is_feasible=lambda p: p["w"] * p["d"] <= 200, n_startup_trials=4, seed=0)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.optimize(_toy, n_trials=16)
    modelled = [t.params for t in study.trials[4:]]
    assert all(p["w"] * p["d"] <= 200 for p in modelled)


def test_pending_trials_are_not_proposed_again():
    """Concurrent asks (trials not yet told) each get their own candidate."""
    sampler = CostAwareSampler(_toy_costs, n_startup_trials=4, seed=0)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.optimize(_toy, n_trials=6)
    asked = []
    for _ in range(6):
        trial = study.ask()
        _toy(trial)  # suggests the parameters (define-by-run), not told
        asked.append(tuple(sorted(trial.params.items())))
    assert len(set(asked)) == len(asked)
    assert not set(asked) & {tuple(sorted(t.params.items())) for t in study.trials[:6]}


def test_hands_over_to_its_fallback_at_scale_and_when_it_cannot_model():
    calls = []

    class Recording(optuna.samplers.RandomSampler):
        def sample_independent(self, study, trial, name, dist):
            calls.append(trial.number)
            return super().sample_independent(study, trial, name, dist)

    sampler = CostAwareSampler(_toy_costs, n_startup_trials=2, switch_after=5, fallback=Recording(seed=0), seed=0)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.optimize(_toy, n_trials=8)
    assert sorted(set(calls)) == [5, 6, 7]

    calls.clear()  # nothing known before training: every modelled trial is the black-box sampler's
    sampler = CostAwareSampler(lambda p: [None, None], n_startup_trials=2, blackbox=Recording(seed=0), seed=0)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.optimize(_toy, n_trials=5)
    assert sorted(set(calls)) == [2, 3, 4]


def test_without_known_costs_it_is_optunas_gp_until_it_switches():
    sampler = CostAwareSampler(lambda p: [None, None], n_startup_trials=3, switch_after=6, seed=0)
    assert isinstance(sampler._blackbox, optuna.samplers.GPSampler)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    modes = []
    original = sampler.before_trial

    def spy(study, trial):
        original(study, trial)
        modes.append(sampler._modes[trial.number])

    sampler.before_trial = spy
    study.optimize(_toy, n_trials=8)
    assert modes == ["random"] * 3 + ["blackbox"] * 3 + ["fallback"] * 2


def test_bad_options_are_refused_with_their_name():
    with pytest.raises(ValueError, match="n_candidates"):
        CostAwareSampler(_toy_costs, n_candidates=0)
    with pytest.raises(ValueError, match="switch_after"):
        CostAwareSampler(_toy_costs, n_startup_trials=10, switch_after=5)


def test_random_candidates_stay_inside_their_distributions():
    dists = {
        "a": optuna.distributions.IntDistribution(1, 64, log=True),
        "b": optuna.distributions.FloatDistribution(0.0, 1.0, step=0.25),
        "c": optuna.distributions.CategoricalDistribution([2, 4, 8]),
        "d": optuna.distributions.IntDistribution(32, 256, step=32),
    }
    draws = random_candidates(dists)(np.random.default_rng(0), 500)
    for params, _ in draws:
        for name, dist in dists.items():
            assert contains(dist, params[name]), (name, params[name])
    assert {p["a"] for p, _ in draws} >= {1, 64}  # both ends reachable
    assert not contains(dists["b"], 0.3) and not contains(dists["c"], 3) and not contains(dists["d"], 48) and not contains(dists["a"], 65)


# -- the spec's sampler ---------------------------------------------------------------------------


def _spec(path, **changes):
    from search.spec import load_spec

    return load_spec(path, [f"{k}={v}" for k, v in changes.items()])


def test_space_draw_respects_conditionals_and_dependent_ranges():
    from search.static_costs import SpaceDraw

    spec = _spec("spaces/sne_quickstart.yaml")
    for params, dists in SpaceDraw(spec)(np.random.default_rng(0), 300):
        assert 1 <= params["sne.active"] <= params["sne.students"]
        assert ("student.width" in params) == (params["student.shape"] == "mlp")
        assert ("student.channels" in params) == (params["student.shape"] == "conv")
        assert set(dists) == set(params)


def test_static_objectives_are_the_static_costs_where_they_stand_for_the_report():
    from search.space import trial_config
    from search.static_costs import SpaceDraw, StaticCostModel
    from trainables.data import check_available

    spec = _spec("spaces/quickstart.yaml", constraints='["macs <= 10000"]')
    info = check_available(spec.data.model_dump())
    costs = StaticCostModel(spec, info)
    for params, _ in SpaceDraw(spec)(np.random.default_rng(0), 20):
        static = spec.entry.static_costs_of(trial_config(spec, params), info)
        assert costs.objectives(params) == [None, static["energy_uj"].value]  # accuracy is learnt
        assert costs.feasible(params) == (static["macs"].value <= 10000)

    # SNE energy depends on spikes: known up to the spike rate (real-valued MACs + synops at rate 1)
    sne = _spec("spaces/sne_quickstart.yaml")
    sne_info = check_available(sne.data.model_dump())
    sne_costs = StaticCostModel(sne, sne_info)
    for params, _ in SpaceDraw(sne)(np.random.default_rng(0), 3):
        static = sne.entry.static_costs_of(trial_config(sne, params), sne_info)["energy_uj"]
        assert sne_costs.objectives(params) == [None, Affine(static.value, static.span)]
        assert 0 < static.value < static.value + static.span


def test_the_shipped_quickstart_uses_the_cost_aware_sampler():
    """Built from the shipped quickstart and its data, the sampler is the cost-aware one and uses
    the static costs: past its random start-up it proposes only candidates whose static costs can
    meet the constraint, where the start-up drew some that cannot."""
    from search.samplers import make_sampler
    from search.space import define_by_run
    from search.static_costs import static_cost_model
    from trainables.data import check_available

    spec = _spec("spaces/quickstart.yaml", constraints='["macs <= 6000"]')
    info = check_available(spec.data.model_dump())
    sampler = make_sampler(spec, costs=static_cost_model(spec, info))
    assert isinstance(sampler, CostAwareSampler)

    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    space = define_by_run(spec)
    startup = spec.sampler.options["n_startup_trials"]
    macs = []
    for _ in range(startup + 8):
        trial = study.ask()
        space(trial)
        result = _fake_result(spec, trial.params, info)
        macs.append(result["macs"])
        study.tell(trial, [result["val_accuracy"], result["energy_uj"]])
    assert any(m > 6000 for m in macs[:startup]), "the random start-up must draw candidates the constraint rules out"
    assert all(m <= 6000 for m in macs[startup:]), macs[startup:]
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == len(study.trials)


# -- in the sweep's searcher -----------------------------------------------------------------------


def _fake_result(spec, params, info):
    """A plausible full-budget result: accuracy grows with the net's MACs (counted from the config)."""
    from search.space import trial_config

    macs = spec.entry.static_costs_of(trial_config(spec, params), info)["macs"].value
    return {"val_accuracy": 0.5 + 0.4 * math.tanh(macs / 3000), "energy_uj": 4.6e-6 * macs, "macs": macs, "budget_fraction": 1.0, "epoch": 12}


def test_in_a_constrained_sweep_it_proposes_nothing_the_searcher_must_refuse():
    from search.searcher import SweepSearcher
    from trainables.data import check_available

    spec = _spec("spaces/quickstart.yaml", constraints='["macs <= 6000"]', **{"run.num_samples": 14})
    info = check_available(spec.data.model_dump())
    refused: list[dict] = []
    searcher = SweepSearcher(spec, study_name="ca", num_samples=14, data_info=info, on_refused=refused.append)
    for k in range(14):
        searcher.suggest(f"t{k}")
        if k == spec.sampler.options["n_startup_trials"] - 1:
            after_start_up = len(refused)
        searcher.on_trial_complete(f"t{k}", _fake_result(spec, searcher.params_of(f"t{k}"), info))
    assert len(refused) == after_start_up  # random start-up candidates may be refused, modelled ones never


def test_two_workers_never_get_the_same_candidate():
    """Concurrency 2 through the sweep's searcher: each ask while another trial runs gets a new point."""
    from search.searcher import SweepSearcher
    from trainables.data import check_available

    spec = _spec("spaces/quickstart.yaml", **{"run.num_samples": 14})
    info = check_available(spec.data.model_dump())
    searcher = SweepSearcher(spec, study_name="ca2", num_samples=14, data_info=info)
    seen, running = [], []
    for k in range(14):
        searcher.suggest(f"t{k}")
        params = dict(searcher.params_of(f"t{k}"))
        seen.append(tuple(sorted(params.items())))
        running.append((f"t{k}", params))
        if len(running) == 2:  # the older one finishes while the newer one runs on
            trial_id, old = running.pop(0)
            searcher.on_trial_complete(trial_id, _fake_result(spec, old, info))
    assert len(set(seen)) == len(seen)
    assert isinstance(searcher.study.sampler, CostAwareSampler)


def test_a_warm_started_study_scores_candidates_against_its_own_front(monkeypatch):
    """Told trials (an earlier sweep's) teach the model; the front a candidate must improve is the sweep's own."""
    import search.costaware as costaware
    import search.surrogate as surrogate
    from search.study import WARM_ATTR, is_own_trial

    fronts = []
    real = costaware.ehvi_2d
    for module in (costaware, surrogate):  # the known-cost model scores in search.surrogate
        monkeypatch.setattr(module, "ehvi_2d", lambda mu, sigma, cost, front, ref: fronts.append(np.array(front)) or real(mu, sigma, cost, front, ref))
    earlier = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=1))
    earlier.optimize(_toy, n_trials=6)
    for scored_against in (None, is_own_trial):
        study = optuna.create_study(directions=["maximize", "minimize"], sampler=CostAwareSampler(_toy_costs, n_startup_trials=4, seed=0, scored_against=scored_against))
        for t in earlier.trials:  # told as a warm start tells them
            study.add_trial(optuna.trial.create_trial(params=t.params, distributions=t.distributions, values=t.values, user_attrs={WARM_ATTR: f"earlier#{t.number}"}))
        study.optimize(_toy, n_trials=3)
        fronts.clear()
        study.optimize(_toy, n_trials=1)
        scored = [(t.values[1], t.values[0]) for t in study.trials[:-1] if scored_against is None or is_own_trial(t)]
        assert len(scored) == (9 if scored_against is None else 3)
        assert sorted(map(tuple, fronts[-1].tolist())) == sorted(scored)


def _curve_study(sampler, n_trials=11, stop_at=(2, 4), storage=None):
    """Trials with learning curves over 8 epochs (every third stopped early: PRUNED), then one ask."""
    from optuna.distributions import FloatDistribution, IntDistribution

    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler, storage=storage)
    rng = np.random.default_rng(0)
    dists = {"w": IntDistribution(8, 256, step=8), "d": IntDistribution(1, 4), "lr": FloatDistribution(1e-4, 1e-1, log=True)}
    for k in range(n_trials):
        params = {"w": int(8 * rng.integers(1, 33)), "d": int(rng.integers(1, 5)), "lr": float(10 ** rng.uniform(-4, -1))}
        acc = 1 - math.exp(-params["w"] * params["d"] / 200) - 0.3 * (math.log10(params["lr"]) + 2) ** 2 / 4
        stop = stop_at[k % len(stop_at)] if k % 3 == 2 else None
        curve = {epoch: acc * (1 - 0.5**epoch) for epoch in range(1, (stop or 8) + 1)}
        study.add_trial(
            optuna.trial.create_trial(
                params=params, distributions=dists, intermediate_values=curve,
                state=optuna.trial.TrialState.PRUNED if stop else optuna.trial.TrialState.COMPLETE,
                values=None if stop else [curve[8], float(params["w"] * params["d"])],
            )
        )
    _toy(study.ask())
    return study


def test_learning_curves_inform_the_model_at_their_epochs_and_candidates_are_predicted_at_full_budget():
    fits = []

    class Spy(CostAwareSampler):
        def _fit(self, x, y, **kwargs):
            fits.append((x, y))
            return super()._fit(x, y, **kwargs)

    _curve_study(Spy(_toy_costs, n_startup_trials=4, seed=0))
    x, y = fits[-1]  # fitted for the 12th trial, on the 11 told before it
    fidelity = x[:, -1]
    # each trial's last value (8 completed at full budget, 3 stopped at 2 or 4 of 8 epochs) plus its
    # curve at epochs 1, 2, 4 before its last: 8 x 3 + (2 stopped at 2: 1 each) + (1 stopped at 4: 2)
    assert np.isclose(fidelity, 1.0).sum() == 8
    assert len(y) == 11 + 8 * 3 + 2 * 1 + 1 * 2
    assert set(np.round(fidelity, 6)) == {0.0, round(math.log(2) / math.log(8), 6), round(math.log(4) / math.log(8), 6), 1.0}

    fits.clear()  # with room for the last values only, curves are left out; without curves, no fidelity input
    _curve_study(Spy(_toy_costs, n_startup_trials=4, seed=0, max_points=11))
    assert len(fits[-1][1]) == 11 and np.isclose(fits[-1][0][:, -1], 1.0).sum() == 8
    fits.clear()
    _curve_study(Spy(_toy_costs, n_startup_trials=4, seed=0, curves=False))
    assert len(fits[-1][1]) == 11 and fits[-1][0].shape[1] == x.shape[1] - 1


def _running(storage, study, params, curve):
    """A running trial with given parameters and learning curve, as the sweep's searcher stores it."""
    from optuna.distributions import FloatDistribution, IntDistribution

    study.enqueue_trial(params)
    trial = study.ask({"w": IntDistribution(8, 256, step=8), "d": IntDistribution(1, 4), "lr": FloatDistribution(1e-4, 1e-1, log=True)})
    assert trial.params == params
    # Trial.report is single-objective only: through the storage's public interface, as the searcher does.
    trial_id = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(study.study_name), trial.number)
    for epoch, value in curve.items():
        storage.set_trial_intermediate_value(trial_id, epoch, value)
    return trial.number


def test_a_running_trial_continues_when_its_curve_promises_more_of_the_front_per_epoch_than_a_new_candidate():
    def curve(params, epochs):  # the toy's own learning curve (as _curve_study's trials have)
        acc = 1 - math.exp(-params["w"] * params["d"] / 200) - 0.3 * (math.log10(params["lr"]) + 2) ** 2 / 4
        return {epoch: acc * (1 - 0.5**epoch) for epoch in range(1, epochs + 1)}

    for epoch in (2, 4):
        sampler = CostAwareSampler(_toy_costs, n_startup_trials=4, seed=0, n_local=0)  # new candidates: the pool's
        study = _curve_study(sampler, storage=(storage := optuna.storages.InMemoryStorage()))
        # On its way past the front (0.92 at cost 512, where the best finished trial of no more
        # cost has 0.60): worth its remaining epochs.
        good = {"w": 128, "d": 4, "lr": 0.01}
        assert sampler.worth_continuing(study, _running(storage, study, good, curve(good, epoch)), epoch, full=8) is True
        # Cheap, but below finished trials of lower cost: nothing of the front to gain.
        cheap = {"w": 32, "d": 1, "lr": 0.01}
        assert sampler.worth_continuing(study, _running(storage, study, cheap, curve(cheap, epoch)), epoch, full=8) is False
        # As costly as the costliest candidate (the reference): no improvement possible.
        costly = {"w": 248, "d": 4, "lr": 0.0001}
        assert sampler.worth_continuing(study, _running(storage, study, costly, curve(costly, epoch)), epoch, full=8) is False


def test_worth_continuing_leaves_the_decision_to_the_caller_where_the_model_cannot_say():
    sampler = CostAwareSampler(_toy_costs, n_startup_trials=20, seed=0)
    study = _curve_study(sampler, storage=(storage := optuna.storages.InMemoryStorage()))  # 11 observations: still starting up
    number = _running(storage, study, {"w": 16, "d": 1, "lr": 0.01}, {1: 0.9, 2: 0.95})
    assert sampler.worth_continuing(study, number, 2, full=8) is None
    sampler = CostAwareSampler(_toy_costs, n_startup_trials=4, seed=0)
    study = _curve_study(sampler, storage=(storage := optuna.storages.InMemoryStorage()))
    number = _running(storage, study, {"w": 16, "d": 1, "lr": 0.01}, {1: 0.9, 2: 0.95})
    assert sampler.worth_continuing(study, number, 8, full=8) is None  # at the full budget: nothing to decide
    study.tell(number, [0.95, 16.0])
    assert sampler.worth_continuing(study, number, 2, full=8) is None  # finished: not running any more
    # A cost known only up to a learnt rate: not this rule's (the caller ranks).
    affine = CostAwareSampler(lambda p: [None, Affine(1.0, float(p["w"]))], n_startup_trials=4, seed=0)
    study = _curve_study(affine, storage=(storage := optuna.storages.InMemoryStorage()))
    number = _running(storage, study, {"w": 16, "d": 1, "lr": 0.01}, {1: 0.9, 2: 0.95})
    assert affine.worth_continuing(study, number, 2, full=8) is None


def test_candidates_near_a_parent_keep_most_of_it_and_stay_in_the_space():
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from search.candidates import NEAR_CHANGE, near_value

    dists = {"w": IntDistribution(8, 256, step=8), "lr": FloatDistribution(1e-4, 1e-1, log=True), "g": CategoricalDistribution([2, 4, 8])}
    draw = random_candidates(dists)
    parent = {"w": 128, "lr": 0.01, "g": 4}
    children = [p for p, _ in draw.near(np.random.default_rng(0), [parent], 2000)]
    for name, d in dists.items():
        kept = np.mean([c[name] == parent[name] for c in children])
        assert kept == pytest.approx(1 - NEAR_CHANGE, abs=0.05) or (name == "w" and kept > 1 - NEAR_CHANGE)  # a step can round back
        assert all(contains(d, c[name]) for c in children)
    moved = [c["w"] for c in children if c["w"] != parent["w"]]
    assert np.median(np.abs(np.array(moved) - 128)) < 0.25 * (256 - 8)  # near, not uniform (median 62 would be)
    rng = np.random.default_rng(1)
    assert all(near_value(rng, dists["g"], 4) != 4 for _ in range(50))  # a categorical moves to another choice


def test_a_spec_space_drawn_near_a_parent_respects_its_conditions():
    from search.spec import load_spec
    from search.static_costs import SpaceDraw
    from tests.conftest import ROOT

    draw = SpaceDraw(load_spec(ROOT / "spaces" / "g2g_mnist1d.yaml"))
    rng = np.random.default_rng(0)
    parents = [p for p, _ in draw(rng, 20)]
    for params, dists in draw.near(rng, parents, 400):
        assert set(params) == set(dists)
        on = params["dst.enabled"]
        assert ("dst.grow" in params) == on and ("dst.fraction" in params) == on  # the conditions hold, moved or not
        assert all(contains(dists[name], value) for name, value in params.items())


def test_the_local_step_only_adds_to_what_the_pool_offers():
    chosen = {}
    for n_local in (0, 64):
        sampler = CostAwareSampler(_toy_costs, n_startup_trials=4, seed=0, n_local=n_local)
        study = _curve_study(sampler)
        trials = study.get_trials(deepcopy=False)
        observed = [t for t in trials if t.state != optuna.trial.TrialState.RUNNING and sampler._observation(t) is not None]
        model = sampler._known_model(study, -1, trials, observed)
        pool, scores = sampler._known_refined(model, trials)
        assert len(pool) == len(scores) >= len(model.pool)
        assert scores.max() >= model.candidate_scores().max()
        chosen[n_local] = (len(pool) - len(model.pool), scores.max())
    assert chosen[0][0] == 0 and chosen[64][0] > 0


def test_an_affine_cost_is_refined_near_its_best_candidates_too():
    from optuna.distributions import FloatDistribution, IntDistribution

    scored = []
    real = CostAwareSampler._refined

    def spy(self, pool, scores, score, usable, trials):
        out = real(self, pool, scores, score, usable, trials)
        scored.append((len(pool), out))
        return out

    for n_local in (0, 64):
        scored.clear()
        sampler = CostAwareSampler(lambda p: [None, Affine(1.0, float(p["w"]))], n_startup_trials=4, seed=0, n_local=n_local)
        sampler._refined = spy.__get__(sampler)
        study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
        dists = {"w": IntDistribution(8, 256, step=8), "th": FloatDistribution(0.0, 1.0)}
        rng = np.random.default_rng(0)
        for _ in range(8):
            params = {"w": int(8 * rng.integers(1, 33)), "th": float(rng.uniform())}
            energy = 1.0 + params["w"] * _rate(params)
            study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, values=[1 - math.exp(-params["w"] / 64), energy]))
        trial = study.ask()
        trial.suggest_int("w", 8, 256, step=8), trial.suggest_float("th", 0.0, 1.0)
        assert sampler._modes[trial.number] == "plan"
        (n_pool, (pool, scores)), = scored
        assert len(pool) == len(scores) and (len(pool) > n_pool) == (n_local > 0)
        assert all(isinstance(a, Affine) for _, a in pool)
