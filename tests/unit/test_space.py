"""The define-by-run space: conditionals, dependent ranges, seeded determinism."""

from __future__ import annotations

import pickle

import optuna
import pytest

from search.samplers import SAMPLERS
from search.space import define_by_run, is_active, sample_configs, trial_config
from search.spec import parse_spec
from tests.conftest import tiny_spec

#: Every sampler of the table that takes any space (the grid needs a finite, unconditional one: its own test below).
ANY_SPACE = [name for name in SAMPLERS if name != "grid"]

CONDITIONAL_SPACE = {
    "model.kind": {"choice": ["g2g", "dense", "er"]},
    "model.groups": {"choice": [2, 4, 8], "when": {"model.kind": ["g2g", "er"]}},
    "model.grouping": {"choice": ["index", "mixer"], "when": {"model.kind": "g2g"}},
    "model.p_inter": {"float": [0.0, 0.5], "when": {"model.kind": "g2g"}},
    "model.depth": {"int": [1, 4]},
    "model.width": {"int": [8, 64], "step": 8, "when": {"model.kind": "dense"}},
}


def _spec(sampler="random", space=None, seed=0, n=60):
    raw = tiny_spec(space=space or CONDITIONAL_SPACE, sampler={"name": sampler})
    raw["fixed"] = {"optim.batch_size": 64}
    raw["run"] = {"num_samples": n, "seed": seed}
    return parse_spec(raw)


@pytest.mark.parametrize("sampler", ANY_SPACE)
def test_conditionals_never_sample_inactive_parameters(sampler):
    spec = _spec(sampler)
    configs = sample_configs(spec, 60)
    kinds = {c["model.kind"] for c in configs}
    assert kinds == {"g2g", "dense", "er"}, "every branch should be explored in 60 draws"
    for params in configs:
        kind = params["model.kind"]
        assert ("model.groups" in params) == (kind in ("g2g", "er")), params
        assert ("model.grouping" in params) == (kind == "g2g"), params
        assert ("model.p_inter" in params) == (kind == "g2g"), params
        assert ("model.width" in params) == (kind == "dense"), params
        assert "model.depth" in params


def test_dependent_range_uses_the_earlier_value():
    raw_space = {"model.depth": {"int": [1, 6]}, "model.groups": {"int": [1, "$model.depth"]}}
    configs = sample_configs(_spec(space=raw_space), 80)
    assert all(1 <= c["model.groups"] <= c["model.depth"] for c in configs)
    assert any(c["model.groups"] > 1 for c in configs)


def test_empty_dependent_range_collapses_to_its_low_bound():
    raw_space = {"model.depth": {"int": [1, 3]}, "model.groups": {"int": [4, "$model.depth"]}}
    configs = sample_configs(_spec(space=raw_space), 20)
    assert {c["model.groups"] for c in configs} == {4}


@pytest.mark.parametrize("sampler", ANY_SPACE)
def test_same_spec_and_seed_give_identical_configs(sampler):
    spec = _spec(sampler, space=tiny_spec()["space"])
    first = sample_configs(spec, 8)
    assert first == sample_configs(spec, 8)
    other = sample_configs(_spec(sampler, space=tiny_spec()["space"], seed=1), 8)
    assert other != first, "a different seed must give different configs"


def test_grid_sampler_visits_every_combination_once():
    raw = tiny_spec(sampler="grid", space={"model.groups": {"choice": [2, 4]}, "seed": {"int": [0, 2]}})
    raw["run"] = {"seed": 0}
    spec = parse_spec(raw)
    combos = [(c["model.groups"], c["seed"]) for c in sample_configs(spec, spec.num_samples)]
    assert sorted(combos) == sorted((g, s) for g in (2, 4) for s in range(3))


def test_condition_on_a_fixed_parameter():
    raw = tiny_spec(space={"model.p_inter": {"float": [0, 0.3], "when": {"model.kind": "g2g"}}, "optim.lr": {"log": [1e-3, 1e-2]}})
    raw["fixed"] = {"model.kind": "dense"}
    configs = sample_configs(parse_spec(raw), 5)
    assert all("model.p_inter" not in c for c in configs)


def test_is_active_when_the_parent_is_itself_inactive():
    spec = _spec()
    assert not is_active(spec.space["model.grouping"], {})
    assert is_active(spec.space["model.grouping"], {"model.kind": "g2g"})
    assert not is_active(spec.space["model.grouping"], {"model.kind": "dense"})


def test_define_by_run_is_picklable_and_suggests_into_optuna():
    fn = pickle.loads(pickle.dumps(define_by_run(_spec())))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    trial = study.ask()
    fn(trial)
    assert "model.kind" in trial.params


def test_trial_config_merges_defaults_base_and_params():
    spec = _spec()
    config = trial_config(spec, {"model.kind": "dense", "model.depth": 2, "model.width": 9})
    assert config["model"]["kind"] == "dense" and config["model"]["width"] == 9
    assert config["model"]["grouping"] == "index", "inactive parameters keep the family default"
    assert config["optim"]["batch_size"] == 64 and config["budget"]["epochs"] == 3


def test_trial_config_keeps_fixed_values_beside_sampled_ones_of_the_same_section():
    raw = tiny_spec(space={"model.kind": {"choice": ["g2g", "dense"]}})
    raw["fixed"] = {"model.groups": 8, "model.width": 64}
    config = trial_config(parse_spec(raw), {"model.kind": "g2g"})
    assert config["model"]["kind"] == "g2g" and config["model"]["groups"] == 8 and config["model"]["width"] == 64
