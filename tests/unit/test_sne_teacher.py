"""SNE teachers: every registered backbone, the sweep-wide cache, and train-once under concurrency."""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
from pathlib import Path

import pytest
import torch

from trainables.costs import model_costs
from trainables.config import DataConfig
from trainables.data import DataInfo, load_splits
from trainables.sne.config import SNETrialConfig, TeacherConfig
from trainables.sne.teacher import (
    TEACHERS,
    build_teacher,
    load_cached_teacher,
    obtain_teacher,
    register_teacher,
    teacher_cache_paths,
    teacher_key,
)

DATA = {**DataConfig().model_dump(), "name": "digits", "val_fraction": 0.2}
# A teacher that trains in well under a second on digits.
TINY = {"arch": "cnn", "width": 4, "epochs": 1, "batch_size": 128, "seed": 0}


@pytest.fixture(scope="module")
def splits():
    return load_splits(DATA)


def _digest(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _trained_events(log: Path) -> list[dict]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("arch", sorted(TEACHERS))
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32)])
def test_every_registered_teacher_maps_images_to_features_and_logits(arch, shape):
    if arch == "resnet18" and shape == (3, 32, 32):
        shape = (3, 16, 16)  # same code path, a quarter of the compute
    info = DataInfo("toy", shape, 7, 1, 1, 1)
    teacher = build_teacher(TeacherConfig(arch=arch, width=4), info).eval()
    x = torch.randn(2, *shape)
    features = teacher.features(x)
    assert features.shape == (2, teacher.feature_dim)
    assert teacher(x).shape == (2, 7)
    assert torch.allclose(teacher(x), teacher.head(features), atol=1e-6)
    assert model_costs(teacher, shape).macs > 0


def test_cornet_s_counts_every_recurrent_pass():
    info = DataInfo("toy", (1, 8, 8), 3, 1, 1, 1)
    teacher = build_teacher(TeacherConfig(arch="cornet_s", width=2), info)
    costs = {c.name: c for c in model_costs(teacher, info.input_shape).layers}
    v4 = teacher.body[7]  # V2, V4, IT follow the two V1 conv-bn-relu triples
    assert v4.times == 4
    # V4 input is 4x4 (after V2's stride 2); pass 1 downsamples to 2x2, passes 2-4 stay at 2x2.
    weights = int(torch.count_nonzero(v4.conv2.weight))
    assert costs["body.7.conv2"].macs == weights * (4 + 4 + 4 + 4)
    assert costs["body.7.conv1"].macs == int(torch.count_nonzero(v4.conv1.weight)) * (16 + 4 + 4 + 4)


def test_register_teacher_rejects_duplicates():
    with pytest.raises(ValueError, match="already registered"):
        register_teacher("cnn")(lambda cfg, info: None)


def test_teacher_config_validation():
    # Validated as the ``teacher`` section of a trial config, so the error names the dotted parameter.
    with pytest.raises(ValueError, match="teacher.arch"):
        SNETrialConfig.model_validate({"teacher": {"arch": "vgg"}})
    with pytest.raises(ValueError, match=r"teacher\.depth\n\s+Extra inputs are not permitted"):  # an unknown teacher key
        SNETrialConfig.model_validate({"teacher": {"depth": 3}})
    with pytest.raises(ValueError, match="arch"):
        TeacherConfig.model_validate({"arch": "vgg"})


def test_teacher_key_depends_on_what_determines_the_teacher():
    base = teacher_key(TINY, DATA)
    assert base == teacher_key(dict(TINY), dict(DATA))
    assert base != teacher_key({**TINY, "seed": 1}, DATA)
    assert base != teacher_key({**TINY, "width": 8}, DATA)
    assert base != teacher_key(TINY, {**DATA, "split_seed": 1})
    assert base == teacher_key({**TINY, "checkpoint": "/elsewhere.pt"}, DATA)
    assert base == teacher_key(TINY, {**DATA, "root": "/another/copy"})


def test_cache_trains_once_then_loads_the_same_weights(tmp_path, splits):
    first = obtain_teacher(TINY, DATA, splits, tmp_path)
    second = obtain_teacher(TINY, DATA, splits, tmp_path)
    _, _, log = teacher_cache_paths(tmp_path, TeacherConfig.model_validate(TINY), first.key)
    assert len(_trained_events(log)) == 1
    assert _digest(first.model) == _digest(second.model)
    assert first.accuracy == second.accuracy and first.macs == second.macs > 0
    loaded = load_cached_teacher(TINY, DATA, splits, tmp_path)
    assert _digest(loaded.model) == _digest(first.model)
    with pytest.raises(FileNotFoundError, match="no trained teacher"):
        load_cached_teacher({**TINY, "seed": 5}, DATA, splits, tmp_path)


def test_teacher_loads_from_a_checkpoint_file(tmp_path, splits):
    trained = obtain_teacher(TINY, DATA, splits, None)
    path = tmp_path / "teacher.pt"
    torch.save(trained.model.state_dict(), path)
    loaded = obtain_teacher({**TINY, "epochs": 0, "checkpoint": str(path)}, DATA, splits, tmp_path)
    assert _digest(loaded.model) == _digest(trained.model)
    assert loaded.accuracy == pytest.approx(trained.accuracy)
    assert not list(tmp_path.glob("*.log")), "a loaded teacher is never trained or cached"
    with pytest.raises(ValueError, match="does not fit"):
        obtain_teacher({**TINY, "width": 8, "checkpoint": str(path)}, DATA, splits, None)
    with pytest.raises(FileNotFoundError):
        obtain_teacher({**TINY, "checkpoint": str(tmp_path / "missing.pt")}, DATA, splits, None)


def _obtain_in_process(cache_dir: str, splits, barrier, results) -> None:
    torch.set_num_threads(1)
    barrier.wait()  # all four ask for the teacher at the same moment
    record = obtain_teacher(TINY, DATA, splits, cache_dir)
    results.put(_digest(record.model))


@pytest.mark.e2e  # four spawned processes, each importing torch
def test_teacher_is_trained_exactly_once_by_four_concurrent_processes(tmp_path, splits):
    # Separate processes, each opening the lock file itself, as Ray's trial workers do. Spawned,
    # as Ray starts its workers: a child forked from this test process (which by now may run
    # other libraries' threads) can hang on a lock one of those threads held at the fork.
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(4)
    results = ctx.Queue()
    procs = [ctx.Process(target=_obtain_in_process, args=(str(tmp_path), splits, barrier, results)) for _ in range(4)]
    for p in procs:
        p.start()
    digests = [results.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    logs = list(tmp_path.glob("teacher-*.log"))
    assert len(logs) == 1
    events = _trained_events(logs[0])
    assert len(events) == 1 and events[0]["event"] == "trained"
    assert len(set(digests)) == 1, "every process must end up with the same trained teacher"
