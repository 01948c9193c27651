"""The pieces of a resume, on a real Optuna study and real files: deferred tells, continuations,
the plan built from a run dir's record, and progress lines that count on."""

from __future__ import annotations

import io
import json
import math

import optuna
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from optuna.trial import TrialState

from search.progress import ProgressPrinter
from search.resume import latest_checkpoint, plan_resume
from search.rundir import RunDir, SweepMeta
from search.rundir.records import PROGRESS_FILE, run_location
from search.study import StudyStore
from search.searcher import Continuation, SweepSearcher
from search.study import RAY_TRIAL_ATTR
from search.spec import parse_spec
from tests.conftest import tiny_spec


@pytest.fixture
def spec():
    return parse_spec(tiny_spec())


def _result(acc, macs, budget=1.0):
    return {"val_accuracy": acc, "macs": macs, "budget_fraction": budget, "epoch": int(budget * 3)}


def test_deferred_outcome_reaches_the_study_only_on_commit(tmp_path, spec):
    searcher = SweepSearcher(spec, study_name="d", storage=f"sqlite:///{tmp_path / 's.db'}", defer_tells=True)
    searcher.suggest("a")
    searcher.suggest("b")
    searcher.on_trial_complete("a", _result(0.8, 10))
    searcher.on_trial_complete("b", None, error=True)
    assert [t.state for t in searcher.study.trials] == [TrialState.RUNNING, TrialState.RUNNING]
    searcher.commit("a")
    searcher.discard("b")  # e.g. its actor died with a stopping sweep
    searcher.commit("b")
    a, b = searcher.study.trials
    assert a.state == TrialState.COMPLETE and a.values == [0.8, 10.0]
    assert b.state == TrialState.RUNNING, "a discarded outcome is never told"


def test_continuation_reuses_the_optuna_trial_and_its_parameters(tmp_path, spec):
    url = f"sqlite:///{tmp_path / 's.db'}"
    first = SweepSearcher(spec, study_name="c", storage=url, num_samples=2)
    params = first.suggest("old")
    stored = first.study.trials[0]
    second = SweepSearcher(
        spec, study_name="c", storage=url, num_samples=2,
        continuations=[Continuation("old", stored.number, "/runs/x/trial_old/checkpoint_000002", 3)],
    )
    config = second.suggest("new")
    assert {k: v for k, v in config.items() if k != "runtime"} == params
    assert config["runtime"] == {"continues": "old", "continue_from": "/runs/x/trial_old/checkpoint_000002"}
    assert second.continues == {"new": "old"}
    assert len(second.study.trials) == 1, "no new Optuna trial for a continuation"
    second.on_trial_complete("new", _result(0.7, 20))
    (trial,) = second.study.trials
    assert trial.state == TrialState.COMPLETE and trial.values == [0.7, 20.0]
    assert trial.user_attrs[RAY_TRIAL_ATTR] == "old"
    assert second.suggest("another") is not None and second.suggest("more") == "FINISHED"


def _checkpoint(directory, epoch):
    directory.mkdir(parents=True)
    torch.save({"epoch": torch.tensor(epoch).item(), "model": {}}, directory / "state.pt")


def test_latest_checkpoint_skips_damaged_ones_and_those_past_the_recorded_epochs(tmp_path):
    location = run_location(str(tmp_path), "run")
    trial_dir = tmp_path / "run" / "trial_t1"
    _checkpoint(trial_dir / "checkpoint_000001", 2)
    _checkpoint(trial_dir / "checkpoint_000002", 3)
    (trial_dir / "checkpoint_000003").mkdir()
    (trial_dir / "checkpoint_000003" / "state.pt").write_bytes(b"cut short")
    location = RunDir(location)
    path, epoch = latest_checkpoint(location, "t1", None)
    assert (path, epoch) == (str(trial_dir / "checkpoint_000002"), 3)
    assert latest_checkpoint(location, "t1", None, max_epoch=2) == (str(trial_dir / "checkpoint_000001"), 2)
    # A row may name a checkpoint outside the run dir: never followed.
    _checkpoint(tmp_path / "elsewhere" / "checkpoint_000009", 9)
    assert latest_checkpoint(location, "t1", {"checkpoint": str(tmp_path / "elsewhere" / "checkpoint_000009")})[1] == 3
    assert latest_checkpoint(location, "nothing", None) == (None, 0)


def test_plan_tells_what_the_record_holds_and_continues_the_rest(tmp_path, spec):
    location = run_location(str(tmp_path), "run")
    (tmp_path / "run").mkdir()
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'run' / 'study.db'}")
    study = optuna.create_study(study_name="p", storage=storage, directions=["maximize", "minimize"])
    trials = {}
    for tid in ("done", "told", "running", "pending"):
        trials[tid] = study.ask()
        trials[tid].set_user_attr(RAY_TRIAL_ATTR, tid)
    study.ask()  # asked for, never a Ray trial
    study.tell(trials["told"], [0.6, 30.0])
    _checkpoint(tmp_path / "run" / "trial_running" / "checkpoint_000001", 2)
    rows = [
        {"trial_id": "done", "state": "TERMINATED", "val_accuracy": 0.9, "macs": 10.0, "budget_fraction": 1.0, "epoch": 3},
        {"trial_id": "told", "state": "TERMINATED", "val_accuracy": 0.6, "macs": 30.0, "budget_fraction": 1.0, "epoch": 3},
        {"trial_id": "running", "state": "RUNNING", "val_accuracy": 0.5, "macs": 10.0, "budget_fraction": 2 / 3, "epoch": 2},
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "run" / "trials.parquet")
    epochs = [{"trial_id": "running", "epoch": e} for e in (1, 2)] + [{"trial_id": "done", "epoch": e} for e in (1, 2, 3)]
    pq.write_table(pa.Table.from_pylist(epochs), tmp_path / "run" / "epochs.parquet")

    plan = plan_resume(RunDir(location), StudyStore(study, storage), list(spec.metrics), [])
    assert plan.finished == 2 and plan.told == 1
    by_id = {c.trial_id: c for c in plan.continuations}
    assert set(by_id) == {"running", "pending"}
    assert by_id["running"].epoch == 2 and by_id["running"].checkpoint.endswith("trial_running/checkpoint_000001")
    assert by_id["pending"].checkpoint is None and by_id["pending"].epoch == 0
    states = {t.user_attrs.get(RAY_TRIAL_ATTR): t for t in study.get_trials()}
    assert states["done"].state == TrialState.COMPLETE and states["done"].values == [0.9, 10.0]
    assert states[None].state == TrialState.FAIL, "a suggestion that never became a trial is not left RUNNING"
    assert states["running"].state == TrialState.RUNNING and states["pending"].state == TrialState.RUNNING


def test_progress_counts_on_and_keeps_the_recorded_reference(tmp_path):
    location = run_location(str(tmp_path), "run")
    (tmp_path / "run").mkdir()
    out = io.StringIO()
    printer = ProgressPrinter(6, ["val_accuracy", "energy_uj"], ["max", "min"], epochs=4, out=out, records=RunDir(location))
    printer.REFERENCE_AFTER = 2
    rows = [
        {"trial_id": "a", "state": "TERMINATED", "val_accuracy": 0.9, "energy_uj": 2.0, "budget_fraction": 1.0},
        {"trial_id": "b", "state": "ERROR", "val_accuracy": math.nan, "energy_uj": math.nan, "budget_fraction": math.nan},
        {"trial_id": "c", "state": "PENDING", "val_accuracy": 0.5, "energy_uj": 1.0, "budget_fraction": 0.5},
    ]
    printer.continue_from(rows, {"val_accuracy": 0.1, "energy_uj": 10.0})
    assert printer.done == 2 and printer.best == {"val_accuracy": 0.9, "energy_uj": 2.0}
    from types import SimpleNamespace

    printer.on_trial_complete(0, [], SimpleNamespace(trial_id="d", config={}, last_result={"val_accuracy": 0.8, "energy_uj": 1.0, "epoch": 4, "budget_fraction": 1.0}))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[0] == "hypervolume reference (kept from before the resume): val_accuracy=0.1, energy_uj=10"
    assert "[3/6] d done" in lines[1], "no new reference: the recorded one is kept"
    assert printer._reference == [0.1, 10.0]
    # A sweep that fixes its reference records it for a later resume.
    fresh = ProgressPrinter(6, ["val_accuracy", "energy_uj"], ["max", "min"], epochs=4, out=io.StringIO(), records=RunDir(location))
    fresh.REFERENCE_AFTER = 1
    fresh.on_trial_complete(0, [], SimpleNamespace(trial_id="e", config={}, last_result={"val_accuracy": 0.8, "energy_uj": 1.0, "epoch": 4, "budget_fraction": 1.0}))
    saved = json.loads((tmp_path / "run" / PROGRESS_FILE).read_text())["hypervolume_reference"]
    assert saved == dict(zip(["val_accuracy", "energy_uj"], fresh._reference))


def test_closing_summary_names_feasible_front_trials_only(tmp_path, capsys):
    from types import SimpleNamespace

    from search.summary import print_summary as _summary

    spec = parse_spec(tiny_spec(constraints=["macs <= 1000"]))
    location = run_location(str(tmp_path), "run")
    (tmp_path / "run").mkdir()
    rows = [  # b ties a on accuracy but is dominated; c is infeasible; d is stopped early
        {"trial_id": "a", "state": "TERMINATED", "val_accuracy": 0.9, "macs": 100.0, "budget_fraction": 1.0, "test_accuracy": 0.8},
        {"trial_id": "b", "state": "TERMINATED", "val_accuracy": 0.9, "macs": 200.0, "budget_fraction": 1.0, "test_accuracy": 0.85},
        {"trial_id": "c", "state": "TERMINATED", "val_accuracy": 0.99, "macs": 5000.0, "budget_fraction": 1.0, "test_accuracy": 0.9},
        {"trial_id": "d", "state": "TERMINATED", "val_accuracy": 0.5, "macs": 10.0, "budget_fraction": 0.5, "test_accuracy": math.nan},
        {"trial_id": "e", "state": "TERMINATED", "val_accuracy": 0.7, "macs": 50.0, "budget_fraction": 1.0, "test_accuracy": 0.6},
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "run" / "trials.parquet")
    code = _summary(SimpleNamespace(spec=spec, records=RunDir(location), run_dir=location.uri, meta=SweepMeta("run-study")))
    out = capsys.readouterr().out
    best = {line.split()[0]: line.split()[2] for line in out.splitlines() if line.startswith("  val_accuracy") or line.startswith("  macs")}
    assert code == 0 and "best feasible full-budget trials per objective:" in out
    assert best == {"val_accuracy": "a", "macs": "e"}, out
    assert "trials: 1 stopped early, 4 terminated" in out
