"""Every entry of the sampler table (``search.samplers.SAMPLERS``) keeps the sweep's promises.

Run on a tiny spec through plain Optuna (the spec's define-by-run space, ask and tell; no Ray):

- **seeded determinism**: two fresh studies with the same seed, told the same outcomes, are
  proposed the same parameters (and another seed gives others);
- **it pickles** (Ray Tune pickles the searcher with the sweep): a sampler that pickles its
  state goes on exactly as the original; one pickled as its recipe
  (:class:`search.samplers.RecipeSampler`) goes on from the study;
- **a reopened study proposes nothing twice**: a study reopened from its storage with the
  sampler rebuilt as the sweep rebuilds it (``make_sampler(spec, held=...)``: the seed of
  :func:`search.samplers.reopened_seed`) is proposed no parameters it already holds, where a
  seeded sampler would otherwise start its sequence again (the random start-up); the grid goes
  on to the rest of the grid.
"""

from __future__ import annotations

import math
import pickle
import warnings

import optuna
import pytest

from search.samplers import SAMPLERS, make_sampler
from search.space import define_by_run
from search.spec import SpecError, parse_spec
from search.static_costs import static_cost_model
from tests.conftest import tiny_spec

optuna.logging.set_verbosity(optuna.logging.WARNING)

#: A space with continuous parameters: two proposals coincide only if a sampler repeats itself.
CONTINUOUS = {"model.groups": {"choice": [2, 4]}, "model.p_inter": {"float": [0.0, 0.5]}, "optim.lr": {"log": [1e-3, 1e-2]}}
#: A finite space (20 points), for samplers that need one.
FINITE = {"model.groups": {"choice": [2, 4]}, "model.p_inter": {"float": [0.0, 0.4], "step": 0.1}, "model.depth": {"int": [1, 2]}}
#: Options that let a sampler leave its random start-up within a few trials (speed only).
QUICK = {
    "tpe": {"n_startup_trials": 3},
    "gp": {"n_startup_trials": 3},
    "cost_aware": {"n_startup_trials": 3, "n_candidates": 64},
    "nsga2": {"population_size": 4},
    "nsga3": {"population_size": 4},
}


def _spec(name: str, seed: int = 0):
    """The tiny spec under sampler ``name``: the continuous space, or the finite one if the sampler needs it."""
    for space in (CONTINUOUS, FINITE):
        raw = tiny_spec(space=space, sampler={"name": name, "options": QUICK.get(name, {})})
        raw["fixed"] = {"model.width": 32, "optim.batch_size": 128} if space is FINITE else raw["fixed"]
        raw["run"] = {"num_samples": 20, "seed": seed}
        try:
            return parse_spec(raw)
        except SpecError:
            if space is FINITE:
                raise
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def info():
    from trainables.data import check_available

    return check_available(tiny_spec()["data"])


def _outcome(params) -> list[float]:
    """A synthetic, deterministic (accuracy, MACs) for a parameter set."""
    accuracy = 0.5 + 0.05 * params["model.groups"] + 0.2 * params["model.p_inter"] - 0.05 * (math.log10(params.get("optim.lr", 3e-3)) + 2.5) ** 2
    macs = 100.0 * params["model.groups"] * params.get("model.depth", 2) + 1000.0 * params["model.p_inter"]
    return [accuracy, macs]


def _study(spec, info, seed: int | None = None, storage=None, held: int = 0) -> optuna.Study:
    sampler = make_sampler(spec, seed=seed, costs=static_cost_model(spec, info), held=held)
    return optuna.create_study(study_name="table", storage=storage, directions=["maximize", "minimize"], sampler=sampler, load_if_exists=True)


def _run(study: optuna.Study, spec, n: int, restore_at: int | None = None) -> list[dict]:
    """Ask ``n`` trials and tell each its outcome; pickle and restore the sampler before trial ``restore_at``."""
    space = define_by_run(spec)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k in range(n):
            if k == restore_at:
                study.sampler = pickle.loads(pickle.dumps(study.sampler))
            trial = study.ask()
            space(trial)
            out.append(dict(trial.params))
            study.tell(trial, _outcome(trial.params))
    return out


def _key(params: dict) -> tuple:
    return tuple(sorted(params.items()))


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_the_same_seed_gives_the_same_suggestions(name, info):
    spec = _spec(name)
    first = _run(_study(spec, info, seed=0), spec, 8)
    again = _run(_study(spec, info, seed=0), spec, 8)
    assert again == first
    other = _run(_study(spec, info, seed=1), spec, 8)
    assert other != first, "another seed must give other suggestions"


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_a_sampler_pickles_and_its_copy_goes_on(name, info):
    from search.samplers import RecipeSampler

    spec = _spec(name)
    plain = _run(_study(spec, info, seed=0), spec, 8)
    study = _study(spec, info, seed=0)
    restored = _run(study, spec, 8, restore_at=4)
    if isinstance(study.sampler, RecipeSampler):  # built again from its recipe: its random state starts again
        assert restored[:4] == plain[:4] and all(set(p) == set(plain[0]) for p in restored)
    else:
        assert restored == plain


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_a_reopened_study_is_proposed_nothing_it_already_holds(name, info, tmp_path):
    spec = _spec(name)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    before = _run(_study(spec, info, storage=storage), spec, 2)  # interrupted in the random start-up
    held = len(optuna.load_study(study_name="table", storage=storage).trials)
    after = _run(_study(spec, info, storage=storage, held=held), spec, 2)
    assert not [p for p in after if _key(p) in {_key(q) for q in before}], (before, after)
    assert len({_key(p) for p in before + after}) == 4
    if name == "grid":  # reopened again: the rest of the grid, then every point once
        rest = _run(_study(spec, info, storage=storage, held=4), spec, spec.grid_size() - 4)
        assert len({_key(p) for p in before + after + rest}) == spec.grid_size()
