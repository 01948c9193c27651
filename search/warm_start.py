"""Warm starts: what earlier sweeps trained, told to a new sweep's study before its first suggestion.

``python -m search.run SPEC --warm-start RUN_DIR [--warm-start RUN_DIR2 …]`` reads each earlier
run dir's trials, keeps those that fit the new sweep and tells them to its Optuna study (their
parameters, objective values, constraint values and learning curves), so the sampler starts from
what is known instead of from nothing. Told trials:

- are marked with where they came from (the study trials' ``warm_start_from`` user attribute,
  ``RUN_DIR#trial_id``), and listed in the new run dir (:meth:`~search.rundir.RunDir.write_warm_start`);
- are not counted in ``num_samples``, add no rows to the new ``epochs.parquet`` and are never
  trained again: a suggestion equal to one of them is not run (:mod:`search.searcher`);
- fill the rungs of ASHA and MO-ASHA with their epochs, so the first new trials are judged
  against them.

What fits: an earlier trial that was trained (finished, stopped early or failed), whose every
parameter the new space searches lies inside the new space, and whose other parameters equal the
new sweep's. Early-stopped trials are told as stopped early (PRUNED) with their curve; a
different budget is allowed: a trial that ran fewer epochs than the new budget counts at its
fraction of it, one that ran more is taken at the new budget's epoch. An earlier sweep of another
family, on other data or for other objectives is refused (one line) unless ``--warm-start-any``.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from search.rundir import RunDir, RunDirError
from trainables.config import flatten, get_path
from trainables.report import ERROR_STATE, TERMINATED_STATE, format_number

__all__ = [
    "WarmSource",
    "WarmStart",
    "WarmStartError",
    "WarmTrial",
    "read_warm_start",
    "tell_warm_start",
    "params_key",
    "warm_key",
]

#: The Optuna state names a told trial can have.
COMPLETE, PRUNED, FAIL = "COMPLETE", "PRUNED", "FAIL"


class WarmStartError(ValueError):
    """An earlier run dir cannot warm-start this sweep (one line: which, and why)."""


def warm_key(source: str, trial_id: str) -> str:
    """Where a told trial came from: ``RUN_DIR#trial_id``."""
    return f"{source}#{trial_id}"


@dataclass(frozen=True)
class WarmTrial:
    """One earlier trial, as told to the new study.

    Attributes:
        source: The earlier run dir (as the user named it, made absolute for paths).
        trial_id: Its ``trial_id`` there.
        params: Its values of the new space's active parameters.
        state: ``COMPLETE`` (at the new full budget), ``PRUNED`` (stopped before it) or ``FAIL``.
        epoch: The epoch its values are from.
        budget_fraction: ``epoch`` over the new budget (at most 1).
        metrics: Its report at ``epoch`` (objectives, costs, constraint metrics).
        curve: Epoch → the new sweep's curve metric, up to ``epoch``.
        epoch_rows: Its epoch rows up to ``epoch`` (for the schedulers' rungs).
    """

    source: str
    trial_id: str
    params: Mapping[str, Any]
    state: str
    epoch: int
    budget_fraction: float
    metrics: Mapping[str, Any]
    curve: Mapping[int, float] = field(default_factory=dict)
    epoch_rows: Sequence[Mapping[str, Any]] = ()

    @property
    def key(self) -> str:
        return warm_key(self.source, self.trial_id)


@dataclass
class WarmSource:
    """One ``--warm-start`` run dir: what was taken from it and what was not, and why."""

    run_dir: str
    study_name: str | None
    taken: int = 0
    stopped_early: int = 0
    shorter: int = 0  # ran their own sweep's full budget, shorter than the new one's: counted at their fraction
    shorter_of: tuple[int, int] = (0, 0)  # (that budget, the new one)
    failed: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason -> trials
    example: dict[str, str] = field(default_factory=dict)  # reason -> a trial id
    differs: list[str] = field(default_factory=list)  # what differs from the new sweep (--warm-start-any)

    def lines(self) -> list[str]:
        """What was taken from this run dir and what not: one line each."""
        parts = [f"{self.taken} trials"]
        kinds = ((self.stopped_early, "stopped early"), (self.shorter, "ran their sweep's full {0} epochs (counted at {0}/{1} of this one's)".format(*self.shorter_of)), (self.failed, "failed"))
        if any(n for n, _ in kinds):
            parts.append(", ".join(f"{n} {what}" for n, what in kinds if n))
        out = [f"warm start from {self.run_dir}: " + "; ".join(parts) + (f" (taken although {', '.join(self.differs)})" if self.differs else "")]
        for reason, n in self.skipped.most_common():
            out.append(f"  not taken: {n} trial{'s' if n != 1 else ''}: {reason} (e.g. {self.example[reason]})")
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "run_dir": self.run_dir,
            "study_name": self.study_name,
            "taken": self.taken,
            "stopped_early": self.stopped_early,
            "shorter_budget": self.shorter,
            "failed": self.failed,
            "not_taken": dict(self.skipped),
        }


@dataclass
class WarmStart:
    """Every trial the ``--warm-start`` run dirs give the new sweep, and what each run dir gave."""

    sources: list[WarmSource] = field(default_factory=list)
    trials: list[WarmTrial] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [line for source in self.sources for line in source.lines()]


# ---- reading -----------------------------------------------------------------------------------
class _Missing(Exception):
    pass


class _Replay:
    """An Optuna-trial look-alike that answers the space's suggestions from known values.

    Replaying the spec's define-by-run space on it gives the active parameters of a config and
    each one's distribution (conditionals and dependent ranges included), with Optuna's own
    distribution classes.
    """

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = values
        self.params: dict[str, Any] = {}
        self.distributions: dict[str, Any] = {}

    def _take(self, name: str, distribution: Any) -> Any:
        value = self.values.get(name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            raise _Missing(name)
        self.params[name] = value
        self.distributions[name] = distribution
        return value

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        import optuna

        value = self.values.get(name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            raise _Missing(name)
        # A column of mixed choices is stored as text: map it back onto the choice it names.
        match = next((c for c in choices if c == value or str(c) == str(value)), value)
        self.params[name] = match
        self.distributions[name] = optuna.distributions.CategoricalDistribution(list(choices))
        return match

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> Any:
        import optuna

        value = self._take(name, optuna.distributions.IntDistribution(low, high, log=log, step=step))
        self.params[name] = int(value) if float(value) == int(value) else value
        return self.params[name]

    def suggest_float(self, name: str, low: float, high: float, step: float | None = None, log: bool = False) -> Any:
        import optuna

        value = self._take(name, optuna.distributions.FloatDistribution(low, high, log=log, step=step))
        self.params[name] = float(value)
        return self.params[name]


def _outside(name: str, value: Any, distribution: Any) -> str | None:
    """Why ``value`` is not in ``distribution`` (Optuna's), or None."""
    choices = getattr(distribution, "choices", None)
    if choices is not None:
        return None if value in choices else f"{name} {value!r} is not one of this sweep's {list(choices)}"
    low, high, step = distribution.low, distribution.high, distribution.step
    try:
        number = float(value)
    except (TypeError, ValueError):
        return f"{name} {value!r} is not a number"
    if not low - 1e-12 * abs(low) <= number <= high + 1e-12 * abs(high):
        return f"{name} {format_number(number)} is outside this sweep's [{format_number(low)}, {format_number(high)}]"
    if step is not None and abs((number - low) / step - round((number - low) / step)) > 1e-6:
        return f"{name} {format_number(number)} is off this sweep's step {format_number(step)} from {format_number(low)}"
    return None


def _earlier_spec(run_dir: RunDir) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(run_dir.read_spec_text())
    except (OSError, RunDirError, yaml.YAMLError) as exc:
        raise WarmStartError(f"--warm-start {run_dir.uri}: its spec is not readable ({' '.join(str(exc).split())[:200]})") from None
    if not isinstance(raw, dict):
        raise WarmStartError(f"--warm-start {run_dir.uri}: {run_dir.shown('spec')} is not a spec")
    return raw


def _objectives(raw: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(o.get("metric"), o.get("mode")) for o in raw.get("objectives") or [] if isinstance(o, Mapping)]


def _differences(spec: Any, raw: Mapping[str, Any]) -> list[str]:
    """What makes the earlier sweep another experiment: family, data set, objectives."""
    out = []
    if raw.get("trainable") != spec.trainable:
        out.append(f"it trained {raw.get('trainable')!r}, this sweep {spec.trainable!r}")
    data = raw.get("data") or {}
    theirs = (data.get("name", "digits"), data.get("path"))
    ours = (spec.data.name, spec.data.path)
    if theirs != ours:
        out.append(f"its data is {'/'.join(str(x) for x in theirs if x)}, this sweep's {'/'.join(str(x) for x in ours if x)}")
    objectives = [(o.metric, o.mode) for o in spec.objectives]
    if _objectives(raw) != objectives:
        shown = lambda obs: ", ".join(f"{m} ({d})" for m, d in obs)  # noqa: E731
        out.append(f"its objectives are {shown(_objectives(raw))}, this sweep's {shown(objectives)}")
    return out


def _curve_metric(spec: Any) -> str:
    return spec.scheduler_metric[0] if spec.scheduler.name == "asha" else spec.metrics[0]


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def read_warm_start(spec: Any, run_dirs: Sequence[str], any_source: bool = False) -> WarmStart:
    """Read the ``--warm-start`` run dirs: the trials that fit ``spec``'s sweep.

    Args:
        spec: The new sweep's spec.
        run_dirs: Earlier run dirs (paths or URIs), in the order given.
        any_source: Take what fits from a sweep of another family, data set or objectives too.

    Raises:
        WarmStartError: a run dir holds no readable sweep, or (without ``any_source``) is
            another experiment; one line naming it and what differs.
    """
    from search.space import define_by_run, trial_config

    warm = WarmStart()
    space = define_by_run(spec)
    seen: set[str] = set()
    for given in run_dirs:
        run_dir = RunDir(given)
        source = run_dir.uri
        if source in seen:
            raise WarmStartError(f"--warm-start {given}: named twice")
        seen.add(source)
        try:
            if not run_dir.has_sweep():
                raise WarmStartError(f"--warm-start {given}: no sweep there (no {RunDir.file_name('sweep')})")
            meta = run_dir.read_meta()
            trials, epochs = run_dir.read_records()
        except RunDirError as exc:
            raise WarmStartError(f"--warm-start {given}: {exc}") from None
        raw = _earlier_spec(run_dir)
        differs = _differences(spec, raw)
        if differs and not any_source:
            raise WarmStartError(f"--warm-start {source}: another experiment ({'; '.join(differs)}); pass --warm-start-any to take what fits anyway")
        entry = WarmSource(run_dir=source, study_name=meta.study_name, differs=differs)
        warm.sources.append(entry)
        if trials is None:
            continue
        old_epochs = int((raw.get("budget") or {}).get("epochs") or 10)
        param_columns = [name for name in (*(raw.get("space") or {}), *(raw.get("fixed") or {})) if name in trials.column_names]
        curves: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in epochs.to_pylist() if epochs is not None else ():
            curves[row["trial_id"]].append(row)
        for row in trials.to_pylist():
            trial, reason = _fit(spec, space, trial_config, row, curves.get(row["trial_id"], []), param_columns, old_epochs, source)
            if trial is None:
                entry.skipped[reason] += 1
                entry.example.setdefault(reason, str(row["trial_id"]))
                continue
            warm.trials.append(trial)
            entry.taken += 1
            if trial.state == PRUNED and trial.epoch >= old_epochs:
                entry.shorter, entry.shorter_of = entry.shorter + 1, (old_epochs, int(spec.budget.epochs))
            else:
                entry.stopped_early += trial.state == PRUNED
            entry.failed += trial.state == FAIL
    return warm


def _fit(
    spec: Any,
    space: Any,
    trial_config: Any,
    row: Mapping[str, Any],
    epoch_rows: list[dict[str, Any]],
    param_columns: Sequence[str],
    old_epochs: int,
    source: str,
) -> tuple[WarmTrial | None, str]:
    """The told form of one earlier trial, or (None, why it does not fit)."""
    state = row.get("state")
    if state not in (TERMINATED_STATE, ERROR_STATE):
        return None, "never trained" if state == "REFUSED" else "unfinished"
    replay = _Replay(row)
    try:
        space(replay)
    except _Missing as missing:
        return None, f"it has no value of {missing}, which this sweep searches"
    for name, distribution in replay.distributions.items():
        problem = _outside(name, replay.params[name], distribution)
        if problem:
            return None, problem
    try:
        config = flatten(trial_config(spec, replay.params))
    except (ValueError, TypeError) as exc:
        return None, f"not a valid config here ({' '.join(str(exc).split())[:120]})"
    for name in param_columns:
        if name in replay.params or row.get(name) is None:
            continue
        ours = config.get(name, get_path(spec.entry.defaults, name) if "." in name else None)
        if ours is not None and str(ours) != str(row[name]) and _number(ours) != _number(row[name]):
            return None, f"{name} was {row[name]!r}, this sweep has {ours!r}"
    epochs_now = spec.budget.epochs
    rows = sorted(epoch_rows, key=lambda r: int(r["epoch"]))
    last = int(row.get("epoch") or 0)
    if state == ERROR_STATE:
        told, epoch, report = FAIL, min(last, epochs_now), dict(row)
    elif last > epochs_now:  # it ran longer than this sweep's budget: taken at the budget's epoch
        at = next((r for r in rows if int(r["epoch"]) == epochs_now), None)
        if at is None:
            return None, f"no epoch row at epoch {epochs_now}, this sweep's budget"
        told, epoch, report = COMPLETE, epochs_now, {**row, **at}
    elif last == epochs_now:
        told, epoch, report = COMPLETE, epochs_now, dict(row)
    else:  # stopped early, or a shorter budget: counted at its fraction of this one
        told, epoch, report = PRUNED, last, dict(row)
    if told == COMPLETE and any(_number(report.get(m)) is None for m in spec.metrics):
        told = FAIL  # a non-finite objective: failed, as for the sweep's own trials
    curve_metric = _curve_metric(spec)
    kept = [r for r in rows if int(r["epoch"]) <= epoch]
    curve = {int(r["epoch"]): float(r[curve_metric]) for r in kept if _number(r.get(curve_metric)) is not None}
    metrics = {k: report.get(k) for k in {*spec.metrics, *(c.metric for c in spec.constraints)} if k in report}
    return (
        WarmTrial(
            source=source,
            trial_id=str(row["trial_id"]),
            params=dict(replay.params),
            state=told,
            epoch=epoch,
            budget_fraction=min(1.0, epoch / epochs_now) if epochs_now else 1.0,
            metrics=metrics,
            curve=curve,
            epoch_rows=kept,
        ),
        "",
    )


# ---- telling -----------------------------------------------------------------------------------
def tell_warm_start(store: Any, spec: Any, trials: Sequence[WarmTrial]) -> int:
    """Tell the trials the study does not hold yet (idempotent); returns how many were told.

    Each becomes a finished Optuna trial (``study.add_trial``) with the new space's
    distributions, its values (COMPLETE), curve, budget fraction and constraint values, and the
    ``warm_start_from`` user attribute naming where it came from.
    """
    import optuna
    from optuna.trial import TrialState

    from search.space import define_by_run
    from search.study import WARM_ATTR, violations

    study = store.study
    held = {t.user_attrs.get(WARM_ATTR) for t in study.get_trials(deepcopy=False)}
    space = define_by_run(spec)
    told = 0
    for trial in trials:
        if trial.key in held:
            continue
        replay = _Replay(trial.params)
        space(replay)
        state = TrialState[trial.state]
        values = [float(trial.metrics[m]) for m in spec.metrics] if state == TrialState.COMPLETE else None
        system_attrs = {}
        if state == TrialState.COMPLETE and spec.constraints:
            system_attrs["constraints"] = violations(spec.constraints, trial.metrics)
        study.add_trial(
            optuna.trial.create_trial(
                state=state,
                values=values,
                params=dict(replay.params),
                distributions=dict(replay.distributions),
                user_attrs={WARM_ATTR: trial.key, "budget_fraction": float(trial.budget_fraction)},
                system_attrs=system_attrs,
                intermediate_values=dict(trial.curve),
            )
        )
        told += 1
    return told


def params_key(params: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """A config's identity among suggestions: its active parameters, compared as text."""
    return tuple(sorted((name, repr(_canonical(value))) for name, value in params.items()))


def _canonical(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    return int(value) if math.isfinite(value) and float(value).is_integer() else float(value)


# ---- the run dir's record of a warm start ------------------------------------------------------
def warm_tables(warm: WarmStart, spec: Any) -> tuple[Any, Any]:
    """The told trials and their epoch rows as the run dir keeps them (``warm_start.parquet`` …)."""
    import json

    from search.rundir import rows_table

    names = [*spec.space, *spec.fixed]
    rows = []
    for t in warm.trials:
        rows.append(
            {
                "trial_id": t.key,
                "source": t.source,
                "source_trial_id": t.trial_id,
                "told_as": t.state,
                "epoch": t.epoch,
                "budget_fraction": t.budget_fraction,
                "params_json": json.dumps(dict(t.params), sort_keys=True),
                **{name: t.params.get(name, spec.fixed.get(name)) for name in names},
                **{k: _number(v) if _number(v) is not None or v is None else v for k, v in t.metrics.items()},
                "metrics_json": json.dumps({k: _number(v) for k, v in t.metrics.items()}),
                "curve_json": json.dumps({str(k): v for k, v in t.curve.items()}),
            }
        )
    first = ["trial_id", "source", "source_trial_id", "told_as", "epoch", "budget_fraction", "params_json", *names]
    epochs = [{**{k: v for k, v in r.items() if k != "trial_id"}, "trial_id": t.key} for t in warm.trials for r in t.epoch_rows]
    return rows_table(rows, first), rows_table(epochs, ["trial_id", "epoch"]) if epochs else None


def recorded_warm_trials(records: RunDir) -> tuple[list[WarmTrial], list[dict[str, Any]]]:
    """The trials a run dir's warm start told (to tell again what a study lacks) and their epoch rows."""
    import json

    trials, epochs = records.read_warm_start()
    if trials is None:
        return [], []
    out = []
    for row in trials.to_pylist():
        out.append(
            WarmTrial(
                source=row["source"],
                trial_id=row["source_trial_id"],
                params=json.loads(row["params_json"]),
                state=row["told_as"],
                epoch=int(row["epoch"]),
                budget_fraction=float(row["budget_fraction"]),
                metrics=json.loads(row["metrics_json"]),
                curve={int(k): float(v) for k, v in json.loads(row.get("curve_json") or "{}").items()},
            )
        )
    return out, epochs.to_pylist() if epochs is not None else []
