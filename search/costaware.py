"""An Optuna sampler for searches where some objectives are known before training.

A network's cost (MACs, parameters, modelled energy) follows from its config and the input
shape alone; only its accuracy has to be learnt by training. Black-box samplers learn both from
trained trials. :class:`CostAwareSampler` computes the costs exactly and models only the learnt
objective:

1. It keeps a pool of candidate parameter sets (drawn at random, topped up each suggestion),
   each with its exact cost, and drops those a constraint on a known cost rules out.
2. A Gaussian process on the trained trials (their parameters and log-costs as inputs) predicts
   the learnt objective's mean ``mu`` and spread ``sigma`` for every candidate.
3. Each candidate is scored by its expected hypervolume improvement over the front of feasible,
   finished trials. With one learnt objective ``a`` (maximised here) and one exact cost ``c``
   (minimised) the front is a staircase ``A(c')`` (the best ``a`` at cost <= ``c'``) up to the
   reference cost ``r``, and a candidate adds ``integral_c^r max(0, a - A(c')) dc'``; under
   ``a ~ N(mu, sigma^2)`` that is a sum of expected improvements, one per stair:
   ``EHVI = sum_j dc_j (sigma phi(z_j) + (mu - A_j) Phi(z_j))``, ``z_j = (mu - A_j) / sigma``.
   Thousands of candidates are scored in milliseconds, and ``n_local`` more drawn near the best
   ones (:func:`search.surrogate.refined`: one step of local search on the acquisition).
4. Trials still running enter the staircase at their predicted mean (the "kriging believer"),
   so concurrent workers are not all sent to the same point.

A cost known only up to a learnt rate (an :class:`~search.surrogate.Affine` cost: a spiking net's
energy) gets a second Gaussian process, on the rate, and a Monte Carlo EHVI (see that class).

With the scheduler's rungs (``rungs``), each improvement is weighed by the chance that the candidate
gets past them (:func:`search.surrogate.surviving`): a trial stopped at a rung adds little.

The best candidate's parameters are handed out as the trial asks for them (define-by-run: one it
does not ask for is ignored; one outside the distribution it asks with is drawn at random). Before
``n_startup_trials`` observations it samples at random. A study it cannot model this way (not one
learnt objective and one known or affine cost) goes to ``blackbox`` (Optuna's GP sampler unless
given). Past ``switch_after`` finished trials ``fallback`` decides (multivariate TPE with constant
liar unless given): its cost per suggestion stays flat, where a GP's grows with the cube of the trials.

Works in plain Optuna::

    sampler = CostAwareSampler(lambda p: [None, p["width"] ** 2], seed=0)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
"""

from __future__ import annotations

import math
import warnings
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from search.candidates import CandidateDraw, Encoder, contains, draw_value, random_candidates
from search.ehvi import ehvi_2d
from search.surrogate import Affine, GaussianProcesses, KnownModel as _KnownModel, curve_points, fidelity as _fidelity, key as _key, refined, surviving
from search.study import is_feasible_trial

__all__ = ["Affine", "CandidateDraw", "CostAwareSampler", "StaticObjectives", "contains", "draw_value", "ehvi_2d", "random_candidates"]


#: ``static_objectives(params)``: one entry per study objective, the value when it is known from
#: the parameters alone, an :class:`Affine` when it is known up to a learnt rate, ``None`` when it
#: must be learnt by training (a spec's: :meth:`search.static_costs.StaticCostModel.objectives`).
StaticObjectives = Callable[[Mapping[str, Any]], Sequence["float | Affine | None"]]



class CostAwareSampler(BaseSampler):
    """Expected hypervolume improvement under a surrogate of the learnt objective, with exact costs.

    See the module docstring for the method.

    Args:
        static_objectives: ``params -> [value or None per objective]``: the objectives known
            before training, computed from a candidate's parameters (``None`` for the learnt
            ones). Called for each candidate once; it may receive parameters a conditional
            space would leave inactive. Return ``None`` instead of a list for a candidate
            it cannot cost (it is not proposed).
        candidates: Draws candidate parameter sets (with their distributions). Default: each
            parameter seen in the study's trials, drawn independently.
        is_feasible: ``params -> bool``: ``False`` for a candidate known to break a constraint
            before training (it is never proposed). Default: every candidate may be feasible.
        n_startup_trials: Trials observed (finished) before the model is used; random until then.
        n_candidates: Candidates scored per suggestion.
        n_refresh: New candidates drawn per suggestion (the pool keeps the most recent
            ``n_candidates``).
        switch_after: Finished trials after which ``fallback`` decides (``None``: never).
        use_pruned: Trials stopped early count as observations (of their learning curve: the
            learnt objective's intermediate values).
        curves: Learning curves inform the model: each observation carries its epoch (log fraction
            of the longest curve seen), a trial adds its curve at epochs 1, 2, 4, ... while the model
            holds fewer than ``max_points`` points, and candidates are predicted at the full budget
            (``False``: a stopped trial's last value stands for its final one).
        max_points: The most observations the model is fitted on before curves are left out
            (each trial's last value is always in).
        fallback: The sampler used past ``switch_after``. Default:
            ``TPESampler(multivariate=True, group=True, constant_liar=True)``.
        blackbox: The sampler used before ``switch_after`` for a study nothing of which is known
            before training, or whose shape this one does not model. Default: ``GPSampler``.
        n_draws: Monte Carlo draws per candidate when a cost is :class:`Affine`.
        n_local: Candidates drawn near the 8 best-scored ones of the pool and scored too, per
            suggestion (0: the pool only). Needs a draw with ``near`` (the spec's, the default's).
        seed: Seeds the candidate draws, the random start-up and the default fallback.
        rungs: ``() -> [(epoch, passes), ...]``: the scheduler's rungs, and whether a result (values
            in objective order) would continue at each now (known costs, with ``curves``).
        scored_against: ``trial -> bool``: the finished trials whose front a candidate's
            improvement is measured against (default: every one). Every observed trial informs
            the model either way; a warm-started sweep scores against its own trials only
            (:func:`search.study.is_own_trial`), so it builds a front of its own from what the
            told trials taught the model.
    """

    def __init__(
        self,
        static_objectives: StaticObjectives,
        *,
        candidates: CandidateDraw | None = None,
        is_feasible: Callable[[Mapping[str, Any]], bool] | None = None,
        n_startup_trials: int = 8,
        n_candidates: int = 256,
        n_refresh: int = 32,
        switch_after: int | None = 100,
        use_pruned: bool = True,
        curves: bool = True,
        max_points: int = 256,
        fallback: BaseSampler | None = None,
        blackbox: BaseSampler | None = None,
        n_draws: int = 64,
        n_local: int = 64,
        seed: int | None = None,
        scored_against: Callable[[FrozenTrial], bool] | None = None,
        rungs: Callable[[], Sequence[tuple[int, Callable[[Sequence[float]], bool]]]] | None = None,
    ) -> None:
        for name, value, least in (("n_startup_trials", n_startup_trials, 1), ("n_candidates", n_candidates, 1), ("n_refresh", n_refresh, 1), ("n_draws", n_draws, 1), ("n_local", n_local, 0), ("max_points", max_points, 2)):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
        if switch_after is not None and (isinstance(switch_after, bool) or not isinstance(switch_after, int) or switch_after < n_startup_trials):
            raise ValueError(f"switch_after must be an integer >= n_startup_trials ({n_startup_trials}) or null, got {switch_after!r}")
        self._static, self._scored_against, self._draw, self._is_feasible = static_objectives, scored_against, candidates, is_feasible
        self._n_startup, self._n_candidates, self._n_refresh, self._switch_after = n_startup_trials, n_candidates, n_refresh, switch_after
        self._use_pruned, self._n_draws, self._n_local, self._curves, self._max_points = use_pruned, n_draws, n_local, bool(curves), max_points
        self._seed, self.rungs = seed, rungs
        self._rng = np.random.default_rng(seed)
        self._random = RandomSampler(seed=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self._fallback = fallback or optuna.samplers.TPESampler(multivariate=True, group=True, constant_liar=True, seed=seed)
            self._blackbox = blackbox or optuna.samplers.GPSampler(seed=seed, n_startup_trials=n_startup_trials, warn_independent_sampling=False)
        self._pool: deque[tuple[dict[str, Any], dict[str, BaseDistribution]]] = deque(maxlen=n_candidates)
        self._costs: dict[tuple[Any, ...], tuple[float | Affine | None, ...] | None] = {}
        self._feasible: dict[tuple[Any, ...], bool] = {}
        self._plans: dict[int, dict[str, Any]] = {}  # trial number -> the chosen candidate's parameters
        self._modes: dict[int, str] = {}  # trial number -> "plan", "random", "blackbox" or "fallback"
        # (learnt, known) objective indices; None: not modelled; False: not yet resolved.
        self._shape: tuple[int, int] | None | bool = False
        self._affine = False  # whether the known objective is an Affine cost
        self._encoder = Encoder()
        self._gps = GaussianProcesses()  # the fitted GPs' kernels, reused at scale

    @property
    def learnt_objective(self) -> int | None:
        """The index of the objective the model learns, where it models a known cost (else ``None``)."""
        return self._shape[0] if isinstance(self._shape, tuple) and not self._affine else None

    # -- Optuna's sampler interface ------------------------------------------------------------

    def reseed_rng(self) -> None:  # noqa: D102
        self._rng = np.random.default_rng()
        self._random.reseed_rng()
        self._fallback.reseed_rng()
        self._blackbox.reseed_rng()

    def _delegate(self, trial: FrozenTrial) -> BaseSampler | None:
        mode = self._modes.get(trial.number)
        return self._fallback if mode == "fallback" else self._blackbox if mode == "blackbox" else None

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:  # noqa: D102
        self._fallback.before_trial(study, trial)
        self._blackbox.before_trial(study, trial)
        if trial.params:  # a trial re-created with its parameters (e.g. continued): nothing to choose
            self._modes[trial.number] = "random"
            return
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING))
        finished = [t for t in trials if t.state != TrialState.RUNNING]
        observed = [t for t in finished if self._observation(t) is not None]
        mode = "random"
        if self._switch_after is not None and len(finished) >= self._switch_after:
            mode = "fallback"
        elif len(study.directions) != 2:
            mode = "blackbox"
        elif len(observed) >= self._n_startup:
            plan = self._plan(study, trial, trials, observed)
            if plan is None and self._shape is None:
                mode = "blackbox"
            elif plan is not None:
                self._plans[trial.number] = plan
                mode = "plan"
        self._modes[trial.number] = mode

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:  # noqa: D102
        delegate = self._delegate(trial)
        return delegate.infer_relative_search_space(study, trial) if delegate is not None else {}

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]) -> dict[str, Any]:  # noqa: D102
        delegate = self._delegate(trial)
        return delegate.sample_relative(study, trial, search_space) if delegate is not None else {}

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution) -> Any:  # noqa: D102
        delegate = self._delegate(trial)
        if delegate is not None:
            return delegate.sample_independent(study, trial, param_name, param_distribution)
        plan = self._plans.get(trial.number)
        if plan is not None and param_name in plan and contains(param_distribution, plan[param_name]):
            return plan[param_name]
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None) -> None:  # noqa: D102
        self._plans.pop(trial.number, None)
        self._modes.pop(trial.number, None)
        self._fallback.after_trial(study, trial, state, values)
        self._blackbox.after_trial(study, trial, state, values)

    # -- the model -----------------------------------------------------------------------------

    def _observation(self, trial: FrozenTrial) -> float | None:
        """The learnt objective's observed value of a finished trial (None: nothing observed)."""
        learnt = self._shape[0] if isinstance(self._shape, tuple) else 0
        if trial.state == TrialState.COMPLETE and trial.values is not None:
            value = trial.values[learnt]
        elif trial.state == TrialState.PRUNED and self._use_pruned and trial.intermediate_values:
            value = trial.intermediate_values[max(trial.intermediate_values)]
        else:
            return None
        return float(value) if value is not None and math.isfinite(value) else None

    def _cost_of(self, params: Mapping[str, Any]) -> tuple[float | Affine | None, ...] | None:
        key = _key(params)
        if key not in self._costs:
            try:
                values = self._static(params)
            except (ValueError, TypeError, KeyError):
                values = None  # a candidate the cost function cannot evaluate is never proposed
            self._costs[key] = None if values is None else tuple(v if v is None or isinstance(v, Affine) else float(v) for v in values)
        return self._costs[key]

    def _feasible_candidate(self, params: Mapping[str, Any]) -> bool:
        if self._is_feasible is None:
            return True
        key = _key(params)
        if key not in self._feasible:
            self._feasible[key] = bool(self._is_feasible(params))
        return self._feasible[key]

    def _drawer(self, trials: Sequence[FrozenTrial]) -> CandidateDraw:
        if self._draw is not None:
            return self._draw
        return random_candidates({name: d for t in reversed(trials) for name, d in t.distributions.items()})

    def _refined(self, pool: list[tuple[dict[str, Any], Any]], scores: np.ndarray, score: Any, usable: Any, trials: Sequence[FrozenTrial]) -> tuple[list[tuple[dict[str, Any], Any]], np.ndarray]:
        """The pool and candidates near its best (:func:`search.surrogate.refined`), scored."""
        taken = {_key(t.params) for t in trials} | {_key(p) for p, _ in self._pool}
        near = getattr(self._drawer(trials), "near", None)
        return refined(pool, scores, score, near, self._rng, self._n_local, lambda p: usable(p) if self._feasible_candidate(p) else None, taken)

    def _known_refined(self, model: _KnownModel, trials: Sequence[FrozenTrial]) -> tuple[list[tuple[dict[str, Any], Any]], np.ndarray]:
        def score(cands: list[tuple[dict[str, Any], Any]]) -> np.ndarray:
            x = np.concatenate([model.features(p, c[model.known]) for p, c in cands])
            return model.scores(x, np.array([model.cost_sign * c[model.known] for _, c in cands]))

        def usable(params: Mapping[str, Any]) -> Any:
            return c if (c := self._cost_of(params)) is not None and c[model.known] is not None else None

        return self._refined(list(model.pool), model.candidate_scores(), score, usable, trials)

    def _top_up(self, study: optuna.Study, trials: Sequence[FrozenTrial]) -> None:
        n = self._n_candidates - len(self._pool) if len(self._pool) < self._n_candidates else self._n_refresh
        for params, dists in self._drawer(trials)(self._rng, n):
            self._encoder.learn(dists)
            self._pool.append((params, dists))

    def _resolve_shape(self, directions: Sequence[StudyDirection]) -> None:
        if self._shape is not False:
            return
        for params, _ in self._pool:
            costs = self._cost_of(params)
            if costs is None:
                continue
            learnt = [i for i, v in enumerate(costs) if v is None]
            known = [i for i, v in enumerate(costs) if v is not None]
            self._shape = (learnt[0], known[0]) if len(costs) == len(directions) == 2 and len(learnt) == 1 else None
            if self._shape is not None and isinstance(costs[known[0]], Affine):
                self._affine = True  # a rate-dependent cost is modelled as minimised only
                self._shape = self._shape if directions[known[0]] == StudyDirection.MINIMIZE else None
            return
        self._shape = None  # no candidate could be costed: nothing is known before training

    def _plan(self, study: optuna.Study, trial: FrozenTrial, trials: Sequence[FrozenTrial], observed: Sequence[FrozenTrial]) -> dict[str, Any] | None:
        self._top_up(study, trials)
        self._resolve_shape(study.directions)
        if not isinstance(self._shape, tuple):
            return None
        if self._affine:
            return self._plan_affine(study, trial, trials, observed)
        if (model := self._known_model(study, trial.number, trials, observed)) is None:
            return None
        pool, scores = self._known_refined(model, trials)
        if self.rungs is not None and self._curves:
            learnt, sign = self._shape[0], 1.0 if study.directions[self._shape[0]] == StudyDirection.MAXIMIZE else -1.0
            tests = [(_fidelity(m, model.full), lambda v, c, t=t: t([sign * v, c] if learnt == 0 else [c, sign * v])) for m, t in self.rungs()]
            scores = surviving(model, pool, scores, tests)
        best = np.flatnonzero(scores >= scores.max() - 1e-15 * max(1.0, abs(scores.max())))
        choice = int(best[self._rng.integers(len(best))])
        return dict(pool[choice][0])

    def _known_model(
        self,
        study: optuna.Study,
        number: int,
        trials: Sequence[FrozenTrial],
        observed: Sequence[FrozenTrial],
        full: int | None = None,
        reuse_kernel: bool = False,
    ) -> _KnownModel | None:
        """The GP on the learnt objective (exact known cost) and the front a trial ``number`` is scored against.

        The front holds the finished feasible trials and the other running ones at their predicted
        means (the kriging believer). A running trial ``number``'s curve joins the observations (its
        prediction is conditioned on how far it has come). ``reuse_kernel``: the last fit's kernel.
        """
        assert isinstance(self._shape, tuple)
        learnt, known = self._shape
        sign_a = 1.0 if study.directions[learnt] == StudyDirection.MAXIMIZE else -1.0
        sign_c = 1.0 if study.directions[known] == StudyDirection.MINIMIZE else -1.0

        taken = {_key(t.params) for t in trials}
        pool = [(p, c) for p, _ in self._pool if _key(p) not in taken and (c := self._cost_of(p)) is not None and self._feasible_candidate(p)]
        if not pool:
            return None
        for t in trials:
            self._encoder.learn(t.distributions)

        def features(params: Mapping[str, Any], cost: float) -> np.ndarray:
            return np.concatenate([self._encoder.encode(params), [math.log10(max(sign_c * cost, 0.0) + 1.0) if sign_c > 0 else 0.0]])

        xs, ys, finals = [], [], []
        rows = [(t, c) for t in observed if (c := self._cost_of(t.params)) is not None and c[known] is not None]
        if full is None:
            full = max((max(t.intermediate_values) for t, _ in rows if t.intermediate_values), default=1)
        room = self._max_points - len(rows)
        for t, c in rows:
            x = features(t.params, c[known])
            finals.append(sign_a * float(self._observation(t)))
            last = max(t.intermediate_values) if t.intermediate_values and t.state == TrialState.PRUNED else full
            xs.append(np.append(x, _fidelity(last, full)) if self._curves else x)
            ys.append(finals[-1])
            if self._curves:  # its curve at epochs 1, 2, 4, ... before its last value, while there is room
                points = curve_points(x, t.intermediate_values, full, before=last)[: max(room, 0)]
                room -= len(points)
                xs.extend(x for x, _ in points)
                ys.extend(sign_a * v for _, v in points)
        if len(finals) < 2:
            return None
        own = next((t for t in trials if t.number == number and t.state == TrialState.RUNNING and t.params), None)
        own_cost = self._cost_of(own.params) if own is not None else None
        if self._curves and own is not None and own_cost is not None and own_cost[known] is not None and own.intermediate_values:
            points = curve_points(features(own.params, own_cost[known]), own.intermediate_values, full, before=None)
            xs.extend(x for x, _ in points)
            ys.extend(sign_a * v for _, v in points)

        def at_full(x: np.ndarray) -> np.ndarray:  # as the model sees it: at the full budget
            return np.concatenate([x, np.ones((len(x), 1))], axis=1) if self._curves else x

        pending = [t for t in trials if t.state == TrialState.RUNNING and t.params and t.number != number]
        pend = [(t, c) for t in pending if (c := self._cost_of(t.params)) is not None and c[known] is not None]
        gp = self._fit(np.stack(xs), np.array(ys), trials=len(finals), reuse=reuse_kernel)
        front = []
        for t in trials:
            if t.state == TrialState.COMPLETE and t.values is not None and is_feasible_trial(t) and (self._scored_against is None or self._scored_against(t)):
                front.append((sign_c * t.values[known], sign_a * t.values[learnt]))
        if pend:  # the kriging believer: a running trial as if it had reached its predicted mean
            pmu = gp.predict(at_full(np.stack([features(t.params, c[known]) for t, c in pend])))
            front.extend((sign_c * c[known], float(m)) for (t, c), m in zip(pend, pmu))
        cand_cost = np.array([sign_c * c[known] for _, c in pool])
        r_cost = float(max(cand_cost.max(), max((f[0] for f in front), default=-np.inf)))
        if own is not None and own_cost is not None and own_cost[known] is not None:
            r_cost = max(r_cost, sign_c * own_cost[known])
        r_cost += 1e-9 * max(1.0, abs(r_cost))
        return _KnownModel(
            gp=gp, pool=pool, features=lambda params, cost: at_full(features(params, cost)[None, :]), cost_sign=sign_c, known=known,
            front=np.array(front).reshape(-1, 2), reference=(r_cost, float(min(finals))), full=full,
        )

    def worth_continuing(self, study: optuna.Study, number: int, epoch: int, full: int) -> bool | None:
        """Whether a running trial, at ``epoch`` of ``full``, is worth its remaining epochs.

        It is when its expected hypervolume improvement at the full budget (predicted given its
        curve so far, against the finished trials and the other running ones at their predicted
        means) per remaining epoch is at least the best new candidate's per epoch of a full budget.
        ``None`` where the model cannot say (before ``n_startup_trials`` observations, past
        ``switch_after``, a study it does not model, a cost known only up to a rate, no candidate
        left, nothing to gain anywhere): the caller decides by its own rule.
        """
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING))
        own = next((t for t in trials if t.number == number and t.state == TrialState.RUNNING and t.params), None)
        finished = [t for t in trials if t.state != TrialState.RUNNING]
        observed = [t for t in finished if self._observation(t) is not None]
        late = self._switch_after is not None and len(finished) >= self._switch_after
        if epoch >= full or own is None or len(study.directions) != 2 or len(observed) < self._n_startup or late:
            return None
        if not self._pool:
            self._top_up(study, trials)
        self._resolve_shape(study.directions)
        cost = self._cost_of(own.params) if isinstance(self._shape, tuple) and not self._affine else None
        model = self._known_model(study, number, trials, observed, full=full, reuse_kernel=True) if cost is not None else None
        if model is None or cost[model.known] is None:
            return None
        mine = float(model.scores(model.features(own.params, cost[model.known]), np.array([model.cost_sign * cost[model.known]]))[0])
        best = float(self._known_refined(model, trials)[1].max())
        return mine / (full - epoch) >= best / full if best > 0 else None

    def _plan_affine(self, study: optuna.Study, trial: FrozenTrial, trials: Sequence[FrozenTrial], observed: Sequence[FrozenTrial]) -> dict[str, Any] | None:
        """:meth:`_plan` for an :class:`Affine` cost: one GP on the learnt objective, one on the log rate, MC-EHVI."""
        assert isinstance(self._shape, tuple)
        learnt, known = self._shape
        sign_a = 1.0 if study.directions[learnt] == StudyDirection.MAXIMIZE else -1.0
        taken = {_key(t.params) for t in trials}
        pool = [
            (p, c[known]) for p, _ in self._pool
            if _key(p) not in taken and (c := self._cost_of(p)) is not None and isinstance(c[known], Affine) and self._feasible_candidate(p)
        ]
        if not pool:
            return None
        for t in trials:
            self._encoder.learn(t.distributions)
        costs = {t.number: self._cost_of(t.params) for t in trials if t.params}
        affine_of = {n: c[known] for n, c in costs.items() if c is not None and isinstance(c[known], Affine)}
        # The known parts as features too (log, scaled over what is seen), beside the parameters.
        logs = np.log([[max(a.floor, 1e-12), max(a.span, 1e-12)] for a in [a for _, a in pool] + list(affine_of.values())])
        lo, width = logs.min(axis=0), np.maximum(np.ptp(logs, axis=0), 1e-12)

        def features(params: Mapping[str, Any], a: Affine) -> np.ndarray:
            scaled = (np.log([max(a.floor, 1e-12), max(a.span, 1e-12)]) - lo) / width
            return np.concatenate([self._encoder.encode(params), scaled])

        xs, ys, xr, yr = [], [], [], []
        for t in observed:
            a = affine_of.get(t.number)
            if a is None:
                continue
            x = features(t.params, a)
            xs.append(x)
            ys.append(sign_a * float(self._observation(t)))
            if t.state == TrialState.COMPLETE and t.values is not None and (rate := a.rate_of(t.values[known])) is not None:
                xr.append(x)
                yr.append(math.log(max(rate, 1e-4)))
        if len(ys) < 2 or len(yr) < 2:
            return None
        floor = np.array([a.floor for _, a in pool])
        span = np.array([a.span for _, a in pool])
        gp_a, gp_r = self._fit(np.stack(xs), np.array(ys), trials=len(ys)), self._fit(np.stack(xr), np.array(yr), model="rate", trials=len(ys))
        mu_r, sd_r = gp_r.predict(np.stack([features(p, a) for p, a in pool]), return_std=True)

        front = []
        for t in trials:
            if t.state == TrialState.COMPLETE and t.values is not None and is_feasible_trial(t) and (self._scored_against is None or self._scored_against(t)):
                front.append((float(t.values[known]), sign_a * t.values[learnt]))
        pending = [(t, affine_of[t.number]) for t in trials if t.state == TrialState.RUNNING and t.params and t.number != trial.number and t.number in affine_of]
        if pending:  # the kriging believer, as in the known-cost case
            px = np.stack([features(t.params, a) for t, a in pending])
            for (t, a), m, r in zip(pending, gp_a.predict(px), gp_r.predict(px)):
                front.append((a.floor + a.span * math.exp(r), float(m)))
        mean_cost = floor + span * np.exp(mu_r + 0.5 * sd_r**2)
        r_cost = float(max(mean_cost.max(), max((f[0] for f in front), default=-np.inf)))
        r_cost += 1e-9 * max(1.0, abs(r_cost))
        r_value = float(min(ys))
        z = self._rng.standard_normal((2, 1, self._n_draws))

        def score(cands: list[tuple[dict[str, Any], Affine]]) -> np.ndarray:  # Monte Carlo EHVI, the same draws for every candidate
            x = np.stack([features(p, a) for p, a in cands])
            (ma, sa), (mr, sr) = gp_a.predict(x, return_std=True), gp_r.predict(x, return_std=True)
            values = ma[:, None] + sa[:, None] * z[0]
            costs = np.array([[a.floor] for _, a in cands]) + np.array([[a.span] for _, a in cands]) * np.exp(mr[:, None] + sr[:, None] * z[1])
            gains = ehvi_2d(values.ravel(), np.zeros(values.size), costs.ravel(), np.array(front).reshape(-1, 2), (r_cost, r_value))
            return gains.reshape(values.shape).mean(axis=1)

        def usable(params: Mapping[str, Any]) -> Affine | None:
            return c[known] if (c := self._cost_of(params)) is not None and isinstance(c[known], Affine) else None

        pool, scores = self._refined(pool, score(pool), score, usable, trials)
        best = np.flatnonzero(scores >= scores.max() - 1e-15 * max(1.0, abs(scores.max())))
        choice = int(best[self._rng.integers(len(best))])
        return dict(pool[choice][0])

    def _fit(self, x: np.ndarray, y: np.ndarray, model: str = "learnt", trials: int = 0, reuse: bool = False) -> Any:
        """A GP on ``(x, y)``: :meth:`search.surrogate.GaussianProcesses.fit`, seeded from this sampler."""
        return self._gps.fit(x, y, model=model, trials=trials, reuse=reuse, rng=self._rng)
