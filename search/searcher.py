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
7. Stock searchers learn every cost from trained trials. Here a candidate whose costs known
   before training (the family's static costs: a G2G net's MACs, parameters, density, energy)
   provably break a constraint is never trained: it is told to the study as PRUNED with its
   constraint violations (so a constrained sampler such as TPE puts it with the infeasible
   trials and steers away), recorded in the run dir as REFUSED (``on_refused``), and does not
   count towards ``num_samples``. After ``refusal_limit`` refusals in a row the search ends
   (:attr:`ParetoOptunaSearch.exhausted` says why).
"""

from __future__ import annotations

import logging
import math
import sys
import warnings
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from search.samplers import make_sampler
from search.space import cost_model, define_by_run, trial_config
from search.spec import Spec
from trainables.config import flatten
from trainables.report import REFUSED_STATE, is_full_budget

__all__ = [
    "ParetoOptunaSearch",
    "Continuation",
    "CONSTRAINTS_ATTR",
    "ORPHAN_ATTR",
    "RAY_TRIAL_ATTR",
    "REFUSAL_LIMIT",
    "REFUSED_ATTR",
    "classify",
    "counts_as_trial",
    "refused_id",
    "tell_outcome",
]

logger = logging.getLogger(__name__)

#: User attribute of Optuna trials a killed driver left behind (sweeps of earlier versions).
ORPHAN_ATTR = "orphaned_by_driver_restart"
#: Study user attribute: the spec's constraints, in the order of each trial's constraint values.
CONSTRAINTS_ATTR = "constraints"
#: User attribute naming the Ray trial (the run dir's ``trial_id``) of an Optuna trial.
RAY_TRIAL_ATTR = "ray_trial_id"
#: User attribute of a candidate refused before training: why (the constraints it breaks).
REFUSED_ATTR = "refused_before_training"
#: Refusals in a row after which the search ends: the space holds (almost) nothing feasible.
REFUSAL_LIMIT = 200


def counts_as_trial(trial: Any) -> bool:
    """Whether an Optuna trial of the study is one of the sweep's ``num_samples`` trials.

    Not an orphan of an earlier version's killed driver, nor a candidate refused before training.
    """
    return not (trial.user_attrs.get(ORPHAN_ATTR) or trial.user_attrs.get(REFUSED_ATTR))


def refused_id(optuna_number: int) -> str:
    """The run dir's ``trial_id`` of a candidate refused before training."""
    return f"refused-{optuna_number}"


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
        storage: Optuna storage: a storage object (the sweep's journal file), an URL (e.g.
            ``sqlite:///runs/x/study.db``), or ``None`` for memory.
        num_samples: The sweep's total: no trial is asked for once the study counts this many.
        continuations: Unfinished trials of an interrupted sweep, suggested first.
        defer_tells: Hold each outcome until :meth:`commit` (the results recorder calls it once
            the trial's row is on disk); otherwise tell at once.
        data_info: The data's :class:`~trainables.data.DataInfo`: with it, a candidate whose
            static costs provably break a constraint is refused before training.
        on_refused: Called with a refused candidate's record row (before the study is told).
        refusal_limit: Refusals in a row after which no trial is asked for any more.
    """

    def __init__(
        self,
        spec: Spec,
        study_name: str,
        storage: str | optuna.storages.BaseStorage | None = None,
        num_samples: int | None = None,
        continuations: Sequence[Continuation] = (),
        defer_tells: bool = False,
        data_info: Any = None,
        on_refused: Callable[[dict[str, Any]], None] | None = None,
        refusal_limit: int = REFUSAL_LIMIT,
    ) -> None:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        ot_storage = optuna.storages.RDBStorage(storage) if isinstance(storage, str) else storage
        super().__init__(
            space=define_by_run(spec),
            metric=spec.metrics,
            mode=spec.modes,
            sampler=make_sampler(spec, costs=cost_model(spec, data_info)),
            study_name=study_name,
            storage=ot_storage,
        )
        # A study that already holds trials (a resumed or extended sweep): the seeded sampler
        # would start its sequence again and propose the configs it proposed first (its random
        # start-up, at least), so it is reseeded by how far the study got -- still repeatable.
        existing = len(self._ot_study._storage.get_all_trials(self._ot_study._study_id, deepcopy=False))
        if existing:
            self._ot_study.sampler = make_sampler(spec, seed=spec.run.seed + existing, costs=cost_model(spec, data_info))
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
        self._spec = spec
        # Costs are checked before training only when some constraint is on a static metric.
        static = spec.entry.static_costs is not None and data_info is not None and bool(spec.constraints)
        self._data_info = data_info if static else None
        #: Called with each refused candidate's record row (the results recorder's ``add_refused``).
        self.on_refused = on_refused
        self._refusal_limit = refusal_limit
        self._refused_in_a_row = 0
        self._refused_keys: set[tuple[Any, ...]] = set()
        self._sampler_repeats = False  # the sampler proposed a refused candidate again
        self._retry_sampler = optuna.samplers.RandomSampler(seed=spec.run.seed + 7919 + existing)
        #: Refused candidates, per broken constraint, with the best value the space reached.
        self.refused: dict[str, int] = {}
        self._closest: dict[str, float] = {}
        #: Why the search ended early (every candidate refused), or None.
        self.exhausted: str | None = None

    @property
    def study(self) -> optuna.Study:
        return self._ot_study

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if trial_id not in self._ot_trials and self._continuations:
            return self._continue(trial_id, self._continuations.popleft())
        if self._num_samples is not None and trial_id not in self._ot_trials and self.counted_trials() >= self._num_samples:
            return Searcher.FINISHED
        if self.exhausted is not None:
            return Searcher.FINISHED
        config = super().suggest(trial_id)
        while self._refuse_if_infeasible(trial_id):
            if self._refused_in_a_row >= self._refusal_limit:
                self.exhausted = self._exhausted_message()
                return Searcher.FINISHED
            config = self._ask_again(trial_id)
        self._refused_in_a_row = 0
        self._ot_trials[trial_id].set_user_attr(RAY_TRIAL_ATTR, trial_id)
        if self._counted is not None:
            self._counted += 1
        return config

    def _ask_again(self, trial_id: str) -> dict[str, Any]:
        """The next candidate after a refusal: the sampler's, or a random one once it repeats itself.

        TPE reads refused candidates (PRUNED, with their violations) and moves away; samplers that
        learn from completed trials only (GP, NSGA-II) would propose the same refused point again
        and again, so once a sampler proposes a candidate it was already refused, retries are drawn
        at random (seeded) instead.
        """
        if not self._sampler_repeats:
            return super().suggest(trial_id)
        sampler, self._ot_study.sampler = self._ot_study.sampler, self._retry_sampler
        try:
            return super().suggest(trial_id)
        finally:
            self._ot_study.sampler = sampler

    def _refuse_if_infeasible(self, trial_id: str) -> bool:
        """Refuse the candidate just asked for ``trial_id`` if its static costs break a constraint."""
        if self._data_info is None:
            return False
        ot_trial = self._ot_trials[trial_id]
        config = trial_config(self._spec, ot_trial.params)
        try:
            costs = self._spec.entry.costs_before_training(config, self._data_info)
        except ValueError:
            return False  # a config the family refuses: the trial says why, as before
        broken = self._spec.broken_before_training(costs)
        if not broken:
            return False
        key = tuple(sorted(ot_trial.params.items(), key=lambda item: item[0]))
        self._sampler_repeats = self._sampler_repeats or key in self._refused_keys
        self._refused_keys.add(key)
        self._ot_trials.pop(trial_id)
        number = ot_trial.number
        values = {metric: cost.value for metric, cost in costs.items()}
        reason = "refused before training: " + ", ".join(f"{c.metric} {values[c.metric]:.6g} breaks {c.text}" for c in broken)
        if self.on_refused is not None:
            flat = flatten(config)
            self.on_refused(
                {
                    "trial_id": refused_id(number),
                    "state": REFUSED_STATE,
                    "error": reason,
                    "optuna_trial": number,
                    **{name: flat.get(name) for name in [*self._spec.space, *self._spec.fixed]},
                    **values,
                }
            )
        # Violations of the constraints on static metrics; those on learnt metrics are unknown (0).
        violations = [float(c.violation(values[c.metric])) if c.metric in values else 0.0 for c in self._constraints]
        storage = self._ot_study._storage
        storage.set_trial_system_attr(ot_trial._trial_id, "constraints", violations)
        storage.set_trial_user_attr(ot_trial._trial_id, RAY_TRIAL_ATTR, refused_id(number))
        storage.set_trial_user_attr(ot_trial._trial_id, REFUSED_ATTR, reason)
        self._ot_study.tell(ot_trial, state=TrialState.PRUNED)
        self._refused_in_a_row += 1
        for c in broken:
            self.refused[c.text] = self.refused.get(c.text, 0) + 1
        for c in self._constraints:
            if c.metric in values:  # the best value of each constrained static metric seen so far
                best = self._closest.get(c.text, values[c.metric])
                self._closest[c.text] = min(best, values[c.metric]) if c.op == "<=" else max(best, values[c.metric])
        return True

    def _exhausted_message(self) -> str:
        text = max(self.refused, key=self.refused.get)
        constraint = next(c for c in self._constraints if c.text == text)
        best = "lowest" if constraint.op == "<=" else "highest"
        return (
            f"{self._refused_in_a_row} candidates in a row were refused before training: their costs break {text} "
            f"(the {best} {constraint.metric} sampled is {self._closest[text]:.6g}); widen the constraint or change the space"
        )

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
        """Trials of the study that belong to this sweep (orphans of earlier versions and candidates refused before training excluded).

        Read from the study once, then counted on as this searcher asks for trials (the only
        one asking in this sweep), so a suggestion does not scan every trial.
        """
        if self._counted is None:
            self._counted = sum(counts_as_trial(t) for t in self._ot_study.get_trials(deepcopy=False))
        return self._counted

    def _storage_state(self, ot_trial: optuna.Trial) -> TrialState:
        return self._ot_study._storage.get_trial(ot_trial._trial_id).state

    def classify(self, result: Mapping[str, Any] | None, error: bool) -> tuple[TrialState, list[float] | None]:
        """The Optuna state (and values) a finished Ray trial maps to."""
        return classify(self.metric, result, error)
