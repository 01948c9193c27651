"""Spec loading: valid specs resolve; malformed specs fail in one line naming the field."""

from __future__ import annotations

import copy
import math
import sys

import pytest
import yaml

from search.run import main
from search.spec import SpecError, apply_overrides, load_spec, load_yaml, parse_spec
from tests.conftest import tiny_spec


def _write(tmp_path, raw, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw, sort_keys=False))
    return path


def _mutated(**changes):
    raw = tiny_spec()
    for dotted, value in changes.items():
        node = raw
        parts = dotted.split("/")
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if value is _DELETE:
            del node[parts[-1]]
        else:
            node[parts[-1]] = value
    return raw


_DELETE = object()

# (raw spec or YAML text, dotted path expected in the message, a word of the explanation)
MALFORMED = [
    (_mutated(epochs=3), "epochs", "unknown key"),
    (_mutated(objectives=_DELETE), "objectives", "required"),
    (_mutated(**{"objectives/0/mode": "maximize"}), "objectives.0.mode", "max"),
    (_mutated(trainable="resnet"), "trainable", "unknown trainable"),
    (_mutated(space={"model.widht": {"int": [8, 16]}}), "space.model.widht", "not a parameter"),
    (_mutated(space={"model.depth": {"int": [1, 2], "float": [0, 1]}}), "space.model.depth", "exactly one"),
    (_mutated(space={"model.width": {"int": [64, 8]}}), "space.model.width", "must not exceed"),
    (_mutated(run={"num_samples": 0}), "run.num_samples", "greater than or equal to 1"),
    (_mutated(constraints=["macs < 5"]), "constraints.0", "metric <= number"),
    (_mutated(**{"objectives/0/metric": "accuracy"}), "objectives.0.metric", "unknown metric"),
    (_mutated(**{"objectives/0/metric": "test_accuracy"}), "objectives.0.metric", "never an objective"),
    (_mutated(sampler={"name": "cmaes"}), "sampler.name", "tpe"),
    (_mutated(sampler={"name": "tpe", "options": {"n_startup": 3}}), "sampler.options", "n_startup"),
    (_mutated(data={"name": "imagenet"}), "data.name", "digits"),
    (_mutated(data={"name": "npz"}), "data", "data.path"),
    (_mutated(run={"resources": {"gpu": -1}}), "run.resources.gpu", "greater than or equal to 0"),
    (_mutated(space={"optim.lr": {"log": [0, 1]}}), "space.optim.lr", "low > 0"),
    (_mutated(fixed={"model.groups": 2}), "space.model.groups", "also in fixed"),
    (_mutated(run={"device": "tpu"}), "run.device", "cuda"),
    (_mutated(space={"model.p_inter": {"float": [0, 1], "when": {"model.groups": 4}}, "model.groups": {"choice": [2, 4]}}),
     "space.model.p_inter", "listed before"),
    (_mutated(space={"model.groups": {"int": [1, "$model.width"]}}), "space.model.groups", "earlier searched parameter"),
    (_mutated(sampler={"name": "grid"}, space={"optim.lr": {"log": [1e-3, 1e-2]}}), "space.optim.lr", "grid sampler"),
    (_mutated(scheduler={"name": "asha", "metric": "acc"}), "scheduler.metric", "unknown metric"),
    (_mutated(space={}), "space", "nothing to search"),
    (_mutated(scheduler={"name": "mo-asha"}), "scheduler.name", "'none', 'asha' or 'mo_asha'"),
    (_mutated(scheduler={"name": "mo_asha", "tie_break": "eps-net"}), "scheduler.tie_break", "'crowding' or 'eps_net'"),
    (_mutated(scheduler={"name": "mo_asha", "reduction_factor": 1}), "scheduler.reduction_factor", "greater than 1"),
    ("name: x\ntrainable: g2g\nobjectives: [\n", "", "invalid YAML: line"),
    ("- just\n- a list\n", "", "expected a mapping"),
]


@pytest.mark.parametrize("raw, path, words", MALFORMED, ids=[f"{i}-{m[1] or 'yaml'}" for i, m in enumerate(MALFORMED)])
def test_malformed_spec_exits_2_with_one_line_naming_the_field(tmp_path, capsys, raw, path, words):
    spec_path = _write(tmp_path, raw)
    storage = tmp_path / "runs"
    code = main([str(spec_path), "--storage", str(storage)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ") and str(spec_path) in err
    if path:
        assert f": {path}: " in err, err
    assert words in err, err
    assert not storage.exists(), "nothing may be written for a bad spec"


def test_missing_spec_file(tmp_path, capsys):
    assert main([str(tmp_path / "nope.yaml")]) == 2
    assert "spec file not found" in capsys.readouterr().err


def test_valid_spec_resolves_defaults_and_base_config(tmp_path):
    spec = load_spec(_write(tmp_path, tiny_spec()))
    assert spec.metrics == ["val_accuracy", "macs"] and spec.modes == ["max", "min"]
    assert spec.num_samples == 4
    base = spec.base_config()
    assert base["model"] == {"width": 32, "depth": 2}
    assert base["optim"] == {"batch_size": 128}
    assert base["budget"]["epochs"] == 3 and base["seed"] == 0
    assert base["data"]["root"]  # resolved on the driver to an absolute path


def test_shorthands_and_constraints_parse(tmp_path):
    spec = load_spec(_write(tmp_path, tiny_spec(sampler="tpe", scheduler="asha", constraints=["macs <= 2e5", "val_accuracy >= 0.5"])))
    assert spec.sampler.name == "tpe" and spec.scheduler.name == "asha"
    assert spec.scheduler_metric == ("val_accuracy", "max")
    macs, acc = spec.constraints
    assert (macs.metric, macs.op, macs.bound) == ("macs", "<=", 2e5)
    assert macs.violation(1e5) < 0 < macs.violation(3e5)
    assert acc.violation(0.9) < 0 < acc.violation(0.1)


def test_set_overrides_spec_fields_and_pins_searched_parameters(tmp_path):
    raw = tiny_spec()
    out = apply_overrides(raw, ["run.num_samples=7", "model.groups=4", "model.depth=3", "sampler.name=tpe"])
    assert raw == tiny_spec(), "overrides must not mutate the input"
    spec = parse_spec(out)
    assert spec.num_samples == 7
    assert "model.groups" not in spec.space and spec.fixed["model.groups"] == 4
    assert spec.fixed["model.depth"] == 3
    assert spec.sampler.name == "tpe"


def test_set_with_bad_value_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError, match="run.num_samples"):
        load_spec(_write(tmp_path, tiny_spec()), ["run.num_samples=-3"])
    with pytest.raises(SpecError, match="key=value"):
        load_spec(_write(tmp_path, tiny_spec()), ["run.num_samples"])


def test_set_reaches_a_fixed_parameter_and_one_field_of_a_range_as_typed(repo_root):
    quickstart = repo_root / "spaces" / "quickstart.yaml"
    spec = load_spec(quickstart, ["fixed.optim.batch_size=32", "space.model.grouping.choice=[index, random]", "space.model.width.int=[64,128]"])
    assert spec.fixed["optim.batch_size"] == 32
    assert spec.space["model.grouping"].choice == ["index", "random"]
    width = spec.space["model.width"]
    assert width.bounds == (64, 128) and width.step == 64  # the range's step is kept
    logged = load_spec(quickstart, ["space.model.width={int: [64, 256]}", "space.model.width.log=true"]).space["model.width"]
    assert logged.kind == "int" and logged.is_log and logged.bounds == (64, 256)  # log: true scales the int range it joins
    # A mistake in one of them is the --set's, named as typed.
    for override, words in (
        ("fixed.model.kind=g2gg", "--set: fixed.model.kind: expected one of 'g2g'"),
        ("space.model.grouping.choice=[index, randon]", "--set: space.model.grouping.choice: expected one of 'index', 'random', 'mixer', got 'randon' (did you mean 'random'?)"),
        ("objectives.0.mode=maximize", "--set: objectives.0.mode: cannot descend into 'objectives': it is a list, set it whole (--set 'objectives=[...]')"),
    ):
        with pytest.raises(SpecError) as err:
            load_spec(quickstart, [override])
        assert str(err.value).startswith(words), str(err.value)


def test_a_step_that_does_not_divide_its_range_is_refused_with_the_value_it_would_reach(repo_root):
    with pytest.raises(SpecError, match=r"--set: space.model.width.step: step 50 does not divide \[64, 256\]: the highest value it reaches is 214"):
        load_spec(repo_root / "spaces" / "quickstart.yaml", ["space.model.width.step=50"])
    spec = parse_spec(tiny_spec(space={"model.p_inter": {"float": [0.0, 0.3], "step": 0.1}}))  # 0.3 / 0.1 in floating point
    assert spec.space["model.p_inter"].step == 0.1


def test_grid_sampler_counts_every_combination(tmp_path):
    raw = tiny_spec(sampler="grid", space={"model.groups": {"choice": [2, 4]}, "seed": {"int": [0, 2]}, "model.p_inter": {"float": [0.0, 0.2], "step": 0.1}})
    raw["run"] = {"seed": 0}
    spec = parse_spec(raw)
    assert spec.grid_size() == 2 * 3 * 3
    assert spec.num_samples == 18


def test_every_shipped_space_is_valid(repo_root):
    paths = sorted((repo_root / "spaces").glob("*.yaml"))
    assert paths, "spaces/ must ship example specs"
    for path in paths:
        spec = load_spec(path)
        assert spec.name and spec.space, path
        # The resolved spec round-trips through YAML to an equal spec.
        from search.spec import spec_to_yaml

        again = parse_spec(yaml.safe_load(spec_to_yaml(spec)), str(path))
        assert again.model_dump() == spec.model_dump()


def test_mo_asha_set_on_the_command_line_describes_itself(tmp_path):
    """`--set scheduler.name=mo_asha` on a spec written for asha: accepted, and the leftover
    scheduler.metric is said to be unused rather than silently ignored."""
    spec_path = _write(tmp_path, _mutated(scheduler={"name": "asha", "metric": "val_accuracy", "grace_period": 2}))
    spec = load_spec(spec_path, ["scheduler.name=mo_asha", "scheduler.reduction_factor=3E0"])
    assert spec.scheduler.name == "mo_asha" and spec.scheduler.reduction_factor == 3.0
    text = spec.scheduler_text()
    assert text.startswith("mo_asha on ") and "grace 2, reduction 3" in text and "scheduler.metric/mode are not used" in text


# -- one definition each: tie-breaks, a constraint's missing value, feasibility ----------------------


def test_the_tie_breaks_are_the_schedulers_allowed_values(tmp_path):
    """scheduler.tie_break takes exactly TIE_BREAKS, and a misspelt one names them all in one line."""
    from search.spec import TIE_BREAKS, SchedulerSection

    assert SchedulerSection.model_json_schema()["properties"]["tie_break"]["enum"] == list(TIE_BREAKS)
    for tie_break in TIE_BREAKS:
        assert parse_spec(_mutated(scheduler={"name": "mo_asha", "tie_break": tie_break})).scheduler.tie_break == tie_break
    path = _write(tmp_path, yaml.safe_dump(tiny_spec()) + "scheduler: {name: mo_asha, tie_break: crowdingg}\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert len(message.splitlines()) == 1 and info.value.path == "scheduler.tie_break", message
    assert all(repr(t) in message for t in TIE_BREAKS), message


MAX = sys.float_info.max


@pytest.mark.parametrize(
    "value, expected",
    [
        (1e5, -1e5),
        ("1E5", -1e5),  # text that reads as a number is that number
        (load_yaml("1E5"), -1e5),  # YAML 1.2: a float
        (3e5, 1e5),
        (2e5, 0.0),
        (None, MAX),
        ("nan", MAX),
        (float("nan"), MAX),
        (float("inf"), MAX),
        (float("-inf"), MAX),
        (load_yaml(".inf"), MAX),
        ("abc", MAX),
    ],
)
def test_a_constraint_value_follows_one_rule(value, expected):
    """Constraint.violation_of: Optuna's sign, and the largest finite float for a value that cannot
    be shown to meet the bound, never inf (JSON readers of the study reject it)."""
    import json

    from search.spec import Constraint, feasible

    constraint = Constraint.parse("macs <= 2e5")
    violation = constraint.violation_of(value)
    assert violation == expected and math.isfinite(violation)
    json.dumps(violation, allow_nan=False)
    assert (violation <= 0) == feasible({"macs": value if not isinstance(value, str) else _number(value)}, [constraint])
    assert Constraint.parse("energy_uj >= 1").violation_of(None) == MAX
    assert Constraint.parse("macs >= 1e308").violation_of(-1e308) == MAX, "a violation too large for a float is capped too"


def _number(text: str):
    try:
        return float(text)
    except ValueError:
        return None


def test_a_missing_metric_is_the_largest_violation():
    from search.spec import Constraint

    result = {"val_accuracy": 0.9}
    assert [c.violation_of(result.get(c.metric)) for c in map(Constraint.parse, ["macs <= 10", "val_accuracy >= 0.5"])] == [MAX, pytest.approx(-0.4)]


def test_an_optuna_trial_and_a_result_row_are_feasible_by_the_same_rule():
    """is_feasible_trial (Optuna trials) and feasible (result rows) agree, whatever the row holds."""
    import optuna

    from search.study import is_feasible_trial
    from search.spec import Constraint, feasible

    constraints = [Constraint.parse("macs <= 100"), Constraint.parse("val_accuracy >= 0.5")]
    rows = [
        {"macs": 50, "val_accuracy": 0.9},
        {"macs": 100, "val_accuracy": 0.5},
        {"macs": 150, "val_accuracy": 0.9},
        {"macs": 50, "val_accuracy": 0.1},
        {"val_accuracy": 0.9},
        {"macs": float("nan"), "val_accuracy": 0.9},
        {"macs": 50, "val_accuracy": None},
        {},
    ]
    for row in rows:
        stored = [c.violation_of(row.get(c.metric)) for c in constraints]
        trial = optuna.trial.create_trial(values=[1.0], system_attrs={"constraints": stored})
        assert is_feasible_trial(trial) == feasible(row, constraints), row
    assert is_feasible_trial(optuna.trial.create_trial(values=[1.0])), "a trial without constraints is feasible"
    keyed = optuna.trial.create_trial(values=[1.0], system_attrs={"constraints:0": -1.0, "constraints:1": 0.5})
    assert not is_feasible_trial(keyed), "Optuna's per-key form is read as well"
    assert not is_feasible_trial(optuna.trial.create_trial(values=[1.0], system_attrs={"constraints": [float("nan")]}))
