"""Resuming an interrupted sweep (``--resume``), from what its run dir records and nothing else.

A resumed sweep never unpickles anything of the run dir (Ray Tune's ``tuner.pkl`` and experiment
state are not read): it starts a fresh Tune run from three records —

* ``trials.parquet``: which trials finished (TERMINATED, stopped early, or ERROR after their
  retries: ``trainables.report.FINAL_STATES``). The results recorder writes a trial's final row
  *before* its outcome is told to the study, so this table is the one record of what finished.
* the Optuna study: outcomes the record holds but the study lacks (a driver killed between the
  two writes) are told to it from the record.
* the trial dirs' checkpoints: every unfinished trial (running, or only suggested, at the
  interruption) is continued by a new Ray trial with the same Optuna trial and parameters, from
  its latest readable checkpoint (or from the start when it has none). Its epoch rows after that
  checkpoint are dropped, so the epochs continue and never repeat.

Finished trials are never run again: their rows, epoch rows, checkpoint and study values stay as
they were. The steps, in order:

1. :func:`as_started` (before the preflight): the sweep keeps the size and the local CPUs it was
   started with unless they are given again.
2. :func:`check_resumable` (the preflight, before Ray starts): the run dir is this sweep's and
   trusted (its files are the user's own and not writable by others; resuming loads its
   checkpoints), the spec searches the same space, and every record reads. The records read here
   are handed on (:class:`ResumeState`), so nothing is read twice.
3. :func:`plan_sweep_resume` (once the sweep is reopened): load the study, reconcile it with the
   record (:func:`plan_resume`) and list the trials to continue.
"""

from __future__ import annotations

import io
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import yaml

from search.rundir import RunDir, RunDirError, SweepMeta, load_study, trial_dirname
from trainables.report import TERMINATED_STATE, ERROR_STATE, FINAL_STATES, REFUSED_STATE

__all__ = ["ResumePlan", "ResumeState", "as_started", "check_resumable", "latest_checkpoint", "plan_resume", "plan_sweep_resume"]

#: Spec fields a resumed sweep may change: how many trials, how many at once, where, and the
#: experiment trackers it is logged to (they log what the run dir holds).
_RESUMABLE_CHANGES = ("name", "run.num_samples", "run.max_concurrent", "run.storage", "description", "tracking")


@dataclass(frozen=True)
class ResumeState:
    """What the preflight of a resume read and checked: the sweep's metadata and records."""

    meta: SweepMeta
    trials: pa.Table | None
    epochs: pa.Table | None
    progress_reference: dict[str, Any] | None


@dataclass
class ResumePlan:
    """What a resumed sweep does.

    Attributes:
        finished: Trials of the record in a final state (never run again).
        continuations: Unfinished trials to continue (see :class:`~search.searcher.Continuation`).
        told: Outcomes told to the study from the record (it lagged behind).
        settled: Unfinished rows whose study trial had already ended, mapped to the final state
            the record takes from the study, or to None for rows the study does not know (dropped).
    """

    finished: int = 0
    continuations: list[Any] = field(default_factory=list)
    told: int = 0
    settled: dict[str, str | None] = field(default_factory=dict)


def as_started(spec: Any, run_dir: RunDir, num_samples_given: bool, num_cpus: int | None, address: str | None) -> tuple[Any, int | None]:
    """A resumed sweep keeps its size and its local CPUs unless given again (and says when they change).

    The run dir's spec holds the ``run.num_samples`` the sweep was started (or last resumed)
    with, its metadata the ``--num-cpus``. Returns the spec and ``--num-cpus`` to resume with.
    """
    from search.spec import SpecError, load_yaml

    try:
        saved = load_yaml(run_dir.read_spec_text()) or {}
        meta = run_dir.read_meta()
    except (OSError, ValueError, SpecError, UnicodeDecodeError, yaml.YAMLError, RunDirError):
        return spec, num_cpus  # the run dir checks say what is wrong with it
    before = (saved.get("run") or {}).get("num_samples") if isinstance(saved, dict) else None
    if isinstance(before, int) and before != spec.run.num_samples:
        if num_samples_given:
            print(f"--resume: run.num_samples {before} -> {spec.run.num_samples} (as given)")
        else:
            print(f"--resume: {before} trials, as the sweep was started (the spec file says {spec.run.num_samples}; --num-samples N changes it)")
            spec = spec.model_copy(update={"run": spec.run.model_copy(update={"num_samples": before})})
    if num_cpus is None and meta.num_cpus is not None and not address:
        print(f"--resume: --num-cpus {meta.num_cpus}, as the sweep was started")
        return spec, meta.num_cpus
    return spec, num_cpus


def check_resumable(spec: Any, run_dir: RunDir) -> ResumeState:
    """Every check of a resume that writes nothing; returns what it read.

    Raises:
        RunDirError: naming what is wrong: no sweep here, another family's sweep, files others
            own or may write, another space or objectives, an unreadable record or study.
    """
    if not run_dir.has_sweep():
        raise RunDirError(f"{run_dir.uri} holds no sweep to resume (no {run_dir.file_name('sweep')}); run without --resume to start one")
    meta = run_dir.read_meta()
    if meta.trainable not in (None, spec.trainable):
        raise RunDirError(
            f"{run_dir.shown('sweep')}: this run dir holds a sweep of {meta.trainable!r}, not {spec.trainable!r}; "
            "resume it with its own spec, or start a new sweep with --name"
        )
    run_dir.check_owned()
    _check_same_spec(spec, run_dir)
    trials, epochs = run_dir.read_records()
    reference = run_dir.read_progress_reference(strict=True)
    if run_dir.location.is_local:
        run_dir.check_study(meta)
    return ResumeState(meta=meta, trials=trials, epochs=epochs, progress_reference=reference)


def _check_same_spec(spec: Any, run_dir: RunDir) -> None:
    """A resumed sweep must search the same space with the same objectives as before."""
    from search.spec import SpecError, load_yaml, parse_spec
    from trainables.config import flatten

    shown = run_dir.shown("spec")
    try:
        saved = parse_spec(load_yaml(run_dir.read_spec_text()), shown, check_sampler=False)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, SpecError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RunDirError(
            f"{shown}: the spec this sweep ran with is not readable ({first}); restore it from a backup, or start a new sweep with --name"
        ) from None
    changes = _param_changes(saved, spec)
    now, before = flatten(spec.model_dump(exclude={"space", "fixed"})), flatten(saved.model_dump(exclude={"space", "fixed"}))
    for key in sorted(set(now) | set(before)):
        if not key.startswith(_RESUMABLE_CHANGES) and now.get(key) != before.get(key):
            changes.append(f"{key} is {now.get(key)!r}, the sweep ran with {before.get(key)!r}")
    if changes:
        raise RunDirError(
            f"--resume: this spec differs from the one the sweep in {run_dir.uri} ran with: {'; '.join(changes)}. "
            "Only run.num_samples, run.max_concurrent and tracking may change (start a new sweep with --name otherwise)"
        )


def _param_changes(before: Any, now: Any) -> list[str]:
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


def _inside(root: str, path: str | None) -> bool:
    if not path:
        return False
    norm = posixpath.normpath(path)
    return norm.startswith(root.rstrip("/") + "/")


def latest_checkpoint(run_dir: RunDir, trial_id: str, row: Mapping[str, Any] | None, max_epoch: int | None = None) -> tuple[str | None, int]:
    """The newest readable checkpoint of an unfinished trial: (path or URI, its epoch).

    Looked for in the trial's own dir (:func:`~search.rundir.trial_dirname`) and, for a trial
    already continued once, the dirs its row names (only inside the run dir). A checkpoint that
    does not load (e.g. cut short by the interruption) is skipped for the one before it, and so
    is one past ``max_epoch`` (the last epoch ``epochs.parquet`` holds: continuing from a later
    one would leave epochs without rows). ``(None, 0)`` when there is none.
    """
    import torch

    from trainables.training import CHECKPOINT_FILE

    location = run_dir.location
    fs, root = location.filesystem
    dirs = [posixpath.join(root, trial_dirname(trial_id))]
    for key in ("trial_dir", "checkpoint"):
        value = (row or {}).get(key)
        if isinstance(value, str) and _inside(root, value):
            dirs.append(value if key == "trial_dir" else posixpath.dirname(posixpath.normpath(value)))
    best: tuple[str | None, int] = (None, 0)
    for directory in dict.fromkeys(dirs):
        try:
            entries = fs.get_file_info(pafs.FileSelector(directory, allow_not_found=True))
        except OSError:
            continue
        names = sorted((e.path for e in entries if e.type == pafs.FileType.Directory and e.base_name.startswith("checkpoint_")), reverse=True)
        for path in names:
            try:
                with fs.open_input_stream(posixpath.join(path, CHECKPOINT_FILE)) as stream:
                    state = torch.load(io.BytesIO(stream.readall()), map_location="cpu", weights_only=True)
                epoch = int(state["epoch"])
            except Exception:  # noqa: BLE001 - a damaged checkpoint: try the one before it
                continue
            if max_epoch is not None and epoch > max_epoch:
                continue
            if epoch > best[1]:
                best = (path if location.is_local else f"{location.storage.split('://', 1)[0]}://{path}", epoch)
            break
    return best


def plan_resume(run_dir: RunDir, store: Any, metrics: list[str], constraints: list[Any], state: ResumeState | None = None) -> ResumePlan:
    """Reconcile the study with the record and list the trials to continue.

    Tells the study the outcomes the record holds and it lacks; marks suggestions that never
    became a Ray trial as failed orphans (not counted, so they are suggested anew).

    Args:
        run_dir: The run dir.
        store: The sweep's :class:`~search.study.StudyStore`.
        metrics: The objectives, in order.
        constraints: The spec's constraints.
        state: The records :func:`check_resumable` read (read here when not given).
    """
    from optuna.trial import TrialState

    from search.searcher import Continuation
    from search.study import ORPHAN_ATTR, RAY_TRIAL_ATTR, tell_outcome

    trials, epochs = (state.trials, state.epochs) if state is not None else run_dir.read_records()
    rows = {r["trial_id"]: r for r in (trials.to_pylist() if trials is not None else [])}
    last_epoch: dict[str, int] = {}
    for trial_id, epoch in zip(*(epochs.column(c).to_pylist() for c in ("trial_id", "epoch"))) if epochs is not None else ():
        last_epoch[trial_id] = max(last_epoch.get(trial_id, 0), int(epoch))
    plan = ResumePlan(finished=sum(r["state"] in FINAL_STATES for r in rows.values()))
    study = store.study
    by_ray = {t.user_attrs.get(RAY_TRIAL_ATTR): t for t in study.get_trials(deepcopy=False)}
    open_states = (TrialState.RUNNING, TrialState.WAITING)
    for trial_id, row in rows.items():
        ot = by_ray.get(trial_id)
        if row["state"] == REFUSED_STATE:
            continue  # refused before training: never a trial, never run
        if row["state"] in FINAL_STATES:
            if ot is not None and ot.state in open_states:
                tell_outcome(store, ot.number, metrics, constraints, row, error=row["state"] == ERROR_STATE)
                plan.told += 1
        elif ot is None:
            plan.settled[trial_id] = None  # a row the study never counted
        elif ot.state.is_finished():
            plan.settled[trial_id] = ERROR_STATE if ot.state == TrialState.FAIL else TERMINATED_STATE
            plan.finished += 1
    for ot in study.get_trials(deepcopy=False, states=open_states):
        trial_id = ot.user_attrs.get(RAY_TRIAL_ATTR)
        if ot.user_attrs.get(ORPHAN_ATTR) or not trial_id:
            # Asked for, never a Ray trial: not counted, suggested anew.
            store.set_user_attr(ot.number, ORPHAN_ATTR, True)
            study.tell(ot.number, state=TrialState.FAIL)
            continue
        checkpoint, epoch = latest_checkpoint(run_dir, trial_id, rows.get(trial_id), max_epoch=last_epoch.get(trial_id, 0))
        plan.continuations.append(Continuation(trial_id=trial_id, optuna_number=ot.number, checkpoint=checkpoint, epoch=epoch))
    return plan


def plan_sweep_resume(sweep: Any, resumed: ResumeState | None) -> ResumePlan:
    """Reconcile the reopened sweep's study with its record; list the trials to continue."""
    from search.study import StudyStore, counts_as_trial

    if not sweep.study_path.exists():
        return ResumePlan()  # stopped before its first trial
    storage = sweep.study_storage()
    study = load_study(sweep.study_name, sweep.study_path, sweep.records.shown_study(sweep.meta), storage=storage)
    store = StudyStore(study=study, storage=storage)
    spec = sweep.spec
    plan = plan_resume(sweep.records, store, list(spec.metrics), list(spec.constraints), resumed)
    counted = sum(counts_as_trial(t) for t in store.study.get_trials(deepcopy=False))
    if counted > spec.num_samples:
        raise RunDirError(
            f"--resume: run.num_samples is {spec.num_samples} but this sweep has already started {counted} trials; "
            f"pass --num-samples {counted} or more"
        )
    return plan
