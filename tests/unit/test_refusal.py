"""Candidates whose costs known before training break a constraint are never trained.

The searcher computes a candidate's static costs (the family's registry entry, the same counting
code its reports use), refuses a provably infeasible one, tells the study so the sampler learns
from it, records it, and asks again: ``num_samples`` counts trained candidates only.
"""

from __future__ import annotations

import math

import pytest
from optuna.trial import TrialState
from ray.tune.search import Searcher

from search.searcher import SweepSearcher
from search.study import REFUSED_ATTR, refused_id
from search.space import trial_config
from search.spec import Constraint, load_spec, provably_broken
from tests.conftest import ROOT
from trainables.costs import model_costs
from trainables.data import check_available
from trainables.report import REFUSED_STATE, StaticCost

QUICKSTART = ROOT / "spaces" / "quickstart.yaml"


@pytest.mark.parametrize(
    ("text", "relation", "value", "broken"),
    [
        ("macs <= 100", "exact", 150.0, True),
        ("macs <= 100", "exact", 100.0, False),
        ("macs >= 100", "exact", 50.0, True),
        ("macs <= 100", "upper", 150.0, False),  # the trained value may be lower: not provable
        ("macs >= 100", "upper", 50.0, True),  # at most 50 when trained: never 100
        ("energy_uj <= 2", "lower", 3.0, True),  # at least 3 whatever the spikes
        ("energy_uj >= 2", "lower", 1.0, False),
    ],
)
def test_a_static_cost_proves_a_constraint_broken_only_when_its_relation_allows(text, relation, value, broken):
    assert provably_broken(Constraint.parse(text), StaticCost(value, relation)) is broken


def _static_macs(spec, params, info) -> int:
    """Counted independently of the searcher: build the network, count its active weights."""
    return model_costs(spec.entry.build_model(trial_config(spec, params), info), info.input_shape).macs


def _searcher(spec, info, rows, **kwargs) -> SweepSearcher:
    return SweepSearcher(spec, study_name="refusal", num_samples=spec.num_samples, data_info=info, on_refused=rows.append, **kwargs)


def test_refused_candidates_are_recorded_told_and_not_counted():
    spec = load_spec(QUICKSTART, ['constraints=["macs <= 10000"]', "run.num_samples=20"])  # as typed on the command line
    info = check_available(spec.data.model_dump())
    rows: list[dict] = []
    searcher = _searcher(spec, info, rows)
    suggested = []
    for k in range(spec.num_samples):
        config = searcher.suggest(f"t{k}")
        assert config not in (None, Searcher.FINISHED)
        params = searcher.params_of(f"t{k}")
        macs = _static_macs(spec, params, info)
        assert macs <= 10000, "a trained candidate never breaks a static constraint"
        suggested.append(params)
        searcher.on_trial_complete(f"t{k}", {"val_accuracy": 0.9 - 1e-6 * macs, "energy_uj": 4.6e-6 * macs, "macs": macs, "budget_fraction": 1.0, "epoch": 12})
    assert searcher.suggest("one-too-many") == Searcher.FINISHED  # num_samples counts trained candidates
    assert searcher.counted_trials() == spec.num_samples
    assert rows, "the quickstart space holds configs above 10000 MACs: some were refused"
    study = searcher.study
    for row in rows:
        assert row["state"] == REFUSED_STATE and row["trial_id"] == refused_id(row["optuna_trial"])
        assert row["macs"] > 10000 and "macs <= 10000" in row["error"]
        assert "val_accuracy" not in row  # no accuracy: it was never trained
        trial = study.trials[row["optuna_trial"]]
        params = {name: row[name] for name in spec.space}
        assert trial.params == params and _static_macs(spec, params, info) == row["macs"]
        assert trial.state == TrialState.PRUNED and trial.user_attrs[REFUSED_ATTR] == row["error"]
        assert trial.constraints == {"0": pytest.approx(row["macs"] - 10000)}  # what constrained samplers read
    assert sum(t.state == TrialState.COMPLETE for t in study.trials) == spec.num_samples
    assert len(study.trials) == spec.num_samples + len(rows)
    # Concurrency aside, a sweep never suggests the same config twice.
    assert len({tuple(sorted(p.items())) for p in suggested}) == len(suggested)


def test_every_candidate_refused_ends_the_search_with_one_line_naming_the_constraint():
    spec = load_spec(QUICKSTART, ['constraints=["macs <= 10"]'])
    rows: list[dict] = []
    searcher = _searcher(spec, check_available(spec.data.model_dump()), rows, refusal_limit=15)
    assert searcher.suggest("t0") == Searcher.FINISHED
    assert len(rows) == 15 and searcher.counted_trials() == 0
    lowest = min(row["macs"] for row in rows)
    assert searcher.exhausted == (
        f"15 candidates in a row were refused before training: their costs break macs <= 10 "
        f"(the lowest macs sampled is {lowest:.6g}); widen the constraint or change the space"
    )
    assert searcher.suggest("t1") == Searcher.FINISHED


def test_without_data_info_or_static_constraints_nothing_is_refused():
    spec = load_spec(QUICKSTART, ['constraints=["val_accuracy >= 0.99"]'])
    rows: list[dict] = []
    searcher = _searcher(spec, check_available(spec.data.model_dump()), rows)
    for k in range(5):
        searcher.suggest(f"t{k}")
    assert rows == [] and searcher.counted_trials() == 5


def _refused_share(sampler: str, n: int = 40) -> tuple[float, float]:
    """Share of candidates refused among the first and the last ``n // 2`` trained ones."""
    spec = load_spec(QUICKSTART, ['constraints=["macs <= 6000"]', f"run.num_samples={n}", f"sampler.name={sampler}", "sampler.options={}"])
    info = check_available(spec.data.model_dump())
    rows: list[dict] = []
    searcher = _searcher(spec, info, rows)
    refused_before = []
    for k in range(n):
        searcher.suggest(f"t{k}")
        refused_before.append(len(rows))
        macs = _static_macs(spec, searcher.params_of(f"t{k}"), info)
        searcher.on_trial_complete(f"t{k}", {"val_accuracy": 0.5 + 0.4 * math.tanh(macs / 3000), "energy_uj": 4.6e-6 * macs, "macs": macs, "budget_fraction": 1.0, "epoch": 12})
    half = n // 2
    early = refused_before[half - 1] / (refused_before[half - 1] + half)
    late_refused = refused_before[-1] - refused_before[half - 1]
    return early, late_refused / (late_refused + half)


def test_tpe_learns_from_refused_candidates_and_steers_away():
    early, late = _refused_share("tpe")
    assert early > 0.2 and late < early / 2, (early, late)


def test_a_sampler_that_repeats_a_refused_candidate_does_not_end_the_search():
    # Optuna's GP learns from completed trials only: after its start-up it proposes the same
    # refused point again, and the retries are drawn at random instead.
    spec = load_spec(QUICKSTART, ['constraints=["macs <= 6000"]', "run.num_samples=14", "sampler.name=gp", "sampler.options={n_startup_trials: 4}"])
    info = check_available(spec.data.model_dump())
    rows: list[dict] = []
    searcher = _searcher(spec, info, rows)
    for k in range(spec.num_samples):
        assert searcher.suggest(f"t{k}") not in (None, Searcher.FINISHED), searcher.exhausted
        macs = _static_macs(spec, searcher.params_of(f"t{k}"), info)
        assert macs <= 6000
        searcher.on_trial_complete(f"t{k}", {"val_accuracy": 0.5 + 0.4 * math.tanh(macs / 3000), "energy_uj": 4.6e-6 * macs, "macs": macs, "budget_fraction": 1.0, "epoch": 12})
    assert searcher.exhausted is None and searcher._sampler_repeats


def test_an_sne_candidate_is_refused_when_even_no_spike_breaks_an_energy_bound():
    spec = load_spec(ROOT / "spaces" / "sne_quickstart.yaml", ['constraints=["energy_uj <= 0.02"]', "run.num_samples=6"])
    info = check_available(spec.data.model_dump())
    rows: list[dict] = []
    searcher = _searcher(spec, info, rows)
    for k in range(spec.num_samples):
        assert searcher.suggest(f"t{k}") not in (None, Searcher.FINISHED)
        costs = spec.entry.static_costs_of(trial_config(spec, searcher.params_of(f"t{k}")), info)
        assert costs["energy_uj"].relation == "lower" and costs["energy_uj"].value <= 0.02
    assert rows and all(row["energy_uj"] > 0.02 for row in rows)
