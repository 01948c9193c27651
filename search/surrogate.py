"""The cost-aware sampler's surrogate: costs known up to a learnt rate, Gaussian processes, fidelity.

:mod:`search.costaware` decides what to train; this module holds what its model is made of: the
:class:`Affine` cost (known floor and span, learnt rate), the Gaussian processes it fits (with the
kernel reuse that bounds a suggestion's cost at scale), the epoch as a model input
(:func:`fidelity`), and :class:`KnownModel`, the fitted model of one decision with what a point is
scored against.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from search.ehvi import ehvi_2d

__all__ = ["Affine", "GaussianProcesses", "KnownModel", "curve_points", "fidelity", "key", "refined", "surviving"]


@dataclass(frozen=True)
class Affine:
    """A cost known up to a learnt rate: ``floor + span * rate``, with ``rate >= 0`` learnt by training.

    A spiking net's energy is its real-valued MACs (known) plus its synaptic operations at a spike
    rate of 1 (known) times the spike rate it learns. The cost-aware sampler then models the rate
    (its log) with a second Gaussian process and averages each candidate's expected improvement over
    Monte Carlo draws of its learnt objective and its rate, each draw's cost computed from the known
    floor and span: what is known is computed, only what is learnt is modelled.

    Attributes:
        floor: The cost at rate 0 (a spiking net's real-valued MACs at E_MAC: no spike at all).
        span: What a rate of 1 adds (its synaptic operations with every neuron spiking every step).
    """

    floor: float
    span: float

    def rate_of(self, value: float) -> float | None:
        """The rate a reported cost implies (None when ``span`` is 0)."""
        return (float(value) - self.floor) / self.span if self.span > 0 else None


@dataclass(frozen=True)
class KnownModel:
    """The learnt objective's GP for a known cost, and what a point is scored against."""

    gp: Any
    pool: list[tuple[dict[str, Any], tuple[float | Affine | None, ...]]]
    features: Callable[[Mapping[str, Any], float], np.ndarray]  # (params, cost) -> one row at the full budget
    cost_sign: float
    known: int
    front: np.ndarray  # (k, 2): (signed cost, signed learnt value)
    reference: tuple[float, float]
    full: int = 1  # the full budget (epochs) the model predicts at

    def scores(self, x: np.ndarray, cost: np.ndarray) -> np.ndarray:
        """Expected hypervolume improvement of rows ``x`` (model inputs) with signed costs ``cost``."""
        mu, sigma = self.gp.predict(x, return_std=True)
        return ehvi_2d(mu, sigma, cost, self.front, self.reference)

    def candidate_scores(self) -> np.ndarray:
        """Each pool candidate's expected hypervolume improvement."""
        x = np.concatenate([self.features(p, c[self.known]) for p, c in self.pool])
        return self.scores(x, np.array([self.cost_sign * c[self.known] for _, c in self.pool]))


def surviving(
    model: KnownModel,
    pool: list[tuple[dict[str, Any], Any]],
    scores: np.ndarray,
    rungs: Sequence[tuple[float, Callable[[float, float], bool]]],
    batch: int = 16,
) -> np.ndarray:
    """``scores`` times each candidate's chance of getting past the scheduler's rungs.

    A trial the scheduler stops at a rung adds to the front only what it reached there, so an
    improvement at the full budget is only expected of the candidates likely to get through.
    ``rungs`` holds, per rung, its :func:`fidelity` and ``passes(signed learnt value, cost)``: whether
    a result would continue there now (the scheduler's rank against the results recorded at it).
    A candidate's learnt value at a rung is predicted by the model at the rung's fidelity; the value
    from which it passes is found by bisection over the prediction's ±4 sigma; its weight is its
    smallest chance over the rungs (the hardest rung decides: the values at two rungs of one trial
    go together). Candidates are weighed best-scored first, ``batch`` at a time, until the best
    weighed score is at least every unweighed one's (a weight is at most 1, so the argmax is exact);
    the rest keep their scores.
    """
    from scipy.stats import norm

    order = np.argsort(-scores, kind="stable")
    out = scores.astype(np.float64).copy()
    for start in range(0, len(order) if rungs else 0, batch):
        idx = order[start : start + batch]
        idx = idx[scores[idx] > 0]
        if len(idx) == 0:
            break
        x = np.concatenate([model.features(pool[i][0], pool[i][1][model.known]) for i in idx])
        weight = np.ones(len(idx))
        for at_rung, passes in rungs:
            x[:, -1] = at_rung
            mu, sd = model.gp.predict(x, return_std=True)
            for j, (i, m, s) in enumerate(zip(idx, mu, np.maximum(sd, 1e-9))):
                cost, lo, hi = pool[i][1][model.known], m - 4 * s, m + 4 * s
                if weight[j] == 0.0 or passes(lo, cost):
                    continue
                if not passes(hi, cost):
                    weight[j] = 0.0
                    continue
                for _ in range(7):
                    mid = 0.5 * (lo + hi)
                    lo, hi = (lo, mid) if passes(mid, cost) else (mid, hi)
                weight[j] = min(weight[j], float(norm.sf((hi - m) / s)))
        out[idx] = scores[idx] * weight
        rest = order[start + batch :]
        if len(rest) == 0 or out[order[: start + batch]].max() >= scores[rest].max():
            break
    return out


def key(params: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """A parameter set as a hashable key (its items, sorted by name)."""
    return tuple(sorted(params.items()))


def refined(
    pool: list[tuple[dict[str, Any], Any]],
    scores: np.ndarray,
    score: Callable[[list[tuple[dict[str, Any], Any]]], np.ndarray],
    near: Callable[[np.random.Generator, list[Mapping[str, Any]], int], list[tuple[dict[str, Any], Any]]] | None,
    rng: np.random.Generator,
    n: int,
    usable: Callable[[Mapping[str, Any]], Any],
    taken: set[tuple[Any, ...]],
    parents: int = 8,
) -> tuple[list[tuple[dict[str, Any], Any]], np.ndarray]:
    """The pool, scored, and ``n`` candidates drawn ``near`` its best-scored ``parents``, scored by ``score``.

    One step of local search on the acquisition: a random pool rarely holds the best point of a
    narrow ridge, and candidates near the best ones are scored by the same model in microseconds.
    Pool entries are ``(params, cost)``; ``usable(params)`` gives a candidate's cost, or ``None``
    where it is infeasible or cannot be costed; ``taken`` holds the keys of parameter sets not to
    propose (trained, running, pooled).
    """
    if near is None or n <= 0 or not pool:
        return pool, scores
    children = []
    for params, _ in near(rng, [pool[i][0] for i in np.argsort(-scores, kind="stable")[:parents]], n):
        if (k := key(params)) not in taken and (cost := usable(params)) is not None:
            taken.add(k)
            children.append((params, cost))
    return (pool + children, np.concatenate([scores, score(children)])) if children else (pool, scores)


def fidelity(epoch: int, full: int) -> float:
    """An epoch as a fraction of the full budget, on a log scale (1 at the full budget)."""
    return 1.0 if full <= 1 else min(1.0, math.log(max(epoch, 1)) / math.log(full))


def curve_points(x: np.ndarray, curve: Mapping[int, float], full: int, before: int | None) -> list[tuple[np.ndarray, float]]:
    """A learning curve as model observations: ``x`` with each epoch's :func:`fidelity` appended.

    Epochs 1, 2, 4, ... below ``before`` (a finished trial's last value is its own observation);
    with ``before=None`` (a running trial) those and its latest epoch. Non-finite values are left out.
    """
    latest = max(curve, default=0)
    keep = [
        (epoch, v) for epoch, v in sorted(curve.items())
        if v is not None and math.isfinite(v) and (epoch < before if before is not None else True)
        and (epoch & (epoch - 1) == 0 or (before is None and epoch == latest))
    ]
    return [(np.append(x, fidelity(epoch, full)), float(v)) for epoch, v in keep]


class GaussianProcesses:
    """Fits the sampler's Gaussian processes and keeps each model's last kernel for reuse."""

    def __init__(self) -> None:
        #: model -> (its last kernel, the points its hyperparameters were fitted on)
        self.kernels: dict[str, tuple[Any, int]] = {}

    def fit(self, x: np.ndarray, y: np.ndarray, *, rng: np.random.Generator, model: str = "learnt", trials: int = 0, reuse: bool = False) -> Any:
        """A GP on ``(x, y)`` (the observations of ``trials`` trials), seeded from ``rng``. Past 64 trials the kernel of
        the last fit of the same ``model`` is reused: as it is while the points have grown by less
        than a tenth since its hyperparameters were fitted, else as the start of a fit without
        random restarts. A suggestion's cost then grows with the points, not with hyperparameter
        searches. ``reuse``: the last kernel as it is at any size (a judgement between suggestions),
        and it is not stored as the last."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        kernel = ConstantKernel(1.0, (1e-2, 1e2)) * Matern(length_scale=np.ones(x.shape[1]), length_scale_bounds=(5e-2, 2e1), nu=2.5) + WhiteKernel(
            1e-2, (1e-5, 1e0)
        )
        restarts, optimizer, fitted_at = 2, "fmin_l_bfgs_b", len(y)
        last, last_n = self.kernels.get(model, (None, 0))
        if reuse and last is not None and last.k1.k2.length_scale.shape == (x.shape[1],):
            gp = GaussianProcessRegressor(last, normalize_y=True, optimizer=None)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                return gp.fit(x, y)
        if trials > 64 and last is not None and last.k1.k2.length_scale.shape == (x.shape[1],):
            kernel, restarts = last, 0
            if len(y) < 1.1 * last_n:
                optimizer, fitted_at = None, last_n
        gp = GaussianProcessRegressor(
            kernel, normalize_y=True, optimizer=optimizer, n_restarts_optimizer=restarts, random_state=int(rng.integers(2**31))
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", UserWarning)
            gp.fit(x, y)
        self.kernels[model] = (gp.kernel_, fitted_at)
        return gp
