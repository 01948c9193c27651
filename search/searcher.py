"""Ray Tune's ``OptunaSearch``, fixed for multi-objective sweeps with early stopping.

The stock integration has three pitfalls this subclass removes:

1. A trial a scheduler stopped early (ASHA) reaches Optuna as COMPLETE with partial-budget
   values, which misleads the sampler and any naive Pareto front. Here it is told PRUNED.
2. Spec constraints never reach Optuna. Here each is set on the Optuna trial
   (``trial.set_constraint``) before ``tell``, so constrained samplers avoid infeasible regions
   and ``study.best_trials`` respects them.
3. The study name is a constant. Here it is unique per sweep and the study is persisted
   (SQLite in the run dir), so ``optuna-dashboard`` can watch a live sweep.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from search.samplers import make_sampler
from search.space import define_by_run
from search.spec import Spec
from trainables.report import is_full_budget

__all__ = ["ParetoOptunaSearch", "ORPHAN_ATTR"]

logger = logging.getLogger(__name__)

#: User attribute of Optuna trials a killed driver left behind (told FAIL on resume).
ORPHAN_ATTR = "orphaned_by_driver_restart"


class ParetoOptunaSearch(OptunaSearch):
    """Multi-objective Optuna search over a spec's define-by-run space.

    Args:
        spec: The validated sweep spec (objectives, constraints, space, sampler, seed).
        study_name: A name unique to this sweep.
        storage: Optuna storage URL (e.g. ``sqlite:///runs/x/study.db``) or ``None`` for memory.
    """

    def __init__(self, spec: Spec, study_name: str, storage: str | None = None, num_samples: int | None = None) -> None:
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
        # The sweep's total counts every trial of the (persisted) study, so a resumed or
        # extended sweep ends with exactly ``num_samples`` trials, whatever ran before.
        self._num_samples = num_samples

    @property
    def study(self) -> optuna.Study:
        return self._ot_study

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self._num_samples is not None and trial_id not in self._ot_trials and self.counted_trials() >= self._num_samples:
            return Searcher.FINISHED
        config = super().suggest(trial_id)
        self._ot_trials[trial_id].set_user_attr("ray_trial_id", trial_id)
        return config

    def on_trial_complete(self, trial_id: str, result: Mapping[str, Any] | None = None, error: bool = False) -> None:
        if trial_id in self._completed_trials:
            return
        ot_trial = self._ot_trials.get(trial_id)
        if ot_trial is None:  # e.g. a trial created before a restore from a lost searcher state
            logger.warning("no Optuna trial for Ray trial %s; result not told", trial_id)
            return
        if self._storage_state(ot_trial).is_finished():
            # Told by a driver that was killed after telling but before Tune's snapshot.
            self._completed_trials.add(trial_id)
            return
        state, values = self.classify(result, error)
        if result:
            budget = result.get("budget_fraction")
            if budget is not None:
                ot_trial.set_user_attr("budget_fraction", float(budget))
            if state == TrialState.COMPLETE:
                for constraint in self._constraints:
                    ot_trial.set_constraint(constraint.text, constraint.violation(float(result[constraint.metric])))
        self._ot_study.tell(ot_trial, values, state=state)
        self._completed_trials.add(trial_id)

    def counted_trials(self) -> int:
        """Trials of the study that belong to this sweep (orphans of a killed driver excluded)."""
        return sum(not t.user_attrs.get(ORPHAN_ATTR) for t in self._ot_study.get_trials(deepcopy=False))

    def _storage_state(self, ot_trial: optuna.Trial) -> TrialState:
        return self._ot_study._storage.get_trial(ot_trial._trial_id).state

    def restore(self, checkpoint_path: str) -> None:
        """Restore Tune's snapshot of the searcher, then reconcile it with the persisted study.

        A killed driver may have asked Optuna for trials after Tune's last snapshot; Tune
        does not know those trials and will never finish them, so they are told FAIL and
        marked as orphans (not counted, never left RUNNING). Trials the snapshot knows but
        that were told after it are marked completed, so they are not told twice.
        """
        super().restore(checkpoint_path)
        known = {t.number for t in self._ot_trials.values()}
        for trial in self._ot_study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
            if trial.number not in known:
                self._ot_study._storage.set_trial_user_attr(trial._trial_id, ORPHAN_ATTR, True)
                self._ot_study.tell(trial.number, state=TrialState.FAIL)
        for trial_id, ot_trial in self._ot_trials.items():
            if self._storage_state(ot_trial).is_finished():
                self._completed_trials.add(trial_id)

    def classify(self, result: Mapping[str, Any] | None, error: bool) -> tuple[TrialState, list[float] | None]:
        """The Optuna state (and values) a finished Ray trial maps to."""
        if error or not result:
            return TrialState.FAIL, None
        if not is_full_budget(result.get("budget_fraction", 1.0)):
            return TrialState.PRUNED, None
        values = [result.get(metric) for metric in self.metric]
        if any(v is None or not math.isfinite(float(v)) for v in values):
            return TrialState.FAIL, None
        return TrialState.COMPLETE, [float(v) for v in values]
