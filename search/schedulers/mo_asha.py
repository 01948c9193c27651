"""Multi-objective asynchronous successive halving (MO-ASHA) as a Ray Tune scheduler.

ASHA (Li et al., 2020) stops a trial at a rung (an epoch milestone) unless its result is in the
top ``1/reduction_factor`` of the results recorded at that rung. Ray Tune's ASHA ranks one
scalar metric; MO-ASHA (Schmucker et al., 2021) ranks *all* the sweep's objectives:

1. Feasible results (every spec constraint satisfied) come before infeasible ones, and those are
   ordered by their total constraint violation (Deb's constrained domination); results with a
   missing or non-finite objective come last.
2. Within each of those groups, by non-dominated sorting: the Pareto layer of the result.
3. Within a layer, by a tie-break that keeps the front spread out: NSGA-II's crowding distance
   (larger first), or an ε-net (Salinas et al., 2021): points picked greedily, each the furthest
   from those picked before it, in picking order.

A trial arriving at a rung is ranked among the results recorded there *and itself*; it
continues if fewer than ``ceil(k / reduction_factor)`` of those ``k`` results rank strictly
before it. The rank is the new trial's own position in that order, so a trial that dominates
every recorded result always continues, and one dominated by that many results is always
stopped. (Ordering indices are not priorities: treating them as such would rank a trial by the
position of some other point.)

With a ``judge`` (``scheduler.promote: ehvi``: the ``cost_aware`` sampler's model), a trial the rank
would stop continues when the model expects its remaining epochs to add more of the front, per
epoch, than a new candidate's would; the model never stops a trial the rank keeps.

The ranking functions are pure (arrays in, a decision out) and tested against brute force;
:class:`MultiObjectiveASHA` is the Ray Tune bookkeeping around them.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from analysis.pareto import nondominated_ranks
from search.schedulers.fifo import LiveTrialQueue
from search.schedulers.tie_breaks import TIE_BREAKS

__all__ = [
    "TIE_BREAKS",
    "MultiObjectiveASHA",
    "crowding_distance",
    "eps_net_order",
    "promotes",
    "rung_keys",
    "rung_milestones",
    "rung_position",
]

logger = logging.getLogger(__name__)

#: A ``scheduler.tie_break`` value: one of :data:`search.schedulers.tie_breaks.TIE_BREAKS`.
TieBreak = str


def _normalised(z: np.ndarray) -> np.ndarray:
    low = z.min(axis=0)
    span = z.max(axis=0) - low
    return (z - low) / np.where(span > 0, span, 1.0)


def crowding_distance(z: ArrayLike) -> np.ndarray:
    """NSGA-II crowding distance of each point of one front (minimisation, finite rows).

    Per objective, the two extreme points get ``inf`` and every other point the gap between its
    neighbours, divided by the objective's range; the distances add up over objectives. A larger
    distance means a less crowded point. Fewer than three points are all extreme (``inf``).
    """
    z = np.asarray(z, dtype=np.float64)
    n, m = z.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(m):
        order = np.argsort(z[:, j], kind="stable")
        column = z[order, j]
        span = column[-1] - column[0]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span > 0:
            distance[order[1:-1]] += (column[2:] - column[:-2]) / span
    return distance


def eps_net_order(z: ArrayLike) -> np.ndarray:
    """Greedy ε-net picking order of the points of one front (minimisation, finite rows).

    The first pick is the point closest to the ideal point (after normalising each objective to
    ``[0, 1]``); each next pick is the point furthest (Euclidean, normalised) from every point
    already picked; ties go to the lower index. Returns each point's position in that order
    (0 = picked first).
    """
    z = np.asarray(z, dtype=np.float64)
    n = len(z)
    position = np.empty(n, dtype=np.int64)
    if n == 0:
        return position
    f = _normalised(z)
    first = int(np.argmin(np.linalg.norm(f, axis=1)))
    picked = np.zeros(n, dtype=bool)
    nearest = np.full(n, np.inf)  # distance of each point to the nearest picked one
    current = first
    for step in range(n):
        position[current] = step
        picked[current] = True
        nearest = np.minimum(nearest, np.linalg.norm(f - f[current], axis=1))
        if step + 1 < n:
            current = int(np.argmax(np.where(picked, -np.inf, nearest)))
    return position


def rung_keys(z: ArrayLike, violation: ArrayLike, tie_break: TieBreak = "crowding") -> np.ndarray:
    """Sort keys of the results at one rung: a smaller key ranks first.

    Args:
        z: ``(k, m)`` objective values in minimisation form (``max`` objectives negated). A row
            with a non-finite value ranks after every finite row.
        violation: ``k`` total constraint violations (``<= 0`` is feasible, NaN is infeasible).
        tie_break: ``"crowding"`` or ``"eps_net"``, the order within one Pareto layer.

    Returns:
        ``(k, 4)`` float keys ``(group, violation, layer, tie)``, to compare lexicographically:
        ``group`` 0 feasible, 1 infeasible, 2 missing objectives; ``violation`` orders the
        infeasible ones; ``layer`` is the Pareto layer within the group; ``tie`` the tie-break
        within the layer (negated crowding distance, or ε-net picking position).
    """
    if tie_break not in TIE_BREAKS:
        raise ValueError(f"tie_break must be one of {', '.join(TIE_BREAKS)}, got {tie_break!r}")
    z = np.asarray(z, dtype=np.float64)
    violation = np.asarray(violation, dtype=np.float64)
    k = len(z)
    keys = np.zeros((k, 4))
    finite = np.isfinite(z).all(axis=1) if k else np.zeros(0, dtype=bool)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(violation) & (violation <= 0)
    keys[:, 0] = np.where(finite, np.where(ok, 0.0, 1.0), 2.0)
    keys[:, 1] = np.where(finite & ~ok, np.where(np.isfinite(violation), violation, np.inf), 0.0)
    for group in (0.0, 1.0):
        members = np.flatnonzero(keys[:, 0] == group)
        if len(members) == 0:
            continue
        layers = nondominated_ranks(z[members], ["min"] * z.shape[1])
        keys[members, 2] = layers
        for layer in np.unique(layers):
            idx = members[layers == layer]
            if tie_break == "crowding":
                keys[idx, 3] = -crowding_distance(z[idx])
            else:
                keys[idx, 3] = eps_net_order(z[idx])
    return keys


def rung_position(keys: np.ndarray, i: int) -> int:
    """How many results rank strictly before result ``i`` (lexicographic keys; ties share)."""
    mine = keys[i]
    before = np.zeros(len(keys), dtype=bool)
    equal = np.ones(len(keys), dtype=bool)
    for col in range(keys.shape[1]):  # lexicographic "less than", column by column
        before |= equal & (keys[:, col] < mine[col])
        equal &= keys[:, col] == mine[col]
    return int(before.sum())


def promotes(
    recorded: ArrayLike,
    recorded_violation: ArrayLike,
    new: ArrayLike,
    new_violation: float,
    reduction_factor: float,
    tie_break: TieBreak = "crowding",
) -> bool:
    """Whether a result arriving at a rung continues (True) or is stopped (False).

    Args:
        recorded: ``(r, m)`` results recorded at the rung before, minimisation form.
        recorded_violation: their ``r`` total constraint violations.
        new: the arriving result, ``m`` values in minimisation form.
        new_violation: its total constraint violation.
        reduction_factor: ``> 1``; the top ``ceil(k / reduction_factor)`` of the ``k = r + 1``
            results continue.
        tie_break: see :func:`rung_keys`.
    """
    new = np.asarray(new, dtype=np.float64).reshape(1, -1)
    recorded = np.asarray(recorded, dtype=np.float64).reshape(-1, new.shape[1])
    z = np.vstack([recorded, new])
    violation = np.append(np.asarray(recorded_violation, dtype=np.float64).reshape(-1), float(new_violation))
    keys = rung_keys(z, violation, tie_break)
    if keys[-1, 0] == 2.0:
        return False  # a missing or non-finite objective cannot be ranked: never promoted
    return rung_position(keys, len(z) - 1) < math.ceil(len(z) / reduction_factor)


def rung_milestones(grace_period: int, max_t: int, reduction_factor: float) -> list[int]:
    """Epochs at which trials are judged: ``grace_period * reduction_factor**k < max_t``.

    The same rungs as Ray Tune's ASHA with one bracket.
    """
    count = int(np.log(max_t / grace_period) / np.log(reduction_factor) + 1)
    # A result at the full budget ends its trial anyway, so there is no rung at ``max_t``.
    return sorted({int(grace_period * reduction_factor**k) for k in range(count)} - {max_t})


class MultiObjectiveASHA(LiveTrialQueue, FIFOScheduler):
    """Asynchronous successive halving over all of a sweep's objectives.

    Args:
        metrics: Objective metrics, as reported by the trainable.
        modes: ``"max"``/``"min"`` per metric.
        constraints: Objects with ``.metric`` and ``.violation(value)`` (the spec's
            constraints): a result that violates any ranks after every feasible one.
        max_t: Full budget (epochs); a trial reaching it is stopped.
        grace_period: First rung (epochs).
        reduction_factor: Keep the top ``1/reduction_factor`` at each rung.
        tie_break: Order within one Pareto layer: ``"crowding"`` or ``"eps_net"``.
        time_attr: The result key counting the budget.
        trial_key: Maps a Ray trial to the id its results are recorded under (a resumed sweep's
            continued trial keeps its id in the run dir); default ``trial.trial_id``.
        judge: ``(trial, epoch, result) -> bool | None``: a model's verdict on a feasible trial
            arriving at a rung: ``True`` keeps it even where the rank would stop it; ``False`` or
            ``None`` leave the decision to the rank (the model stops nothing itself). The sweep
            sets it to the ``cost_aware`` sampler's expected hypervolume improvement per epoch
            (``scheduler.promote: ehvi``). Either way the result is recorded at the rung.
    """

    def __init__(
        self,
        metrics: Sequence[str],
        modes: Sequence[str],
        constraints: Sequence[Any] = (),
        max_t: int = 100,
        grace_period: int = 1,
        reduction_factor: float = 3.0,
        tie_break: TieBreak = "crowding",
        time_attr: str = "epoch",
        trial_key: Any = None,
        judge: Callable[[Any, int, Mapping[str, Any]], bool | None] | None = None,
    ) -> None:
        super().__init__()
        if len(metrics) != len(modes) or not metrics:
            raise ValueError("give one mode per metric, and at least one metric")
        if reduction_factor <= 1:
            raise ValueError(f"reduction_factor must be > 1, got {reduction_factor}")
        if not 1 <= grace_period <= max_t:
            raise ValueError(f"grace_period must be in [1, max_t={max_t}], got {grace_period}")
        if tie_break not in TIE_BREAKS:
            raise ValueError(f"tie_break must be one of {', '.join(TIE_BREAKS)}, got {tie_break!r}")
        self._metrics = list(metrics)
        self._signs = np.array([-1.0 if m == "max" else 1.0 for m in modes])
        self._constraints = list(constraints)
        self._max_t = max_t
        self._rf = reduction_factor
        self._tie_break = tie_break
        self._time_attr = time_attr
        self._trial_key = trial_key
        self.milestones = rung_milestones(grace_period, max_t, reduction_factor)
        #: milestone -> {trial key: (objective vector in minimisation form, total violation)}
        self.rungs: dict[int, dict[str, tuple[np.ndarray, float]]] = {m: {} for m in self.milestones}
        self.judge = judge
        self.stopped = 0
        #: Results at a rung the judge gave a verdict on, and how many it kept that the rank would stop.
        self.judged = 0
        self.overruled = 0

    # ---- what one result contributes to a rung -----------------------------------------------
    def _key(self, trial: Any) -> str:
        return self._trial_key(trial) if self._trial_key is not None else trial.trial_id

    def point(self, result: Mapping[str, Any]) -> tuple[np.ndarray, float]:
        """A result's objective vector (minimisation form; NaN where missing) and total violation."""
        values = []
        for metric in self._metrics:
            v = result.get(metric)
            try:
                values.append(float(v))
            except (TypeError, ValueError):
                values.append(math.nan)
        # A missing or non-finite value cannot be shown feasible: the spec's one rule gives it the
        # largest violation (Constraint.violation_of).
        violation = sum(max(0.0, constraint.violation_of(result.get(constraint.metric))) for constraint in self._constraints)
        return self._signs * np.array(values), min(float(violation), sys.float_info.max)

    def seed(self, epoch_rows: Sequence[Mapping[str, Any]]) -> None:
        """Refill the rungs from a run dir's epoch rows (``trial_id``, ``epoch``, metrics)."""
        for row in epoch_rows:
            epoch = int(row.get("epoch") or 0)
            if epoch in self.rungs:
                self.rungs[epoch][str(row["trial_id"])] = self.point(row)

    def rung_tests(self) -> list[tuple[int, Callable[[Sequence[float]], bool]]]:
        """Each rung's epoch, and whether a result arriving there now would continue by rank.

        A test takes one value per metric (in the order of ``metrics``) and ranks it against the
        results recorded at its rung when this is called, as :meth:`on_trial_result` would; only
        the constraints on those metrics count (the ``cost_aware`` sampler asks about candidates a
        known constraint has not ruled out).
        """
        mine = [c for c in self._constraints if c.metric in self._metrics]

        def test(milestone: int) -> Callable[[Sequence[float]], bool]:
            recorded = list(self.rungs[milestone].values())
            points = np.array([p for p, _ in recorded]).reshape(-1, len(self._metrics))
            violations = np.array([v for _, v in recorded], dtype=np.float64)

            def passes(values: Sequence[float]) -> bool:
                result = dict(zip(self._metrics, values))
                violation = sum(max(0.0, c.violation_of(result.get(c.metric))) for c in mine)
                return promotes(points, violations, self._signs * np.asarray(values, dtype=np.float64), violation, self._rf, self._tie_break)

            return passes

        return [(milestone, test(milestone)) for milestone in self.milestones]

    # ---- Ray Tune's TrialScheduler interface ---------------------------------------------------
    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return True  # the objectives come from the spec, whatever single metric Tune passes

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if self._time_attr not in result:
            return TrialScheduler.CONTINUE
        t = int(result[self._time_attr])
        if t >= self._max_t:
            return TrialScheduler.STOP  # full budget reached (like ASHA with stop_last_trials)
        key = self._key(trial)
        for milestone in reversed(self.milestones):  # the highest rung this result reaches
            if t < milestone:
                continue
            recorded = self.rungs[milestone]
            if key in recorded:
                break  # judged at this rung already (e.g. before a resume)
            z, violation = self.point(result)
            points = np.array([p for p, _ in recorded.values()]).reshape(-1, len(z))
            violations = np.array([v for _, v in recorded.values()], dtype=np.float64)
            keep = promotes(points, violations, z, violation, self._rf, self._tie_break)
            verdict = self._verdict(trial, t, result) if violation <= 0 and np.isfinite(z).all() else None
            if verdict is not None:
                self.judged += 1
                if verdict and not keep:  # the model keeps what the rank would stop; it stops nothing
                    self.overruled += 1
                    keep = True
            recorded[key] = (z, violation)
            if not keep:
                self.stopped += 1
                return TrialScheduler.STOP
            break
        return TrialScheduler.CONTINUE

    def _verdict(self, trial: Any, epoch: int, result: Mapping[str, Any]) -> bool | None:
        if self.judge is None:
            return None
        try:
            verdict = self.judge(trial, epoch, result)
        except Exception:  # a model that fails must not end the sweep: the rank decides
            logger.warning("MO-ASHA: the model's promotion failed; ranking instead", exc_info=True)
            self.judge = None
            return None
        return None if verdict is None else bool(verdict)

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        self.track(trial)

    def on_trial_error(self, tune_controller: Any, trial: Any) -> None:
        self.untrack(trial)

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        self.untrack(trial)  # its rung results were recorded as they arrived

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        self.untrack(trial)

    def debug_string(self) -> str:
        rungs = ", ".join(f"epoch {m}: {len(r)}" for m, r in self.rungs.items())
        judged = f", {self.judged} judged by the model ({self.overruled} kept against the rank)" if self.judged else ""
        return f"MO-ASHA ({self._tie_break}, reduction factor {self._rf:g}): {self.stopped} stopped{judged}; rungs {rungs}"
