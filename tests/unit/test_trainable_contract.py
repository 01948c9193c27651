"""One conformance suite over every registered trainable family (as scikit-learn checks estimators).

A family registered tomorrow is tested here the day it lands, from its own ``example`` config:
every report carries every key, a checkpoint round trip continues bit-identically on CPU, the
same seed gives the same metrics, its config is validated at load, and its checkpoints hold the
resolved config.
"""

from __future__ import annotations

import json
import math
import sys

import pytest

from trainables.config import TrialConfig, flatten, param_names
from trainables.registry import get_trainable, trainable_names
from trainables.report import make_report

FAMILIES = trainable_names()


def _config(name: str, tmp_path) -> dict:
    entry = get_trainable(name)
    return {**entry.example, "runtime": {"device": "cpu", "threads": 1, "cache_dir": str(tmp_path / "cache")}, "seed": 0}


def _train(name: str, config: dict, epochs: int | None = None, state=None):
    """Train outside Ray; returns (reports, run)."""
    entry = get_trainable(name)
    run = entry.training_class()(entry.resolve(config))
    if state is not None:
        run.load_state_dict(state)
    reports = []
    while run.epoch < (epochs or run.epochs):
        run.train_epoch()
        reports.append(make_report(run.metrics(), entry.extra_report_keys))
    return reports, run


def _same(a: dict, b: dict, skip=("train_time_s", "node_id")) -> bool:
    for key in a:
        if key in skip:
            continue
        x, y = a[key], b[key]
        if isinstance(x, float) and math.isnan(x):
            if not (isinstance(y, float) and math.isnan(y)):
                return False
        elif x != y:
            return False
    return True


def test_the_registry_lists_the_built_in_families():
    assert {"g2g", "sne"} <= set(FAMILIES)


@pytest.mark.parametrize("name", FAMILIES)
def test_entry_is_light_and_its_config_model_owns_the_defaults(name):
    entry = get_trainable(name)
    assert issubclass(entry.config, TrialConfig)
    assert entry.example, "a family declares a tiny example config for this suite"
    assert flatten(entry.defaults) == flatten(entry.config().model_dump())
    names = param_names(entry.config)
    assert names and not any(n.startswith("runtime.") for n in names)
    assert len(set(entry.report_keys)) == len(entry.report_keys)  # no key declared twice


@pytest.mark.parametrize("name", FAMILIES)
def test_config_is_validated_when_resolved(name):
    entry = get_trainable(name)
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        entry.resolve({"model_typo": {"x": 1}})
    first = param_names(entry.config)[0]
    with pytest.raises(ValueError):
        entry.resolve({first: object()})


@pytest.mark.parametrize("name", FAMILIES)
def test_reports_checkpoint_round_trip_and_determinism(name, tmp_path):
    entry = get_trainable(name)
    config = _config(name, tmp_path)
    reports, run = _train(name, config)
    assert len(reports) == run.epochs >= 2
    for i, report in enumerate(reports, start=1):
        assert set(entry.report_keys) <= set(report), set(entry.report_keys) - set(report)
        assert report["epoch"] == i and report["budget_fraction"] == pytest.approx(i / run.epochs)
    assert not math.isnan(reports[-1]["test_accuracy"]) and math.isnan(reports[0]["test_accuracy"])

    again, _ = _train(name, config)
    assert all(_same(a, b) for a, b in zip(reports, again)), "same config and seed, different metrics"

    # Stop after epoch 1, keep the state as a checkpoint holds it, continue in a fresh run.
    from trainables.loop import checkpoint_state
    from trainables.training import load_state, save_state

    first, stopped = _train(name, config, epochs=1)
    save_state(tmp_path / "ckpt", checkpoint_state(stopped, entry.resolve(config)))
    state = load_state(tmp_path / "ckpt")
    assert json.loads(state.pop("config")) == entry.resolve(config).model_dump()
    rest, _ = _train(name, config, state=state)
    assert [r["epoch"] for r in rest] == list(range(2, run.epochs + 1))
    assert all(_same(a, b) for a, b in zip(first + rest, reports)), "resumed run differs from the uninterrupted one"


@pytest.mark.parametrize("name", FAMILIES)
def test_trial_function_checkpoints_hold_the_resolved_config(name, tmp_path, monkeypatch):
    import ray.tune

    entry = get_trainable(name)
    seen: list[dict] = []

    def report(metrics, checkpoint=None):
        if checkpoint is not None:
            with checkpoint.as_directory() as directory:
                from trainables.training import load_state

                seen.append(load_state(directory))

    monkeypatch.setattr(ray.tune, "report", report)
    monkeypatch.setattr(ray.tune, "get_checkpoint", lambda: None)
    trainable = entry.trainable
    assert trainable.__name__ == f"{name}_trainable"
    trainable(_config(name, tmp_path))
    assert seen and all(json.loads(s["config"]) == entry.resolve(_config(name, tmp_path)).model_dump() for s in seen)


def test_reading_specs_and_run_dirs_loads_neither_torch_nor_ray(repo_root, tmp_path):
    import subprocess

    import pyarrow as pa
    import pyarrow.parquet as pq

    run = tmp_path / "run"
    run.mkdir()
    (run / "spec.yaml").write_text((repo_root / "spaces/quickstart.yaml").read_text())
    pq.write_table(pa.table({
        "trial_id": ["a", "b", "c"], "state": ["TERMINATED"] * 3, "optuna_trial": [0, 1, 2],
        "val_accuracy": [0.9, 0.8, 0.95], "energy_uj": [1.0, 0.5, 2.0], "budget_fraction": [1.0, 1.0, 0.5],
    }), run / "trials.parquet")
    code = (
        "import sys\n"
        "from search.spec import load_spec\n"
        "import analysis, analysis.results, analysis.pareto, search.rundir\n"
        f"load_spec({str(repo_root / 'spaces/quickstart.yaml')!r})\n"
        f"load_spec({str(repo_root / 'spaces/sne_quickstart.yaml')!r})\n"
        f"front = analysis.results.analyze_run({str(run)!r})\n"
        "assert front.trial_ids == ['a', 'b'] and len(front.front) == 2, front.trial_ids\n"
        "bad = [m for m in ('torch', 'ray', 'ray.tune') if m in sys.modules]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_analysis_help_lists_every_command(repo_root):
    import subprocess

    out = subprocess.run([sys.executable, "-m", "analysis", "--help"], cwd=repo_root, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for command in ("pareto", "select", "robustness"):
        assert f"  {command} " in out.stdout


#: Every family's example, plus G2G without dynamic sparse training (its static costs are exact)
#: and with DST stopping before the end (RigL's recipe), and SNE with every student active (its
#: MACs exact: no choice of subset is left to training).
STATIC_CASES = [(name, {}) for name in FAMILIES] + [
    ("g2g", {"dst": {"enabled": False}}),
    ("g2g", {"dst": {"stop": 0.5}}),
    ("sne", {"sne": {"students": 2, "active": 2}}),
]


@pytest.mark.parametrize(("name", "overrides"), STATIC_CASES, ids=[f"{n}{'-' + '-'.join(o) if o else ''}" for n, o in STATIC_CASES])
def test_static_costs_match_what_the_trained_trial_reports(name, overrides, tmp_path):
    from trainables.config import unflatten
    from trainables.data import check_available

    entry = get_trainable(name)
    config = {**flatten(_config(name, tmp_path)), **flatten(overrides)}
    resolved = entry.resolve(unflatten(config))
    static = entry.static_costs_of(resolved, check_available(resolved.data))
    if entry.static_costs is None:
        assert static == {}
        pytest.skip(f"{name} declares no static costs yet")
    reports, _ = _train(name, unflatten(config))
    assert set(static) <= set(reports[0]) and static
    for report in reports:
        final = report is reports[-1]
        for metric, cost in static.items():
            # DST keeps the count of connections, but edges regrown at zero weight do not count until
            # they move: at most the static value, short of it by at most the share moved in one update,
            # and within 1 % at the end when updates stop before it.
            within = None
            if name == "g2g" and resolved.dst.enabled:
                within = 0.01 if final and resolved.dst.stop < 1 else resolved.dst.fraction
            assert cost.holds_for(float(report[metric]), within=within), (metric, cost, report[metric])
    if name == "g2g":
        assert {"macs", "params", "density", "energy_uj"} <= set(static)
        assert all(c.relation == ("upper" if resolved.dst.enabled else "exact") for c in static.values())
    if name == "sne":
        all_active = resolved.sne.active == resolved.sne.students
        assert static["macs"].relation == ("exact" if all_active else "lower")
        assert static["energy_uj"].relation == "lower" and static["teacher_macs"].relation == "upper"
        # spikes cost energy on top of the real-valued MACs: the bound is strict once students spike
        assert all(float(r["energy_uj"]) > static["energy_uj"].value for r in reports if r["spike_rate"] > 0)
        # ... and at most the synaptic ops of every neuron spiking at every step (the span): the
        # cost-aware sampler learns only the rate in between.
        floor, span = static["energy_uj"].value, static["energy_uj"].span
        rates = [(float(r["energy_uj"]) - floor) / span for r in reports]
        assert span > 0 and all(0.0 <= rate <= 1.0 for rate in rates), rates
        if all_active:  # every student runs: the implied rate is the measured one
            assert rates == pytest.approx([float(r["spike_rate"]) for r in reports], rel=1e-6)


def test_static_cost_relations():
    from trainables.report import StaticCost

    assert StaticCost(100.0).holds_for(100.0) and not StaticCost(100.0).holds_for(99.0)
    upper = StaticCost(100.0, "upper")
    assert upper.holds_for(99.5, within=0.01) and not upper.holds_for(98.0, within=0.01) and not upper.holds_for(100.5)
    lower = StaticCost(10.0, "lower")
    assert lower.holds_for(12.0) and not lower.holds_for(9.0)
