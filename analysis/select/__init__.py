"""Pick configurations from a sweep: under conditions, best by a metric, or the knee.

:func:`select_trials` picks, among the completed full-budget trials that satisfy the spec's
constraints and every ``--where`` condition (:class:`Condition`), the best by one metric or the
knee of their front, and returns a plain :class:`Selection`; :func:`front_position` says where
one trial sits on its run's front. Compute only: exporting a pick is :mod:`analysis.export`
(the bundle's files: :mod:`analysis.bundle`), re-training it over seeds :mod:`analysis.seeds`,
and the command line (``python -m analysis select``) is ``analysis/select/__main__.py``.
An impossible condition raises :class:`NoMatchError` with one line saying what came closest.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from search.bounds import BoundSyntaxError, parse_bound, satisfies
from analysis.pareto import hypervolume, knee_bends, knee_point, nondominated_ranks, to_minimization
from analysis.results import ResultsError, RunFront, numeric_column, parse_objectives

__all__ = [
    "Condition",
    "NoMatchError",
    "Selection",
    "front_position",
    "select_trials",
]


class NoMatchError(ResultsError):
    """No trial satisfies the selection's conditions (exit status 2, one line)."""


# --------------------------------------------------------------------------------------------
# Conditions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """``column OP number`` over a trials table, OP one of ``<= < >= > ==``.

    The column may be any numeric column: a metric (``energy_uj <= 2``) or a numeric parameter
    (``model.width >= 128``). A missing or non-finite value never satisfies a condition. The
    grammar and the test are :mod:`search.bounds`' (shared with the spec's constraints).
    """

    text: str
    column: str
    op: str
    value: float

    @classmethod
    def parse(cls, text: str) -> list[Condition]:
        """Parse ``"energy_uj <= 2"``; ``" and "`` or ``","`` join several conditions.

        Raises:
            ResultsError: On anything else.
        """
        conditions = []
        for part in re.split(r"\s+and\s+|,", text):
            try:
                column, op, number, value = parse_bound(part)
            except BoundSyntaxError as exc:
                if exc.op is None:
                    raise ResultsError(f"--where: expected 'metric <= number' (or <, >=, >, ==), got {part.strip()!r}") from None
                raise ResultsError(f"--where: expected a number after {exc.op!r} in {part.strip()!r}, got {exc.number!r}") from None
            conditions.append(cls(text=f"{column} {op} {number}", column=column, op=op, value=value))
        return conditions

    def mask(self, trials: pa.Table) -> np.ndarray:
        """Rows of ``trials`` that satisfy the condition.

        Raises:
            ResultsError: If the column does not exist or is not numeric.
        """
        if self.column not in trials.column_names:
            raise ResultsError(f"--where: no column {self.column!r} in this sweep's trials")
        return satisfies(numeric_column(trials, self.column), self.op, self.value)


# --------------------------------------------------------------------------------------------
# Selection (compute)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Selection:
    """Which trials were picked, from what and why; plain data.

    Attributes:
        front: The run's front (competing trials, feasibility, ranks, knee, hypervolume).
        conditions: The ``--where`` conditions.
        rule: How the picks were ordered, in words (``highest val_accuracy``, ``knee …``).
        matching: Indices (into ``front.trials``) of the feasible trials meeting every condition.
        picks: Indices of the picked trials, best first.
    """

    front: RunFront
    conditions: tuple[Condition, ...]
    rule: str
    matching: np.ndarray
    picks: tuple[int, ...]

    def describe(self) -> str:
        """One line: the rule, the conditions and how many trials they left."""
        where = " and ".join(c.text for c in self.conditions)
        constraints = ", ".join(c.text for c in self.front.run.spec.constraints)
        pool = f"{len(self.matching)} of {len(self.front.points)} full-budget trials"
        limits = " and ".join(filter(None, [constraints, where]))
        return f"{self.rule} among {pool}" + (f" with {limits}" if limits else "")


def _metric_mode(metric: str, front: RunFront) -> str:
    spec_modes = {o.metric: o.mode for o in front.objectives}
    text_metric, _, mode = metric.partition(":")
    if mode:
        if mode not in ("max", "min"):
            raise ResultsError(f"--prefer: the mode of {text_metric} must be max or min, got {mode!r}")
        return mode
    if text_metric in spec_modes:
        return spec_modes[text_metric]
    parsed = parse_objectives([text_metric], front.run.spec)  # kind-based default, or a clear error
    return parsed[0].mode


def _no_match_message(front: RunFront, conditions: Sequence[Condition], feasible: np.ndarray) -> str:
    pool = int(feasible.sum())
    where = " and ".join(c.text for c in conditions)
    if not len(front.points):
        return f"no trial to select from: {front.run.name} has no completed full-budget trial with finite objectives yet"
    if pool == 0:
        return f"no trial satisfies the spec's constraints ({', '.join(c.text for c in front.run.spec.constraints)}) in {front.run.name}"
    closest = []
    for condition in conditions:
        values = numeric_column(front.trials, condition.column)[feasible]
        values = values[np.isfinite(values)]
        if len(values):
            best = values.min() if condition.op in ("<=", "<") else values.max() if condition.op in (">=", ">") else values[np.argmin(np.abs(values - condition.value))]
            kind = "lowest" if condition.op in ("<=", "<") else "highest" if condition.op in (">=", ">") else "closest"
            closest.append(f"{kind} {condition.column} is {best:.4g}")
    return f"no trial satisfies --where {where!r}: of {pool} full-budget feasible trials, " + ", ".join(closest)


def select_trials(
    front: RunFront,
    where: Sequence[Condition | str] = (),
    prefer: str | None = None,
    knee: bool = False,
    top: int = 1,
) -> Selection:
    """Pick the best ``top`` trials of a run under conditions.

    Candidates are the run's competing trials (completed, full budget, finite objectives)
    that satisfy the spec's constraints and every condition.

    * ``prefer="val_accuracy"`` (or ``"metric:max"``/``"metric:min"``; also the default, with
      the first objective): best value first; ties go to the lower non-dominated rank among
      the candidates, then to the better values of the other objectives.
    * ``knee=True``: the knee of the candidates' own front first, then the other candidates
      by rank, nearest to the knee (objectives normalised to [0, 1]) first.

    Args:
        front: The run's front (:func:`analysis.results.run_front`).
        where: Conditions (``"energy_uj <= 2"`` strings or :class:`Condition`).
        prefer: The metric to optimise.
        knee: Pick the knee instead (exclusive with ``prefer``).
        top: How many trials to pick, at most.

    Raises:
        NoMatchError: When no trial satisfies the constraints and conditions.
        ResultsError: On an unknown column, or both ``prefer`` and ``knee``.
    """
    if prefer and knee:
        raise ResultsError("choose one of --prefer METRIC and --knee")
    if top < 1:
        raise ResultsError(f"--top must be >= 1, got {top}")
    conditions: list[Condition] = []
    for item in where:
        conditions += Condition.parse(item) if isinstance(item, str) else [item]
    mask = front.feasible.copy()
    for condition in conditions:
        mask &= condition.mask(front.trials)
    matching = np.flatnonzero(mask)
    if not len(matching):
        raise NoMatchError(_no_match_message(front, conditions, front.feasible))
    points = front.points[matching]
    directions = front.directions
    ranks = nondominated_ranks(points, directions)
    z = to_minimization(points, directions)
    if knee:
        k = knee_point(points, directions)
        assert k is not None  # the candidates have finite objectives
        span = z.max(axis=0) - z.min(axis=0)
        normalised = (z - z.min(axis=0)) / np.where(span > 0, span, 1.0)
        distance = np.linalg.norm(normalised - normalised[k], axis=1)
        order = sorted(range(len(matching)), key=lambda i: (i != k, ranks[i], distance[i], i))
        rule = (
            "knee of the front"
            if knee_bends(points, directions)
            else "no knee (the front has fewer than 3 points or does not bend towards the ideal point): "
            "the front point closest to the ideal point, objectives normalised to [0, 1]"
        )
    else:
        metric = prefer or f"{front.objectives[0].metric}:{front.objectives[0].mode}"
        name = metric.partition(":")[0]
        if name not in front.trials.column_names:
            raise ResultsError(f"--prefer: no metric {name!r} in this sweep's trials")
        mode = _metric_mode(metric, front)
        values = numeric_column(front.trials, name)[matching]
        key = np.where(np.isfinite(values), -values if mode == "max" else values, np.inf)
        order = sorted(range(len(matching)), key=lambda i: (key[i], ranks[i], *z[i], i))
        rule = f"{'highest' if mode == 'max' else 'lowest'} {name}"
    picks = tuple(int(matching[i]) for i in order[:top])
    return Selection(front=front, conditions=tuple(conditions), rule=rule, matching=matching, picks=picks)


# --------------------------------------------------------------------------------------------
# Where a trial sits on the front (compute)
# --------------------------------------------------------------------------------------------


def front_position(front: RunFront, index: int) -> dict[str, Any]:
    """Facts about one competing trial's place on its run's front, for the card.

    Returns:
        A JSON-ready dict: ``rank``, ``on_front``, ``knee``, ``front_size``, ``feasible_trials``,
        ``position`` (1-based along the front, best first objective first) and
        ``hypervolume_contribution`` (what the front loses without it) for a front trial, or
        ``dominated_by`` (front trial ids) otherwise, and per objective the trial's place
        among the feasible trials (``places``).
    """
    ids = front.trial_ids
    feasible = np.flatnonzero(front.feasible)
    info: dict[str, Any] = {
        "rank": int(front.ranks[index]),
        "on_front": bool(front.ranks[index] == 0),
        "knee": index == front.knee,
        "knee_bends": bool(len(front.front)) and knee_bends(front.points[front.front], front.directions),
        "knee_trial": ids[front.knee] if front.knee is not None else None,
        "front_size": int(len(front.front)),
        "feasible_trials": int(len(feasible)),
        "feasible": bool(front.feasible[index]),
        "hypervolume": front.hypervolume,
        "reference": list(front.reference.values),
    }
    z = to_minimization(front.points, front.directions)
    if info["on_front"]:
        order = [int(i) for i in front.front]
        position = order.index(index)
        info["position"] = position + 1
        info["neighbours"] = [ids[order[p]] for p in (position - 1, position + 1) if 0 <= p < len(order)]
        others = [i for i in feasible if i != index]
        without = hypervolume(front.points[others], front.directions, front.reference.values) if others else 0.0
        info["hypervolume_contribution"] = front.hypervolume - without
    else:
        dominators = [int(i) for i in front.front if (z[i] <= z[index]).all() and (z[i] < z[index]).any()]
        info["dominated_by"] = [ids[i] for i in dominators]
    places = {}
    for j, objective in enumerate(front.objectives):
        better = int((z[feasible, j] < z[index, j]).sum())
        places[objective.metric] = better + 1
    info["places"] = places
    return info
