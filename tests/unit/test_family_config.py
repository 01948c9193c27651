"""Family config models at load: numbers as users type them, bad values refused before any trial.

Every case goes through the real command line (``python -m search.run``, in process) with a
``--storage`` that must stay empty: a refused spec writes nothing.
"""

from __future__ import annotations

import pytest

from search.run import main
from search.spec import load_spec, load_yaml
from trainables.config import CrossFieldError
from trainables.registry import get_trainable

G2G = "spaces/quickstart.yaml"
SNE = "spaces/sne_quickstart.yaml"


@pytest.mark.parametrize("text, expected", [("1e-3", 1e-3), ("3e-4", 3e-4), ("1E5", 1e5), ("-2.5e-2", -0.025), (".5", 0.5), ("12", 12), ("1.0e-3", 1e-3), ("abc", "abc"), ("1e", "1e")])
def test_numbers_read_as_yaml_1_2(text, expected):
    value = load_yaml(text)
    assert value == expected and type(value) is type(expected)


def test_typed_numbers_reach_the_config_as_floats(repo_root, tmp_path):
    spec = load_spec(repo_root / G2G, ["optim.lr=1e-3", "model.p_inter=0"])
    assert spec.fixed["optim.lr"] == 0.001 and isinstance(spec.fixed["optim.lr"], float)
    assert spec.fixed["model.p_inter"] == 0.0 and isinstance(spec.fixed["model.p_inter"], float)  # an int where a float is expected
    path = tmp_path / "log.yaml"
    path.write_text((repo_root / G2G).read_text().replace("optim.lr: {log: [3.0e-4, 1.0e-2]}", "optim.lr: {log: [3e-4, 1e-2]}"))
    assert load_spec(path).space["optim.lr"].bounds == (3e-4, 1e-2)
    whole = load_spec(repo_root / G2G, ["model.width=64.0"])
    assert whole.fixed["model.width"] == 64 and isinstance(whole.fixed["model.width"], int)


# (spec, --set overrides, dotted field named in the message, a word of the explanation)
BAD = [
    (G2G, ["optim.lr=abc"], "fixed.optim.lr", "valid number"),
    (G2G, ["optim.lr=-1e-3"], "fixed.optim.lr", "greater than 0"),
    (G2G, ["model.width=abc"], "fixed.model.width", "valid integer"),
    (G2G, ["model.width=-5"], "fixed.model.width", "greater than or equal to 1"),
    (G2G, ["model.width=64.5"], "fixed.model.width", "integer"),
    (G2G, ["model.kind=foo"], "fixed.model.kind", "'dense_matched'"),
    (G2G, ["model.grouping=mixr"], "fixed.model.grouping", "did you mean 'mixer'"),
    (G2G, ["cost.energy_model=fp64"], "fixed.cost.energy_model", "int8_45nm"),
    (G2G, ["dst.grow=hebian"], "fixed.dst.grow", "did you mean 'hebbian'"),
    (G2G, ["dst.hebbian.window=month"], "fixed.dst.hebbian.window", "'ema'"),
    (G2G, ["dst.fraction=1.5"], "fixed.dst.fraction", "less than or equal to 1"),
    (G2G, ["model.widht=64"], "fixed.model.widht", "did you mean model.width"),
    (G2G, ["model.groups=8", "model.width=4"], "fixed.model.groups", "cannot exceed model.width"),
    (G2G, {"model.groups": "{choice: [2, four]}"}, "space.model.groups.choice.1", "valid integer"),
    (G2G, {"model.grouping": "{choice: [index, stripes]}"}, "space.model.grouping.choice.1", "'mixer'"),
    (G2G, {"model.width": "{int: [-64, 256], step: 64}"}, "space.model.width.int.0", "greater than or equal to 1"),
    (G2G, {"model.p_inter": "{float: [0.0, 1.5]}"}, "space.model.p_inter.float.1", "less than or equal to 1"),
    (G2G, {"model.depth": "{float: [1, 3]}"}, "space.model.depth.float", "whole number"),
    (G2G, {"model.grouping": "{int: [0, 3]}"}, "space.model.grouping.int", "choice"),
    (SNE, ["sne.partition=kmeans"], "fixed.sne.partition", "'correlation'"),
    (SNE, ["teacher.arch=vgg"], "fixed.teacher.arch", "'resnet18'"),
    (SNE, ["student.init=ann-bridge"], "fixed.student.init", "did you mean 'ann_bridge'"),
    (SNE, ["sne.dropout=1.0"], "fixed.sne.dropout", "less than 1"),
    (SNE, ["teacher.lr=0"], "fixed.teacher.lr", "greater than 0"),
    (SNE, {"sne.timesteps": "{int: [0, 6]}"}, "space.sne.timesteps.int.0", "greater than or equal to 1"),
    (SNE, {"sne.students": "{int: [2, 6.5]}"}, "space.sne.students", "whole numbers"),
    (SNE, {"student.width": "{int: [32, 160], step: 32, when: {teacher.arch: vgg}}"}, "space.student.width.when.teacher.arch", "'resnet18'"),
    (SNE, {"sne.kl_weight": "{choice: [0.0, -1.0]}"}, "space.sne.kl_weight.choice.1", "greater than or equal to 0"),
]


def _case_id(spec: str, change) -> str:
    text = " ".join(change) if isinstance(change, list) else " ".join(f"{k}: {v}" for k, v in change.items())
    return f"{spec.split('/')[-1]}:{text}"


@pytest.mark.parametrize("spec, change, field, words", BAD, ids=[_case_id(s, c) for s, c, _, _ in BAD])
def test_bad_family_values_exit_2_at_load_naming_the_field(repo_root, tmp_path, capsys, spec, change, field, words):
    """A list is ``--set`` items (fixed values); a dict replaces ``space`` entries in a copy of the spec file."""
    storage = tmp_path / "runs"
    path = repo_root / spec
    argv: list[str] = []
    if isinstance(change, list):
        for item in change:
            argv += ["--set", item]
    else:
        lines = path.read_text().splitlines()
        for name, text in change.items():
            lines = [f"  {name}: {text}" if line.strip().startswith(f"{name}:") else line for line in lines]
            assert f"  {name}: {text}" in lines, name
        path = tmp_path / path.name
        path.write_text("\n".join(lines) + "\n")
    argv = [str(path), "--storage", str(storage), *argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    if isinstance(change, list):  # a value from --set is named as typed, not as the spec's fixed.* entry
        field = field.removeprefix("fixed.")
        assert err[0].startswith(f"error: --set: {field}: "), err[0]
    assert f": {field}: " in err[0] and words in err[0], err[0]
    assert not storage.exists()  # refused before anything was written
    # --dry-run refuses the same spec as well
    assert main([*argv, "--dry-run"]) == 2
    capsys.readouterr()


def test_cross_field_check_waits_for_the_trial_when_a_field_is_searched(repo_root):
    # groups searched in [2, 4, 8], width fixed at 4: groups 8 would not fit, groups 2 would.
    spec = load_spec(repo_root / G2G, ["model.width=4"])
    assert spec.fixed["model.width"] == 4 and "model.groups" in spec.space
    entry = get_trainable("g2g")
    with pytest.raises(ValueError) as info:
        entry.resolve({"model.width": 4, "model.groups": 8})
    assert isinstance(info.value.errors()[0]["ctx"]["error"], CrossFieldError)
    assert entry.resolve({"model.width": 4, "model.groups": 2}).model.groups == 2


def test_name_must_be_a_plain_name(repo_root, tmp_path, capsys):
    for name in ("../../escape", "a/b", ".."):
        assert main([str(repo_root / G2G), "--storage", str(tmp_path / "runs"), "--name", name]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: --name:"), err
    assert not (tmp_path / "runs").exists() and not (tmp_path.parent / "escape").exists()


def test_gpu_request_on_a_machine_without_one_exits_2(repo_root, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    for item in ("run.resources.gpu=1", "run.device=cuda"):
        assert main([str(repo_root / G2G), "--storage", str(tmp_path / "runs"), "--set", item]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "no CUDA GPU" in err[0], err
    assert not (tmp_path / "runs").exists()


def test_npz_with_test_classes_unseen_in_training_exits_2(repo_root, tmp_path, capsys):
    import numpy as np

    rng = np.random.default_rng(0)
    path = tmp_path / "data.npz"
    np.savez(path, x_train=rng.random((40, 8)).astype("float32"), y_train=np.arange(40) % 3,
             x_test=rng.random((10, 8)).astype("float32"), y_test=np.arange(10) % 5)
    assert main([str(repo_root / G2G), "--storage", str(tmp_path / "runs"), "--set", "data.name=npz", "--set", f"data.path={path}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "classes absent from y_train (3, 4)" in err[0], err
    assert not (tmp_path / "runs").exists()
