"""From a validated spec to a running Ray Tune sweep: run dir, study, searcher, scheduler.

The run dir's layout is :mod:`search.rundir`'s; the scheduler comes from the table of
:mod:`search.schedulers`.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
import yaml
from ray import tune
from ray.tune.search import ConcurrencyLimiter

from search.progress import ProgressPrinter
from search.recorder import ResultsRecorder
from search.resume import ResumePlan, check_trusted, load_study, plan_resume, validate_records
from search.rundir import (
    CACHE_DIR,
    PROGRESS_FILE,
    SPEC_FILE,
    SQLITE_STUDY_FILE,
    STUDY_FILE,
    SWEEP_FILE,
    TRIALS_FILE,
    RunDirError,
    RunLocation,
    run_location,
    study_address,
    study_storage,
    trial_dirname,
)
from search.schedulers import make_scheduler
from search.searcher import ParetoOptunaSearch, counts_as_trial
from search.spec import Spec, spec_to_yaml
from search.stopping import SignalStopper, stop_requested
from trainables.registry import get_trainable
from trainables.report import FINAL_STATES, INFO_KEYS

__all__ = [
    "RunDirError",
    "Sweep",
    "check_run_dir",
    "prepare_sweep",
    "plan_sweep_resume",
    "build_tuner",
    "trial_states",
    "finished_trials",
    "default_concurrency",
]

@dataclass(frozen=True)
class Sweep:
    """Where a sweep lives and what identifies its study."""

    spec: Spec
    location: RunLocation
    study_name: str
    #: The study's file in the run dir: ``study.journal``, or ``study.db`` for sweeps made
    #: before the journal (what ``sweep.json`` names).
    study_file: str = STUDY_FILE

    @property
    def name(self) -> str:
        return self.location.name

    @property
    def storage(self) -> str:
        return self.location.storage

    @property
    def run_dir(self) -> str:
        """The run dir (absolute path or URI)."""
        return self.location.uri

    @property
    def local_dir(self) -> Path:
        """Driver-local dir: the run dir itself, or a local cache for object-store run dirs."""
        return self.location.local_dir(self.study_name)

    @property
    def study_path(self) -> Path:
        """The driver-local study file."""
        return self.local_dir / self.study_file

    @property
    def study_url(self) -> str:
        """The study as optuna-dashboard takes it (a journal file's path, or an SQLite URL)."""
        return study_address(self.study_path)

    def study_storage(self) -> Any:
        """The study's Optuna storage (journal file, or SQLite for older sweeps)."""
        return study_storage(self.study_path)

    def upload_study(self) -> None:
        """Copy the local study to an object-store run dir (a no-op for local run dirs)."""
        path = self.study_path
        if not self.location.is_local and path.exists():
            self.location.write_bytes(self.study_file, path.read_bytes())


def check_run_dir(spec: Spec, storage: str | None = None, name: str | None = None, resume: bool = False) -> None:
    """The checks of :func:`prepare_sweep`, writing nothing (run before starting Ray).

    Raises:
        RunDirError: as :func:`prepare_sweep` would.
    """
    location = run_location(storage or spec.run.storage, name or spec.name)
    try:
        has_sweep = location.exists(SWEEP_FILE)
    except OSError as exc:
        raise RunDirError(f"cannot reach the run dir {location.uri}: {str(exc).splitlines()[0]}") from None
    if resume and not has_sweep:
        raise RunDirError(f"{location.uri} holds no sweep to resume (no {SWEEP_FILE}); run without --resume to start one")
    if resume:
        meta = check_trusted(location, spec.trainable)
        _check_same_spec(spec, location, location.uri)
        validate_records(location)
        if location.is_local:
            _check_study(location, meta["study_name"], study_file=_study_file(meta, location))
    if not resume and has_sweep:
        raise RunDirError(
            f"{location.uri} already holds a sweep: pass --resume to continue it, or --name NEW (or --storage DIR) to start another"
        )


def prepare_sweep(spec: Spec, storage: str | None = None, name: str | None = None, resume: bool = False) -> Sweep:
    """Create (or, with ``resume``, reopen) a run dir and record the spec and study name.

    Raises:
        RunDirError: the run dir already holds a sweep (without ``resume``), or holds none
            (with ``resume``).
    """
    location = run_location(storage or spec.run.storage, name or spec.name)
    try:
        has_sweep = location.exists(SWEEP_FILE)
    except OSError as exc:
        raise RunDirError(f"cannot reach the run dir {location.uri}: {str(exc).splitlines()[0]}") from None
    if resume:
        if not has_sweep:
            raise RunDirError(f"{location.uri} holds no sweep to resume (no {SWEEP_FILE}); run without --resume to start one")
        meta = check_trusted(location, spec.trainable)
        _check_same_spec(spec, location, location.uri)
        validate_records(location)
        sweep = Sweep(spec=spec, location=location, study_name=meta["study_name"], study_file=_study_file(meta, location))
        local_study = sweep.study_path
        if not location.is_local and not local_study.exists() and location.exists(sweep.study_file):
            # Resuming on another machine: start from the study copy in the run dir.
            local_study.parent.mkdir(parents=True, exist_ok=True)
            local_study.write_bytes(location.read_bytes(sweep.study_file))
        _check_study(location, sweep.study_name, local_study, sweep.study_file)
        # The size it resumes with (run.num_samples, run.max_concurrent) is the size it has now.
        location.write_text(SPEC_FILE, spec_to_yaml(spec))
        return sweep
    if has_sweep:
        raise RunDirError(
            f"{location.uri} already holds a sweep: pass --resume to continue it, or --name NEW (or --storage DIR) to start another"
        )
    study_name = f"{location.name}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    sweep = Sweep(spec=spec, location=location, study_name=study_name)
    sweep.local_dir.mkdir(parents=True, exist_ok=True)
    location.write_text(SPEC_FILE, spec_to_yaml(spec))
    meta = {"study_name": study_name, "trainable": spec.trainable, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "study_storage": STUDY_FILE}
    location.write_text(SWEEP_FILE, json.dumps(meta, indent=2) + "\n")
    return sweep


#: Spec fields a resumed sweep may change: how many trials, how many at once, where.
_RESUMABLE_CHANGES = ("name", "run.num_samples", "run.max_concurrent", "run.storage", "description")


def _study_file(meta: dict[str, Any], location: RunLocation) -> str:
    """The study file a run dir's ``sweep.json`` names (``study.db`` for the oldest, which name none)."""
    name = meta.get("study_storage", SQLITE_STUDY_FILE)
    if name not in (STUDY_FILE, SQLITE_STUDY_FILE):
        raise RunDirError(
            f"{location.uri}/{SWEEP_FILE}: names the study file {name!r}, expected {STUDY_FILE} or {SQLITE_STUDY_FILE}; "
            "restore sweep.json from a backup, or start a new sweep with --name"
        )
    return name


def _check_study(location: RunLocation, study_name: str, path: Path | None = None, study_file: str = STUDY_FILE) -> None:
    """The run dir's study must be there and readable (checked before anything is written)."""
    path = path or Path(location.uri) / study_file
    shown = f"{location.uri}/{study_file}"
    if not path.exists() and not location.exists(TRIALS_FILE):
        return  # stopped before its first trial: the study is created when the sweep starts
    if not path.is_file() or path.stat().st_size == 0:
        raise RunDirError(f"{shown}: missing or empty although trials ran; restore it from a backup, or start a new sweep with --name")
    load_study(study_name, path, shown)


def _check_same_spec(spec: Spec, location: RunLocation, run_dir: str) -> None:
    """A resumed sweep must search the same space with the same objectives as before."""
    from search.spec import SpecError, load_yaml, parse_spec
    from trainables.config import flatten

    try:
        saved = parse_spec(load_yaml(location.read_text(SPEC_FILE)), f"{run_dir}/{SPEC_FILE}", check_sampler=False)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, SpecError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RunDirError(
            f"{run_dir}/{SPEC_FILE}: the spec this sweep ran with is not readable ({first}); "
            "restore it from a backup, or start a new sweep with --name"
        ) from None
    changes = _param_changes(saved, spec)
    now, before = flatten(spec.model_dump(exclude={"space", "fixed"})), flatten(saved.model_dump(exclude={"space", "fixed"}))
    for key in sorted(set(now) | set(before)):
        if not key.startswith(_RESUMABLE_CHANGES) and now.get(key) != before.get(key):
            changes.append(f"{key} is {now.get(key)!r}, the sweep ran with {before.get(key)!r}")
    if changes:
        raise RunDirError(
            f"--resume: this spec differs from the one the sweep in {run_dir} ran with: {'; '.join(changes)}. "
            "Only run.num_samples and run.max_concurrent may change (start a new sweep with --name otherwise)"
        )


def _param_changes(before: Spec, now: Spec) -> list[str]:
    """How the searched and fixed parameters differ, one phrase per parameter."""
    out = []
    for name in sorted({*before.space, *before.fixed, *now.space, *now.fixed}):
        if name in before.space and name in now.fixed:
            out.append(f"{name} was searched, now fixed at {now.fixed[name]!r}")
        elif name in before.fixed and name in now.space:
            out.append(f"{name} was fixed at {before.fixed[name]!r}, now searched")
        elif name in before.space and name in now.space and before.space[name] != now.space[name]:
            out.append(f"{name} is searched over another range")
        elif name in before.fixed and name in now.fixed and before.fixed[name] != now.fixed[name]:
            out.append(f"{name} is {now.fixed[name]!r}, the sweep ran with {before.fixed[name]!r}")
        elif (name in before.space or name in before.fixed) != (name in now.space or name in now.fixed):
            out.append(f"{name} is {'no longer set' if name in before.space or name in before.fixed else 'new'}")
    return out


def default_concurrency(spec: Spec) -> int:
    """``run.max_concurrent``, or as many trials as the cluster's CPUs (and GPUs) can hold."""
    if spec.run.max_concurrent is not None:
        return spec.run.max_concurrent
    resources = ray.cluster_resources()
    slots = math.floor(resources.get("CPU", 1) / spec.run.resources.cpu)
    if spec.run.resources.gpu > 0:
        slots = min(slots, math.floor(resources.get("GPU", 0) / spec.run.resources.gpu))
    return max(1, slots)


def _trial_dirname(trial: Any) -> str:
    return trial_dirname(trial.trial_id)


def _param_space(sweep: Sweep) -> dict[str, Any]:
    config = sweep.spec.base_config()
    # Artefacts shared by the trials of one sweep (e.g. a trained SNE teacher) live here.
    config["runtime"]["cache_dir"] = str(sweep.local_dir / CACHE_DIR) if sweep.location.is_local else None
    return config


def reuse_actors(spec: Spec, on_cluster: bool) -> bool:
    """``run.reuse_actors``, or by default: reuse on a local Ray, not on a joined cluster.

    Reusing actors saves a process start and the framework imports per trial (the largest
    per-trial cost of short trials). On a cluster, though, Ray Tune's cache of idle actors
    does not survive losing a node: a dead cached actor can be handed to the retry of a
    trial and fail it for good, so a sweep that must outlive node failures does not reuse.
    """
    if spec.run.reuse_actors is not None:
        return spec.run.reuse_actors
    return not on_cluster


def plan_sweep_resume(sweep: Sweep) -> ResumePlan:
    """Reconcile a reopened sweep's study with its record; list the trials to continue."""
    if not sweep.study_path.exists():
        return ResumePlan()  # stopped before its first trial
    study = load_study(sweep.study_name, sweep.study_path, f"{sweep.run_dir}/{sweep.study_file}")
    spec = sweep.spec
    plan = plan_resume(sweep.location, study, list(spec.metrics), list(spec.constraints))
    counted = sum(counts_as_trial(t) for t in study.get_trials(deepcopy=False))
    if counted > spec.num_samples:
        raise RunDirError(
            f"--resume: run.num_samples is {spec.num_samples} but this sweep has already started {counted} trials; "
            f"pass --num-samples {counted} or more"
        )
    return plan


def _reference(sweep: Sweep) -> dict[str, float] | None:
    if not sweep.location.exists(PROGRESS_FILE):
        return None
    return json.loads(sweep.location.read_text(PROGRESS_FILE)).get("hypervolume_reference")


def build_tuner(
    sweep: Sweep,
    progress: bool = True,
    max_concurrent: int | None = None,
    on_cluster: bool = False,
    plan: ResumePlan | None = None,
    callbacks: Sequence[tune.Callback] = (),
    data_info: Any = None,
) -> tune.Tuner:
    """A ``tune.Tuner`` for a prepared sweep (Ray must be initialised).

    With ``plan`` (a resumed sweep), the unfinished trials are continued first, and the results
    recorder, ASHA's rungs and the progress lines count on from the run dir's record.
    ``callbacks`` are added after the recorder and the progress lines (e.g. a benchmark's probe).
    ``data_info`` (the data's :class:`~trainables.data.DataInfo`, read when not given) lets the
    searcher refuse candidates whose costs break a constraint before training, and the
    ``cost_aware`` sampler compute each candidate's costs.

    The searcher is the returned tuner's ``searcher`` attribute: after ``fit()``, its
    ``exhausted`` says whether the search ended because every candidate was refused.
    """
    spec = sweep.spec
    entry = get_trainable(spec.trainable)
    concurrency = max_concurrent or default_concurrency(spec)
    continuations = plan.continuations if plan is not None else []
    if data_info is None and (spec.constraints or spec.sampler.name == "cost_aware") and entry.static_costs is not None:
        from trainables.data import check_available

        data_info = check_available(spec.data.model_dump())
    searcher = ParetoOptunaSearch(
        spec,
        study_name=sweep.study_name,
        storage=sweep.study_storage(),
        num_samples=spec.num_samples,
        continuations=continuations,
        defer_tells=True,
        data_info=data_info,
    )
    search_alg = ConcurrencyLimiter(searcher, max_concurrent=concurrency)
    recorder = ResultsRecorder(
        sweep.location,
        param_names=[*spec.space, *spec.fixed],
        metric_keys=[*entry.report_keys, *INFO_KEYS],
        searcher=searcher,
        continuations=continuations,
        stopping=stop_requested,
    )
    searcher.on_refused = recorder.add_refused
    if plan is not None:
        recorder.settle(plan.settled)
        recorder.flush()
    all_callbacks: list[tune.Callback] = [recorder]
    if progress:
        printer = ProgressPrinter(
            spec.num_samples, spec.metrics, spec.modes, spec.budget.epochs, constraints=spec.constraints, location=sweep.location
        )
        printer.stopping = stop_requested
        printer.continue_from(list(recorder.trials.values()), _reference(sweep))
        all_callbacks.append(printer)
    all_callbacks.extend(callbacks)
    scheduler = make_scheduler(spec)
    if hasattr(scheduler, "seed"):  # a scheduler with rungs: refill them from the record
        scheduler.seed(list(recorder.epochs.values()))
    resources = {"cpu": spec.run.resources.cpu, "gpu": spec.run.resources.gpu}
    trainable = tune.with_resources(entry.trainable, resources)
    tuner = tune.Tuner(
        trainable,
        param_space=_param_space(sweep),
        tune_config=tune.TuneConfig(
            search_alg=search_alg,
            scheduler=scheduler,
            num_samples=spec.num_samples,
            max_concurrent_trials=concurrency,
            reuse_actors=reuse_actors(spec, on_cluster),
            trial_dirname_creator=_trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=sweep.name,
            storage_path=sweep.storage,
            stop=SignalStopper(),
            failure_config=tune.FailureConfig(max_failures=spec.run.max_failures),
            # Keep every checkpoint of a running trial (a resumed sweep continues it from its
            # newest readable one); the recorder deletes a finished trial's older checkpoints.
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
            callbacks=all_callbacks,
            verbose=0,
        ),
    )
    tuner.searcher = searcher  # read after fit(): why the search ended early, if it did
    return tuner


def trial_states(sweep: Sweep) -> list[str]:
    """The ``state`` of every trial recorded in the run dir (empty before the first flush)."""
    table = sweep.location.read_table(TRIALS_FILE, columns=["state"])
    return [] if table is None else table.column("state").to_pylist()


def finished_trials(sweep: Sweep) -> int:
    """Trials of the run dir that reached a final state (``trainables.report.FINAL_STATES``)."""
    return sum(state in FINAL_STATES for state in trial_states(sweep))
