"""ResultsRecorder: incremental tables equal a full conversion; the record before the study."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pyarrow.parquet as pq

from search.recorder import ResultsRecorder
from search.rundir.tables import _table
from search.rundir.records import EPOCHS_FILE, TRIALS_FILE

KEYS = ["epoch", "val_accuracy", "macs", "budget_fraction"]


def _trial(tid: str, x: float, result: dict | None = None) -> SimpleNamespace:
    return SimpleNamespace(trial_id=tid, config={"model": {"x": x}}, last_result=result or {}, checkpoint=None, path=None, num_failures=0)


class _Searcher:
    def __init__(self, recorder_dir):
        self.dir, self.committed = recorder_dir, []

    def commit(self, trial_id):
        # The study hears of a trial only once its final row is on disk.
        rows = {r["trial_id"]: r for r in pq.read_table(self.dir / TRIALS_FILE).to_pylist()}
        assert rows[trial_id]["state"] in ("TERMINATED", "ERROR")
        self.committed.append(trial_id)


def _run(recorder, tid, x, epochs, error=False):
    trial = _trial(tid, x)
    recorder.on_trial_start(0, [], trial)
    for e in range(1, epochs + 1):
        result = {"epoch": e, "val_accuracy": x * e, "macs": 10 * e if tid != "text" else f"n{e}", "budget_fraction": e / 3}
        trial.last_result = result
        recorder.on_trial_result(0, [], trial, result)
    if error:
        recorder.on_trial_error(0, [], trial)
    else:
        recorder.on_trial_complete(0, [], trial)


def _expected(recorder):
    trials = _table(sorted(recorder.trials.values(), key=lambda r: r["trial_id"]), ["trial_id", "state", "optuna_trial", "model.x", *KEYS])
    epochs = _table([recorder.epochs[k] for k in sorted(recorder.epochs)], ["trial_id", *KEYS])
    return trials.to_pylist(), epochs.to_pylist()


def _same(a, b):
    return len(a) == len(b) and all(
        x.keys() == y.keys() and all((v == w) or (isinstance(v, float) and isinstance(w, float) and math.isnan(v) and math.isnan(w)) for v, w in zip(x.values(), y.values()))
        for x, y in zip(a, b)
    )


def test_incremental_tables_equal_a_full_conversion(tmp_path):
    recorder = ResultsRecorder(str(tmp_path), param_names=["model.x"], metric_keys=KEYS, flush_interval_s=0)
    searcher = _Searcher(tmp_path)
    recorder.searcher = searcher
    order = ["t05", "t01", "t09", "t03", "t07", "t02"]
    for i, tid in enumerate(order):
        _run(recorder, tid, 0.1 * (i + 1), epochs=1 + i % 3, error=(tid == "t09"))
        recorder.flush()
        trials, epochs = _expected(recorder)
        assert _same(pq.read_table(tmp_path / TRIALS_FILE).to_pylist(), trials)
        assert _same(pq.read_table(tmp_path / EPOCHS_FILE).to_pylist(), epochs)
    assert searcher.committed == order
    # A running trial's rows change on every report and are converted afresh each time.
    live = _trial("t00", 0.5)
    recorder.on_trial_start(0, [], live)
    recorder.on_trial_result(0, [], live, {"epoch": 1, "val_accuracy": 0.2, "macs": 3, "budget_fraction": 1 / 3})
    recorder.flush()
    assert pq.read_table(tmp_path / TRIALS_FILE).column("trial_id").to_pylist() == sorted([*order, "t00"])
    assert _same(pq.read_table(tmp_path / EPOCHS_FILE).to_pylist(), _expected(recorder)[1])


def test_a_column_whose_type_changes_between_trials_falls_back_to_text(tmp_path):
    recorder = ResultsRecorder(str(tmp_path), param_names=["model.x"], metric_keys=KEYS, flush_interval_s=0)
    _run(recorder, "a", 0.1, epochs=2)
    recorder.flush()
    _run(recorder, "text", 0.2, epochs=2)  # macs reported as text by this one
    recorder.flush()
    macs = pq.read_table(tmp_path / TRIALS_FILE).column("macs").to_pylist()
    assert macs == ["20", "n2"]


def test_a_finished_trial_is_recorded_at_once_and_its_epochs_at_the_next_refresh(tmp_path):
    recorder = ResultsRecorder(str(tmp_path), param_names=["model.x"], metric_keys=KEYS, flush_interval_s=3600)
    _run(recorder, "small", 0.3, epochs=2)  # a small epochs table is written with the final row
    assert [r["epoch"] for r in pq.read_table(tmp_path / EPOCHS_FILE).to_pylist()] == [1, 2]
    (tmp_path / EPOCHS_FILE).unlink()
    (tmp_path / TRIALS_FILE).unlink()
    recorder = ResultsRecorder(str(tmp_path), param_names=["model.x"], metric_keys=KEYS, flush_interval_s=3600)
    recorder._epochs_write_s = 1.0  # as if the epochs table had grown large: it waits for the refresh
    _run(recorder, "a", 0.3, epochs=3)
    assert pq.read_table(tmp_path / TRIALS_FILE).column("state").to_pylist() == ["TERMINATED"]
    assert not (tmp_path / EPOCHS_FILE).exists()
    # A driver killed now: the next one restores the final epoch from the trial's final row.
    again = ResultsRecorder(str(tmp_path), param_names=["model.x"], metric_keys=KEYS)
    assert list(again.epochs) == [("a", 3)]
    assert again.epochs[("a", 3)]["val_accuracy"] == recorder.epochs[("a", 3)]["val_accuracy"]
    recorder.on_experiment_end([])
    assert [r["epoch"] for r in pq.read_table(tmp_path / EPOCHS_FILE).to_pylist()] == [1, 2, 3]
