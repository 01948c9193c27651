"""The sweep's searcher: Optuna's ask-and-tell behind Ray Tune's public ``Searcher`` interface.

:class:`SweepSearcher` asks the spec's Optuna sampler for each new Ray trial (the spec's
define-by-run space, conditionals included) and tells the study how each trial ended
(:mod:`search.study`: early-stopped trials PRUNED, constraint values, curve points). On top of a
plain ask-and-tell loop it:

- **refuses** a candidate whose costs known before training (the family's static costs: a G2G
  net's MACs, parameters, density, energy) provably break a constraint. It is never trained: it
  is told to the study as PRUNED with its constraint values (so a constrained sampler such as
  TPE puts it with the infeasible trials and steers away), recorded in the run dir as REFUSED
  (``on_refused``), and does not count towards ``num_samples``. After ``refusal_limit`` refusals
  in a row the search ends (:attr:`SweepSearcher.exhausted` says why);
- **never trains what an earlier sweep trained**: trials told by a warm start
  (:meth:`tell_warm`, :mod:`search.warm_start`) are in the study before the first suggestion;
  a suggestion equal to one of them is told FAIL (``trained_by_earlier_sweep``), is not counted
  and not run, and another is asked for;
- **continues** the unfinished trials of an interrupted sweep (:class:`Continuation`): each is
  suggested again under a new Ray trial, with the same Optuna trial and parameters and the
  checkpoint to continue from, before any new trial is asked for;
- **holds each outcome** until the run dir records it (``defer_tells`` and :meth:`commit`): Ray
  Tune tells the searcher before its callbacks see a finished trial, so a driver killed in
  between would leave a study ahead of ``trials.parquet``, the one record of what finished;
- **counts the study's trials** against ``num_samples``, so a resumed or extended sweep ends with
  exactly that many, whatever ran before, and reseeds its sampler by how far the study got
  (a seeded sampler would otherwise propose its first configs again).

It uses only Ray Tune's documented ``Searcher`` methods and Optuna's public ``Study`` and
``BaseStorage`` APIs.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune.search import Searcher

from search.rundir import trial_row
from search.samplers import make_sampler
from search.space import define_by_run, trial_config
from search.static_costs import static_cost_model
from search.spec import Spec
from search.study import (
    CONSTRAINTS_ATTR,
    DUPLICATE_ATTR,
    RAY_TRIAL_ATTR,
    REFUSED_ATTR,
    WARM_ATTR,
    StudyStore,
    classify,
    counts_as_trial,
    refused_id,
    tell_outcome,
    violations,
)
from search.warm_start import params_key, tell_warm_start
from trainables.config import flatten
from trainables.report import REFUSED_STATE

__all__ = ["SweepSearcher", "Continuation", "REFUSAL_LIMIT"]

logger = logging.getLogger(__name__)

#: Refusals in a row after which the search ends: the space holds (almost) nothing feasible.
REFUSAL_LIMIT = 200


@dataclass(frozen=True)
class Continuation:
    """An unfinished trial of an interrupted sweep, to be continued by a resumed one.

    Attributes:
        trial_id: Its id in the run dir (kept by every continuation).
        optuna_number: The number of its (RUNNING) Optuna trial.
        checkpoint: The checkpoint to continue from (path or URI), or None to start over.
        epoch: The epoch that checkpoint holds (0 without one).
    """

    trial_id: str
    optuna_number: int
    checkpoint: str | None = None
    epoch: int = 0


def _directions(modes: Sequence[str]) -> list[str]:
    return ["maximize" if mode == "max" else "minimize" for mode in modes]


class SweepSearcher(Searcher):
    """Multi-objective Optuna search over a spec's define-by-run space.

    Args:
        spec: The validated sweep spec (objectives, constraints, space, sampler, seed).
        study_name: A name unique to this sweep.
        storage: Optuna storage: a storage object (the sweep's journal file), a database URL
            (e.g. ``sqlite:///runs/x/study.db``), or ``None`` for memory.
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
        super().__init__(metric=list(spec.metrics), mode=list(spec.modes))
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if storage is None:
            storage = optuna.storages.InMemoryStorage()
        elif isinstance(storage, str):
            storage = optuna.storages.RDBStorage(storage)
        existing = _trials_in(storage, study_name)
        # A study that already holds trials (a resumed or extended sweep): the seeded sampler is
        # seeded by how far the study got (search.samplers.reopened_seed), so it does not start its
        # sequence again -- still repeatable.
        sampler = make_sampler(spec, held=existing, costs=static_cost_model(spec, data_info))
        self.store = StudyStore.open(study_name, storage, sampler=sampler, directions=_directions(spec.modes))
        self._space = define_by_run(spec)
        self._spec = spec
        self._constraints = list(spec.constraints)
        self._curve_metric = spec.scheduler_metric[0] if spec.scheduler.name == "asha" else spec.metrics[0]
        study = self.store.study
        if self._constraints and CONSTRAINTS_ATTR not in study.user_attrs:
            # Trials store constraint values as one list (see search.study); this names them.
            study.set_user_attr(CONSTRAINTS_ATTR, [c.text for c in self._constraints])
        if study.metric_names is None:  # optuna-dashboard and plots show the names
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names(list(spec.metrics))
        self._num_samples = num_samples
        self._continuations = deque(continuations)
        #: Ray trial id -> the Optuna trial number of each live trial (asked, not yet told).
        self._live: dict[str, int] = {}
        self._completed: set[str] = set()
        #: Ray trial id -> the run dir's trial id, for continued trials.
        self.continues: dict[str, str] = {}
        self._defer = defer_tells
        self._pending: dict[str, tuple[Mapping[str, Any] | None, bool]] = {}
        self._counted: int | None = None
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
        #: The configs earlier sweeps trained (told by a warm start): params key -> where from.
        self._trained_before: dict[tuple[Any, ...], str] = {}
        self._trained_in_a_row = 0
        self._note_warm_trials()

    @property
    def study(self) -> optuna.Study:
        return self.store.study

    # ---- warm starts -----------------------------------------------------------------------------
    def tell_warm(self, trials: Sequence[Any]) -> int:
        """Tell the study the warm start's trials it lacks (:func:`search.warm_start.tell_warm_start`).

        Call before the first suggestion; returns how many were told (0 when a resumed sweep's
        study holds them all already).
        """
        told = tell_warm_start(self.store, self._spec, trials)
        self._note_warm_trials()
        return told

    def _note_warm_trials(self) -> None:
        for trial in self.study.get_trials(deepcopy=False):
            origin = trial.user_attrs.get(WARM_ATTR)
            if origin:
                self._trained_before[params_key(trial.params)] = origin

    def _skip_if_trained_before(self, trial: optuna.Trial) -> bool:
        """Do not run a suggestion an earlier sweep trained: tell it FAIL, marked, uncounted."""
        origin = self._trained_before.get(params_key(trial.params)) if self._trained_before else None
        if origin is None:
            return False
        trial.set_user_attr(DUPLICATE_ATTR, origin)
        self.study.tell(trial, state=TrialState.FAIL)
        self._trained_in_a_row += 1
        self._sampler_repeats = True  # retries are drawn at random (seeded) from now on
        return True

    # ---- asking ----------------------------------------------------------------------------------
    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if trial_id in self._live:
            return dict(self._params(self._live[trial_id]))
        if self._continuations:
            return self._continue(trial_id, self._continuations.popleft())
        if self._num_samples is not None and self.counted_trials() >= self._num_samples:
            return Searcher.FINISHED
        if self.exhausted is not None:
            return Searcher.FINISHED
        trial = self._ask(self.study.sampler)
        while self._refuse_if_infeasible(trial) or self._skip_if_trained_before(trial):
            if self._refused_in_a_row >= self._refusal_limit:
                self.exhausted = self._exhausted_message()
                return Searcher.FINISHED
            if self._trained_in_a_row >= self._refusal_limit:
                self.exhausted = f"{self._trained_in_a_row} suggestions in a row were configs an earlier sweep trained (--warm-start): the space holds no new config"
                return Searcher.FINISHED
            # Samplers that learn from completed trials only (GP, NSGA-II) would propose a refused
            # point again and again: once one does, retries are drawn at random (seeded) instead.
            trial = self._ask(self._retry_sampler if self._sampler_repeats else self.study.sampler)
        self._refused_in_a_row = 0
        self._trained_in_a_row = 0
        trial.set_user_attr(RAY_TRIAL_ATTR, trial_id)
        self._live[trial_id] = trial.number
        if self._counted is not None:
            self._counted += 1
        return dict(trial.params)

    def _ask(self, sampler: optuna.samplers.BaseSampler) -> optuna.Trial:
        """A new Optuna trial with every active parameter of the space suggested by ``sampler``."""
        study = self.study
        own, study.sampler = study.sampler, sampler
        try:
            trial = study.ask()
            self._space(trial)
        finally:
            study.sampler = own
        return trial

    def _params(self, number: int) -> dict[str, Any]:
        return self.store.storage.get_trial(self.store.trial_id(number)).params

    def params_of(self, trial_id: str) -> dict[str, Any]:
        """The parameters suggested for a live Ray trial."""
        return dict(self._params(self._live[trial_id]))

    def optuna_number(self, trial_id: str) -> int | None:
        """The Optuna trial number of a live Ray trial (None once told, or never asked)."""
        return self._live.get(trial_id)

    def _refuse_if_infeasible(self, trial: optuna.Trial) -> bool:
        """Refuse the candidate just asked for if its static costs break a constraint."""
        if self._data_info is None:
            return False
        config = trial_config(self._spec, trial.params)
        try:
            costs = self._spec.entry.static_costs_of(config, self._data_info)
        except ValueError:
            return False  # a config the family refuses: the trial says why
        broken = self._spec.broken_before_training(costs)
        if not broken:
            return False
        key = tuple(sorted(trial.params.items(), key=lambda item: item[0]))
        self._sampler_repeats = self._sampler_repeats or key in self._refused_keys
        self._refused_keys.add(key)
        number = trial.number
        values = {metric: cost.value for metric, cost in costs.items()}
        reason = "refused before training: " + ", ".join(f"{c.metric} {values[c.metric]:.6g} breaks {c.text}" for c in broken)
        if self.on_refused is not None:
            flat = flatten(config)
            params = {name: flat.get(name) for name in [*self._spec.space, *self._spec.fixed]}
            self.on_refused(
                trial_row(None, trial_id=refused_id(number), state=REFUSED_STATE, error=reason, optuna_trial=number, params=params, report=values, metric_keys=list(values))
            )
        self.store.set_constraints(number, violations(self._constraints, values))
        trial.set_user_attr(RAY_TRIAL_ATTR, refused_id(number))
        trial.set_user_attr(REFUSED_ATTR, reason)
        self.study.tell(trial, state=TrialState.PRUNED)
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
        self._live[trial_id] = cont.optuna_number
        self.continues[trial_id] = cont.trial_id
        config: dict[str, Any] = dict(self._params(cont.optuna_number))
        config["runtime"] = {"continues": cont.trial_id, "continue_from": cont.checkpoint}
        return config

    # ---- telling ---------------------------------------------------------------------------------
    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """Store the trial's learning curve in the study: one intermediate value per epoch.

        The value is the scheduler's metric (ASHA), else the first objective; optuna-dashboard
        and any pruner read it. A continued trial overwrites the epochs it runs again.
        """
        if trial_id not in self._completed:
            self._store_curve_point(trial_id, result)

    def _store_curve_point(self, trial_id: str, result: Mapping[str, Any] | None) -> None:
        number = self._live.get(trial_id)
        if number is None or not result:
            return
        value, step = result.get(self._curve_metric), result.get("epoch")
        try:
            value, step = float(value), int(step)
        except (TypeError, ValueError):
            return
        if math.isfinite(value):  # a diverged epoch is recorded in the run dir's epoch rows already
            self.store.set_curve_point(number, step, value)

    def worth_continuing(self, trial: Any, epoch: int, result: Mapping[str, Any]) -> bool | None:
        """The ``cost_aware`` sampler's verdict on a live trial at a rung (MO-ASHA's ``judge``).

        ``True``/``False``: its expected hypervolume improvement per remaining epoch is at least
        / below the best new candidate's per epoch
        (:meth:`~search.costaware.CostAwareSampler.worth_continuing`). ``None`` where the sampler
        is another, or cannot model the study (yet): the scheduler ranks instead.
        """
        from search.costaware import CostAwareSampler

        sampler = self.study.sampler
        trial_id = getattr(trial, "trial_id", trial)
        number = self._live.get(trial_id)
        if not isinstance(sampler, CostAwareSampler) or number is None or trial_id in self._completed:
            return None
        if sampler.learnt_objective is None or self._spec.metrics[sampler.learnt_objective] != self._curve_metric:
            return None  # the stored curves are not the learnt objective's
        self._store_curve_point(trial_id, result)  # Tune tells the scheduler before the searcher
        return sampler.worth_continuing(self.study, number, int(epoch), full=self._spec.budget.epochs)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self._completed:
            return
        if trial_id not in self._live:  # e.g. a trial the searcher never suggested
            logger.warning("no Optuna trial for Ray trial %s; result not told", trial_id)
            return
        # Ray Tune passes a trial's last result here, not to on_trial_result.
        self._store_curve_point(trial_id, result)
        self._completed.add(trial_id)
        self._pending[trial_id] = (dict(result) if result else None, error)
        if not self._defer:
            self.commit(trial_id)

    def commit(self, trial_id: str) -> None:
        """Tell Optuna the held outcome of ``trial_id`` (a no-op when none is held)."""
        held = self._pending.pop(trial_id, None)
        if held is None:
            return
        number = self._live.pop(trial_id)  # told: nothing asks for it again; the map stays as large as the running set
        if self.store.state(number).is_finished():
            return  # told by an earlier driver (e.g. when reconciling on resume)
        tell_outcome(self.store, number, self.metric, self._constraints, *held)

    def discard(self, trial_id: str) -> None:
        """Forget a held outcome: the trial did not really end (the sweep is being stopped)."""
        self._pending.pop(trial_id, None)

    def counted_trials(self) -> int:
        """Trials of the study that belong to this sweep (orphans and candidates refused before training excluded).

        Read from the study once, then counted on as this searcher asks for trials (the only
        one asking in this sweep), so a suggestion does not scan every trial.
        """
        if self._counted is None:
            self._counted = sum(counts_as_trial(t) for t in self.study.get_trials(deepcopy=False))
        return self._counted

    def classify(self, result: Mapping[str, Any] | None, error: bool) -> tuple[TrialState, list[float] | None]:
        """The Optuna state (and values) a finished Ray trial maps to."""
        return classify(self.metric, result, error)

    # ---- Ray Tune's snapshots ----------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """What this searcher holds besides the study: the live trials and the refusal tally.

        The study itself is persisted by its storage, so a snapshot stays as small as the set of
        running trials. Outcomes held for :meth:`commit` are not part of it: a trial whose
        outcome was held is unfinished in the run dir's record, and a resume continues it.
        """
        return {
            "study_name": self.study.study_name,
            "live": dict(self._live),
            "completed": sorted(self._completed),
            "continues": dict(self.continues),
            "refused": dict(self.refused),
            "closest": dict(self._closest),
            "refused_in_a_row": self._refused_in_a_row,
            "exhausted": self.exhausted,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        if state.get("study_name") != self.study.study_name:
            raise ValueError(f"this snapshot is of the study {state.get('study_name')!r}, not {self.study.study_name!r}")
        self._live = {str(k): int(v) for k, v in state["live"].items()}
        self._completed = set(state["completed"])
        self.continues = dict(state["continues"])
        self.refused = dict(state["refused"])
        self._closest = dict(state["closest"])
        self._refused_in_a_row = int(state["refused_in_a_row"])
        self.exhausted = state["exhausted"]
        self._counted = None

    def save(self, checkpoint_path: str) -> None:
        """Write :meth:`get_state` as JSON (Ray Tune calls this periodically)."""
        with open(checkpoint_path, "w") as out:
            json.dump(self.get_state(), out)

    def restore(self, checkpoint_path: str) -> None:
        """Read a snapshot :meth:`save` wrote, into a searcher built on the same study."""
        with open(checkpoint_path) as f:
            self.set_state(json.load(f))


def _trials_in(storage: Any, study_name: str) -> int:
    """How many trials the storage's study of that name holds (0 when there is none)."""
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        return 0
    return len(storage.get_all_trials(study_id, deepcopy=False))
