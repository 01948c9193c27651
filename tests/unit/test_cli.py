"""The command line's user-facing errors and its dry run."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from search.run import main
from tests.conftest import ROOT, tiny_spec


def _spec(tmp_path, **sections):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(tiny_spec(**sections), sort_keys=False))
    return path


@pytest.mark.e2e  # the whole command in a fresh process, as a user runs it
def test_missing_cifar100_exits_2_with_one_line_and_no_traceback(tmp_path):
    env = {**os.environ, "BRAINSWEEP_DATA": str(tmp_path / "data")}
    proc = subprocess.run(
        [sys.executable, "-m", "search.run", "spaces/g2g_cifar100.yaml", "--storage", str(tmp_path / "runs"), "--set", "data.download=false"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("error: data: CIFAR-100 not found under ")
    assert str(tmp_path / "data") in lines[0] and "cifar-100-python" in lines[0]
    assert not (tmp_path / "runs").exists()


def test_unreachable_cluster_exits_2_before_writing(tmp_path, capsys):
    storage = tmp_path / "runs"
    code = main([str(_spec(tmp_path)), "--storage", str(storage), "--address", "127.0.0.1:1"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("error: cannot reach the Ray cluster at '127.0.0.1:1'") and len(err.splitlines()) == 1
    assert not storage.exists()


def test_existing_run_dir_needs_resume_or_a_new_name(tmp_path, capsys):
    (tmp_path / "runs" / "tiny").mkdir(parents=True)
    (tmp_path / "runs" / "tiny" / "sweep.json").write_text("{}")
    assert main([str(_spec(tmp_path)), "--storage", str(tmp_path / "runs")]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main([str(_spec(tmp_path)), "--storage", str(tmp_path / "runs"), "--name", "other", "--resume"]) == 2
    assert "no sweep to resume" in capsys.readouterr().err


def test_resume_with_a_different_space_is_refused(tmp_path, capsys):
    from search.spec import load_spec
    from search.sweep import prepare_sweep

    prepare_sweep(load_spec(_spec(tmp_path)), storage=str(tmp_path / "runs"))
    changed = _spec(tmp_path, budget={"epochs": 9})
    assert main([str(changed), "--storage", str(tmp_path / "runs"), "--resume"]) == 2
    assert "budget.epochs" in capsys.readouterr().err


def test_dry_run_prints_space_and_configs_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("search.dry_run.PREVIEW_CONFIGS", 100)  # the preview itself is tested below
    spec = _spec(tmp_path)
    storage = tmp_path / "runs"
    assert main([str(spec), "--storage", str(storage), "--dry-run"]) == 0
    first = capsys.readouterr().out
    assert "model.groups" in first and "choice [2, 4]" in first and "first 4 sampled configs" in first
    assert main([str(spec), "--storage", str(storage), "--dry-run"]) == 0
    assert capsys.readouterr().out == first, "same spec and seed, same sampled configs"
    assert main([str(spec), "--dry-run", "--set", "run.seed=1"]) == 0
    assert capsys.readouterr().out != first
    assert not storage.exists()


@pytest.mark.parametrize("flag", ["--num-samples=0", "--num-samples=-1"])
def test_bad_num_samples(tmp_path, capsys, flag):
    assert main([str(_spec(tmp_path)), flag]) == 2
    assert "--num-samples" in capsys.readouterr().err


def test_dry_run_previews_static_costs_and_the_constraints_feasible_share(monkeypatch, capsys):
    import optuna

    import search.dry_run
    from search.preview import cost_preview
    from search.space import sample_configs, trial_config
    from search.spec import load_spec
    from trainables.costs import model_costs
    from trainables.data import check_available

    typed = 'constraints=["macs <= 10000", "val_accuracy >= 0.5"]'  # as a user types it
    spec = load_spec(ROOT / "spaces" / "quickstart.yaml", [typed])
    info = check_available(spec.data.model_dump())
    preview = cost_preview(spec, info, n=30)
    # the same 30 configs, counted by building each network and counting its active weights
    macs = []
    for params in sample_configs(spec, 30, sampler=optuna.samplers.RandomSampler(seed=spec.run.seed)):
        config = trial_config(spec, params)
        macs.append(model_costs(spec.entry.build_model(config, info), info.input_shape).macs)
    assert preview.sampled == preview.built == 30
    assert preview.ranges["macs"][0] == min(macs) and preview.ranges["macs"][2] == max(macs)
    assert preview.feasible == {"macs <= 10000": sum(m <= 10000 for m in macs) / 30}
    assert 0 < preview.feasible["macs <= 10000"] < 1  # the space straddles the bound
    assert preview.learnt == ("val_accuracy >= 0.5",) and preview.relations["macs"] == "exact"

    monkeypatch.setattr(search.dry_run, "PREVIEW_CONFIGS", 30)
    assert main([str(ROOT / "spaces" / "quickstart.yaml"), "--dry-run", "--set", typed]) == 0
    out = capsys.readouterr().out
    assert "costs before training, over 30 of 30 configs" in out
    assert f"constraint macs <= 10000: met by {100 * preview.feasible['macs <= 10000']:.1f} %" in out
    assert "constraint val_accuracy >= 0.5: known only after training" in out
    # Each of the first sampled configs says whether the sweep would refuse it, by its own MACs.
    shown = [line for line in out.splitlines() if line.startswith("  ") and line.strip()[:2] in {f"{i}:" for i in range(5)}]
    first = list(sample_configs(spec, 5))
    assert len(shown) == 5
    for line, params in zip(shown, first):
        mine = model_costs(spec.entry.build_model(trial_config(spec, params), info), info.input_shape).macs
        assert line.endswith("(refused before training: macs <= 10000; the sweep draws another)") == (mine > 10000), line
    assert any(line.endswith("draws another)") for line in shown)


QUICKSTART = str(ROOT / "spaces" / "quickstart.yaml")


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("optim.lr=fast", "error: --set: optim.lr: input should be a valid number"),  # named as typed, not as the spec's fixed.*
        ("budget.epoch=3", "budget.epoch: unknown key (did you mean budget.epochs?)"),
        ("run.num_sampels=3", "run.num_sampels: unknown key (did you mean run.num_samples?)"),
        ("sampler.name=cost_awre", "error: --set: sampler.name:"),
    ],
)
def test_command_line_overrides_are_named_as_typed(override, expected, capsys):
    assert main([QUICKSTART, "--dry-run", "--set", override]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and expected in err and len(err.splitlines()) == 1


def test_a_searched_range_can_be_narrowed_from_the_command_line(capsys, monkeypatch):
    monkeypatch.setattr("search.dry_run.PREVIEW_CONFIGS", 100)
    assert main([QUICKSTART, "--dry-run", "--set", "space.model.groups={choice: [2, 4]}", "--set", "space.optim.batch_size={choice: [32, 128]}"]) == 0
    out = capsys.readouterr().out
    assert "model.groups           choice [2, 4]" in out
    assert "optim.batch_size       choice [32, 128]" in out  # a fixed parameter, now searched
    from search.spec import load_spec

    spec = load_spec(QUICKSTART, ["space.model.groups={choice: [2, 4]}", "space.optim.batch_size={choice: [32, 128]}"])
    assert spec.space["model.groups"].choice == [2, 4] and "optim.batch_size" not in spec.fixed


def test_a_grace_period_beyond_the_budget_is_pointed_out():
    """The sweep's first line and the dry run both print ``Spec.scheduler_text()``."""
    from search.spec import load_spec

    text = load_spec(QUICKSTART, ["scheduler.grace_period=10", "budget.epochs=4"]).scheduler_text()
    assert "grace_period >= budget.epochs = 4: no trial can be stopped early" in text
    assert "no trial can be stopped early" not in load_spec(QUICKSTART).scheduler_text()  # grace 4 of 12
    assert "no trial can be stopped early" in load_spec(QUICKSTART, ["scheduler.grace_period=4", "budget.epochs=4"]).scheduler_text()


def test_ctrl_c_while_starting_up_prints_one_line_and_no_traceback(tmp_path):
    """The spec is a named pipe that the test holds open and never writes: the command blocks
    reading it, past its imports, until Ctrl-C arrives. Only then is the signal sent."""
    import errno
    import signal
    import time

    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}

    def as_from_a_terminal() -> None:
        # Ctrl-C reaches a command started from a shell: the test runner's own state (SIGINT ignored
        # or blocked, e.g. after an in-process Ray earlier in the session) must not reach the child.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})

    proc = subprocess.Popen(
        [sys.executable, "-m", "search.run", str(fifo), "--dry-run"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=as_from_a_terminal,
    )
    writer, deadline = None, time.monotonic() + 120
    while writer is None:  # opening the write end succeeds once the command has opened the spec to read it
        try:
            writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            assert exc.errno == errno.ENXIO, exc
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the command never read its spec"
            time.sleep(0.05)
    try:
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"still running 60 s after Ctrl-C; its output: {out[-1000:]!r} {err[-2000:]!r}")
    finally:
        os.close(writer)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted before the sweep started: nothing was run" in err
    assert err.strip().splitlines() == ["interrupted before the sweep started: nothing was run"], err


def test_a_resume_keeps_the_sweeps_size_and_cpus_unless_given_again(tmp_path, capsys):
    import argparse

    from search.resume import as_started
    from search.run import _rerun_options
    from search.spec import load_spec
    from search.sweep import prepare_sweep

    started = load_spec(QUICKSTART, ["run.num_samples=8"])
    sweep = prepare_sweep(started, storage=str(tmp_path), name="qs")
    sweep.records.record_num_cpus(1)
    args = argparse.Namespace(storage=str(tmp_path), name="qs", num_cpus=None, address=None, overrides=[], num_samples=None)

    def _as_started(spec, args, num_samples_given):
        return as_started(spec, sweep.records, num_samples_given, args.num_cpus, args.address)

    spec, cpus = _as_started(load_spec(QUICKSTART), args, num_samples_given=False)  # the spec file says 24
    out = capsys.readouterr().out
    assert spec.num_samples == 8 and cpus == 1
    assert "--resume: 8 trials, as the sweep was started (the spec file says 24" in out and "--num-cpus 1" in out
    args.num_cpus = cpus
    assert "--num-cpus 1" in " ".join(_rerun_options(args))  # the interrupt hint's command keeps it
    spec, _ = _as_started(load_spec(QUICKSTART, ["run.num_samples=12"]), args, num_samples_given=True)
    assert spec.num_samples == 12 and "run.num_samples 8 -> 12 (as given)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("spec", "args", "expected"),
    [
        ("quickstart", ["--set", "data.name=npz", "--set", "data.path=missing.npz"], "error: data: "),
        ("g2g_mnist1d", ["--set", "data.path=runs/data/not-generated.npz"], "error: data: "),
        ("quickstart", ["--set", "run.device=cuda"], "no CUDA GPU"),
        ("quickstart", ["--set", "run.resources.gpu=1"], "no CUDA GPU"),
        ("quickstart", ["--set", "model.groups=512"], "sampled configs are refused, e.g. model.groups (512) cannot exceed model.width"),
        ("quickstart", ["occupied"], "already holds a sweep: pass --resume"),
    ],
    ids=["missing-npz", "mnist1d-without-data", "cuda", "gpu", "groups-beyond-width", "occupied-run-dir"],
)
def test_a_dry_run_refuses_what_the_real_run_refuses_with_the_same_line(tmp_path, capsys, spec, args, expected):
    """Issue 24: --dry-run approved specs the real run refused."""
    import torch

    if "no CUDA GPU" in expected and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    path = str(ROOT / "spaces" / f"{spec}.yaml")
    common = ["--storage", str(tmp_path)]
    if args == ["occupied"]:
        from search.spec import load_spec
        from search.sweep import prepare_sweep

        prepare_sweep(load_spec(path), storage=str(tmp_path))
        args = []
    assert main([path, "--dry-run", *common, *args]) == 2
    dry = capsys.readouterr().err.strip()
    assert main([path, *common, *args]) == 2  # refused before Ray starts: nothing trains
    real = capsys.readouterr().err.strip()
    assert dry == real and len(dry.splitlines()) == 1 and expected in dry, (dry, real)


def test_a_space_where_a_relation_only_sometimes_holds_reports_the_share(capsys):
    assert main([QUICKSTART, "--dry-run", "--set", "space.model.groups={choice: [2, 128]}"]) == 0
    out = capsys.readouterr().out
    import re

    share = re.search(r"warning: (\d+) % of (\d+) sampled configs are not valid \(their trials will fail\), e\.g\. model\.groups \(128\) cannot exceed model\.width", out)
    assert share and 20 <= int(share.group(1)) <= 80 and int(share.group(2)) >= 20, out  # groups 128 > the 64 input features: about half


def test_a_resume_names_every_difference_in_words(tmp_path, capsys):
    """Issue 24: one mismatch at a time, and 'fixed.model.depth is None' for a searched parameter."""
    from search.spec import load_spec
    from search.sweep import prepare_sweep

    prepare_sweep(load_spec(QUICKSTART), storage=str(tmp_path), name="qs")
    args = ["--storage", str(tmp_path), "--name", "qs", "--resume", "--set", "model.depth=1", "--set", "budget.epochs=6", "--set", "optim.batch_size=32"]
    assert main([QUICKSTART, *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "None" not in err
    assert "model.depth was searched, now fixed at 1" in err
    assert "budget.epochs is 6, the sweep ran with 12" in err
    assert "optim.batch_size is 32, the sweep ran with 64" in err


def test_a_local_ray_is_never_started_on_the_network_by_a_process_that_imported_ray_first():
    """In-process API use after ``import ray`` without the loopback variable: one clear error, no Ray started."""
    import os
    import subprocess
    import sys

    probe = (
        "import ray\n"
        "from search.ray_session import start_ray\n"
        "try:\n"
        "    start_ray(None, 1)\n"
        "except RuntimeError as exc:\n"
        "    print('refused:', exc)\n"
        "print('initialized:', ray.is_initialized())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"}
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120).stdout
    assert "refused: this process imported Ray before the sweep without RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0" in out, out
    assert "initialized: False" in out, out
