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
   Thousands of candidates are scored in milliseconds.
4. Trials still running enter the staircase at their predicted mean (the "kriging believer"),
   so concurrent workers are not all sent to the same point.

The best candidate's parameters are then handed out as the trial asks for them (define-by-run:
a parameter it does not ask for is ignored; one outside the distribution it asks with is drawn at
random). Before ``n_startup_trials`` observations it samples at random. For a study it cannot
model this way (not exactly one learnt and one known objective: e.g. an SNE's energy, which
depends on its spikes) it hands each decision to ``blackbox`` (Optuna's GP sampler unless given),
which models every objective. Past ``switch_after`` finished trials it hands every decision to
``fallback`` (multivariate TPE with constant liar unless given), whose cost per suggestion stays
flat as trials accumulate, where a GP's grows with the cube of the trials.

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
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from search.study import is_feasible_trial

__all__ = ["CandidateDraw", "CostAwareSampler", "StaticObjectives", "contains", "draw_value", "ehvi_2d", "random_candidates"]

#: ``static_objectives(params)``: one entry per study objective, the value when it is known from
#: the parameters alone, ``None`` when it must be learnt by training (a spec's:
#: :meth:`search.static_costs.StaticCostModel.objectives`).
StaticObjectives = Callable[[Mapping[str, Any]], Sequence[float | None]]
#: ``draw(rng, n)``: ``n`` candidate parameter sets, each with the distributions of its parameters.
CandidateDraw = Callable[[np.random.Generator, int], list[tuple[dict[str, Any], dict[str, BaseDistribution]]]]


def ehvi_2d(
    mu: np.ndarray, sigma: np.ndarray, cost: np.ndarray, front: np.ndarray, reference: tuple[float, float]
) -> np.ndarray:
    """Expected hypervolume improvement of candidates with a Gaussian learnt objective and an exact cost.

    Args:
        mu, sigma: The learnt objective's predicted mean and standard deviation per candidate
            (maximised).
        cost: Each candidate's exact cost (minimised).
        front: ``(k, 2)`` points ``(cost, learnt value)`` already achieved (any, dominated ones
            included).
        reference: ``(cost, learnt value)``: the worst corner; what lies beyond it adds nothing.

    Returns:
        Each candidate's expected improvement of the hypervolume between the front and the
        reference (0 for a candidate at or beyond the reference cost). With ``sigma = 0`` it is
        the exact improvement of the point ``(cost, mu)``.
    """
    r_cost, r_value = reference
    mu, sigma, cost = (np.asarray(v, dtype=np.float64).ravel() for v in (mu, sigma, cost))
    pts = np.asarray(front, dtype=np.float64).reshape(-1, 2)
    pts = pts[pts[:, 0] < r_cost]
    order = np.argsort(pts[:, 0], kind="stable")
    costs, values = pts[order, 0], pts[order, 1]
    # The staircase: from each distinct cost on, the best value achieved at that cost or lower.
    levels = np.maximum.accumulate(np.maximum(values, r_value)) if len(values) else values
    edges = np.concatenate([[-np.inf], costs, [r_cost]])  # stair j spans [edges[j], edges[j+1])
    stairs = np.concatenate([[r_value], levels])
    lo = np.maximum(cost[:, None], edges[None, :-1])
    width = np.clip(edges[None, 1:] - lo, 0.0, None)  # (candidates, stairs)
    gap = mu[:, None] - stairs[None, :]
    s = sigma[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(s > 0, gap / np.where(s > 0, s, 1.0), 0.0)
    from scipy.stats import norm

    improvement = np.where(s > 0, s * norm.pdf(z) + gap * norm.cdf(z), np.maximum(gap, 0.0))
    return (width * improvement).sum(axis=1)


def random_candidates(distributions: Mapping[str, BaseDistribution]) -> CandidateDraw:
    """A candidate draw sampling each of ``distributions`` independently and uniformly (log where log)."""
    dists = dict(distributions)

    def draw(rng: np.random.Generator, n: int) -> list[tuple[dict[str, Any], dict[str, BaseDistribution]]]:
        return [({name: draw_value(rng, d) for name, d in dists.items()}, dists) for _ in range(n)]

    return draw


def draw_value(rng: np.random.Generator, dist: BaseDistribution) -> Any:
    """One value of ``dist``, uniformly (in log space for a log distribution)."""
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[int(rng.integers(len(dist.choices)))]
    if isinstance(dist, IntDistribution):
        if dist.log:
            return int(min(dist.high, math.floor(math.exp(rng.uniform(math.log(dist.low), math.log(dist.high + 1))))))
        return dist.low + dist.step * int(rng.integers((dist.high - dist.low) // dist.step + 1))
    assert isinstance(dist, FloatDistribution)
    if dist.log:
        return float(math.exp(rng.uniform(math.log(dist.low), math.log(dist.high))))
    if dist.step is not None:
        return float(dist.low + dist.step * int(rng.integers(round((dist.high - dist.low) / dist.step) + 1)))
    return float(rng.uniform(dist.low, dist.high))


def contains(dist: BaseDistribution, value: Any) -> bool:
    """Whether ``dist`` can take ``value``: a choice of a categorical, or a point of a range on its step grid."""
    try:
        internal = dist.to_internal_repr(value)  # a categorical refuses a value not among its choices
    except (TypeError, ValueError):
        return False
    if isinstance(dist, CategoricalDistribution):
        return True
    if isinstance(dist, IntDistribution):
        return dist.low <= internal <= dist.high and (internal - dist.low) % dist.step == 0
    if isinstance(dist, FloatDistribution):
        if dist.step is None:
            return dist.low <= internal <= dist.high
        k = (internal - dist.low) / dist.step
        return dist.low <= internal <= dist.high and abs(k - round(k)) < 1.0e-8
    return False


def _key(params: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(params.items()))


class _Encoder:
    """Parameters (and log-costs) as a point of the unit cube, for the surrogate."""

    def __init__(self) -> None:
        self.numeric: dict[str, tuple[float, float, bool]] = {}  # name -> (low, high, log)
        self.choices: dict[str, list[Any]] = {}

    def learn(self, distributions: Mapping[str, BaseDistribution]) -> None:
        for name, d in distributions.items():
            if isinstance(d, CategoricalDistribution):
                known = self.choices.setdefault(name, [])
                known.extend(c for c in d.choices if c not in known)
            else:
                low, high, log = float(d.low), float(d.high), bool(d.log)
                if name in self.numeric:  # dependent ranges differ per trial: keep the hull
                    old = self.numeric[name]
                    low, high = min(low, old[0]), max(high, old[1])
                self.numeric[name] = (low, high, log)

    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        out: list[float] = []
        for name, (low, high, log) in sorted(self.numeric.items()):
            if name not in params:
                out.append(0.5)  # inactive (a conditional parameter): the middle, like a neutral value
                continue
            v, lo, hi = float(params[name]), low, high
            if log:
                v, lo, hi = math.log(v), math.log(lo), math.log(hi)
            out.append((v - lo) / (hi - lo) if hi > lo else 0.5)
        for name, choices in sorted(self.choices.items()):
            value = params.get(name, _MISSING)
            out.extend(1.0 if value == c and type(value) is type(c) else 0.0 for c in choices)
        return np.array(out, dtype=np.float64)


_MISSING = object()


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
        use_pruned: Trials stopped early count as observations at their last intermediate value
            (the learnt objective's learning curve), as a pessimistic estimate.
        fallback: The sampler used past ``switch_after``. Default:
            ``TPESampler(multivariate=True, group=True, constant_liar=True)``.
        blackbox: The sampler used before ``switch_after`` for a study nothing of which is known
            before training, or whose shape this one does not model. Default: ``GPSampler``.
        seed: Seeds the candidate draws, the random start-up and the default fallback.
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
        fallback: BaseSampler | None = None,
        blackbox: BaseSampler | None = None,
        seed: int | None = None,
        scored_against: Callable[[FrozenTrial], bool] | None = None,
    ) -> None:
        for name, value, least in (("n_startup_trials", n_startup_trials, 1), ("n_candidates", n_candidates, 1), ("n_refresh", n_refresh, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
        if switch_after is not None and (isinstance(switch_after, bool) or not isinstance(switch_after, int) or switch_after < n_startup_trials):
            raise ValueError(f"switch_after must be an integer >= n_startup_trials ({n_startup_trials}) or null, got {switch_after!r}")
        self._static = static_objectives
        self._scored_against = scored_against
        self._draw = candidates
        self._is_feasible = is_feasible
        self._n_startup = n_startup_trials
        self._n_candidates = n_candidates
        self._n_refresh = n_refresh
        self._switch_after = switch_after
        self._use_pruned = use_pruned
        self._seed = seed
        self._rng = np.random.default_rng(seed)
        self._random = RandomSampler(seed=seed)
        if fallback is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                fallback = optuna.samplers.TPESampler(multivariate=True, group=True, constant_liar=True, seed=seed)
        self._fallback = fallback
        if blackbox is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                blackbox = optuna.samplers.GPSampler(seed=seed, n_startup_trials=n_startup_trials, warn_independent_sampling=False)
        self._blackbox = blackbox
        self._pool: deque[tuple[dict[str, Any], dict[str, BaseDistribution]]] = deque(maxlen=n_candidates)
        self._costs: dict[tuple[Any, ...], tuple[float | None, ...] | None] = {}
        self._feasible: dict[tuple[Any, ...], bool] = {}
        self._plans: dict[int, dict[str, Any]] = {}  # trial number -> the chosen candidate's parameters
        self._modes: dict[int, str] = {}  # trial number -> "plan", "random", "blackbox" or "fallback"
        self._shape: tuple[int, int] | None | bool = False  # (learnt, known) objective indices; None: not modelled
        self._encoder = _Encoder()

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

    def _cost_of(self, params: Mapping[str, Any]) -> tuple[float | None, ...] | None:
        key = _key(params)
        if key not in self._costs:
            try:
                values = self._static(params)
            except (ValueError, TypeError, KeyError):
                values = None  # a candidate the cost function cannot evaluate is never proposed
            self._costs[key] = None if values is None else tuple(None if v is None else float(v) for v in values)
        return self._costs[key]

    def _feasible_candidate(self, params: Mapping[str, Any]) -> bool:
        if self._is_feasible is None:
            return True
        key = _key(params)
        if key not in self._feasible:
            self._feasible[key] = bool(self._is_feasible(params))
        return self._feasible[key]

    def _top_up(self, study: optuna.Study, trials: Sequence[FrozenTrial]) -> None:
        draw = self._draw
        if draw is None:
            distributions: dict[str, BaseDistribution] = {}
            for t in trials:
                for name, d in t.distributions.items():
                    distributions.setdefault(name, d)
            draw = random_candidates(distributions)
        n = self._n_candidates - len(self._pool) if len(self._pool) < self._n_candidates else self._n_refresh
        for params, dists in draw(self._rng, n):
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
            return
        self._shape = None  # no candidate could be costed: nothing is known before training

    def _plan(self, study: optuna.Study, trial: FrozenTrial, trials: Sequence[FrozenTrial], observed: Sequence[FrozenTrial]) -> dict[str, Any] | None:
        self._top_up(study, trials)
        self._resolve_shape(study.directions)
        if not isinstance(self._shape, tuple):
            return None
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

        xs, ys = [], []
        for t in observed:
            c = self._cost_of(t.params)
            if c is None or c[known] is None:
                continue
            xs.append(features(t.params, c[known]))
            ys.append(sign_a * float(self._observation(t)))
        if len(ys) < 2:
            return None
        cand_cost = np.array([sign_c * c[known] for _, c in pool])
        cand_x = np.stack([features(p, c[known]) for p, c in pool])
        pending = [t for t in trials if t.state == TrialState.RUNNING and t.params and t.number != trial.number]
        pend = [(t, c) for t in pending if (c := self._cost_of(t.params)) is not None and c[known] is not None]
        gp = self._fit(np.stack(xs), np.array(ys))
        mu, sigma = gp.predict(cand_x, return_std=True)

        front = []
        for t in trials:
            if t.state == TrialState.COMPLETE and t.values is not None and is_feasible_trial(t) and (self._scored_against is None or self._scored_against(t)):
                front.append((sign_c * t.values[known], sign_a * t.values[learnt]))
        if pend:  # the kriging believer: a running trial as if it had reached its predicted mean
            pmu = gp.predict(np.stack([features(t.params, c[known]) for t, c in pend]))
            front.extend((sign_c * c[known], float(m)) for (t, c), m in zip(pend, pmu))
        r_cost = float(max(cand_cost.max(), max((f[0] for f in front), default=-np.inf)))
        r_cost += 1e-9 * max(1.0, abs(r_cost))
        r_value = float(min(ys))
        scores = ehvi_2d(mu, sigma, cand_cost, np.array(front).reshape(-1, 2), (r_cost, r_value))
        best = np.flatnonzero(scores >= scores.max() - 1e-15 * max(1.0, abs(scores.max())))
        choice = int(best[self._rng.integers(len(best))])
        return dict(pool[choice][0])

    def _fit(self, x: np.ndarray, y: np.ndarray) -> Any:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        kernel = ConstantKernel(1.0, (1e-2, 1e2)) * Matern(length_scale=np.ones(x.shape[1]), length_scale_bounds=(5e-2, 2e1), nu=2.5) + WhiteKernel(
            1e-2, (1e-5, 1e0)
        )
        gp = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=2, random_state=int(self._rng.integers(2**31)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", UserWarning)
            gp.fit(x, y)
        return gp
