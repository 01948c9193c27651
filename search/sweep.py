"""The sweep: from a checked spec to a finished Ray Tune run, and its exit status.

:func:`run_sweep` is the search API behind ``python -m search.run``: it runs the preflight
(:mod:`search.preflight`), opens Ray's session (:mod:`search.ray_session`), prepares the run dir
(:func:`prepare_sweep`), builds the Tune run (:func:`build_tuner`: the searcher, the scheduler,
the results recorder and the progress lines), fits it, and prints the outcome
(:mod:`search.summary`). Resuming is :mod:`search.resume`'s; stop signals :mod:`search.signals`'.
"""

from __future__ import annotations

import math
import shlex
import signal
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search.cli import EXIT_FAILED, fail
from search.rundir import CACHE_DIR, RunDir, RunDirError, SweepMeta, study_address, study_storage, trial_dirname
from search.spec import Spec, spec_to_yaml
from trainables.report import FINAL_STATES, INFO_KEYS

__all__ = [
    "RunDirError",
    "Sweep",
    "SweepOptions",
    "build_tuner",
    "default_concurrency",
    "finished_trials",
    "prepare_sweep",
    "reuse_actors",
    "run_sweep",
    "trial_states",
]


@dataclass(frozen=True)
class SweepOptions:
    """How to run a sweep: where its run dir goes, which Ray, what it prints.

    Attributes:
        storage: Parent of the run dir (default: the spec's ``run.storage``).
        name: Sweep name (default: the spec's name); the run dir is ``STORAGE/NAME``.
        address: A Ray cluster to join (``auto``, ``HOST:PORT``, ``ray://…``); None starts Ray
            locally, bound to this machine only.
        num_cpus: CPUs of a local Ray (default: all).
        resume: Continue the sweep in the existing run dir.
        progress: Print a line per trial event.
        command: The command line that ran it (spec path first, then ``--set``/``--num-samples``/
            ``--address`` options), repeated in the line that says how to resume; None names the
            run dir's own spec file.
        warm_start: Earlier run dirs whose trials the new sweep's study is told first
            (:mod:`search.warm_start`).
        warm_start_any: Take what fits from an earlier sweep of another family, data or objectives.
    """

    storage: str | None = None
    name: str | None = None
    address: str | None = None
    num_cpus: int | None = None
    resume: bool = False
    progress: bool = True
    command: tuple[str, ...] | None = None
    warm_start: tuple[str, ...] = ()
    warm_start_any: bool = False


@dataclass(frozen=True)
class Sweep:
    """A prepared sweep: its spec, its run dir and its study."""

    spec: Spec
    records: RunDir
    meta: SweepMeta

    @property
    def location(self) -> Any:
        return self.records.location

    @property
    def name(self) -> str:
        return self.location.name

    @property
    def storage(self) -> str:
        return self.location.storage

    @property
    def study_name(self) -> str:
        return self.meta.study_name

    @property
    def run_dir(self) -> str:
        """The run dir (absolute path or URI)."""
        return self.records.uri

    @property
    def local_dir(self) -> Path:
        """Driver-local dir: the run dir itself, or a local cache for object-store run dirs."""
        return self.location.local_dir(self.study_name)

    @property
    def study_path(self) -> Path:
        """The driver-local study file."""
        return self.records.study_path(self.meta)

    @property
    def study_url(self) -> str:
        """The study as optuna-dashboard takes it (a journal file's path, or an SQLite URL)."""
        return study_address(self.study_path)

    def study_storage(self) -> Any:
        """The study's Optuna storage (journal file, or SQLite)."""
        return study_storage(self.study_path)

    def upload_study(self) -> None:
        self.records.upload_study(self.meta)


def prepare_sweep(spec: Spec, storage: str | None = None, name: str | None = None, resume: bool = False, checked: Any = None) -> Sweep:
    """Create (or, with ``resume``, reopen) a run dir and record the spec and the sweep's metadata.

    Args:
        checked: What :func:`search.preflight.preflight` found for this sweep; without it the
            run-dir checks are made here.

    Raises:
        RunDirError: the run dir already holds a sweep (without ``resume``), or holds none or a
            damaged one (with ``resume``).
    """
    if checked is None:
        from search.preflight import check_run_dir

        run_dir = RunDir.at(storage or spec.run.storage, name or spec.name)
        resumed = check_run_dir(spec, run_dir, resume)
    else:
        run_dir, resumed = checked.run_dir, checked.resumed
    if resume:
        sweep = Sweep(spec=spec, records=run_dir, meta=resumed.meta)
        if not run_dir.location.is_local:  # resuming on another machine: start from the run dir's copy
            run_dir.check_study(sweep.meta, run_dir.fetch_study(sweep.meta))
        # The size it resumes with (run.num_samples, run.max_concurrent) is the size it has now.
        run_dir.write_spec_text(spec_to_yaml(spec))
        return sweep
    study_name = f"{run_dir.location.name}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    sweep = Sweep(spec=spec, records=run_dir, meta=SweepMeta.new(study_name, spec.trainable))
    sweep.local_dir.mkdir(parents=True, exist_ok=True)
    run_dir.write_spec_text(spec_to_yaml(spec))
    run_dir.write_meta(sweep.meta)
    warm = getattr(checked, "warm", None)
    if warm is not None:
        from search.warm_start import warm_tables

        run_dir.write_warm_start(*warm_tables(warm, spec), [source.to_json() for source in warm.sources])
        sweep = Sweep(spec=spec, records=run_dir, meta=run_dir.read_meta())
    return sweep


def default_concurrency(spec: Spec) -> int:
    """``run.max_concurrent``, or as many trials as the cluster's CPUs (and GPUs) can hold."""
    import ray

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


def build_tuner(
    sweep: Sweep,
    progress: bool = True,
    max_concurrent: int | None = None,
    on_cluster: bool = False,
    plan: Any = None,
    callbacks: Sequence[Any] = (),
    data_info: Any = None,
    resumed: Any = None,
) -> Any:
    """A ``tune.Tuner`` for a prepared sweep (Ray must be initialised).

    With ``plan`` (a resumed sweep, :class:`~search.resume.ResumePlan`), the unfinished trials
    are continued first, and the results recorder, the scheduler's rungs and the progress lines
    count on from the run dir's record (``resumed``: the records the preflight read, read here
    when not given). ``callbacks`` are added after the recorder and the progress lines (e.g. a
    benchmark's probe). ``data_info`` (the data's :class:`~trainables.data.DataInfo`, read when
    not given) lets the searcher refuse candidates whose costs break a constraint before
    training, and the ``cost_aware`` sampler compute each candidate's costs.

    The searcher is the returned tuner's ``searcher`` attribute: after ``fit()``, its
    ``exhausted`` says whether the search ended because every candidate was refused.
    """
    from ray import tune
    from ray.tune.search import ConcurrencyLimiter

    from search.progress import ProgressPrinter
    from search.recorder import ResultsRecorder
    from search.schedulers import make_scheduler
    from search.searcher import SweepSearcher
    from search.signals import SignalStopper, stop_requested
    from trainables.registry import get_trainable

    spec = sweep.spec
    entry = get_trainable(spec.trainable)
    concurrency = max_concurrent or default_concurrency(spec)
    continuations = plan.continuations if plan is not None else []
    if data_info is None and (spec.constraints or spec.sampler.name == "cost_aware") and entry.static_costs is not None:
        from trainables.data import check_available

        data_info = check_available(spec.data.model_dump())
    searcher = SweepSearcher(
        spec,
        study_name=sweep.study_name,
        storage=sweep.study_storage(),
        num_samples=spec.num_samples,
        continuations=continuations,
        defer_tells=True,
        data_info=data_info,
    )
    records = (resumed.trials, resumed.epochs) if resumed is not None else None
    # The experiment trackers (tracking: MLflow, TensorBoard) log what the recorder holds for
    # good; it closes them when the experiment ends.
    from search.tracking import make_trackers

    trackers = make_trackers(spec, sweep.records, sweep.meta, param_names=[*spec.space, *spec.fixed], metric_keys=entry.report_keys)
    recorder = ResultsRecorder(
        sweep.records,
        param_names=[*spec.space, *spec.fixed],
        metric_keys=[*entry.report_keys, *INFO_KEYS],
        searcher=searcher,
        continuations=continuations,
        stopping=stop_requested,
        records=records,
        trackers=trackers,
    )
    searcher.on_refused = recorder.add_refused
    from search.warm_start import recorded_warm_trials

    warm_trials, warm_epochs = recorded_warm_trials(sweep.records)
    if warm_trials:  # before the first suggestion (a resumed sweep's study holds them already)
        searcher.tell_warm(warm_trials)
    if plan is not None:
        recorder.settle(plan.settled)
        recorder.flush()
    all_callbacks: list[Any] = [recorder]
    if progress:
        printer = ProgressPrinter(
            spec.num_samples, spec.metrics, spec.modes, spec.budget.epochs, constraints=spec.constraints, records=sweep.records
        )
        printer.stopping = stop_requested
        reference = resumed.progress_reference if resumed is not None else sweep.records.read_progress_reference()
        printer.continue_from(list(recorder.trials.values()), reference)
        all_callbacks.append(printer)
    all_callbacks.extend(callbacks)
    scheduler = make_scheduler(spec)
    if hasattr(scheduler, "seed"):  # a scheduler with rungs: refill them from the record and the warm start
        scheduler.seed([*warm_epochs, *recorder.epochs.values()])
    if hasattr(scheduler, "judge") and spec.scheduler.promote == "ehvi" and spec.sampler.name == "cost_aware":
        scheduler.judge = searcher.worth_continuing  # the sampler's model decides at a rung where it can
    if hasattr(scheduler, "rung_tests") and hasattr(searcher.study.sampler, "rungs"):
        searcher.study.sampler.rungs = scheduler.rung_tests  # candidates weighed by their chance past the rungs
    resources = {"cpu": spec.run.resources.cpu, "gpu": spec.run.resources.gpu}
    tuner = tune.Tuner(
        tune.with_resources(entry.trainable, resources),
        param_space=_param_space(sweep),
        tune_config=tune.TuneConfig(
            search_alg=ConcurrencyLimiter(searcher, max_concurrent=concurrency),
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
    table = sweep.records.read_trials(columns=["state"])
    return [] if table is None else table.column("state").to_pylist()


def finished_trials(sweep: Sweep) -> int:
    """Trials of the run dir that reached a final state (``trainables.report.FINAL_STATES``)."""
    return sum(state in FINAL_STATES for state in trial_states(sweep))


def renamed(spec: Any, name: str) -> tuple[Any, str | None]:
    """The spec renamed to ``name``, or the one-line problem with that name."""
    from search.spec import check_sweep_name

    try:
        check_sweep_name(name)
    except ValueError as exc:
        return spec, f"--name: {exc}"
    return spec.model_copy(update={"name": name}), None


def checked_spec(spec: Any, options: SweepOptions) -> tuple[Any, Any, str | None]:
    """The spec under ``--name`` and what the preflight found: (spec, :class:`~search.preflight.Preflight`, problem or None).

    A sweep and a dry run make these same checks, with the same one-line messages.
    """
    from search.preflight import preflight

    if options.name:
        spec, problem = renamed(spec, options.name)
        if problem:
            return spec, None, problem
    checked, problem = preflight(spec, options.storage, options.name, options.resume, options.address, options.warm_start, options.warm_start_any)
    return spec, checked, problem


def run_sweep(spec: Any, options: SweepOptions | None = None) -> int:
    """Run a validated spec's sweep on Ray (the search API behind ``python -m search.run``).

    Checks everything a user can get wrong before anything is written (data, GPUs, the run dir,
    the cluster), runs the sweep, prints its outcome and returns the exit status: 0, 1 when
    every trial failed, 2 on a user error (one ``error:`` line on stderr), 128 + signal when
    stopped by a signal. Ray is started (or joined) here and shut down before returning.

    Args:
        spec: A :class:`~search.spec.Spec` (:func:`search.spec.load_spec`).
        options: Where and how to run it (:class:`SweepOptions`).
    """
    from search.ray_session import start_ray, stop_ray, unplaceable
    from search.signals import catch_stop_signals

    options = options or SweepOptions()
    spec, checked, problem = checked_spec(spec, options)
    if problem:
        return fail(problem)
    sweep = None
    try:
        try:
            start_ray(options.address, options.num_cpus)
        except (ConnectionError, RuntimeError, ValueError, OSError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return fail(f"cannot reach the Ray cluster at {options.address!r}: {first}" if options.address else f"cannot start a local Ray: {first}")
        # After Ray starts: a local Ray installs a SIGTERM handler of its own.
        with catch_stop_signals():
            problem = unplaceable(spec, wait_s=None if options.address else 0.0)
            if problem:
                return fail(problem)
            try:
                sweep = prepare_sweep(spec, resume=options.resume, checked=checked)
            except RunDirError as exc:
                return fail(str(exc))
            if not options.resume and options.num_cpus is not None and not options.address:
                sweep.records.record_num_cpus(options.num_cpus)
            return _run(sweep, checked, options)
    except KeyboardInterrupt:  # a second stop signal, or one before the sweep started
        return _interrupted(sweep, options)
    finally:
        stop_ray()


def _run(sweep: Sweep, checked: Any, options: SweepOptions) -> int:
    from search.resume import plan_sweep_resume
    from search.signals import stop_requested
    from search.summary import print_summary

    spec, info = sweep.spec, checked.info
    print(
        f"sweep {sweep.name}: {spec.num_samples} trials of {spec.trainable} on {spec.data.name} "
        f"({info.n_train} train / {info.n_val} val), sampler {spec.sampler.name}, scheduler {spec.scheduler_text()}\n"
        f"run dir: {sweep.run_dir}   (watch the study: optuna-dashboard {sweep.study_url})",
        flush=True,
    )
    if checked.warm is not None:
        print("\n".join(checked.warm.lines()) + f"\n(told to the study before the first suggestion; not counted in the {spec.num_samples} trials, never trained again)", flush=True)
    elif sweep.meta.warm_start:
        told = sum(int(w.get("taken") or 0) for w in sweep.meta.warm_start)
        print(f"warm-started with {told} trials from " + ", ".join(str(w.get("run_dir")) for w in sweep.meta.warm_start), flush=True)
    plan = None
    exhausted: str | None = None
    if options.resume:
        try:
            plan = plan_sweep_resume(sweep, checked.resumed)
        except RunDirError as exc:
            return fail(str(exc))
        with_ckpt = sum(c.checkpoint is not None for c in plan.continuations)
        print(
            f"resuming: {plan.finished} trials finished before (kept as they are); {len(plan.continuations)} unfinished "
            f"continue ({with_ckpt} from a checkpoint)" + (f"; {plan.told} outcomes told to the study from {sweep.records.file_name('trials')}" if plan.told else ""),
            flush=True,
        )
    try:
        if plan is None or plan.continuations or plan.finished < spec.num_samples:
            from ray.tune.error import TuneError

            try:
                tuner = build_tuner(sweep, progress=options.progress, on_cluster=bool(options.address), plan=plan, data_info=info, resumed=checked.resumed)
                tuner.fit()
                exhausted = tuner.searcher.exhausted
            except TuneError as exc:
                lines = [line for line in str(exc).strip().splitlines() if line.strip()]
                return fail(
                    f"Ray Tune stopped the sweep: {lines[-1].strip() if lines else 'unknown error'}; finished trials are saved in "
                    f"{sweep.run_dir} (resume with: {_resume_command(sweep, options)})",
                    EXIT_FAILED,
                )
        else:  # nothing left to train; trackers added on this --resume still get the record
            from search.tracking import log_record

            log_record(spec, sweep.records, sweep.meta)
        if stop_requested():
            return _interrupted(sweep, options)
    finally:
        sweep.upload_study()
    status = print_summary(sweep)
    return fail(f"{exhausted}; what was trained is saved in {sweep.run_dir}") if exhausted else status


def _resume_command(sweep: Sweep, options: SweepOptions) -> str:
    if options.command:
        spec_path, *rest = options.command
    else:
        spec_path, rest = sweep.records.shown("spec"), ["--address", options.address] if options.address else []
    parts = ["python", "-m", "search.run", spec_path, "--storage", sweep.storage, "--name", sweep.name, *rest]
    return " ".join(shlex.quote(p) for p in [*parts, "--resume"])


def _interrupted(sweep: Sweep | None, options: SweepOptions) -> int:
    """One line: what stopped the sweep, what is saved, how to resume; exit 128 + signal."""
    from search.signals import stop_signal

    signum = stop_signal() or signal.SIGINT
    name = signal.Signals(signum).name
    if sweep is None:
        print(f"\ninterrupted by {name} before the sweep started: nothing was run", file=sys.stderr, flush=True)
        return 128 + signum
    try:
        done = f"{finished_trials(sweep)} of {sweep.spec.num_samples} trials finished"
    except Exception:  # noqa: BLE001 - the line must be printed whatever the run dir holds
        done = "finished trials"
    print(
        f"\ninterrupted by {name}: {done}, saved in {sweep.run_dir}; resume with: {_resume_command(sweep, options)}",
        file=sys.stderr,
        flush=True,
    )
    return 128 + signum
