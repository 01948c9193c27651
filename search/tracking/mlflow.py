"""The MLflow tracker: a sweep as MLflow runs, through ``MlflowClient`` with an explicit tracking URI.

In MLflow's own terms, in the experiment ``tracking.mlflow.experiment`` (default: the spec's name):

* one run per sweep, the only one without an ``mlflow.parentRunId`` tag, found again by its tag
  ``brainsweep.study`` (the sweep's Optuna study name, ``sweep.json``): the spec as the artifact
  ``spec.yaml``; the metric ``hypervolume`` (step = number of finished trials) of the front of
  the full-budget feasible trials, against the reference the progress lines fixed
  (``progress.json``; a sweep that never fixed one derives it at its end from every finished
  trial, as the progress lines would); the candidates refused before training as the table
  artifact ``refused_candidates.json`` (``MlflowClient.log_table``: parameters, why, known
  costs) and their count as the metric ``refused_candidates``; at the end, the front as
  ``python -m analysis pareto`` makes it (``front/front.png``, ``front/front.csv``,
  ``front/front.txt``). It ends FINISHED, or KILLED when the sweep was stopped (a resume sets
  it RUNNING again).
* one nested run per trained trial (tags ``mlflow.parentRunId``, ``brainsweep.trial_id``): its
  searched and fixed parameters under their dotted names (a parameter a trial did not sample,
  ``None`` in ``trials.parquet``, is not logged); every numeric report key as a metric under its
  own name, one point per epoch (step = epoch, timestamp = the report's); at its end the tag
  ``brainsweep.state`` (``terminated``, ``stopped_early`` when it ended before the full budget,
  ``error`` with ``brainsweep.error``), status FAILED for an error, else FINISHED.

Values are the tables' own numbers (a float64 metric is logged as it is; a parameter as Python's
``str``, which reads back to the same number). A NaN cell means "not measured at that epoch"
(``test_accuracy`` before the last epoch, latency without ``cost.latency``): it has no point, so
every point equals its cell in ``epochs.parquet`` and a cell with no point is NaN.

Idempotent: on (re)start it finds the sweep's run and its nested runs, reads how far each got (the
latest value of its ``epoch`` metric: each epoch is logged in one batch, ``epoch`` last), the
hypervolume steps and the refused candidates held, and logs only what lies beyond.

Ray Tune's ``MLflowLoggerCallback`` is not used: it logs every result as it arrives (a resumed
trial re-runs the epochs after its last checkpoint, which would be logged twice) and has no
parent run for the sweep. Nor is MLflow's fluent API (its global active run).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis.pareto import hypervolume, pareto_mask, reference_point  # pure functions on arrays
from search.rundir import RunDir
from search.spec import feasible
from search.tracking.tracker import TrackedSweep, Tracker
from trainables.report import ERROR_STATE, TERMINATED_STATE, is_competing

__all__ = ["MlflowTracker", "STUDY_TAG", "TRIAL_TAG", "STATE_TAG", "bounded_http", "trial_state_tag"]

#: Tag of the sweep's run: the sweep's Optuna study name.
STUDY_TAG = "brainsweep.study"
#: Tag of a nested run: its trial id in the run dir.
TRIAL_TAG = "brainsweep.trial_id"
#: Tag of a nested run once it ended: ``terminated``, ``stopped_early`` or ``error``.
STATE_TAG = "brainsweep.state"
ERROR_TAG = "brainsweep.error"
PARENT_TAG = "mlflow.parentRunId"
REFUSED_TABLE = "refused_candidates.json"
SPEC_ARTIFACT = RunDir.file_name("spec")  # named as in the run dir
FRONT_DIR = "front"

#: MLflow's HTTP client retries with backoff for minutes by default; a tracker of a sweep gives
#: up at once, and prints neither run links nor progress bars (a value the user set is kept).
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}

_ENDED = ("FINISHED", "FAILED")


@contextlib.contextmanager
def bounded_http() -> Iterator[None]:
    """MLflow calls inside give up within seconds, and print nothing: :data:`HTTP_DEFAULTS` are
    set for the block where the environment has no value, and MLflow's warnings are ignored."""
    added = {key: value for key, value in HTTP_DEFAULTS.items() if key not in os.environ}
    os.environ.update(added)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def quiet_mlflow_logs() -> None:
    """MLflow's and its database migrations' INFO lines stay out of the sweep's output."""
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)


def trial_state_tag(row: Mapping[str, Any]) -> str:
    """``brainsweep.state`` of an ended trial's row."""
    if row.get("state") == ERROR_STATE:
        return "error"
    return "terminated" if is_competing(TERMINATED_STATE, row.get("budget_fraction")) else "stopped_early"


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _number(value: Any) -> float | None:
    """A cell as an MLflow metric value, or None (not a number, or NaN: not measured)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _millis(stamp: Any) -> int:
    try:
        value = float(stamp)
    except (TypeError, ValueError):
        return int(time.time() * 1000)
    return int(value * 1000) if math.isfinite(value) else int(time.time() * 1000)


@dataclass
class _Nested:
    """What the tracker knows of a trial's nested run."""

    run_id: str
    held: int = -1  # the last epoch it holds
    status: str = "RUNNING"
    has_params: bool = False


class MlflowTracker(Tracker):
    """Log a sweep to MLflow (see the module docstring for what goes where).

    Args:
        uri: The MLflow tracking URI (passed to the client, never set globally).
        experiment: The experiment's name (created when missing).
        sweep: What the tracker knows of the sweep.
        client: An ``MlflowClient`` to use (default: one for ``uri``).
        front_files: Makes the end-of-sweep front files in a folder and returns their paths
            (default: :func:`front_files_of`, ``python -m analysis pareto``).
    """

    def __init__(self, uri: str, experiment: str, sweep: TrackedSweep, client: Any = None, front_files: Any = None) -> None:
        from mlflow import MlflowClient

        quiet_mlflow_logs()  # after MLflow's import, which sets its loggers up
        if client is None:
            client = MlflowClient(tracking_uri=uri)
        self.client = client
        self.uri = uri
        self.where = f"MLflow at {uri}"
        self.sweep = sweep
        self.front_files = front_files or front_files_of
        self.experiment_id = self._experiment(experiment)
        self.runs: dict[str, _Nested] = {}
        self.parent_id, existed = self._parent()
        self._hv_held = self._held_steps("hypervolume") if existed else 0
        self._refused_held = self._held_refused() if existed else set()
        if existed:
            self._nested_runs()
        self.client.log_text(self.parent_id, sweep.records.read_spec_text(), SPEC_ARTIFACT)
        view = f"open {uri}" if uri.startswith(("http://", "https://")) else f"mlflow ui --backend-store-uri {uri}"
        print(f"mlflow: experiment {experiment!r}, run {self.parent_id}{' (continued)' if existed else ''}; view it with: {view}", flush=True)
        # The finished trials in the order they ended: (objective values, competes on the front).
        self._finished: list[tuple[list[float] | None, bool]] = []
        self._front: list[tuple[float, ...]] = []
        self._hv_step = 0  # finished trials folded into ``_front``

    def later(self) -> str:
        return f"python -m analysis track {self.sweep.run_dir} --mlflow {self.uri}"

    def calls(self) -> contextlib.AbstractContextManager[Any]:
        return bounded_http()

    # ---- opening: find what an earlier driver logged -------------------------------------------
    def _experiment(self, name: str) -> str:
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            return self.client.create_experiment(name)
        if experiment.lifecycle_stage != "active":
            raise ValueError(f"the MLflow experiment {name!r} is deleted: restore it, or choose another with tracking.mlflow.experiment")
        return experiment.experiment_id

    def _search(self, filter_string: str) -> Iterator[Any]:
        token = None
        while True:
            page = self.client.search_runs([self.experiment_id], filter_string=filter_string, max_results=1000, page_token=token)
            yield from page
            token = page.token
            if not token:
                return

    def _parent(self) -> tuple[str, bool]:
        """The sweep's run (RUNNING again if it was stopped), created when missing; and whether it existed."""
        for run in self._search(f"tags.`{STUDY_TAG}` = {_quoted(self.sweep.study_name)}"):
            if PARENT_TAG not in run.data.tags:
                if run.info.status != "RUNNING":
                    self.client.update_run(run.info.run_id, status="RUNNING")
                return run.info.run_id, True
        spec = self.sweep.spec
        tags = {STUDY_TAG: self.sweep.study_name, "brainsweep.run_dir": self.sweep.run_dir, "brainsweep.trainable": spec.trainable}
        run = self.client.create_run(self.experiment_id, tags=tags, run_name=self.sweep.name)
        return run.info.run_id, False

    def _nested_runs(self) -> None:
        for run in self._search(f"tags.`{PARENT_TAG}` = {_quoted(self.parent_id)}"):
            trial_id = run.data.tags.get(TRIAL_TAG)
            if trial_id is None or trial_id in self.runs:
                continue
            held = run.data.metrics.get("epoch")
            self.runs[trial_id] = _Nested(
                run.info.run_id,
                held=int(held) if held is not None and math.isfinite(held) else -1,
                status=run.info.status,
                has_params=bool(run.data.params),
            )

    def _held_steps(self, key: str) -> int:
        return max((int(m.step) for m in self.client.get_metric_history(self.parent_id, key)), default=0)

    def _held_refused(self) -> set[str]:
        if not any(f.path == REFUSED_TABLE for f in self.client.list_artifacts(self.parent_id)):
            return set()
        with tempfile.TemporaryDirectory() as folder:
            path = self.client.download_artifacts(self.parent_id, REFUSED_TABLE, folder)
            table = json.loads(Path(path).read_text())
        columns = table.get("columns", [])
        if "trial_id" not in columns:
            return set()
        at = columns.index("trial_id")
        return {str(row[at]) for row in table.get("data", [])}

    # ---- trials --------------------------------------------------------------------------------
    def _run_of(self, trial: Mapping[str, Any]) -> _Nested:
        """The trial's nested run, created with its parameters when missing; RUNNING while it logs."""
        trial_id = str(trial["trial_id"])
        run = self.runs.get(trial_id)
        if run is None:
            tags = {PARENT_TAG: self.parent_id, TRIAL_TAG: trial_id}
            if trial.get("optuna_trial") is not None:
                tags["brainsweep.optuna_trial"] = str(trial["optuna_trial"])
            created = self.client.create_run(self.experiment_id, tags=tags, run_name=trial_id)
            run = self.runs[trial_id] = _Nested(created.info.run_id)
        if not run.has_params:
            from mlflow.entities import Param

            params = [Param(name, str(trial[name])) for name in self.sweep.param_names if trial.get(name) is not None]
            self.client.log_batch(run.run_id, params=params, synchronous=True)
            run.has_params = True
        return run

    def log_epochs(self, trial: Mapping[str, Any], epochs: Sequence[Mapping[str, Any]]) -> None:
        from mlflow.entities import Metric

        run = self._run_of(trial)
        if run.status != "RUNNING":  # a stopped trial that a resumed sweep continues
            self.client.update_run(run.run_id, status="RUNNING")
            run.status = "RUNNING"
        batch: list[Any] = []
        last = run.held
        for row in epochs:
            epoch = int(row["epoch"])
            if epoch <= run.held:
                continue  # held already
            stamp = _millis(row.get("timestamp"))
            values = [(key, float(epoch) if key == "epoch" else _number(row.get(key))) for key in self.sweep.metric_keys]
            points = [Metric(key, value, stamp, epoch) for key, value in values if value is not None]
            if len(batch) + len(points) > 1000:  # one batch holds whole epochs
                self.client.log_batch(run.run_id, metrics=batch, synchronous=True)
                run.held, batch = last, []
            batch += points
            last = epoch
            self.logged_epochs += 1
        if batch:
            self.client.log_batch(run.run_id, metrics=batch, synchronous=True)
        run.held = last

    def end_trial(self, trial: Mapping[str, Any]) -> None:
        run = self._run_of(trial)
        state = trial_state_tag(trial)
        if run.status not in _ENDED:
            from mlflow.entities import RunTag

            tags = [RunTag(STATE_TAG, state)]
            if state == "error" and trial.get("error"):
                tags.append(RunTag(ERROR_TAG, str(trial["error"])[:5000]))
            self.client.log_batch(run.run_id, tags=tags, synchronous=True)
            run.status = "FAILED" if state == "error" else "FINISHED"
            self.client.set_terminated(run.run_id, status=run.status)
        self._finished.append(self._point(trial))
        self._log_hypervolume()

    # ---- the sweep's run -----------------------------------------------------------------------
    def _point(self, row: Mapping[str, Any]) -> tuple[list[float] | None, bool]:
        spec = self.sweep.spec
        try:
            point = [float(row[m]) for m in spec.metrics]
        except (KeyError, TypeError, ValueError):
            return None, False
        if not all(math.isfinite(v) for v in point):
            return None, False
        competes = bool(is_competing(row.get("state"), row.get("budget_fraction"))) and bool(feasible(row, spec.constraints))
        return point, competes

    def _log_hypervolume(self, reference: Sequence[float] | None = None) -> None:
        """Log the hypervolume after each finished trial not logged yet (once a reference is known)."""
        from mlflow.entities import Metric

        if reference is None and self._hv_step < len(self._finished) and len(self._finished) > self._hv_held:
            reference = self.sweep.reference()
        modes = self.sweep.spec.modes
        points = []
        while self._hv_step < len(self._finished):
            if self._hv_step >= self._hv_held and reference is None:
                break  # later steps need the reference
            point, competes = self._finished[self._hv_step]
            self._hv_step += 1
            if competes and point is not None:
                self._add_to_front(tuple(point), modes)
            if self._hv_step > self._hv_held:
                value = hypervolume(self._front, modes, reference) if self._front else 0.0
                points.append(Metric("hypervolume", float(value), int(time.time() * 1000), self._hv_step))
        if points:
            self.client.log_batch(self.parent_id, metrics=points, synchronous=True)
            self._hv_held = self._hv_step

    def _add_to_front(self, point: tuple[float, ...], modes: Sequence[str]) -> None:
        if point in self._front:
            return  # a tie adds no volume
        keep = pareto_mask([*self._front, point], modes)
        if keep[-1]:
            self._front = [q for q, k in zip(self._front, keep[:-1]) if k] + [point]

    def log_refused(self, rows: Sequence[Mapping[str, Any]]) -> None:
        new = [row for row in rows if str(row["trial_id"]) not in self._refused_held]
        if not new:
            return
        costs = [k for k in self.sweep.metric_keys if k != "epoch" and any(_number(row.get(k)) is not None for row in new)]
        columns = ["trial_id", "optuna_trial", "error", *self.sweep.param_names, *costs]
        table = {c: [_number(row.get(c)) if c in costs else row.get(c) for row in new] for c in columns}
        self.client.log_table(self.parent_id, table, REFUSED_TABLE)
        self._refused_held.update(str(row["trial_id"]) for row in new)
        count = len(self._refused_held)
        self.client.log_metric(self.parent_id, "refused_candidates", float(count), step=count, synchronous=True)

    def close(self, complete: bool, front: bool) -> None:
        self._log_hypervolume()  # the progress lines may have fixed the reference since the last trial ended
        if complete and self._hv_step < len(self._finished):
            finite = [p for p, _ in self._finished if p is not None]
            if finite:  # no reference was fixed (progress lines off): derive it, as they would have
                self._log_hypervolume([float(v) for v in reference_point(finite, self.sweep.spec.modes)])
        if front:
            with tempfile.TemporaryDirectory() as folder:
                if self.front_files(self.sweep, Path(folder)):
                    self.client.log_artifacts(self.parent_id, folder, FRONT_DIR)
        if not complete:
            for run in self.runs.values():
                if run.status == "RUNNING":
                    self.client.set_terminated(run.run_id, status="KILLED")
                    run.status = "KILLED"
        self.client.set_terminated(self.parent_id, status="FINISHED" if complete else "KILLED")


def front_files_of(sweep: TrackedSweep, folder: Path, timeout_s: float = 120.0) -> list[Path]:
    """The front as ``python -m analysis pareto`` makes it, in ``folder``: ``front.csv``,
    ``front.png`` (2 or 3 objectives) and the printed table as ``front.txt``.

    It runs as its own process: the analysis sits above the search (it imports the search, not
    the other way round), and its command line is its public interface. Nothing (an empty list)
    when it fails; the reason is printed as one line.
    """
    csv, png = folder / "front.csv", folder / "front.png"
    command = [sys.executable, "-m", "analysis", "pareto", sweep.run_dir, "--csv", str(csv)]
    if len(sweep.spec.objectives) in (2, 3):
        command += ["--png", str(png)]
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, env=env, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"note: no front files for MLflow ({type(exc).__name__}: {exc})", file=sys.stderr, flush=True)
        return []
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        print(f"note: no front files for MLflow ({lines[-1] if lines else f'exit status {done.returncode}'})", file=sys.stderr, flush=True)
        return []
    text = folder / "front.txt"
    text.write_text("\n".join(line for line in done.stdout.splitlines() if not line.startswith("wrote ")).rstrip() + "\n")
    return [p for p in (csv, png, text) if p.exists()]
