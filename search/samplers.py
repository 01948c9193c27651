"""Seeded Optuna samplers, as a table: sampler name → factory.

The spec's allowed ``sampler.name`` values are the keys of :data:`SAMPLERS`. Optuna is
imported when a sampler is built, not when this module is, so validating a spec stays cheap.

Constraints reach the samplers as each trial's ``constraints`` list (the form Optuna's
``constraints_func`` writes), which the searcher stores before telling a result, so every
constrained sampler (TPE, NSGA-II/III, GP) steers away from infeasible regions;
:func:`search.study.is_feasible_trial` reads them back, the one feasibility predicate for an Optuna trial.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

__all__ = [
    "SAMPLERS",
    "RecipeSampler",
    "TPE_MAX_HISTORY",
    "SamplerFactory",
    "SweepGridSampler",
    "CONTINUES_FROM_STUDY",
    "SweepTPESampler",
    "TPEHistory",
    "TrialSelection",
    "make_sampler",
    "reopened_seed",
]

#: ``factory(options, seed, grid)``: ``options`` are the spec's ``sampler.options`` (keyword
#: arguments of the Optuna constructor); ``grid`` maps each parameter to its values (grid only).
SamplerFactory = Callable[[Mapping[str, Any], int, "Mapping[str, list[Any]] | None"], "optuna.samplers.BaseSampler"]


def _build(class_name: str, options: Mapping[str, Any], seed: int) -> optuna.samplers.BaseSampler:
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return getattr(optuna.samplers, class_name)(seed=seed, **options)


def _optuna_sampler(class_name: str, pickles: bool = True) -> SamplerFactory:
    """The factory of an Optuna sampler class; one that does not pickle comes in a :class:`RecipeSampler`."""

    def factory(options: Mapping[str, Any], seed: int, grid: Mapping[str, list[Any]] | None = None) -> optuna.samplers.BaseSampler:
        if pickles:
            return _build(class_name, options, seed)
        return __getattr__("RecipeSampler")(class_name, options, seed)

    factory.__name__ = f"make_{class_name}"
    return factory


def _recipe_sampler_class() -> type:
    import optuna

    class RecipeSampler(optuna.samplers.BaseSampler):
        """An Optuna sampler that pickles as its recipe: class name, options and seed.

        Ray Tune pickles the searcher, its sampler included, with the sweep (``tuner.pkl``).
        Optuna's genetic samplers (NSGA-II, NSGA-III) hold a thread lock and cannot be pickled;
        this one builds such a sampler (:attr:`sampler`) and hands it every call of Optuna's
        sampler interface. Unpickled, it builds the sampler again from the recipe: what the
        genetic samplers know of their generations they read back from the study, and their
        random state starts again from the seed.
        """

        def __init__(self, class_name: str, options: Mapping[str, Any], seed: int) -> None:
            self.class_name, self.options, self.seed = class_name, dict(options), seed
            self.sampler = _build(class_name, self.options, seed)

        def __reduce__(self) -> tuple[Any, ...]:
            return (type(self), (self.class_name, self.options, self.seed))

        def infer_relative_search_space(self, study, trial):  # noqa: D102
            return self.sampler.infer_relative_search_space(study, trial)

        def sample_relative(self, study, trial, search_space):  # noqa: D102
            return self.sampler.sample_relative(study, trial, search_space)

        def sample_independent(self, study, trial, param_name, param_distribution):  # noqa: D102
            return self.sampler.sample_independent(study, trial, param_name, param_distribution)

        def before_trial(self, study, trial) -> None:  # noqa: D102
            self.sampler.before_trial(study, trial)

        def after_trial(self, study, trial, state, values) -> None:  # noqa: D102
            self.sampler.after_trial(study, trial, state, values)

        def reseed_rng(self) -> None:  # noqa: D102
            self.sampler.reseed_rng()

    RecipeSampler.__module__ = __name__
    RecipeSampler.__qualname__ = "RecipeSampler"
    return RecipeSampler


def _grid_sampler(options: Mapping[str, Any], seed: int, grid: Mapping[str, list[Any]] | None = None) -> optuna.samplers.BaseSampler:
    return __getattr__("SweepGridSampler")(dict(grid or {}), seed=seed, **options)


def _sweep_grid_sampler_class() -> type:
    import optuna

    class SweepGridSampler(optuna.samplers.GridSampler):
        """Optuna's grid sampler without its ``study.stop()`` once the grid is exhausted.

        The stock sampler stops the study from ``after_trial``, which raises outside
        ``study.optimize`` (our trials are told through ask/tell) and would leave the last trial
        RUNNING. Here Ray Tune's ``num_samples`` (the grid size) ends the sweep instead.
        """

        def after_trial(self, study, trial, state, values) -> None:  # noqa: D102
            return None

    SweepGridSampler.__module__ = __name__
    SweepGridSampler.__qualname__ = "SweepGridSampler"
    return SweepGridSampler


#: Finished trials TPE looks at, at most (``max_history`` of the ``tpe`` sampler).
TPE_MAX_HISTORY = 500


class TPEHistory:
    """The trials our TPE sees of a study: pruned trials without curves, and a bounded history.

    * **Curves.** The sweep stores each trial's learning curve as intermediate values, for
      optuna-dashboard and pruners. Optuna's multi-objective TPE assumes there are none
      (``Trial.report`` refuses multi-objective studies) and, finding some on a pruned trial,
      asks the study for its single direction and fails. With ``hide_curves`` it ranks pruned
      trials of a multi-objective study exactly as it does without curves.
    * **History.** TPE's cost per suggestion grows with the number of finished trials (several
      passes over every trial per parameter), which would make a 10,000-trial sweep's driver
      slower with every trial. Past ``max_history`` finished trials it sees the best half of
      that many (by feasibility, then Pareto layer, or value for one objective: its "good"
      group stays exact while that group fits) and the most recent of the others.

    Running and other unfinished trials are always seen. The selection is remembered between
    calls (one instance per sampler), so its cost stays flat as the study grows.
    """

    def __init__(self, max_history: int | None = TPE_MAX_HISTORY) -> None:
        self.max_history = max_history
        self._memo: dict[str, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        # The copies of trials with hidden curves are remade from the study; a snapshot needs none.
        return {"max_history": self.max_history, "_memo": {k: v for k, v in self._memo.items() if k != "hidden"}}

    def select(self, trials: list[optuna.trial.FrozenTrial], directions: Sequence[Any], hide_curves: bool) -> list[optuna.trial.FrozenTrial]:
        """Of a study's ``trials`` (by number, every state), those TPE sees, as it sees them.

        Returns ``trials`` itself when that changes nothing; the trials are never modified (a
        trial whose curve is hidden is a copy).
        """
        import copy

        from optuna.trial import TrialState

        seen = self._bounded(trials, directions) if self.max_history is not None else trials
        if not hide_curves or not any(t.state == TrialState.PRUNED and t.intermediate_values for t in seen):
            return seen
        hidden: dict[int, Any] = self._memo.setdefault("hidden", {})  # a finished trial never changes: copy it once
        out = []
        for trial in seen:
            if trial.state == TrialState.PRUNED and trial.intermediate_values:
                if trial.number not in hidden:
                    hidden[trial.number] = copy.copy(trial)  # never change the storage's trial
                    hidden[trial.number].intermediate_values = {}
                trial = hidden[trial.number]
            out.append(trial)
        return out

    def _bounded(self, trials: list[Any], directions: Sequence[Any]) -> list[Any]:
        from optuna.trial import TrialState

        done = (TrialState.COMPLETE, TrialState.PRUNED)
        finished = [t for t in trials if t.state in done]
        assert self.max_history is not None
        if len(finished) <= self.max_history:
            return trials
        # The selection is redone once the finished trials have grown by a tenth; trials that
        # finished since count as recent, so it stays right in between at a flat cost.
        if len(finished) > self._memo.get("selected_at", 0) * 1.1:
            self._memo["selected_at"] = len(finished)
            self._memo["kept"] = self._select(finished, directions)
            self._memo["newest"] = finished[-1].number
        kept, newest = self._memo["kept"], self._memo["newest"]
        return [t for t in trials if t.state not in done or t.number > newest or t.number in kept]

    def _select(self, finished: list[Any], directions: Sequence[Any]) -> set[int]:
        import numpy as np
        from optuna.study import StudyDirection
        from optuna.trial import TrialState

        from analysis.pareto import nondominated_ranks
        from search.study import is_feasible_trial

        assert self.max_history is not None
        keys: dict[int, tuple[bool, tuple[float, ...]]] = self._memo.setdefault("keys", {})
        complete = [t for t in finished if t.state == TrialState.COMPLETE]
        for t in complete:
            if t.number not in keys:  # a finished trial never changes: read it once
                keys[t.number] = (not is_feasible_trial(t), tuple(t.values))
        numbers = np.array([t.number for t in complete])
        infeasible = np.array([keys[n][0] for n in numbers], dtype=bool)
        values = np.array([keys[n][1] for n in numbers], dtype=np.float64).reshape(len(numbers), -1)
        ranks = nondominated_ranks(values, ["max" if d == StudyDirection.MAXIMIZE else "min" for d in directions]).astype(np.float64)
        ranks[ranks < 0] = np.inf
        # Feasible first, then by Pareto layer; ties to the earlier trial.
        order = np.lexsort((numbers, ranks, infeasible))
        best = set(numbers[order[: self.max_history // 2]].tolist())
        rest = [t.number for t in finished if t.number not in best]
        return best | set(rest[-(self.max_history - len(best)) :])


def _read_only(self: Any, *args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("a trial selection is read-only")


def _by_study_only(self: Any, *args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("a trial selection serves one study, by name, and its trials by study (get_all_trials)")


def _with_system_attrs(trial: Any, attrs: Mapping[str, Any]) -> Any:
    """A copy of a FrozenTrial with ``attrs`` added to its system attributes."""
    import copy

    shown = copy.copy(trial)
    shown.system_attrs = {**trial.system_attrs, **attrs}
    return shown


def _trial_selection_class() -> type:
    import copy

    import optuna

    class TrialSelection(optuna.storages.BaseStorage):
        """A read-only storage of one study: the trials a sampler is to see of another study.

        An ``optuna.Study`` on it (``optuna.load_study``) is what :class:`SweepTPESampler` hands
        to Optuna's TPE in place of the sweep's study: the trials are the sweep study's own
        (same numbers, order and content, as :meth:`TPEHistory.select` gives them), so TPE
        computes exactly what it would on the real study, through its public interface. TPE's
        one write, the constant liar's relative parameters of the trial being sampled, is kept
        in ``written`` (trial number → system attributes) and shown on that trial while it runs.
        It serves one study, by name, and its trials by study (``get_all_trials``); other
        reads and every other write raise ``NotImplementedError``.
        """

        def __init__(self, study_name: str, directions: Sequence[Any], trials: list[Any], written: dict[int, dict[str, Any]], sampling: int) -> None:
            self.study_name, self.directions, self.trials = study_name, list(directions), trials
            self.written, self.sampling = written, sampling

        create_new_study = delete_study = set_study_user_attr = set_study_system_attr = _read_only
        create_new_trial = set_trial_param = set_trial_state_values = _read_only
        set_trial_intermediate_value = set_trial_user_attr = _read_only
        get_all_studies = get_trial = get_trial_id_from_study_id_trial_number = _by_study_only

        def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
            # TPE writes only to the trial it is sampling for.
            self.written.setdefault(self.sampling, {})[key] = value

        def get_study_id_from_name(self, study_name: str) -> int:
            if study_name != self.study_name:
                raise KeyError(f"no study {study_name!r} in this selection")
            return 0

        def get_study_name_from_id(self, study_id: int) -> str:
            return self.study_name

        def get_study_directions(self, study_id: int) -> list[Any]:
            return list(self.directions)

        def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
            return {}

        def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
            return {}

        def get_all_trials(self, study_id: int, deepcopy: bool = True, states: Any = None) -> list[Any]:
            trials = self.trials if states is None else [t for t in self.trials if t.state in states]
            return copy.deepcopy(trials) if deepcopy else list(trials)

    TrialSelection.__module__ = __name__
    TrialSelection.__qualname__ = "TrialSelection"
    return TrialSelection


def _sweep_tpe_sampler_class() -> type:
    import optuna
    from optuna.trial import TrialState

    class SweepTPESampler(optuna.samplers.TPESampler):
        """Optuna's TPE, unaffected by stored learning curves, with a bounded history.

        TPE samples on the study as :class:`TPEHistory` shows it (pruned trials without curves
        in a multi-objective study; at most ``max_history`` finished trials), handed to it as an
        ``optuna.Study`` on a :class:`TrialSelection` of the sweep study's trials; where that
        view would change nothing, on the sweep study itself.

        Args:
            max_history: Finished trials TPE looks at, at most (default
                :data:`TPE_MAX_HISTORY`; ``None``: all of them).
            **options: Keyword arguments of ``optuna.samplers.TPESampler``.
        """

        def __init__(self, *args: Any, max_history: int | None = TPE_MAX_HISTORY, **options: Any) -> None:
            if max_history is not None and (isinstance(max_history, bool) or not isinstance(max_history, int) or max_history < 2):
                raise ValueError(f"max_history must be an integer >= 2 or null, got {max_history!r}")
            super().__init__(*args, **options)
            #: The trials TPE sees (its selection, kept between suggestions).
            self.history = TPEHistory(max_history)
            #: Trial number → the system attributes TPE wrote for it on a selection (its relative
            #: parameters, under constant liar), until it finishes.
            self.written: dict[int, dict[str, Any]] = {}

        def study_seen(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> optuna.Study:
            """The study TPE samples ``trial`` on: ``study`` itself, or a selection of its trials."""
            multi = len(study.directions) > 1
            if not multi and self.history.max_history is None:
                return study
            trials = study.get_trials(deepcopy=False)
            seen = self.history.select(trials, study.directions, hide_curves=multi)
            if seen is trials:
                return study
            if self.written:
                seen = [_with_system_attrs(t, self.written[t.number]) if t.state == TrialState.RUNNING and t.number in self.written else t for t in seen]
            storage = __getattr__("TrialSelection")(study.study_name, study.directions, seen, self.written, trial.number)
            return optuna.load_study(study_name=study.study_name, storage=storage, sampler=self)

        def sample_relative(self, study, trial, search_space):  # noqa: D102
            return super().sample_relative(self.study_seen(study, trial), trial, search_space)

        def sample_independent(self, study, trial, param_name, param_distribution):  # noqa: D102
            return super().sample_independent(self.study_seen(study, trial), trial, param_name, param_distribution)

        def after_trial(self, study, trial, state, values) -> None:  # noqa: D102
            self.written.pop(trial.number, None)
            super().after_trial(study, trial, state, values)

    SweepTPESampler.__module__ = __name__
    SweepTPESampler.__qualname__ = "SweepTPESampler"
    return SweepTPESampler


def _tpe_sampler(options: Mapping[str, Any], seed: int, grid: Mapping[str, list[Any]] | None = None) -> optuna.samplers.BaseSampler:
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return __getattr__("SweepTPESampler")(seed=seed, **options)


def _nothing_known(params: Mapping[str, Any]) -> None:
    return None


def _cost_aware_sampler(
    options: Mapping[str, Any], seed: int, grid: Mapping[str, list[Any]] | None = None, costs: Any = None
) -> optuna.samplers.BaseSampler:
    """:class:`~search.costaware.CostAwareSampler` on a spec's static costs (see :func:`make_sampler`).

    ``options`` are the sampler's keyword arguments, plus ``fallback_options``: those of the
    multivariate TPE (constant liar) it hands over to at scale.
    """
    import optuna

    from search.costaware import CostAwareSampler

    options = dict(options)
    fallback_options = {"multivariate": True, "group": True, "constant_liar": True, **dict(options.pop("fallback_options", None) or {})}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        fallback = __getattr__("SweepTPESampler")(seed=seed, **fallback_options)
    if costs is not None:
        from search.study import is_own_trial

        return CostAwareSampler(
            costs.objectives, candidates=costs.candidates, is_feasible=costs.feasible, fallback=fallback, seed=seed, scored_against=is_own_trial, **options
        )
    return CostAwareSampler(_nothing_known, fallback=fallback, seed=seed, **options)


_LAZY_CLASSES = {
    "RecipeSampler": _recipe_sampler_class,
    "SweepGridSampler": _sweep_grid_sampler_class,
    "SweepTPESampler": _sweep_tpe_sampler_class,
    "TrialSelection": _trial_selection_class,
}


def __getattr__(name: str) -> Any:
    # The sampler classes subclass Optuna's, so they are defined on first use; as module
    # attributes they pickle by reference (Tune snapshots the searcher).
    if name in _LAZY_CLASSES:
        if name not in globals():  # called by name below as well: define each class once
            globals()[name] = _LAZY_CLASSES[name]()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: Every sampler a spec may name.
SAMPLERS: dict[str, SamplerFactory] = {
    "tpe": _tpe_sampler,
    "nsga2": _optuna_sampler("NSGAIISampler", pickles=False),
    "nsga3": _optuna_sampler("NSGAIIISampler", pickles=False),
    "gp": _optuna_sampler("GPSampler"),
    "random": _optuna_sampler("RandomSampler"),
    "qmc": _optuna_sampler("QMCSampler"),
    "grid": _grid_sampler,
    "cost_aware": _cost_aware_sampler,
}


#: Samplers that read their place in their sequence from the study (the grid its visited points,
#: QMC its sample count): rebuilt on a reopened study with the same seed, they go on where they stopped.
CONTINUES_FROM_STUDY: frozenset[str] = frozenset({"grid", "qmc"})


def reopened_seed(spec: Any, held: int) -> int:
    """The seed of a spec's sampler built on a study that already holds ``held`` trials.

    A seeded sampler rebuilt with ``run.seed`` on a reopened study (a resumed or extended sweep)
    would propose its first configs again, so it gets ``run.seed + held``: still repeatable. A
    sampler of :data:`CONTINUES_FROM_STUDY` keeps ``run.seed``: which grid point a trial number
    gets is its seed's shuffle, and another seed would send it back to points already visited.
    """
    return spec.run.seed if spec.sampler.name in CONTINUES_FROM_STUDY else spec.run.seed + held


def make_sampler(spec: Any, seed: int | None = None, costs: Any = None, held: int = 0) -> optuna.samplers.BaseSampler:
    """Build a spec's sampler for a study that holds ``held`` trials, seeded by :func:`reopened_seed` (or with ``seed``).

    ``costs`` (:func:`search.static_costs.static_cost_model` of the spec and its data) lets
    ``cost_aware`` compute each candidate's static costs; without it (or for a family that declares no
    static costs) that sampler leaves every choice to Optuna's GP, then to multivariate TPE.

    Raises:
        TypeError: an option the sampler does not take.
        ValueError: an option value the sampler rejects.
    """
    seed = reopened_seed(spec, held) if seed is None else seed
    factory = SAMPLERS[spec.sampler.name]
    if factory is _cost_aware_sampler:
        return _cost_aware_sampler(dict(spec.sampler.options), seed, spec.grid(), costs=costs)
    return factory(dict(spec.sampler.options), seed, spec.grid())
