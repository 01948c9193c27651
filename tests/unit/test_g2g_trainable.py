"""The G2G trainable: report contract with DST keys, bit-identical restore, the g2g_* spaces."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from trainables.config import flatten
from trainables.data import DataInfo, Splits
from trainables.g2g.config import G2GConfig
from trainables.g2g.family import ENTRY, G2G_REPORT_KEYS
from trainables.g2g.model import build_model
from trainables.g2g.trainable import G2GTraining
from trainables.registry import get_trainable
from trainables.report import BASE_KEYS, make_report
from trainables.training import load_state, save_state

ROOT = Path(__file__).resolve().parents[2]


def _trial_config(spec, params) -> G2GConfig:
    """Defaults ← the spec's fixed values ← a sample's params, merged key by key (as Tune does)."""
    # Dotted keys throughout: a sampled ``model.kind`` must not replace the fixed ``model.*`` values.
    return ENTRY.resolve({**flatten(spec.base_config()), **flatten(dict(params))})


def _splits(seed: int = 0) -> Splits:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(160, 1, 4, 4, generator=gen)
    y = torch.randint(0, 3, (160,), generator=gen)
    info = DataInfo("synthetic", (1, 4, 4), 3, 96, 32, 32)
    return Splits(info, x[:96], y[:96], x[96:128], y[96:128], x[128:], y[128:], augment=False)


def _config(**sections) -> dict:
    config = {
        "model": {"width": 16, "depth": 2, "groups": 4, "p_inter": 0.25},
        "optim": {"batch_size": 16, "lr": 1e-2},
        "budget": {"epochs": 4},
        "runtime": {"device": "cpu"},
        "seed": 3,
    }
    for key, value in sections.items():
        config[key] = {**config.get(key, {}), **value}
    return config


DST_CASES = {
    "edge-magnitude-gradient": _config(dst={"enabled": True, "interval": 2, "fraction": 0.3, "prune": "magnitude", "grow": "gradient"}),
    "edge-random-random-cosine": _config(dst={"enabled": True, "interval": 3, "fraction": 0.3, "prune": "random", "grow": "random", "schedule": "cosine", "stop": 0.75}),
    "block-hebbian-ema-pattern": _config(
        model={"granularity": "block", "block_fan_in": 2},
        dst={"enabled": True, "interval": 2, "fraction": 0.3, "prune": "hebbian", "grow": "hebbian", "scope": "pattern", "hebbian": {"window": "ema", "ema_decay": 0.8}},
    ),
    "dst-off": _config(),
}


def _comparable(report: dict) -> dict:
    return {k: v for k, v in report.items() if k != "train_time_s"}


def _assert_same_tree(a, b, where: str = "") -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert set(a) == set(b), where
        for key in a:
            _assert_same_tree(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_tree(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


@pytest.mark.parametrize("case", list(DST_CASES))
def test_restore_mid_training_continues_bit_identically(case, tmp_path):
    config, splits = DST_CASES[case], _splits()
    straight = G2GTraining(config, splits)
    reports = []
    for _ in range(4):
        straight.train_epoch()
        reports.append(_comparable(straight.metrics()))

    first = G2GTraining(config, splits)
    for _ in range(2):
        first.train_epoch()
        first.metrics()
    save_state(tmp_path, first.state_dict())
    del first
    torch.manual_seed(12345)  # a new process: nothing of the old global RNG state survives
    torch.rand(7)

    resumed = G2GTraining(config, splits)
    resumed.load_state_dict(load_state(tmp_path))  # weights_only=True, as the trainable loads it
    assert resumed.epoch == 2
    resumed_reports = []
    while resumed.epoch < resumed.epochs:
        resumed.train_epoch()
        resumed_reports.append(_comparable(resumed.metrics()))

    assert resumed_reports == reports[2:]
    end_straight, end_resumed = straight.state_dict(), resumed.state_dict()
    for key in ("model", "optimizer", "lr_schedule", "generator", "torch_rng", "dst"):
        _assert_same_tree(end_straight[key], end_resumed[key], key)
    if case != "dst-off":
        assert reports[-1]["dst_updates"] > reports[1]["dst_updates"] > 0, "DST must act after the restore too"
        assert reports[-1]["pattern_fraction"] < 1.0


def test_every_report_carries_the_contract_and_the_dst_keys():
    run = G2GTraining(_config(budget={"epochs": 2}), _splits())
    run.train_epoch()
    report = make_report(run.metrics(), ENTRY.extra_report_keys)  # what the shared loop reports
    assert set(BASE_KEYS) | set(G2G_REPORT_KEYS) <= set(report)
    assert (report["dst_updates"], report["grown_total"], report["hebbian_grown"]) == (0, 0, 0)
    assert report["pattern_fraction"] == 1.0
    assert report["test_accuracy"] != report["test_accuracy"]  # NaN before the full budget
    run.train_epoch()
    assert 0.0 <= run.metrics()["test_accuracy"] <= 1.0
    assert get_trainable("g2g") is ENTRY and ENTRY.extra_report_keys == G2G_REPORT_KEYS


def test_hebbian_dst_reports_growth_and_drift_at_constant_density():
    config = _config(dst={"enabled": True, "interval": 2, "fraction": 0.2, "prune": "magnitude", "grow": "hebbian"})
    run = G2GTraining(config, _splits())
    before = [int(layer.mask.sum()) for layer in run.model.hidden]
    run.train_epoch()
    report = run.metrics()
    assert report["dst_updates"] == 3  # 6 steps, every 2nd
    assert report["hebbian_grown"] == report["grown_total"] > 0
    assert report["pattern_fraction"] < 1.0
    assert [int(layer.mask.sum()) for layer in run.model.hidden] == before


@pytest.mark.parametrize("kind", ["dense", "dense_matched"])
def test_dst_on_a_dense_baseline_is_a_no_op(kind):
    run = G2GTraining(_config(model={"kind": kind}, dst={"enabled": True, "interval": 1}), _splits())
    run.train_epoch()
    report = run.metrics()
    assert (report["dst_updates"], report["grown_total"], report["pattern_fraction"]) == (0, 0, 1.0)
    assert report["density"] == 1.0


def test_defaults_hold_every_dst_parameter_with_reference_values():
    flat = flatten(G2GConfig().model_dump())
    assert flat == flatten(ENTRY.defaults)
    assert flat["dst.enabled"] is False
    assert (flat["dst.interval"], flat["dst.fraction"], flat["dst.schedule"]) == (1000, 0.1, "constant")
    assert (flat["dst.prune"], flat["dst.grow"], flat["dst.scope"]) == ("magnitude", "hebbian", "anywhere")
    assert flat["dst.stop"] == 1.0
    assert (flat["dst.hebbian.window"], flat["dst.hebbian.ema_decay"], flat["dst.hebbian.centered"]) == ("batch", 0.9, False)
    assert flat["model.granularity"] == "edge" and flat["model.block_fan_in"] == 0


def test_checkpoint_of_a_different_dst_setting_is_rejected(tmp_path):
    with_dst = G2GTraining(DST_CASES["edge-magnitude-gradient"], _splits())
    without = G2GTraining(DST_CASES["dst-off"], _splits())
    with pytest.raises(ValueError, match="dst.enabled"):
        without.load_state_dict(with_dst.state_dict())


# ---- the spaces ---------------------------------------------------------------------------

SPACE_SHAPES = {
    "g2g_ablation.yaml": DataInfo("digits", (1, 8, 8), 10, 1, 1, 1),
    "g2g_fashion.yaml": DataInfo("fashion_mnist", (1, 28, 28), 10, 1, 1, 1),
    "g2g_cifar10.yaml": DataInfo("cifar10", (3, 32, 32), 10, 1, 1, 1),
    "g2g_cifar100.yaml": DataInfo("cifar100", (3, 32, 32), 100, 1, 1, 1),
}


@pytest.mark.parametrize("name", list(SPACE_SHAPES))
def test_space_validates_and_its_sampled_configs_build(name):
    from search.space import sample_configs
    from search.spec import load_spec

    spec = load_spec(ROOT / "spaces" / name)
    assert spec.trainable == "g2g"
    info = SPACE_SHAPES[name]
    for params in sample_configs(spec, 6):
        config = _trial_config(spec, params)
        net = build_model(config, info)  # e.g. block granularity needs groups dividing the features
        assert net.classifier.out_features == info.num_classes


def test_ablation_grid_compares_the_four_kinds_over_three_seeds_at_equal_params():
    from search.space import sample_configs
    from search.spec import load_spec
    from trainables.costs import model_costs

    spec = load_spec(ROOT / "spaces" / "g2g_ablation.yaml")
    assert spec.sampler.name == "grid" and spec.num_samples == 12
    combos = sample_configs(spec, spec.num_samples)
    assert {(c["model.kind"], c["seed"]) for c in combos} == {
        (k, s) for k in ("g2g", "dense", "dense_matched", "er") for s in (0, 1, 2)
    }
    info = SPACE_SHAPES["g2g_ablation.yaml"]
    params = {}
    for c in combos:
        if c["seed"] == 0:
            params[c["model.kind"]] = model_costs(build_model(_trial_config(spec, c), info), info.input_shape).params
    assert params["dense"] > 3 * params["g2g"]  # 75 % sparsity
    for kind in ("dense_matched", "er"):
        assert params[kind] == pytest.approx(params["g2g"], rel=0.03)


def test_spec_rejects_unknown_dst_parameters():
    from search.spec import SpecError, parse_spec

    raw = copy.deepcopy(
        {
            "name": "x",
            "trainable": "g2g",
            "objectives": [{"metric": "val_accuracy", "mode": "max"}, {"metric": "pattern_fraction", "mode": "max"}],
            "space": {"dst.grow": {"choice": ["hebbian", "gradient"]}},
        }
    )
    parse_spec(raw)  # pattern_fraction is a reported metric, dst.grow a parameter
    raw["space"] = {"dst.regrow": {"choice": ["hebbian"]}}
    with pytest.raises(SpecError, match="dst.regrow"):
        parse_spec(raw)


def test_training_uses_the_fused_optimiser_and_it_matches_the_default_update():
    """Fused Adam/AdamW/SGD (one kernel over every parameter) on the CPU: same update to rounding."""
    from trainables.config import OptimConfig
    from trainables.training import make_optimizer

    for name, extra in (("adam", {}), ("adamw", {}), ("sgd", {"momentum": 0.9})):
        cfg = OptimConfig(name=name, lr=1e-2, weight_decay=1e-4, **extra)
        start = torch.randn(20, 30, generator=torch.Generator().manual_seed(0))
        finals = []
        for fused in (True, False):
            w = torch.nn.Parameter(start.clone())
            opt = make_optimizer([w], cfg)
            assert opt.defaults.get("fused") is True
            if not fused:
                defaults = {k: v for k, v in opt.defaults.items() if k != "decoupled_weight_decay"}
                opt = type(opt)([w], **{**defaults, "fused": None, "foreach": False})
            gen = torch.Generator().manual_seed(1)
            for _ in range(20):
                w.grad = torch.randn(20, 30, generator=gen)
                opt.step()
            finals.append(w.detach())
        torch.testing.assert_close(finals[0], finals[1], atol=1e-5, rtol=1e-5)
