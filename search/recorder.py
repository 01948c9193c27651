"""Results on disk while a sweep runs: ``trials.parquet`` and ``epochs.parquet``.

A Ray Tune callback in the driver collects every report and every trial's fate, and writes
both tables atomically (temp file, then rename) every few seconds and at the end, so a
running sweep can be analysed at any time and a killed driver loses at most a few seconds.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
from ray.tune import Callback

from search.rundir import EPOCHS_FILE, TRIALS_FILE, RunLocation, open_run_dir

from trainables.config import flatten, unflatten
from trainables.report import BASE_KEYS, INFO_KEYS

__all__ = ["ResultsRecorder", "one_line_error"]


def one_line_error(trial: Any) -> str:
    """The root cause of a failed Ray trial as one line (``Type: message``).

    Read from the driver's copy of the trial's error files: when Tune calls back on an error,
    they are not synced to the run dir's storage yet.
    """
    from ray import cloudpickle

    exc = None
    pickled = getattr(trial, "pickled_error_file", None)
    if pickled and os.path.exists(pickled):
        try:
            with open(pickled, "rb") as f:
                exc = cloudpickle.load(f)
        except Exception:  # noqa: BLE001 - an unreadable error must never fail the sweep
            exc = None
    cause = getattr(exc, "cause", None) or exc
    if cause is not None:
        lines = [line for line in str(cause).strip().splitlines() if line.strip()]
        return f"{type(cause).__name__}: {lines[-1].strip() if lines else ''}".strip()
    text_file = getattr(trial, "error_file", None)
    if text_file and os.path.exists(text_file):
        with open(text_file) as f:
            lines = [line for line in f.read().splitlines() if line.strip()]
        if lines:
            return lines[-1].strip()
    return "unknown error (see the trial's error.txt)"


def _column(values: list[Any]) -> pa.Array:
    """An Arrow column from Python values; mixed non-numeric types fall back to strings."""
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def _table(rows: Sequence[Mapping[str, Any]], first: Sequence[str]) -> pa.Table:
    names: list[str] = list(first)
    for row in rows:
        names += [k for k in row if k not in names]
    return pa.table({name: _column([row.get(name) for row in rows]) for name in names})


class ResultsRecorder(Callback):
    """Collect trial reports and outcomes; write ``trials.parquet`` / ``epochs.parquet``.

    Args:
        run_dir: The run dir (a :class:`~search.rundir.RunLocation`, or a local path or URI).
        param_names: Dotted names of the searched and fixed parameters (one column each).
        metric_keys: Report keys to keep (the contract plus the family's own).
        searcher: Optional; used to record each trial's Optuna trial number.
        flush_interval_s: Minimum seconds between periodic writes.
    """

    #: Seconds after a trial finished before its older checkpoints are deleted (several of
    #: Tune's ~10 s snapshot periods).
    PRUNE_AFTER_S = 60.0

    def __init__(
        self,
        run_dir: RunLocation | str,
        param_names: Sequence[str],
        metric_keys: Sequence[str] = BASE_KEYS,
        searcher: Any = None,
        flush_interval_s: float = 3.0,
    ) -> None:
        self.location = run_dir if isinstance(run_dir, RunLocation) else open_run_dir(run_dir)
        self.fs = self.location.filesystem[0]
        self.param_names = list(param_names)
        self.metric_keys = list(dict.fromkeys(metric_keys))
        self.searcher = searcher
        self.flush_interval_s = flush_interval_s
        self.trials: dict[str, dict[str, Any]] = {}
        self.epochs: dict[tuple[str, int], dict[str, Any]] = {}
        self._dirty = False
        self._last_flush = 0.0
        self._reconciled = False
        self._to_prune: list[tuple[float, Any, str]] = []
        self._load_existing()

    # The callback is pickled with the sweep (tuner.pkl) and unpickled by ``--resume``: what
    # it knows then is what is on disk, not what it held when the sweep was created.
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(trials={}, epochs={}, _dirty=False, _reconciled=False, _to_prune=[])
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._load_existing()

    # ---- state -----------------------------------------------------------------------------
    def _load_existing(self) -> None:
        """On resume, keep what an earlier driver already recorded."""
        for name, store in ((TRIALS_FILE, "trials"), (EPOCHS_FILE, "epochs")):
            table = self.location.read_table(name)
            if table is None:
                continue
            for row in table.to_pylist():
                if store == "trials":
                    self.trials[row["trial_id"]] = row
                else:
                    self.epochs[(row["trial_id"], int(row["epoch"]))] = row

    def _params(self, trial: Any) -> dict[str, Any]:
        config = flatten(unflatten(trial.config))
        return {name: config.get(name) for name in self.param_names}

    def _optuna_number(self, trial_id: str) -> int | None:
        ot_trials = getattr(getattr(self.searcher, "searcher", self.searcher), "_ot_trials", None)
        if ot_trials and trial_id in ot_trials:
            return ot_trials[trial_id].number
        return None

    def _update_trial(self, trial: Any, state: str, error: str | None = None) -> None:
        row = self.trials.get(trial.trial_id, {})
        last = trial.last_result or {}
        row.update(
            {
                "trial_id": trial.trial_id,
                "state": state,
                "error": error,
                "optuna_trial": self._optuna_number(trial.trial_id) if row.get("optuna_trial") is None else row["optuna_trial"],
                **self._params(trial),
            }
        )
        for key in self.metric_keys:
            if key in last:
                row[key] = last[key]
            else:
                row.setdefault(key, None if key in INFO_KEYS else 0 if key == "epoch" else math.nan)
        row["retries"] = int(getattr(trial, "num_failures", 0) or 0)
        checkpoint = getattr(trial, "checkpoint", None)
        row["checkpoint"] = checkpoint.path if checkpoint is not None else row.get("checkpoint")
        row["trial_dir"] = getattr(trial, "path", None)
        self.trials[trial.trial_id] = row
        self._dirty = True

    def _reconcile(self, trials: list) -> None:
        """Drop rows of trials a killed driver started that the restored sweep does not know.

        Finished trials are kept (their work is done and told to Optuna); unfinished ones
        would never finish, and their Optuna trials are told FAIL by the searcher.
        """
        known = {t.trial_id for t in trials}
        lost = {tid for tid, row in self.trials.items() if tid not in known and row["state"] not in ("TERMINATED", "ERROR")}
        for tid in lost:
            del self.trials[tid]
        self.epochs = {k: v for k, v in self.epochs.items() if k[0] not in lost}
        self._reconciled = True
        self._dirty = self._dirty or bool(lost)

    # ---- Tune callback hooks ---------------------------------------------------------------
    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        if not self._reconciled:
            self._reconcile(trials)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._update_trial(trial, "RUNNING")

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        epoch = int(result.get("epoch", result.get("training_iteration", 0)))
        row = {"trial_id": trial.trial_id, **{k: result[k] for k in self.metric_keys if k in result}}
        row["epoch"] = epoch
        row["timestamp"] = float(result.get("timestamp", time.time()))
        self.epochs[(trial.trial_id, epoch)] = row
        self._update_trial(trial, "RUNNING")

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._update_trial(trial, "TERMINATED")
        self.flush()
        checkpoint = getattr(trial, "checkpoint", None)
        if checkpoint is not None:
            fs = getattr(checkpoint, "filesystem", None) or self.fs
            self._to_prune.append((time.monotonic(), fs, checkpoint.path))

    def _prune_checkpoints(self, min_age_s: float) -> None:
        """Delete finished trials' checkpoints older than their last one.

        Only once ``min_age_s`` has passed since the trial finished: until Tune has taken a new
        snapshot of the sweep (every ~10 s), a resumed sweep could still restore from them.
        """
        now, keep = time.monotonic(), []
        for finished, fs, final in self._to_prune:
            if now - finished < min_age_s:
                keep.append((finished, fs, final))
                continue
            parent = final.rstrip("/").rsplit("/", 1)[0]
            try:
                for info in fs.get_file_info(pafs.FileSelector(parent)):
                    if info.base_name.startswith("checkpoint_") and info.path.rstrip("/") != final.rstrip("/"):
                        fs.delete_dir(info.path)
            except OSError:
                pass  # pruning is housekeeping: never fail the sweep for it
        self._to_prune = keep

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._update_trial(trial, "ERROR", one_line_error(trial))
        self.flush()

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if self._dirty and time.monotonic() - self._last_flush >= self.flush_interval_s:
            self.flush()
        if self._to_prune and time.monotonic() - self._to_prune[0][0] >= self.PRUNE_AFTER_S:
            self._prune_checkpoints(self.PRUNE_AFTER_S)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        for trial in trials:  # trials that never started still get a row
            if trial.trial_id not in self.trials:
                self._update_trial(trial, trial.status)
        self.flush()
        self._prune_checkpoints(0.0)  # Tune's final snapshot knows every finished trial

    # ---- output ----------------------------------------------------------------------------
    def flush(self) -> None:
        """Write both tables now (atomically)."""
        trial_rows = sorted(self.trials.values(), key=lambda r: r["trial_id"])
        epoch_rows = [self.epochs[k] for k in sorted(self.epochs)]
        first = ["trial_id", "state", "optuna_trial", *self.param_names, *self.metric_keys]
        if trial_rows:
            self.location.write_table(TRIALS_FILE, _table(trial_rows, first))
        if epoch_rows:
            self.location.write_table(EPOCHS_FILE, _table(epoch_rows, ["trial_id", *self.metric_keys]))
        self._dirty = False
        self._last_flush = time.monotonic()
