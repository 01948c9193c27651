"""Results on disk while a sweep runs: ``trials.parquet`` and ``epochs.parquet``.

A Ray Tune callback in the driver collects every report and every trial's fate, and writes
both tables atomically (temp file, then rename) every few seconds and at the end, so a
running sweep can be analysed at any time and a killed driver loses at most a few seconds.
A trial's ``state`` is one of the names :mod:`trainables.report` defines (``RUNNING_STATE``,
``TERMINATED_STATE``, ``ERROR_STATE`` …).

With experiment trackers (:mod:`search.tracking`), each write of the epochs table is followed by
a release of what the run dir now holds for good (:mod:`search.tracking.release`): epoch rows up
to each trial's latest checkpoint, all of a finished trial's, then its end.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
from ray.tune import Callback

from search.rundir import RunDir, RunLocation, SealedRows, epoch_columns, epoch_row, missing_value, trial_columns, trial_row
from search.tracking.release import EpochRelease
from trainables.config import flatten, unflatten
from trainables.report import BASE_KEYS, TERMINATED_STATE, ERROR_STATE, FINAL_STATES, INFO_KEYS, PENDING_STATE, RUNNING_STATE, SETTLED_STATES

__all__ = ["ResultsRecorder", "one_line_error", "record_id"]


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


def record_id(trial: Any) -> str:
    """A Ray trial's id in the run dir: its own, or that of the interrupted trial it continues."""
    config = getattr(trial, "config", None) or {}
    runtime = config.get("runtime")
    continues = runtime.get("continues") if isinstance(runtime, Mapping) else config.get("runtime/continues")
    return continues or trial.trial_id


def flush_interval() -> float:
    """Seconds between refreshes of the tables while trials run: ``$BRAINSWEEP_FLUSH_S`` or 3.

    A trial's final row is written at once whatever this is; it only sets how far behind the
    epoch rows of running trials may be.
    """
    try:
        return max(0.0, float(os.environ.get("BRAINSWEEP_FLUSH_S", "3")))
    except ValueError:
        return 3.0


class ResultsRecorder(Callback):
    """Collect trial reports and outcomes; write ``trials.parquet`` / ``epochs.parquet``.

    ``trials.parquet`` is the run dir's record of what finished: a trial's final row is written
    before its outcome is told to the Optuna study (``searcher.commit``), so a driver killed at
    any moment leaves a study that is never ahead of the record (a resumed sweep tells the study
    what the record holds and it lacks).

    Args:
        run_dir: The run dir (a :class:`~search.rundir.RunDir`, a location, or a local path or URI).
        param_names: Dotted names of the searched and fixed parameters (one column each).
        metric_keys: Report keys to keep (the contract plus the family's own).
        searcher: Optional :class:`~search.searcher.ParetoOptunaSearch`: records each trial's
            Optuna trial number, and is told to commit a trial's outcome once its row is written.
        flush_interval_s: Minimum seconds between periodic writes (default: :func:`flush_interval`).
        continuations: Unfinished trials a resumed sweep continues: their epoch rows after the
            checkpoint they continue from are dropped (those epochs run again).
        stopping: Optional callable; true once the sweep is being stopped by a signal (a trial
            that fails then is not final: it continues on resume).
        records: The run dir's two tables as a resume already read them (``RunDir.read_records``);
            read here when not given.
        trackers: Optional :class:`~search.tracking.Trackers`: handed what the run dir holds for
            good after each write of the epochs table, closed when the experiment ends.
    """

    def __init__(
        self,
        run_dir: RunDir | RunLocation | str,
        param_names: Sequence[str],
        metric_keys: Sequence[str] = BASE_KEYS,
        searcher: Any = None,
        flush_interval_s: float | None = None,
        continuations: Sequence[Any] = (),
        stopping: Any = None,
        records: tuple[pa.Table | None, pa.Table | None] | None = None,
        trackers: Any = None,
    ) -> None:
        self.run_dir = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
        self.fs = self.run_dir.location.filesystem[0]
        self.param_names = list(param_names)
        self.metric_keys = list(dict.fromkeys(metric_keys))
        self.searcher = searcher
        self.flush_interval_s = flush_interval() if flush_interval_s is None else flush_interval_s
        self.stopping = stopping
        self.trials: dict[str, dict[str, Any]] = {}
        self.epochs: dict[tuple[str, int], dict[str, Any]] = {}
        self._dirty = False
        self._last_flush = 0.0
        self._epochs_write_s = 0.0  # how long the last epochs.parquet write took
        self._base_retries: dict[str, int] = {}  # retries of continued trials before the resume
        self._sealed_trials = SealedRows()
        self._sealed_epochs = SealedRows()
        self._load_existing(*(records if records is not None else self.run_dir.read_records()))
        for cont in continuations:
            self._rewind(cont.trial_id, cont.epoch)
        self.trackers = trackers
        self.release = EpochRelease()
        if trackers:  # what a resume keeps is final: the continued trials were rewound to their checkpoints
            self.release.seal_record(self.trials, self.epochs)

    # The callback is pickled with the sweep (Ray Tune's tuner.pkl, never read back by this
    # tool): keep the pickle small.
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(trials={}, epochs={}, _dirty=False, _sealed_trials=SealedRows(), _sealed_epochs=SealedRows(), trackers=None, release=EpochRelease())
        return state

    # ---- state -----------------------------------------------------------------------------
    def _load_existing(self, trials: pa.Table | None, epochs: pa.Table | None) -> None:
        """On resume, keep what an earlier driver already recorded."""
        for row in trials.to_pylist() if trials is not None else ():
            self.trials[row["trial_id"]] = row
        for row in epochs.to_pylist() if epochs is not None else ():
            self.epochs[(row["trial_id"], int(row["epoch"]))] = row
        # Once the epochs table is large, a finished trial's epoch rows wait for the periodic
        # refresh while its final row is written at once: after a hard kill its last epoch may
        # be missing from epochs.parquet; its final row holds that epoch's report.
        for trial_id, row in self.trials.items():
            epoch = row.get("epoch")
            if row.get("state") == TERMINATED_STATE and epoch and (trial_id, int(epoch)) not in self.epochs:
                self.epochs[(trial_id, int(epoch))] = epoch_row(trial_id, int(epoch), row, self.metric_keys, None)
                self._dirty = True

    def _rewind(self, trial_id: str, epoch: int) -> None:
        """Forget the epochs of ``trial_id`` after ``epoch``: it continues from there."""
        self._unseal()
        self.epochs = {k: v for k, v in self.epochs.items() if k[0] != trial_id or k[1] <= epoch}
        row = self.trials.get(trial_id)
        if row is not None:
            row["state"] = PENDING_STATE
            last = self.epochs.get((trial_id, epoch))
            for key in self.metric_keys:
                if key in INFO_KEYS:
                    continue
                row[key] = last.get(key, row.get(key)) if last else missing_value(key)
        self._dirty = True

    def settle(self, settled: Mapping[str, str | None]) -> None:
        """Give unfinished rows whose study trial had already ended its state (None: drop the row)."""
        self._unseal()
        for trial_id, state in settled.items():
            if state is None:
                self.trials.pop(trial_id, None)
                self.epochs = {k: v for k, v in self.epochs.items() if k[0] != trial_id}
                self.release.forget(trial_id)
            elif trial_id in self.trials:
                self.trials[trial_id]["state"] = state
                if state in FINAL_STATES:
                    self.release.finish(trial_id)
        self._dirty = self._dirty or bool(settled)

    def _unseal(self) -> None:
        """Rows believed final are changing (a resume reconciles the record): convert anew."""
        self._sealed_trials.clear()
        self._sealed_epochs.clear()

    def _params(self, trial: Any) -> dict[str, Any]:
        config = flatten(unflatten(trial.config))
        return {name: config.get(name) for name in self.param_names}

    def _optuna_number(self, trial_id: str) -> int | None:
        number = getattr(self.searcher, "optuna_number", None)
        return number(trial_id) if number is not None else None

    def _update_trial(self, trial: Any, state: str, error: str | None = None) -> None:
        key = record_id(trial)
        previous = self.trials.get(key)
        if previous is not None and previous.get("state") in FINAL_STATES and key != trial.trial_id:
            return  # never overwrite a finished trial's record
        if key in self._sealed_trials.keys:
            self._unseal()
        previous = previous or {}
        checkpoint = getattr(trial, "checkpoint", None)
        self.trials[key] = trial_row(
            previous,
            trial_id=key,
            state=state,
            error=error,
            optuna_trial=self._optuna_number(trial.trial_id) if previous.get("optuna_trial") is None else None,
            params=self._params(trial),
            report=trial.last_result or {},
            metric_keys=self.metric_keys,
            retries=self._base_retries.get(trial.trial_id, 0) + int(getattr(trial, "num_failures", 0) or 0),
            checkpoint=checkpoint.path if checkpoint is not None else previous.get("checkpoint"),
            trial_dir=getattr(trial, "path", None) or previous.get("trial_dir"),
        )
        self._dirty = True

    # ---- Tune callback hooks ---------------------------------------------------------------
    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        key = record_id(trial)
        if key != trial.trial_id and trial.trial_id not in self._base_retries:
            self._base_retries[trial.trial_id] = int(self.trials.get(key, {}).get("retries") or 0)
        self._update_trial(trial, RUNNING_STATE)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        key = record_id(trial)
        epoch = int(result.get("epoch", result.get("training_iteration", 0)))
        row = epoch_row(key, epoch, result, self.metric_keys, float(result.get("timestamp", time.time())))
        if (key, epoch) in self._sealed_epochs.keys:
            self._unseal()
        self.epochs[(key, epoch)] = row
        self.release.recorded(key, epoch)
        self._update_trial(trial, RUNNING_STATE)

    def on_checkpoint(self, iteration: int, trials: list, trial: Any, checkpoint: Any, **info: Any) -> None:
        # Tune calls this once the checkpoint is saved, with the report it came with as the
        # trial's last result: the epochs up to it are final (a retry or a resume continues
        # from this checkpoint or a later one).
        epoch = (trial.last_result or {}).get("epoch")
        if epoch is not None:
            self.release.seal(record_id(trial), int(epoch))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._update_trial(trial, TERMINATED_STATE)
        self.release.finish(record_id(trial))
        self.flush(epochs=self._epochs_cheap())  # the record first …
        self._commit(trial)  # … then the study
        checkpoint = getattr(trial, "checkpoint", None)
        if checkpoint is not None:
            self._prune_checkpoints(getattr(checkpoint, "filesystem", None) or self.fs, checkpoint.path, trial)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if self.stopping is not None and self.stopping():
            # Its actor died with the stopping sweep: not a trial failure. It stays unfinished
            # (its outcome is not told) and a resumed sweep continues it.
            self._update_trial(trial, RUNNING_STATE)
            if self.searcher is not None:
                self.searcher.discard(trial.trial_id)
            self.flush()
            return
        self._update_trial(trial, ERROR_STATE, one_line_error(trial))
        self.release.finish(record_id(trial))
        self.flush(epochs=self._epochs_cheap())
        self._commit(trial)

    #: Below this write time (s), a finished trial's epoch rows are written with its final row.
    EPOCHS_WITH_FINAL_S = 0.05

    def _epochs_cheap(self) -> bool:
        """Whether to write the epochs table with a finished trial's row.

        While the table is small (its last write took under ``EPOCHS_WITH_FINAL_S``), it is,
        so a finished trial's epoch rows are on disk with its final row. Once rewriting it
        costs more, it waits for the periodic refresh (a driver killed in between loses at most
        that refresh's epoch rows of trials that finished; their final epoch is rebuilt from
        the final row on resume), so the driver's cost per trial stays flat.
        """
        return self._epochs_write_s < self.EPOCHS_WITH_FINAL_S

    def _commit(self, trial: Any) -> None:
        if self.searcher is not None and hasattr(self.searcher, "commit"):
            self.searcher.commit(trial.trial_id)

    def _prune_checkpoints(self, fs: Any, final: str, trial: Any) -> None:
        """Delete a finished trial's checkpoints other than its last (and its earlier trial dirs').

        Its final row is on disk and nothing resumes a finished trial, so only the final
        checkpoint (the trained model) is worth keeping.
        """
        parent = final.rstrip("/").rsplit("/", 1)[0]
        dirs = {parent}
        continued_from = ((trial.config or {}).get("runtime") or {}).get("continue_from")
        if continued_from:
            dirs.add(continued_from.split("://", 1)[-1].rstrip("/").rsplit("/", 1)[0])
        for directory in dirs:
            try:
                for info in fs.get_file_info(pafs.FileSelector(directory)):
                    if info.base_name.startswith("checkpoint_") and info.path.rstrip("/") != final.rstrip("/"):
                        fs.delete_dir(info.path)
            except OSError:
                pass  # pruning is housekeeping: never fail the sweep for it

    def add_refused(self, row: Mapping[str, Any]) -> None:
        """Record a candidate refused before training and write the record at once.

        ``row`` (the searcher's, state ``REFUSED``) holds its parameters, its costs known before
        training and why it was refused (``error``); every other metric is missing. The searcher
        calls this before it tells the study, so the study is never ahead of the record.
        """
        self.trials[row["trial_id"]] = trial_row(
            row,
            trial_id=row["trial_id"],
            state=row["state"],
            error=row.get("error"),
            optuna_trial=row.get("optuna_trial"),
            params={},
            report=row,
            metric_keys=self.metric_keys,
        )
        self.release.refuse(row["trial_id"])
        self._dirty = True
        self.flush(epochs=False)

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        # The periodic refresh writes both tables; it waits at least 20 times as long as the
        # epochs table took to write, so rewriting a large table costs the driver ≤ 5 %.
        interval = max(self.flush_interval_s, 20 * self._epochs_write_s)
        if self._dirty and time.monotonic() - self._last_flush >= interval:
            self.flush()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.flush()
        if self.trackers:
            stopped = self.stopping is not None and self.stopping()
            self.trackers.close(complete=not stopped)

    # ---- output ----------------------------------------------------------------------------
    def flush(self, epochs: bool = True) -> None:
        """Write ``trials.parquet`` and (with ``epochs``) ``epochs.parquet`` now, atomically.

        A finished trial's row is written at once, before the study hears of it; its epoch
        rows with it while that table is small (:meth:`_epochs_cheap`), else (``epochs=False``)
        with the next periodic refresh.
        """
        final = [k for k, row in self.trials.items() if row.get("state") in SETTLED_STATES]
        if self.trials:
            first = trial_columns(self.param_names, self.metric_keys)
            self.run_dir.write_trials(self._sealed_trials.table(self.trials, final, first, ["trial_id"]))
        if not epochs:
            return
        if self.epochs:
            start = time.monotonic()
            done = set(final)
            sealed = [k for k in self.epochs if k[0] in done] if len(self._sealed_epochs.keys) < len(self.epochs) else []
            table = self._sealed_epochs.table(self.epochs, sealed, epoch_columns(self.metric_keys), ["trial_id", "epoch"])
            self.run_dir.write_epochs(table)
            self._epochs_write_s = time.monotonic() - start
        if self.trackers:  # both tables are on disk: hand over what they hold for good
            self.trackers.release(self.release.take(self.trials, self.epochs))
        self._dirty = False
        self._last_flush = time.monotonic()
