"""Ray Tune's ``OptunaSearch``, fixed for multi-objective sweeps with early stopping and resume.

The stock integration has pitfalls this subclass removes:

1. A trial a scheduler stopped early (ASHA) reaches Optuna as COMPLETE with partial-budget
   values, which misleads the sampler and any naive Pareto front. Here it is told PRUNED.
2. Spec constraints never reach Optuna. Here their values are stored on the Optuna trial
   before ``tell`` (as the ``constraints`` list that Optuna's samplers, ``study.best_trials``
   and optuna-dashboard all read), so constrained samplers avoid infeasible regions.
6. Multi-objective studies get no learning curves from the stock integration. Here every
   epoch's value of the first objective (or ASHA's metric) is stored as an intermediate value.
3. The study name is a constant. Here it is unique per sweep and the study is persisted
   (SQLite in the run dir), so ``optuna-dashboard`` can watch a live sweep.
4. Ray Tune tells the searcher before its callbacks see a finished trial, so a driver killed
   in between leaves a study ahead of the run dir's record. Here the tell can wait
   (``defer_tells``) until the record is on disk (:meth:`commit`): the run dir's
   ``trials.parquet`` is the one record of what finished, and the study never runs ahead of it.
5. A resumed sweep continues its unfinished trials (:class:`Continuation`): each is suggested
   again under a new Ray trial, with the same Optuna trial and parameters and the checkpoint to
   continue from, before any new trial is asked for.
"""

from __future__ import annotations

import logging
import math
import sys
import warnings
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from search.samplers import make_sampler
from search.space import define_by_run
from search.spec import Spec
from trainables.report import is_full_budget

__all__ = ["ParetoOptunaSearch", "Continuation", "CONSTRAINTS_ATTR", "ORPHAN_ATTR", "RAY_TRIAL_ATTR", "classify", "tell_outcome"]

logger = logging.getLogger(__name__)

#: User attribute of Optuna trials a killed driver left behind (sweeps of earlier versions).
ORPHAN_ATTR = "orphaned_by_driver_restart"
#: Study user attribute: the spec's constraints, in the order of each trial's constraint values.
CONSTRAINTS_ATTR = "constraints"
#: User attribute naming the Ray trial (the run dir's ``trial_id``) of an Optuna trial.
RAY_TRIAL_ATTR = "ray_trial_id"


@dataclass(frozen=True)
class Continuation:
    """An unfinished trial of an interrupted sweep, to be continued by a resumed one.

    Attributes:
        trial_id: Its id in the run dir (kept by every continuation).
        optuna_trial_id: The storage id of its (RUNNING) Optuna trial.
        checkpoint: The checkpoint to continue from (path or URI), or None to start over.
        epoch: The epoch that checkpoint holds (0 without one).
    """

    trial_id: str
    optuna_trial_id: int
    checkpoint: str | None = None
    epoch: int = 0


def classify(metrics: Sequence[str], result: Mapping[str, Any] | None, error: bool) -> tuple[TrialState, list[float] | None]:
    """The Optuna state (and values) of a finished trial given its last result."""
    if error or not result:
        return TrialState.FAIL, None
    if not is_full_budget(result.get("budget_fraction", 1.0)):
        return TrialState.PRUNED, None
    values = [result.get(metric) for metric in metrics]
    if any(v is None or not math.isfinite(float(v)) for v in values):
        return TrialState.FAIL, None
    return TrialState.COMPLETE, [float(v) for v in values]


def _violation(constraint: Any, result: Mapping[str, Any]) -> float:
    """A constraint's violation (Optuna's sign: > 0 infeasible) in a result.

    A missing or non-finite value cannot be shown to satisfy the constraint: it is infeasible,
    with the largest finite violation (JSON readers of the study, the dashboard's among them,
    reject ``inf``).
    """
    try:
        value = float(result.get(constraint.metric))
    except (TypeError, ValueError):
        value = math.nan
    violation = float(constraint.violation(value)) if math.isfinite(value) else math.nan
    return violation if math.isfinite(violation) else sys.float_info.max


def tell_outcome(
    study: optuna.Study,
    optuna_trial_id: int,
    metrics: Sequence[str],
    constraints: Sequence[Any],
    result: Mapping[str, Any] | None,
    error: bool,
) -> TrialState:
    """Tell ``study`` how one trial ended: state, values, budget and constraint values.

    ``result`` is the trial's last report (or its row in ``trials.parquet``); ``constraints``
    are the spec's (``metric``, ``violation``).
    """
    state, values = classify(metrics, result, error)
    trial = optuna.Trial(study, optuna_trial_id)
    if result:
        budget = result.get("budget_fraction")
        if budget is not None and math.isfinite(float(budget)):
            trial.set_user_attr("budget_fraction", float(budget))
        if state == TrialState.COMPLETE and constraints:
            # One list under "constraints" (spec order), not ``set_constraint``'s "constraints:<name>"
            # keys: optuna-dashboard 0.21 reads only the list, and Optuna 5 reads the list too (as
            # constraints "0", "1", ...: feasibility, TPE/NSGA-II/GP, best_trials). Writing both
            # forms would make Optuna count every constraint twice.
            # The names are the study's user attribute CONSTRAINTS_ATTR, in the same order.
            study._storage.set_trial_system_attr(optuna_trial_id, "constraints", [_violation(c, result) for c in constraints])
    study.tell(trial, values, state=state)
    return state


class ParetoOptunaSearch(OptunaSearch):
    """Multi-objective Optuna search over a spec's define-by-run space.

    Args:
        spec: The validated sweep spec (objectives, constraints, space, sampler, seed).
        study_name: A name unique to this sweep.
        storage: Optuna storage URL (e.g. ``sqlite:///runs/x/study.db``) or ``None`` for memory.
        num_samples: The sweep's total: no trial is asked for once the study counts this many.
        continuations: Unfinished trials of an interrupted sweep, suggested first.
        defer_tells: Hold each outcome until :meth:`commit` (the results recorder calls it once
            the trial's row is on disk); otherwise tell at once.
    """

    def __init__(
        self,
        spec: Spec,
        study_name: str,
        storage: str | None = None,
        num_samples: int | None = None,
        continuations: Sequence[Continuation] = (),
        defer_tells: bool = False,
    ) -> None:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        ot_storage = optuna.storages.RDBStorage(storage) if storage else None
        super().__init__(
            space=define_by_run(spec),
            metric=spec.metrics,
            mode=spec.modes,
            sampler=make_sampler(spec),
            study_name=study_name,
            storage=ot_storage,
        )
        self._constraints = list(spec.constraints)
        self._curve_metric = spec.scheduler_metric[0] if spec.scheduler.name == "asha" else spec.metrics[0]
        if self._constraints and CONSTRAINTS_ATTR not in self._ot_study.user_attrs:
            # Trials store constraint values as one list (see tell_outcome); this names them.
            self._ot_study.set_user_attr(CONSTRAINTS_ATTR, [c.text for c in self._constraints])
        if self._ot_study.metric_names is None:  # optuna-dashboard and plots show the names
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                self._ot_study.set_metric_names(list(spec.metrics))
        # The sweep's total counts every trial of the (persisted) study, so a resumed or
        # extended sweep ends with exactly ``num_samples`` trials, whatever ran before.
        self._num_samples = num_samples
        self._continuations = deque(continuations)
        #: Ray trial id -> the run dir's trial id, for continued trials.
        self.continues: dict[str, str] = {}
        self._defer = defer_tells
        self._pending: dict[str, tuple[Mapping[str, Any] | None, bool]] = {}
        self._counted: int | None = None

    @property
    def study(self) -> optuna.Study:
        return self._ot_study

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if trial_id not in self._ot_trials and self._continuations:
            return self._continue(trial_id, self._continuations.popleft())
        if self._num_samples is not None and trial_id not in self._ot_trials and self.counted_trials() >= self._num_samples:
            return Searcher.FINISHED
        config = super().suggest(trial_id)
        self._ot_trials[trial_id].set_user_attr(RAY_TRIAL_ATTR, trial_id)
        if self._counted is not None:
            self._counted += 1
        return config

    def _continue(self, trial_id: str, cont: Continuation) -> dict[str, Any]:
        """Suggest an unfinished trial again: same Optuna trial, same parameters, its checkpoint."""
        self._ot_trials[trial_id] = optuna.Trial(self._ot_study, cont.optuna_trial_id)
        config = super().suggest(trial_id)  # the trial's stored parameters (define-by-run replays them)
        self.continues[trial_id] = cont.trial_id
        config.setdefault("runtime", {}).update(continues=cont.trial_id, continue_from=cont.checkpoint)
        return config

    def on_trial_result(self, trial_id: str, result: Mapping[str, Any]) -> None:
        """Store the trial's learning curve in the study: one intermediate value per epoch.

        Optuna's ``Trial.report`` refuses multi-objective studies, so the value (the
        scheduler's metric, else the first objective) goes to the storage directly, where
        optuna-dashboard and any pruner read it. A continued trial overwrites the epochs it
        runs again.
        """
        if trial_id not in self._completed_trials:
            self._store_curve_point(trial_id, result)

    def _store_curve_point(self, trial_id: str, result: Mapping[str, Any] | None) -> None:
        ot_trial = self._ot_trials.get(trial_id)
        if ot_trial is None or not result:
            return
        value, step = result.get(self._curve_metric), result.get("epoch")
        try:
            value, step = float(value), int(step)
        except (TypeError, ValueError):
            return
        if not math.isfinite(value):
            return  # Optuna stores NaN, but a diverged epoch is recorded in epochs.parquet already
        try:
            self._ot_study._storage.set_trial_intermediate_value(ot_trial._trial_id, step, value)
        except RuntimeError:
            pass  # the trial is already finished in the study (told by an earlier driver)

    def on_trial_complete(self, trial_id: str, result: Mapping[str, Any] | None = None, error: bool = False) -> None:
        if trial_id in self._completed_trials:
            return
        if trial_id not in self._ot_trials:  # e.g. a trial the searcher never suggested
            logger.warning("no Optuna trial for Ray trial %s; result not told", trial_id)
            return
        # Ray Tune passes a trial's last result here, not to on_trial_result.
        self._store_curve_point(trial_id, result)
        self._completed_trials.add(trial_id)
        self._pending[trial_id] = (dict(result) if result else None, error)
        if not self._defer:
            self.commit(trial_id)

    def commit(self, trial_id: str) -> None:
        """Tell Optuna the held outcome of ``trial_id`` (a no-op when none is held)."""
        held = self._pending.pop(trial_id, None)
        if held is None:
            return
        ot_trial = self._ot_trials[trial_id]
        if self._storage_state(ot_trial).is_finished():
            return  # told by an earlier driver (e.g. when reconciling on resume)
        tell_outcome(self._ot_study, ot_trial._trial_id, self.metric, self._constraints, *held)
        # Told: nothing asks for this trial again, and the map stays as large as the running set.
        self._ot_trials.pop(trial_id, None)

    def save(self, checkpoint_path: str) -> None:
        """Ray Tune's periodic snapshot of the searcher: a stub, by design.

        The stock integration pickles the whole study, its cache of every trial included, so
        each snapshot would cost the driver time in proportion to the trials so far. This tool
        never restores a searcher from Tune's snapshot (``--resume`` rebuilds it from the run
        dir's record and the study), so the snapshot names the study and holds nothing else.
        """
        import pickle

        with open(checkpoint_path, "wb") as out:
            pickle.dump({"study_name": self._study_name, "restore": "python -m search.run SPEC --resume"}, out)

    def restore(self, checkpoint_path: str) -> None:
        raise RuntimeError("a sweep resumes from its run dir (python -m search.run SPEC --resume), not from Ray Tune's snapshot")

    def discard(self, trial_id: str) -> None:
        """Forget a held outcome: the trial did not really end (the sweep is being stopped)."""
        self._pending.pop(trial_id, None)

    def counted_trials(self) -> int:
        """Trials of the study that belong to this sweep (orphans of earlier versions excluded).

        Read from the study once, then counted on as this searcher asks for trials (the only
        one asking in this sweep), so a suggestion does not scan every trial.
        """
        if self._counted is None:
            self._counted = sum(not t.user_attrs.get(ORPHAN_ATTR) for t in self._ot_study.get_trials(deepcopy=False))
        return self._counted

    def _storage_state(self, ot_trial: optuna.Trial) -> TrialState:
        return self._ot_study._storage.get_trial(ot_trial._trial_id).state

    def classify(self, result: Mapping[str, Any] | None, error: bool) -> tuple[TrialState, list[float] | None]:
        """The Optuna state (and values) a finished Ray trial maps to."""
        return classify(self.metric, result, error)
