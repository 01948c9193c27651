"""Experiment trackers: only sealed epochs reach them, MLflow and TensorBoard hold exactly the run
dir's tables (read back with MLflow's client and TensorBoard's EventAccumulator), idempotently
across restarts and ``analysis track``; a tracker that fails costs one warning line."""

from __future__ import annotations

import io
import itertools
import math
import os
import shutil
import socket
import time
import warnings
from types import SimpleNamespace

import numpy as np
import pyarrow.parquet as pq
import pytest

from search.recorder import ResultsRecorder
from search.rundir import TENSORBOARD_DIR, RunDir, SweepMeta
from search.spec import load_spec, parse_spec, spec_to_yaml
from search.tracking import EpochRelease, Tracker, Trackers, make_trackers, missing_extra, tracked_metric_keys
from tests.conftest import ROOT, tiny_spec
from trainables.registry import get_trainable

KEYS = ["epoch", "val_accuracy", "macs", "budget_fraction", "test_accuracy"]
PARAMS = ["model.groups", "model.p_inter", "optim.lr", "model.width", "model.depth", "optim.batch_size"]
FIXTURE = ROOT / "tests" / "fixtures" / "run_dir_6e60cc9"
_CLOCK = itertools.count(1.7e9, 1.0)  # the reports' wall time: each later than the one before


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root (./mlruns) goes here


@pytest.fixture(scope="module")
def _empty_store(tmp_path_factory):
    """An MLflow SQLite store with its tables made (MLflow's migrations take seconds per store)."""
    MlflowClient = pytest.importorskip("mlflow", reason='the track extra: pip install -e ".[track]"').MlflowClient

    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SQLAlchemy's deprecations inside MLflow
        MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def store(_empty_store, tmp_path):
    """A fresh MLflow store's tracking URI (``sqlite:///…`` in tmp_path)."""
    shutil.copy(_empty_store, tmp_path / "mlflow.db")
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture
def no_front(monkeypatch):
    """The end-of-sweep front files left out (``python -m analysis pareto`` is a process of its own;
    the legacy run dir's test covers it)."""
    monkeypatch.setattr("search.tracking.mlflow.front_files_of", lambda sweep, folder: [])


# ---- a hand-made sweep, driven through the results recorder ------------------------------------
def _run_dir(tmp_path, tracking=None, epochs=4):
    spec = parse_spec(tiny_spec(name="hand", budget={"epochs": epochs}, tracking=tracking or {}))
    records = RunDir(str(tmp_path / "runs" / "hand"))
    os.makedirs(records.uri, exist_ok=True)
    records.write_spec_text(spec_to_yaml(spec))
    meta = SweepMeta.new("hand-study-1", "g2g")
    records.write_meta(meta)
    return spec, records, meta


def _recorder(records, trackers, continuations=()):
    return ResultsRecorder(records, param_names=PARAMS, metric_keys=KEYS, flush_interval_s=0, continuations=continuations, trackers=trackers)


def _trackers(spec, records, meta, out=None):
    return make_trackers(spec, records, meta, param_names=PARAMS, metric_keys=KEYS, out=out)


def _trial(trial_id, groups, continues=None):
    config = {"model": {"groups": groups, "p_inter": 0.125 * groups, "width": 32, "depth": 2}, "optim": {"lr": 1e-3 * groups, "batch_size": 128}}
    if continues:
        config["runtime"] = {"continues": continues}
    return SimpleNamespace(trial_id=trial_id, config=config, last_result={}, checkpoint=None, path=None, num_failures=0)


def _report(recorder, trial, epoch, budget, seed=0.0):
    result = {
        "epoch": epoch,
        "val_accuracy": 0.5 + 0.01 * epoch + seed + 0.001 * trial.config["model"]["groups"],
        "macs": 100 * trial.config["model"]["groups"],
        "budget_fraction": epoch / budget,
        "test_accuracy": 0.9 - seed if epoch == budget else math.nan,
        "timestamp": next(_CLOCK),
    }
    trial.last_result = result
    recorder.on_trial_result(0, [], trial, result)


def _train(recorder, trial, first, last, budget, checkpoint_every=1, end=None, seed=0.0):
    """Report epochs first..last, checkpointing every ``checkpoint_every``; end: complete/error/None."""
    if first == 1 or trial.config.get("runtime"):
        recorder.on_trial_start(0, [], trial)
    for epoch in range(first, last + 1):
        _report(recorder, trial, epoch, budget, seed)
        if epoch % checkpoint_every == 0:
            recorder.on_checkpoint(0, [], trial, checkpoint=None)
        recorder.on_step_end(0, [])
    if end == "complete":
        recorder.on_trial_complete(0, [], trial)
    elif end == "error":
        trial.error_file = None
        recorder.on_trial_error(0, [], trial)


class _Log(Tracker):
    """A tracker that remembers every call."""

    def __init__(self):
        self.epochs, self.ends, self.refused, self.closed = [], [], [], []

    def log_epochs(self, trial, epochs):
        self.epochs += [(trial["trial_id"], row["epoch"], row["val_accuracy"]) for row in epochs]

    def end_trial(self, trial):
        self.ends.append((trial["trial_id"], trial["state"]))

    def log_refused(self, rows):
        self.refused += [row["trial_id"] for row in rows]

    def close(self, complete, front):
        self.closed.append((complete, front))


def _table_histories(records):
    """Per trial, per metric: [(epoch, value)] of epochs.parquet, NaN cells left out."""
    out: dict = {}
    for row in records.read_epochs().to_pylist():
        for key in KEYS:
            value = row.get(key)
            if isinstance(value, (int, float)) and not math.isnan(value):
                out.setdefault(row["trial_id"], {}).setdefault(key, []).append((row["epoch"], float(value)))
    return {t: {k: sorted(v) for k, v in keys.items()} for t, keys in out.items()}


# ---- the release rule ---------------------------------------------------------------------------
def test_only_epochs_up_to_the_latest_checkpoint_or_a_final_state_are_released(tmp_path):
    _, records, _ = _run_dir(tmp_path)
    log = _Log()
    recorder = _recorder(records, Trackers([log]))
    trial = _trial("a", 2)
    _train(recorder, trial, 1, 5, budget=6, checkpoint_every=2)
    recorder.flush()
    assert [e for _, e, _ in log.epochs] == [1, 2, 3, 4]  # epoch 5 waits for a checkpoint
    assert [r["epoch"] for r in pq.read_table(records.location.file("epochs.parquet")).to_pylist()] == [1, 2, 3, 4, 5]
    _train(recorder, trial, 6, 6, budget=6, checkpoint_every=4, end="complete")  # final: all, then the end
    assert [e for _, e, _ in log.epochs] == [1, 2, 3, 4, 5, 6] and log.ends == [("a", "TERMINATED")]
    failed = _trial("b", 4)
    _train(recorder, failed, 1, 3, budget=6, checkpoint_every=5, end="error")  # never checkpointed, but final
    assert [(t, e) for t, e, _ in log.epochs if t == "b"] == [("b", 1), ("b", 2), ("b", 3)] and log.ends[-1] == ("b", "ERROR")
    recorder.add_refused({"trial_id": "r1", "state": "REFUSED", "error": "macs <= 10 broken", "macs": 800})
    recorder.flush()
    assert log.refused == ["r1"]
    recorder.flush()  # nothing twice
    assert len(log.epochs) == 9 and len(log.ends) == 2 and log.refused == ["r1"]
    recorder.on_experiment_end([])
    assert log.closed == [(True, True)]


def test_a_continuations_rewound_epochs_never_reach_a_tracker_twice(tmp_path):
    _, records, _ = _run_dir(tmp_path)
    first = _Log()
    recorder = _recorder(records, Trackers([first]))
    trial = _trial("a", 2)
    _train(recorder, trial, 1, 5, budget=8, checkpoint_every=3)  # stopped: its last checkpoint is epoch 3
    recorder.flush()
    assert [e for _, e, _ in first.epochs] == [1, 2, 3]
    # The resumed sweep rewinds "a" to its checkpoint; what it keeps is sealed, and epochs 4.. run again.
    second = _Log()
    resumed = _recorder(RunDir(records.uri), Trackers([second]), continuations=[SimpleNamespace(trial_id="a", epoch=3)])
    resumed.flush()
    assert [e for _, e, _ in second.epochs] == [1, 2, 3]  # the record as kept (an idempotent tracker holds them)
    again = _trial("a2", 2, continues="a")
    _train(resumed, again, 4, 8, budget=8, checkpoint_every=3, end="complete", seed=0.1)
    released = [(e, v) for _, e, v in second.epochs]
    assert [e for e, _ in released] == [1, 2, 3, 4, 5, 6, 7, 8]
    table = {r["epoch"]: r["val_accuracy"] for r in records.read_epochs().to_pylist()}
    assert released == sorted(table.items())  # epochs 4 and 5 as re-run, never the first run's values
    assert all(abs(v - 0.1 - (0.5 + 0.01 * e + 0.002)) < 1e-12 for e, v in released if e > 3)


def test_the_release_costs_only_the_rows_it_hands_over():
    release = EpochRelease()
    epochs = {("a", e): {"epoch": e} for e in range(1, 10_001)}
    for e in range(1, 10_001):
        release.recorded("a", e)
    release.seal("a", 10_000)
    assert len(release.take({"a": {"trial_id": "a"}}, epochs).trials[0].epochs) == 10_000

    class Counting(dict):
        gets = 0

        def __contains__(self, key):
            Counting.gets += 1
            return super().__contains__(key)

    big = Counting(epochs)
    release.recorded("a", 10_001)
    big[("a", 10_001)] = {"epoch": 10_001}
    release.finish("a")
    part = release.take({"a": {"trial_id": "a", "state": "TERMINATED"}}, big).trials[0]
    assert [r["epoch"] for r in part.epochs] == [10_001] and part.ended and Counting.gets == 1


# ---- MLflow, read back with MLflow's own client -------------------------------------------------
def _mlflow(uri, experiment="hand"):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    nested = {r.data.tags["brainsweep.trial_id"]: r for r in runs if "mlflow.parentRunId" in r.data.tags}
    histories = {
        t: {k: sorted((m.step, m.value) for m in client.get_metric_history(r.info.run_id, k)) for k in r.data.metrics} for t, r in nested.items()
    }
    return client, parents, nested, histories


def _sweep_with_restart(tmp_path, spec, records, meta, out=None):
    """Three trials and a refusal; a driver stopped mid-trial; a resumed driver that finishes."""
    recorder = _recorder(records, _trackers(spec, records, meta, out))
    _train(recorder, _trial("a", 2), 1, 4, budget=4, end="complete")
    _train(recorder, _trial("b", 4), 1, 2, budget=4, end="complete")  # stopped early by the scheduler
    recorder.add_refused({"trial_id": "r1", "state": "REFUSED", "error": "macs <= 10 broken", "macs": 800.0, "model.groups": 8})
    _train(recorder, _trial("c", 2), 1, 3, budget=4, checkpoint_every=2)
    recorder.flush()
    recorder.stopping = lambda: True
    recorder.on_experiment_end([])
    resumed = _recorder(RunDir(records.uri), _trackers(spec, records, meta, out), continuations=[SimpleNamespace(trial_id="c", epoch=2)])
    resumed.flush()
    _train(resumed, _trial("c2", 2, continues="c"), 3, 4, budget=4, end="complete", seed=0.05)
    _train(resumed, _trial("d", 4), 1, 1, budget=4, end="error")
    resumed.on_experiment_end([])


def test_mlflow_holds_the_run_dir_once_across_a_restart(tmp_path, capsys, store, no_front):
    uri = store
    spec, records, meta = _run_dir(tmp_path, {"mlflow": {"uri": uri}})
    out = io.StringIO()
    _sweep_with_restart(tmp_path, spec, records, meta, out)
    assert out.getvalue() == "" and capsys.readouterr().err == ""  # no MLflow noise either
    client, parents, nested, histories = _mlflow(uri)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    parent = parents[0]
    assert parent.data.tags["brainsweep.study"] == "hand-study-1"
    assert set(nested) == {"a", "b", "c", "d"}  # one nested run per trained trial, the refused one is not
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in nested.values())
    assert histories == _table_histories(records)  # every point once, equal to epochs.parquet
    trials = {r["trial_id"]: r for r in records.read_trials().to_pylist()}
    for trial_id, run in nested.items():
        assert run.data.params == {p: str(trials[trial_id][p]) for p in PARAMS}
        assert {p: type(trials[trial_id][p])(v) for p, v in run.data.params.items()} == {p: trials[trial_id][p] for p in PARAMS}
    states = {t: (r.data.tags["brainsweep.state"], r.info.status) for t, r in nested.items()}
    assert states == {"a": ("terminated", "FINISHED"), "b": ("stopped_early", "FINISHED"), "c": ("terminated", "FINISHED"), "d": ("error", "FAILED")}
    hv = [(m.step, m.value) for m in client.get_metric_history(parent.info.run_id, "hypervolume")]
    assert [s for s, _ in hv] == [1, 2, 3, 4] and hv[0][1] > 0 and hv[-1][1] >= hv[0][1]
    assert [(m.step, m.value) for m in client.get_metric_history(parent.info.run_id, "refused_candidates")] == [(1, 1.0)]
    table = client.load_table(parent.info.experiment_id, "refused_candidates.json", run_ids=[parent.info.run_id])
    assert table["trial_id"].tolist() == ["r1"] and table["macs"].tolist() == [800.0]
    assert client.download_artifacts(parent.info.run_id, "spec.yaml", str(tmp_path)) and (tmp_path / "spec.yaml").read_text() == records.read_spec_text()


def test_mlflow_holds_only_sealed_epochs_of_a_stopped_sweep(tmp_path, store):
    uri = store
    spec, records, meta = _run_dir(tmp_path, {"mlflow": {"uri": uri}})
    recorder = _recorder(records, _trackers(spec, records, meta))
    _train(recorder, _trial("c", 2), 1, 3, budget=4, checkpoint_every=2)
    recorder.stopping = lambda: True
    recorder.on_experiment_end([])
    _, parents, nested, histories = _mlflow(uri)
    assert parents[0].info.status == "KILLED" and nested["c"].info.status == "KILLED"
    assert histories["c"]["epoch"] == [(1, 1.0), (2, 2.0)]  # epoch 3 runs again on resume


def test_a_server_that_is_down_costs_one_warning_and_seconds(tmp_path):
    pytest.importorskip("mlflow", reason='the track extra: pip install -e ".[track]"')
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    uri = f"http://127.0.0.1:{port}"
    spec, records, meta = _run_dir(tmp_path, {"mlflow": {"uri": uri}})
    out = io.StringIO()
    start = time.monotonic()
    trackers = _trackers(spec, records, meta, out)
    recorder = _recorder(records, trackers)
    _train(recorder, _trial("a", 2), 1, 4, budget=4, end="complete")
    recorder.on_experiment_end([])
    assert time.monotonic() - start < 10
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"warning: MLflow at {uri} failed")
    assert f"python -m analysis track {records.uri} --mlflow {uri}" in lines[0]
    assert len(records.read_epochs()) == 4  # the run dir is complete


class _Dying:
    """An MlflowClient that fails for good after ``calls`` calls (a server that dies)."""

    def __init__(self, client, calls):
        self.client, self.left, self.after_death = client, calls, 0

    def __getattr__(self, name):
        method = getattr(self.client, name)

        def call(*args, **kwargs):
            if self.left <= 0:
                self.after_death += 1
                raise ConnectionError("connection refused")
            self.left -= 1
            return method(*args, **kwargs)

        return call


def test_a_server_that_dies_midway_costs_one_warning_and_is_not_called_again(tmp_path, store, no_front):
    from mlflow import MlflowClient

    from search.tracking.mlflow import MlflowTracker
    from search.tracking.tracker import TrackedSweep, tracked_metric_keys

    uri = store
    spec, records, meta = _run_dir(tmp_path)
    sweep = TrackedSweep("hand", meta.study_name, records.uri, records, spec, tuple(PARAMS), tracked_metric_keys(KEYS), lambda: None)
    dying = _Dying(MlflowClient(tracking_uri=uri), calls=12)
    out = io.StringIO()
    recorder = _recorder(records, Trackers([MlflowTracker(uri, "hand", sweep, client=dying)], out=out))
    for i, name in enumerate("abcdef"):
        _train(recorder, _trial(name, 2 + i), 1, 3, budget=3, end="complete")
    recorder.on_experiment_end([])
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and "MLflow at sqlite" in lines[0] and "ConnectionError: connection refused" in lines[0]
    assert dying.after_death == 1  # disabled after its first failure
    assert len(records.read_trials()) == 6


def test_http_bounds_keep_what_the_user_set(monkeypatch):
    pytest.importorskip("mlflow", reason='the track extra: pip install -e ".[track]"')
    from search.tracking.mlflow import bounded_http

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT", raising=False)
    with bounded_http():
        assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "3" and os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "5"
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "3" and "MLFLOW_HTTP_REQUEST_TIMEOUT" not in os.environ


# ---- TensorBoard, read back with TensorBoard's own reader ---------------------------------------
def _event_data(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    out = {}
    for trial_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        acc = EventAccumulator(str(trial_dir), size_guidance={"scalars": 0})
        acc.Reload()
        scalars = {tag: [(s.step, s.value) for s in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
        plugin = {tag: plugin_data_pb2.HParamsPluginData.FromString(v) for tag, v in acc.PluginTagToContent("hparams").items()}
        out[trial_dir.name] = (scalars, plugin, len(list(trial_dir.iterdir())))
    return out


def test_tensorboard_event_files_hold_the_tables_once_after_a_restart(tmp_path):
    pytest.importorskip("tensorboard", reason='the track extra: pip install -e ".[track]"')
    spec, records, meta = _run_dir(tmp_path, {"tensorboard": True})
    _sweep_with_restart(tmp_path, spec, records, meta, io.StringIO())
    data = _event_data(records.tensorboard_dir(meta))
    assert records.tensorboard_dir(meta) == tmp_path / "runs" / "hand" / TENSORBOARD_DIR
    assert set(data) == {"a", "b", "c", "d"}
    trials = {r["trial_id"]: r for r in records.read_trials().to_pylist()}
    for trial_id, keys in _table_histories(records).items():
        scalars, plugin, files = data[trial_id]
        assert files == 1  # rewritten once by the resumed driver, not appended to
        assert {k: [(s, float(np.float32(v))) for s, v in h] for k, h in keys.items()} == scalars
        start = plugin["_hparams_/session_start_info"].session_start_info.hparams
        assert {p: (v.number_value if v.HasField("number_value") else v.string_value) for p, v in start.items()} == {p: trials[trial_id][p] for p in PARAMS}
        status = plugin["_hparams_/session_end_info"].session_end_info.status
        assert status == (2 if trial_id == "d" else 1)  # STATUS_FAILURE for the error, else STATUS_SUCCESS


# ---- after the fact, on a run dir of the previous release ---------------------------------------
def test_analysis_track_logs_a_legacy_run_dir_once(tmp_path, capsys, store):
    pytest.importorskip("tensorboard", reason='the track extra: pip install -e ".[track]"')
    from analysis.__main__ import main

    run_dir = tmp_path / "runs" / "legacy"
    shutil.copytree(FIXTURE, run_dir)
    uri = store
    assert main(["track", str(run_dir), "--mlflow", uri, "--tensorboard"]) == 0
    first = capsys.readouterr().out
    assert main(["track", str(run_dir), "--mlflow", uri]) == 0
    out = capsys.readouterr()
    assert "warning" not in out.err
    rows = len(pq.read_table(run_dir / "epochs.parquet"))
    said = [line for line in first.splitlines() if "epoch rows" in line]
    assert said[0].startswith("MLflow") and f"{rows} epoch rows, {rows} of them new to it" in said[0], first  # the first time
    assert out.out.count("epoch rows, none of them new to it") == 1, out.out  # the second time: nothing again
    client, parents, nested, histories = _mlflow(uri, "legacy")
    assert len(parents) == 1 and parents[0].info.status == "KILLED"  # stopped by SIGTERM, never resumed
    assert set(nested) == {"4595547e", "a4157003", "d939b120", "f3eb9838"}
    keys = tracked_metric_keys(get_trainable("g2g").report_keys)
    table: dict = {}
    for row in pq.read_table(run_dir / "epochs.parquet").to_pylist():
        for key in keys:
            value = row.get(key)
            if isinstance(value, (int, float)) and not math.isnan(value):
                table.setdefault(row["trial_id"], {}).setdefault(key, []).append((row["epoch"], float(value)))
    assert histories == table  # d939b120 (unfinished) up to its latest checkpoint: all 3 of its epochs
    assert {t: r.info.status for t, r in nested.items()} == {"4595547e": "FINISHED", "a4157003": "FINISHED", "f3eb9838": "FINISHED", "d939b120": "KILLED"}
    assert nested["f3eb9838"].data.tags["brainsweep.state"] == "stopped_early"
    assert {f.path for f in client.list_artifacts(parents[0].info.run_id, "front")} == {"front/front.csv", "front/front.png", "front/front.txt"}
    assert set(_event_data(run_dir / TENSORBOARD_DIR)) == set(nested)


# ---- the spec, --set, --resume, the missing extra -----------------------------------------------
def test_tracking_is_set_as_users_type_it_and_may_change_on_resume(tmp_path):
    from search.resume import _check_same_spec
    from search.rundir import RunDirError

    spec = load_spec(ROOT / "spaces" / "quickstart.yaml", ["tracking.mlflow.uri=sqlite:///x.db", "tracking.tensorboard=true"])
    assert spec.tracking.mlflow.uri == "sqlite:///x.db" and spec.tracking.tensorboard and spec.tracking.mlflow.experiment is None
    spec = load_spec(ROOT / "spaces" / "quickstart.yaml", ["tracking.mlflow.uri=http://127.0.0.1:5000", "tracking.mlflow.experiment=exp one"])
    assert spec.tracking.mlflow.uri == "http://127.0.0.1:5000" and spec.tracking.mlflow.experiment == "exp one"
    with pytest.raises(ValueError, match="tracking.mlflow.url: unknown key"):
        load_spec(ROOT / "spaces" / "quickstart.yaml", ["tracking.mlflow.url=x"])
    saved = load_spec(ROOT / "spaces" / "quickstart.yaml")
    records = RunDir(str(tmp_path / "q"))
    os.makedirs(records.uri)
    records.write_spec_text(spec_to_yaml(saved))
    _check_same_spec(spec, records)  # tracking added on resume: allowed
    with pytest.raises(RunDirError, match="budget.epochs"):
        _check_same_spec(load_spec(ROOT / "spaces" / "quickstart.yaml", ["budget.epochs=3", "tracking.tensorboard=true"]), records)


def test_a_missing_extra_is_one_line_before_anything_runs(monkeypatch, capsys):
    from search.run import main

    monkeypatch.setitem(__import__("sys").modules, "mlflow", None)
    spec = load_spec(ROOT / "spaces" / "quickstart.yaml", ["tracking.mlflow.uri=sqlite:///x.db"])
    assert missing_extra(spec.tracking) == 'tracking.mlflow needs MLflow: pip install -e ".[track]"'
    assert missing_extra(load_spec(ROOT / "spaces" / "quickstart.yaml").tracking) is None
    code = main([str(ROOT / "spaces" / "quickstart.yaml"), "--set", "tracking.mlflow.uri=sqlite:///x.db", "--storage", "runs"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == ['error: tracking.mlflow needs MLflow: pip install -e ".[track]"']
    assert not os.path.exists("runs")  # nothing was written


def test_trackers_added_on_the_resume_of_a_finished_sweep_get_its_whole_record(tmp_path, store, no_front):
    """A --resume with nothing left to train still logs the record to trackers the sweep did not have."""
    from search.tracking import log_record

    spec, records, meta = _run_dir(tmp_path)  # no tracking while it ran
    _sweep_with_restart(tmp_path, spec, records, meta)
    later = spec.model_copy(update={"tracking": parse_spec(tiny_spec(name="hand", tracking={"mlflow": {"uri": store}})).tracking})
    log_record(later, records, meta)
    log_record(later, records, meta)  # a second resume: nothing twice
    _, parents, nested, histories = _mlflow(store)
    assert len(parents) == 1 and set(nested) == {"a", "b", "c", "d"}
    assert histories == _table_histories(records)
