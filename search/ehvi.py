"""Expected hypervolume improvement in two objectives: one learnt (Gaussian), one exact cost.

See :mod:`search.costaware` for the method; :func:`ehvi_2d` is its acquisition, in closed form.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ehvi_2d"]


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
