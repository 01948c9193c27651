"""Pick deployable configurations from a sweep and export them as self-describing bundles.

``python -m analysis.select RUN_DIR --where "energy_uj <= 2" --prefer val_accuracy --export DIR``
picks, among the completed full-budget trials that satisfy the spec's constraints and every
``--where`` condition, the best by one metric (``--prefer``) or the knee of their front
(``--knee``), ``--top K`` of them, and writes one bundle per pick:

``config.yaml``
    A spec that reruns exactly this configuration with ``python -m search.run config.yaml``:
    the trial's fully resolved hyper-parameters in ``fixed``, its seed as the only searched
    parameter (a one-point grid), no early stopping.
``model.pt`` / ``preprocessing.json``
    The deployable model's state dict (``torch.load(path, weights_only=True)`` reads it) and
    what it takes: inputs in the data set's natural units (pixels in [0, 1], the ``.npz``
    values as stored), ``N × C × H × W``; the training split's standardisation is inside the
    model. :func:`load_bundle` rebuilds it, without the sweep or its data.
``model.onnx`` (G2G) / ``model.nir`` (SNE)
    The same model outside PyTorch (needs the ``deploy`` extra): an ONNX graph (opset 18;
    block layers as gather + batched matmul, masked layers' zeros stored sparse), or a NIR
    graph of the active spiking students and the head. Both are run again by their own
    runtime (onnxruntime, snntorch) on the validation split.
``card.md`` / ``metrics.json``
    Recorded metrics and costs, the validation (and test) accuracy measured again from the
    exported weights, where the trial sits on the sweep's front, and with ``--verify-seeds N``
    the mean ± std of N re-trainings with seeds ``s, s+1, …`` (a sweep of its own, on Ray:
    locally, or on a cluster with ``--address``).

Exporting the trial a bundle directory already holds replaces it (the same command twice gives
the same bundle); a directory holding another trial's bundle needs ``--overwrite``.

Selection is compute (:func:`select_trials` → :class:`Selection`), export is I/O
(:func:`export_bundle`, :func:`verify_seeds`). User errors print one line and exit with 2; an
impossible ``--where`` says so the same way.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import math
import os
import posixpath
import re
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import yaml

from search.cli import fail
from trainables.registry import metric_table
from trainables.report import format_number
from analysis.pareto import hypervolume, knee_point, nondominated_ranks, to_minimization
from analysis.results import (
    ResultsError,
    RunFront,
    RunResults,
    analyze_run,
    filter_trials,
    numeric_column,
    parse_objectives,
)

__all__ = [
    "Bundle",
    "Condition",
    "NoMatchError",
    "REPRODUCE_TOLERANCE",
    "SeedCheck",
    "Selection",
    "bundle_spec",
    "export_bundle",
    "load_bundle",
    "load_bundle_model",
    "main",
    "reevaluate",
    "select_trials",
    "verify_seeds",
]

EXIT_MISMATCH = 1
#: Exported weights must reproduce the recorded validation accuracy within this (0.5 points).
REPRODUCE_TOLERANCE = 0.005

CONFIG_FILE = "config.yaml"
WEIGHTS_FILE = "model.pt"
PREPROCESSING_FILE = "preprocessing.json"
CARD_FILE = "card.md"
METRICS_FILE = "metrics.json"
SEEDS_DIR = "seeds"

#: Config sections a bundle spec takes from the spec's own sections, not from ``fixed``.
_SPEC_SECTIONS = ("data", "budget", "runtime", "seed")
#: Cost columns of the selection table, when the run has them.
_TABLE_COSTS = ("energy_uj", "macs", "synops")
_CONDITION_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(<=|>=|==|<|>)\s*([^\s]+)\s*$")


class NoMatchError(ResultsError):
    """No trial satisfies the selection's conditions (exit status 2, one line)."""


# --------------------------------------------------------------------------------------------
# Conditions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """``column OP number`` over a trials table, OP one of ``<= < >= > ==``.

    The column may be any numeric column: a metric (``energy_uj <= 2``) or a numeric parameter
    (``model.width >= 128``). A missing or non-finite value never satisfies a condition.
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
            match = _CONDITION_RE.match(part)
            if not match:
                raise ResultsError(f"--where: expected 'metric <= number' (or <, >=, >, ==), got {part.strip()!r}")
            column, op, number = match.groups()
            try:
                value = float(number)
            except ValueError:
                raise ResultsError(f"--where: expected a number after {op!r} in {part.strip()!r}, got {number!r}") from None
            conditions.append(cls(text=f"{column} {op} {number}", column=column, op=op, value=value))
        return conditions

    def mask(self, trials: pa.Table) -> np.ndarray:
        """Rows of ``trials`` that satisfy the condition.

        Raises:
            ResultsError: If the column does not exist or is not numeric.
        """
        if self.column not in trials.column_names:
            raise ResultsError(f"--where: no column {self.column!r} in this sweep's trials")
        values = numeric_column(trials, self.column)
        with np.errstate(invalid="ignore"):
            ok = {
                "<=": values <= self.value,
                "<": values < self.value,
                ">=": values >= self.value,
                ">": values > self.value,
                "==": values == self.value,
            }[self.op]
        return np.isfinite(values) & ok


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
        rule = "knee of the front"
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


# --------------------------------------------------------------------------------------------
# Export (I/O)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeedCheck:
    """Re-training of a pick with several seeds.

    Attributes:
        seeds: The seeds asked for.
        rows: Per finished seed: ``seed`` and the recorded metrics.
        summary: Per metric: ``mean``, ``std`` (sample standard deviation; 0 for one seed), ``n``.
        run_dir: The verification sweep's run dir.
    """

    seeds: tuple[int, ...]
    rows: tuple[dict[str, Any], ...]
    summary: dict[str, dict[str, float]]
    run_dir: str


@dataclass(frozen=True)
class Bundle:
    """One exported pick.

    Attributes:
        path: The bundle directory.
        run: The sweep's name.
        run_dir: The sweep's run dir, as given (path or URI).
        trainable: The trainable family (``g2g``, ``sne``, …).
        trial_id: The picked trial.
        pick: 1-based place among the picks.
        rule: How it was picked (``Selection.describe()``).
        seed: The trial's seed.
        recorded: The trial's recorded metrics (its last report, at full budget).
        params: The trial's searched and fixed parameters.
        reproduced: Metrics measured again from the exported weights (``val_accuracy``,
            ``val_loss``, ``test_accuracy``), or ``None`` when that was not possible.
        reproduce_note: Why ``reproduced`` is missing, or ``""``.
        position: Where it sits on the front (:func:`front_position`).
        objectives: ``[(metric, mode), …]`` of the analysis.
        seeds: The seed re-training, when run.
        preprocessing: What the model takes and returns (``preprocessing.json``).
        portable: The portable file's facts (``format``, ``file``, MACs counted from an ONNX
            graph, its ``val_accuracy`` by its own runtime) or its ``error``; None when the
            family has no portable format.
        replaced: ``re-exported`` / ``overwritten`` when an earlier bundle was replaced.
    """

    path: Path
    run: str
    run_dir: str
    trainable: str
    trial_id: str
    pick: int
    rule: str
    seed: int
    recorded: dict[str, Any]
    params: dict[str, Any]
    reproduced: dict[str, float] | None
    reproduce_note: str
    position: dict[str, Any]
    objectives: tuple[tuple[str, str], ...]
    seeds: SeedCheck | None = None
    preprocessing: dict[str, Any] = field(default_factory=dict)
    portable: dict[str, Any] | None = None
    replaced: str = ""

    @property
    def reproduction_error(self) -> float | None:
        """``|reproduced - recorded|`` of ``val_accuracy``, or ``None`` when not re-measured."""
        if self.reproduced is None:
            return None
        return abs(self.reproduced["val_accuracy"] - float(self.recorded["val_accuracy"]))

    @property
    def reproduces(self) -> bool | None:
        """Whether the weights reproduce the recorded ``val_accuracy`` within 0.5 points."""
        error = self.reproduction_error
        return None if error is None else error <= REPRODUCE_TOLERANCE + 1e-12


def bundle_spec(run: RunResults, params: Mapping[str, Any], name: str, seeds: Sequence[int] | None = None) -> dict[str, Any]:
    """A raw spec that retrains one trial: its resolved config fixed, its seed(s) a grid.

    Args:
        run: The sweep the trial belongs to (its spec gives data, budget, objectives,
            constraints and run settings).
        params: The trial's parameters (searched and fixed, dotted names).
        name: The new spec's name.
        seeds: Seeds to train with (default: the trial's own seed, one trial).

    Returns:
        A mapping that :func:`search.spec.parse_spec` accepts; ``yaml.safe_dump`` it to a file.
    """
    from search.space import trial_config
    from trainables.config import flatten
    from trainables.registry import get_trainable

    spec = run.spec
    config = trial_config(spec, params)
    defaults = flatten(get_trainable(spec.trainable).defaults)
    fixed = {
        key: value
        for key, value in flatten(config).items()
        if key.split(".")[0] not in _SPEC_SECTIONS and key in defaults and not isinstance(value, Mapping)
    }
    seeds = [int(config["seed"])] if seeds is None else [int(s) for s in seeds]
    raw = spec.model_dump(by_alias=True, exclude_none=True)
    raw["name"] = name
    raw["description"] = (
        f"trial {name.rsplit('-', 1)[-1]} of sweep {run.name} ({run.location}), exported by analysis.select: "
        "its resolved config, retrained by python -m search.run with this file"
    )
    raw["constraints"] = [c.text for c in spec.constraints]
    raw["space"] = {"seed": {"choice": seeds}}
    raw["fixed"] = fixed
    raw["sampler"] = {"name": "grid"}
    raw["scheduler"] = {"name": "none"}
    raw["run"] = {**raw.get("run", {}), "num_samples": len(seeds)}
    raw["run"].pop("max_concurrent", None)
    return raw


def _checkpoint_state(run: RunResults, row: Mapping[str, Any]) -> dict[str, Any]:
    """The trial's last checkpoint (``state.pt``), read through the run dir's filesystem."""
    import torch

    from trainables.training import CHECKPOINT_FILE

    checkpoint = row.get("checkpoint")
    if not checkpoint:
        raise ResultsError(f"trial {row['trial_id']} has no checkpoint to export")
    candidates = [posixpath.join(checkpoint, CHECKPOINT_FILE)]
    # The run dir may have moved since the sweep (copied, synced down from s3): look inside it.
    trial_dir = posixpath.basename(str(row.get("trial_dir") or f"trial_{row['trial_id']}").rstrip("/"))
    candidates.append(run.path(trial_dir, posixpath.basename(checkpoint.rstrip("/")), CHECKPOINT_FILE))
    for path in candidates:
        try:
            with run.filesystem.open_input_stream(path) as stream:
                data = stream.read()
        except (FileNotFoundError, OSError):
            continue
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    raise ResultsError(f"trial {row['trial_id']}: checkpoint not found at {candidates[0]} nor {candidates[1]}")


def reevaluate(model: Any, data: Mapping[str, Any]) -> dict[str, float]:
    """Measure a deployable model again on inputs in natural units.

    Args:
        model: A :class:`~trainables.deploy.DeployableModel` (standardisation included).
        data: The trial's ``data`` section; its splits are loaded without normalisation.

    Returns:
        ``val_accuracy``, ``val_loss`` and ``test_accuracy`` of the model.

    Raises:
        trainables.data.DataError: If the dataset cannot be loaded here.
    """
    return _measure(model, natural_splits(data))


def _measure(model: Any, splits: Any) -> dict[str, float]:
    from trainables.training import evaluate

    val_accuracy, val_loss = evaluate(model, splits.x_val, splits.y_val)
    test_accuracy, _ = evaluate(model, splits.x_test, splits.y_test)
    return {"val_accuracy": val_accuracy, "val_loss": val_loss, "test_accuracy": test_accuracy}


def natural_splits(data: Mapping[str, Any]) -> Any:
    """A trial's splits in natural units (what an exported model takes): no normalisation."""
    from trainables.data import load_splits

    return load_splits({**dict(data), "normalize": False, "augment": False}, device="cpu")


def _bundle_config(bundle_dir: Path) -> tuple[str, dict[str, Any]]:
    from search.space import trial_config
    from search.spec import load_spec

    spec = load_spec(bundle_dir / CONFIG_FILE)
    seed = spec.space["seed"].choice[0]  # type: ignore[index]
    return spec.trainable, trial_config(spec, {"seed": seed})


def load_bundle(bundle_dir: str | os.PathLike[str]) -> Any:
    """The deployable model of a bundle: inputs in natural units, logits out.

    Needs neither the sweep nor its data: the network is rebuilt through the trainables
    registry from ``config.yaml`` with the shapes in ``preprocessing.json``, and ``model.pt``
    (read with ``weights_only=True``) fills its weights and the standardisation buffers.

    Returns:
        A :class:`~trainables.deploy.DeployableModel` in eval mode, on CPU; its
        ``class_names`` name the logits and ``preprocessing`` describes the inputs.

    Raises:
        ResultsError: If the directory is not a complete bundle of this version.
    """
    import torch

    from trainables.deploy import DeployableModel, Preprocessing, check_state_keys
    from trainables.registry import get_trainable

    bundle_dir = Path(bundle_dir)
    missing = [f for f in (CONFIG_FILE, WEIGHTS_FILE, PREPROCESSING_FILE) if not (bundle_dir / f).is_file()]
    if missing:
        raise ResultsError(f"{bundle_dir}: not a bundle of this version (missing {', '.join(missing)}); export it again with python -m analysis.select")
    trainable, config = _bundle_config(bundle_dir)
    preprocessing = Preprocessing.from_json((bundle_dir / PREPROCESSING_FILE).read_text())
    state = torch.load(bundle_dir / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    try:
        check_state_keys(state)
    except ValueError as exc:
        raise ResultsError(f"{bundle_dir / WEIGHTS_FILE}: {exc}") from None
    network = get_trainable(trainable).build_model(config, preprocessing.data_info())
    model = DeployableModel(network, preprocessing)
    model.load_state_dict(state)
    return model.eval()


def load_bundle_model(bundle_dir: str | os.PathLike[str]) -> Any:
    """The network of a bundle alone, without its standardisation (inputs as the trial saw them).

    Prefer :func:`load_bundle`, which takes inputs in natural units.
    """
    return load_bundle(bundle_dir).model


def _json_ready(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        return _json_ready(value.item())
    return value


def _previous_export(path: Path) -> dict[str, Any] | None:
    """The ``metrics.json`` of the bundle already in ``path``, or None when it holds none."""
    try:
        return json.loads((path / METRICS_FILE).read_text())
    except (OSError, ValueError):
        return None


def _clear_for_export(path: Path, run: RunResults, trial_id: str, overwrite: bool) -> str:
    """Make ``path`` ready for a bundle; returns ``""``, ``"re-exported"`` or ``"overwritten"``.

    Exporting the trial a bundle already holds (same sweep, same trial) replaces it: an export
    is a function of the trial, so doing it twice gives the same bundle. Anything else in the
    directory is only replaced with ``overwrite``.
    """
    if not path.exists() or not any(path.iterdir()):
        return ""
    previous = _previous_export(path)
    same = previous is not None and previous.get("trial_id") == trial_id and previous.get("run_dir") == run.location
    if not same and not overwrite:
        what = (
            f"the export of trial {previous.get('trial_id')} of {previous.get('run_dir')}"
            if previous is not None
            else "files that are not a bundle"
        )
        raise ResultsError(f"{path} already holds {what}; pass --overwrite to replace it, or choose another --export directory")
    if previous is None and not path.is_dir():
        raise ResultsError(f"{path} exists and is not a directory")
    for child in path.iterdir():
        shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    return "re-exported" if same else "overwritten"


def _preprocessing(state: Mapping[str, Any], config: Mapping[str, Any], trial_id: str) -> Any:
    """The trial's input preprocessing: from its checkpoint, else from its data (older checkpoints)."""
    from trainables.data import DataError, load_splits
    from trainables.deploy import Preprocessing

    text = state.get("preprocessing")
    if isinstance(text, str):
        return Preprocessing.from_json(text)
    try:
        return Preprocessing.from_splits(load_splits(config["data"], device="cpu"))
    except DataError as exc:
        raise ResultsError(
            f"trial {trial_id}: its checkpoint has no preprocessing statistics and its data set cannot be loaded here "
            f"to compute them ({exc})"
        ) from None


def export_bundle(
    selection: Selection,
    pick: int,
    out_dir: str | os.PathLike[str],
    evaluate: bool = True,
    overwrite: bool = False,
    portable: bool = True,
) -> Bundle:
    """Write the bundle of one pick (see the module docstring for its files).

    The model is exported as a :class:`~trainables.deploy.DeployableModel`: its inputs are in
    the data set's natural units and the training split's standardisation is part of it.

    Args:
        selection: The selection (:func:`select_trials`).
        pick: 0-based index into ``selection.picks``.
        out_dir: Parent directory; the bundle is ``out_dir/RUN-TRIAL``.
        evaluate: Measure the exported model again (validation and test accuracy, and the
            portable file's validation accuracy with its own runtime).
        overwrite: Replace a directory that holds another trial's bundle. The same trial's
            bundle is always replaced (exporting is idempotent).
        portable: Also write the family's portable file (``model.onnx``, ``model.nir``).

    Raises:
        ResultsError: If the bundle directory holds something else (without ``overwrite``),
            or the trial has no checkpoint.
    """
    import torch

    from search.space import trial_config
    from search.spec import parse_spec
    from trainables.data import DataError
    from trainables.deploy import DeployableModel
    from trainables.registry import get_trainable

    front = selection.front
    run = front.run
    index = selection.picks[pick]
    row = front.row(index)
    trial_id = str(row["trial_id"])
    path = Path(out_dir) / f"{run.name}-{trial_id}"
    params = run.trial_params(row)
    config = trial_config(run.spec, params)
    raw = bundle_spec(run, params, f"{run.name}-{trial_id}")
    parse_spec(raw, str(path / CONFIG_FILE))  # what we write must load again
    state = _checkpoint_state(run, row)
    if "model" not in state:
        raise ResultsError(f"trial {trial_id}: its checkpoint has no 'model' state dict")
    entry = get_trainable(run.spec.trainable)
    preprocessing = _preprocessing(state, config, trial_id)
    network = entry.build_model(config, preprocessing.data_info())
    network.load_state_dict(state["model"])
    model = DeployableModel(network, preprocessing).eval()

    replaced = _clear_for_export(path, run, trial_id, overwrite)
    path.mkdir(parents=True, exist_ok=True)
    header = f"# Exported by analysis.select from trial {trial_id} of {run.location}\n# Retrain: python -m search.run {CONFIG_FILE} --storage DIR\n"
    (path / CONFIG_FILE).write_text(header + yaml.safe_dump(raw, sort_keys=False))
    torch.save(model.state_dict(), path / WEIGHTS_FILE)
    (path / PREPROCESSING_FILE).write_text(preprocessing.to_json())

    exported: dict[str, Any] | None = None
    if portable and entry.exporter is not None:
        metadata = {"trial": f"{run.name}-{trial_id}", "preprocessing": json.loads(preprocessing.to_json())}
        try:
            exported = entry.export(model, path, metadata)
        except ImportError as exc:
            exported = {"error": str(exc)}
        except Exception as exc:  # noqa: BLE001  (the PyTorch bundle stands; say why the portable file is missing)
            exported = {"error": f"the {run.spec.trainable} exporter failed ({type(exc).__name__}: {' '.join(str(exc).split())[:300]})"}

    reproduced, note = None, ""
    if evaluate:
        try:
            splits = natural_splits(config["data"])
            reloaded = load_bundle(path)
            reproduced = _measure(reloaded, splits)
            if exported and "file" in exported:
                logits = np.asarray(entry.run_exported(path, splits.x_val.numpy()))
                exported["val_accuracy"] = float((logits.argmax(1) == splits.y_val.numpy()).mean())
                figures = getattr(importlib.import_module(entry.exporter), "neurobench_figures", None)
                if figures is not None:
                    try:
                        exported["neurobench"] = figures(path, reloaded, splits.x_val, splits.y_val)
                    except ImportError as exc:
                        exported["neurobench_error"] = str(exc)
        except DataError as exc:
            note = f"not re-measured: data unavailable here ({exc})"
        except ImportError as exc:
            if exported is not None:
                exported["run_error"] = str(exc)
    else:
        note = "not re-measured (--no-eval)"
    metric_names = [n for n in run.trials.column_names if n not in run.param_names and n not in ("checkpoint", "trial_dir", "node_id", "curve")]
    bundle = Bundle(
        path=path,
        run=run.name,
        run_dir=run.location,
        trainable=run.spec.trainable,
        trial_id=trial_id,
        pick=pick + 1,
        rule=selection.describe(),
        seed=int(config["seed"]),
        recorded={k: row.get(k) for k in metric_names},
        params=params,
        reproduced=reproduced,
        reproduce_note=note,
        position=front_position(front, index),
        objectives=tuple((o.metric, o.mode) for o in front.objectives),
        preprocessing=json.loads(preprocessing.to_json()),
        portable=exported,
        replaced=replaced,
    )
    write_card(bundle)
    return bundle


def _summary(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> dict[str, dict[str, float]]:
    summary = {}
    for metric in metrics:
        values = np.array([float(r[metric]) for r in rows if r.get(metric) is not None and math.isfinite(float(r[metric]))])
        if len(values):
            summary[metric] = {
                "mean": float(values.mean()),
                "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                "n": int(len(values)),
            }
    return summary


def verify_seeds(
    bundle: Bundle,
    n: int,
    address: str | None = None,
    num_cpus: int | None = None,
    quiet: bool = True,
) -> Bundle:
    """Re-train a bundle's configuration with ``n`` seeds and add mean ± std to its card.

    The seeds are the trial's own and the next ``n - 1``, so the first re-training repeats the
    original. It is a sweep of its own (a grid over the seeds, no early stopping) launched
    through ``search.run`` on Ray — locally, or on the cluster at ``address`` — with its run dir
    ``BUNDLE/seeds/verify``.

    Raises:
        ResultsError: If ``n < 1`` or the sweep fails or finishes no trial.
    """
    from search.run import main as run_sweep

    if n < 1:
        raise ResultsError(f"--verify-seeds must be >= 1, got {n}")
    seeds = [bundle.seed + i for i in range(n)]
    raw = yaml.safe_load((bundle.path / CONFIG_FILE).read_text())
    raw["space"] = {"seed": {"choice": seeds}}
    raw["run"]["num_samples"] = n
    storage = bundle.path / SEEDS_DIR
    storage.mkdir(parents=True, exist_ok=True)
    spec_path = storage / "verify.yaml"
    spec_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    argv = [str(spec_path), "--storage", str(storage), "--name", "verify"]
    if address:
        argv += ["--address", address]
    if num_cpus:
        argv += ["--num-cpus", str(num_cpus)]
    if quiet:
        argv.append("--quiet")
    code = run_sweep(argv)
    run_dir = storage / "verify"
    if code != 0:
        raise ResultsError(f"the seed re-training sweep failed (exit status {code}); see {run_dir}")
    from analysis.results import load_trials

    trials = filter_trials(load_trials(run_dir), completed=True, full_budget=True)
    rows = []
    for row in trials.to_pylist():
        rows.append({"seed": int(row["seed"]), **{k: row.get(k) for k in _card_metrics(bundle.trainable) if k in row}})
    rows.sort(key=lambda r: r["seed"])
    if not rows:
        raise ResultsError(f"the seed re-training sweep finished no trial at full budget; see {run_dir}")
    metrics = list(dict.fromkeys([m for m, _ in bundle.objectives] + [m for m in _card_metrics(bundle.trainable) if m in rows[0]]))
    check = SeedCheck(seeds=tuple(seeds), rows=tuple(rows), summary=_summary(rows, metrics), run_dir=str(run_dir))
    bundle = replace(bundle, seeds=check)
    write_card(bundle)
    return bundle


# --------------------------------------------------------------------------------------------
# Card (render)
# --------------------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    return format_number(value, missing="–", nan_is_missing=True)


def _card_metrics(trainable: str, kind: str | None = None) -> list[str]:
    """The family's declared metrics a card shows: quality ones, or costs (training time with them)."""
    table = metric_table(trainable)
    quality = [m for m, info in table.items() if info.kind == "quality"]
    cost = [m for m, info in table.items() if info.kind == "cost"] + ["train_time_s"]
    return {"quality": quality, "cost": cost}.get(kind or "", quality + cost)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_fmt(c) if not isinstance(c, str) else c for c in row) + " |" for row in rows]
    return lines


def render_card(bundle: Bundle) -> str:
    """The markdown card of a bundle."""
    metrics = metric_table(bundle.trainable)

    rec = bundle.recorded
    pos = bundle.position
    lines = [
        f"# {bundle.run} · trial {bundle.trial_id}",
        "",
        f"Pick {bundle.pick}: {bundle.rule}.",
        f"Sweep `{bundle.run_dir}`, trainable `{bundle.trainable}`, seed {bundle.seed}, "
        f"{_fmt(rec.get('epoch'))} epochs (full budget).",
        "",
        *_usage_lines(bundle),
        "## Quality",
        "",
    ]
    rows = []
    for metric in _card_metrics(bundle.trainable, "quality"):
        if metric in rec:
            again = bundle.reproduced.get(metric) if bundle.reproduced else None
            rows.append([metrics[metric].axis_label + f" (`{metric}`)", _fmt(rec.get(metric)), _fmt(again)])
    lines += _table(["metric", "recorded by the sweep", "measured again from model.pt"], rows)
    if bundle.reproduced is not None:
        error = bundle.reproduction_error or 0.0
        verdict = "reproduced" if bundle.reproduces else "NOT reproduced"
        lines += ["", f"Validation accuracy {verdict} from the exported weights: |Δ| = {100 * error:.2f} points (tolerance {100 * REPRODUCE_TOLERANCE:.1f})."]
    else:
        lines += ["", f"Exported weights {bundle.reproduce_note}."]
    lines += ["", "## Costs (per inference sample, as trained)", ""]
    lines += _table(["cost", "value"], [[metrics[m].axis_label + f" (`{m}`)", _fmt(rec.get(m))] for m in _card_metrics(bundle.trainable, "cost") if m in rec])
    lines += _portable_lines(bundle)
    objectives = ", ".join(f"`{m}` ({mode})" for m, mode in bundle.objectives)
    lines += ["", "## On the Pareto front", "", f"Objectives {objectives}; the front of the sweep's {pos['feasible_trials']} feasible full-budget trials has {pos['front_size']} points."]
    if pos["on_front"]:
        knee = " It is the **knee** (best trade-off)." if pos["knee"] else (f" The knee is trial {pos['knee_trial']}." if pos["knee_trial"] else "")
        lines.append(
            f"This trial is **on the front**, point {pos['position']} of {pos['front_size']} (ordered by `{bundle.objectives[0][0]}`, best first).{knee} "
            f"Neighbours on the front: {', '.join(pos['neighbours']) or 'none'}."
        )
        lines.append(
            f"Without it the front's hypervolume drops by {_fmt(pos['hypervolume_contribution'])} "
            f"(of {_fmt(pos['hypervolume'])}, reference {', '.join(_fmt(v) for v in pos['reference'])})."
        )
    elif not pos["feasible"]:
        lines.append("This trial violates the spec's constraints, so it is not ranked.")
    else:
        lines.append(f"This trial is dominated (rank {pos['rank']}) by front trial(s) {', '.join(pos['dominated_by'][:6])}; it was picked under the conditions above.")
    places = ", ".join(f"`{m}` {place}{_ordinal(place)} of {pos['feasible_trials']}" for m, place in pos["places"].items())
    lines += ["", f"Place per objective among the feasible trials: {places}."]
    if bundle.seeds is not None:
        check = bundle.seeds
        lines += ["", f"## Re-trained with {len(check.seeds)} seeds ({', '.join(map(str, check.seeds))})", ""]
        lines += _table(["metric", "mean ± std", "n"], [[f"`{m}`", f"{_fmt(s['mean'])} ± {_fmt(s['std'])}", str(s["n"])] for m, s in check.summary.items()])
        lines += [""]
        shown = [m for m in check.summary][:5]
        lines += _table(["seed", *shown], [[str(r["seed"]), *(r.get(m) for m in shown)] for r in check.rows])
        lines += ["", f"Sweep: `{check.run_dir}`."]
    lines += ["", "## Configuration (the sweep's searched and fixed parameters; every resolved value is in config.yaml)", ""]
    lines += _table(["parameter", "value"], [[f"`{k}`", _fmt(v)] for k, v in bundle.params.items()])
    lines += [
        "",
        "## Files",
        "",
        f"- `{CONFIG_FILE}`: a spec with this trial's resolved config; `python -m search.run {CONFIG_FILE} --storage DIR` trains it again (seed {bundle.seed}).",
        f"- `{WEIGHTS_FILE}`: the deployable model's state dict (`preprocess.mean`/`preprocess.std`, then the network's `model.*`), "
        f"read with `torch.load('{WEIGHTS_FILE}', weights_only=True)`; `analysis.select.load_bundle` rebuilds the module from it.",
        f"- `{PREPROCESSING_FILE}`: input shape, dtype, units and range, the standardisation statistics, class names.",
        *([f"- `{bundle.portable['file']}`: the model outside PyTorch (see above)."] if bundle.portable and "file" in bundle.portable else []),
        f"- `{METRICS_FILE}`: everything above, machine-readable.",
        "",
    ]
    return "\n".join(lines)


def _usage_lines(bundle: Bundle) -> list[str]:
    """The card's 'Use it' section: what the model takes and a snippet that runs as pasted."""
    prep = bundle.preprocessing
    if not prep:
        return []
    shape = " × ".join(str(s) for s in prep["input_shape"])
    low, high = prep["value_range"]
    where = str(bundle.path)
    lines = [
        "## Use it",
        "",
        f"Inputs: `{prep['dtype']}` tensors N × {shape} ({prep['layout']}) of {prep['natural_units']}; "
        f"the training inputs span [{_fmt(low)}, {_fmt(high)}]. The model standardises them itself "
        f"(per-channel mean {', '.join(_fmt(v) for v in prep['mean'])}, std {', '.join(_fmt(v) for v in prep['std'])}, "
        f"from the training split): do not normalise them again. It returns {prep['output']} over "
        f"{len(prep['class_names'])} classes ({', '.join(prep['class_names'][:10])}{', …' if len(prep['class_names']) > 10 else ''}).",
        "",
        "```python",
        "import torch",
        "from analysis.select import load_bundle",
        f"model = load_bundle({where!r})  # a torch.nn.Module in eval mode",
        "x = torch.rand(8, *model.input_shape)  # your inputs, in the units above",
        "print([model.class_names[i] for i in model(x).argmax(1)])",
        "```",
        "",
    ]
    portable = bundle.portable or {}
    if portable.get("format") == "onnx" and "file" in portable:
        lines += [
            "Without PyTorch or this package, with onnxruntime:",
            "",
            "```python",
            "import numpy as np, onnxruntime",
            f"session = onnxruntime.InferenceSession({str(bundle.path / portable['file'])!r})",
            f"x = np.random.rand(8, {', '.join(str(s) for s in prep['input_shape'])}).astype(np.float32)  # the same units",
            "logits = session.run(None, {'input': x})[0]",
            "print(logits.argmax(1))",
            "```",
            "",
        ]
    if portable.get("format") == "nir" and "file" in portable:
        lines += [
            "As a NIR graph (any NIR-capable simulator or chip toolchain), here with snntorch; "
            f"feed the same input at each of the {portable.get('timesteps')} steps and average the outputs:",
            "",
            "```python",
            "import torch",
            "from trainables.sne.nir_export import run_nir",
            f"logits = run_nir({str(bundle.path / portable['file'])!r}, torch.rand(8, {', '.join(str(s) for s in prep['input_shape'])}))",
            "print(logits.argmax(1))",
            "```",
            "",
        ]
    return lines


def _portable_lines(bundle: Bundle) -> list[str]:
    """The card's section on the portable file (ONNX / NIR)."""
    portable = bundle.portable
    if not portable:
        return []
    if "error" in portable:
        return ["", "## Outside PyTorch", "", f"No portable file was written: {portable['error']}."]
    recorded = bundle.recorded.get("val_accuracy")
    name = {"onnx": "ONNX", "nir": "NIR"}.get(portable["format"], portable["format"])
    lines = ["", f"## Outside PyTorch: `{portable['file']}` ({name})", ""]
    if portable["format"] == "onnx":
        macs = portable["macs"]
        ops = ", ".join(f"{op} × {n}" for op, n in portable["ops"].items())
        sparse = portable["sparse_initializers"]
        lines += [
            f"Opset {portable['opset']}, input `input` (dynamic batch), output `logits`; operators: {ops}.",
            "Block layers are gathers and batched MatMuls of their blocks (never densified)."
            + (f" Weights stored sparse (non-zeros only): {', '.join(f'`{n}`' for n in sparse)}." if sparse else ""),
            "",
        ]
        lines += _table(
            ["MACs per sample", "value"],
            [
                ["counted from the ONNX graph, non-zero weights", str(macs["effective"])],
                ["counted from the ONNX graph, dense", str(macs["dense"])],
                ["recorded by the sweep (`macs`)", _fmt(bundle.recorded.get("macs"))],
            ],
        )
    else:
        lines += [portable.get("summary", "")]
    if portable.get("neurobench"):
        source = "the snntorch import of this graph" if portable["format"] == "nir" else "the model as nn.Linear + nn.ReLU layers"
        lines += ["", f"NeuroBench's figures (per sample, validation split, {source}; see the README for how they differ from ours):", ""]
        lines += _table(["NeuroBench metric", "value"], [[k, _fmt(v)] for k, v in portable["neurobench"].items()])
    elif portable.get("neurobench_error"):
        lines += ["", f"NeuroBench's figures were not computed: {portable['neurobench_error']}."]
    if "val_accuracy" in portable:
        delta = abs(portable["val_accuracy"] - float(recorded)) if recorded is not None else math.nan
        runtime = "onnxruntime" if portable["format"] == "onnx" else "snntorch"
        lines += ["", f"Validation accuracy of `{portable['file']}` run by {runtime} on natural-unit inputs: "
                  f"{_fmt(portable['val_accuracy'])} (recorded {_fmt(recorded)}, |Δ| = {100 * delta:.2f} points)."]
    elif portable.get("run_error"):
        lines += ["", f"Not run here: {portable['run_error']}."]
    return lines


def _ordinal(n: int) -> str:
    return "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def write_card(bundle: Bundle) -> None:
    """Write ``card.md`` and ``metrics.json`` of a bundle."""
    (bundle.path / CARD_FILE).write_text(render_card(bundle))
    data = {
        "run": bundle.run,
        "run_dir": bundle.run_dir,
        "trainable": bundle.trainable,
        "trial_id": bundle.trial_id,
        "pick": bundle.pick,
        "rule": bundle.rule,
        "seed": bundle.seed,
        "objectives": [list(o) for o in bundle.objectives],
        "params": bundle.params,
        "recorded": bundle.recorded,
        "reproduced": bundle.reproduced,
        "reproduce_note": bundle.reproduce_note,
        "reproduces": bundle.reproduces,
        "front": bundle.position,
        "preprocessing": bundle.preprocessing,
        "portable": bundle.portable,
        "seeds": None
        if bundle.seeds is None
        else {"seeds": list(bundle.seeds.seeds), "rows": list(bundle.seeds.rows), "summary": bundle.seeds.summary, "run_dir": bundle.seeds.run_dir},
    }
    (bundle.path / METRICS_FILE).write_text(json.dumps(_json_ready(data), indent=2) + "\n")


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.select",
        description="Pick configurations from a sweep (under conditions, best by a metric or the knee) and export deployable bundles.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run dir written by python -m search.run (path or pyarrow URI)")
    parser.add_argument("--objectives", nargs="+", metavar="METRIC:MODE", help="objectives of the front (default: the spec's)")
    parser.add_argument("--where", action="append", default=[], metavar="COND", help="a condition such as 'energy_uj <= 2' (also <, >=, >, ==; 'and' joins); repeatable")
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--prefer", metavar="METRIC[:MODE]", help="pick the best by this metric (default: the first objective)")
    how.add_argument("--knee", action="store_true", help="pick the knee of the front of the trials that satisfy the conditions")
    parser.add_argument("--top", type=int, default=1, metavar="K", help="how many trials to pick (default 1)")
    parser.add_argument("--export", metavar="DIR", help="write one bundle per pick into DIR (config.yaml, model.pt, card.md, metrics.json)")
    parser.add_argument("--overwrite", action="store_true", help="replace a bundle directory that holds another trial's export (the same trial's is always replaced)")
    parser.add_argument("--no-portable", action="store_true", help="do not write model.onnx / model.nir")
    parser.add_argument("--no-eval", action="store_true", help="do not measure the exported weights again")
    parser.add_argument("--verify-seeds", type=int, metavar="N", help="re-train each pick with N seeds (a sweep on Ray) and add mean ± std to its card")
    parser.add_argument("--address", metavar="ADDR", help="Ray cluster for --verify-seeds (default: start Ray locally)")
    parser.add_argument("--num-cpus", type=int, metavar="N", help="CPUs of a local Ray for --verify-seeds")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.verify_seeds is not None and not args.export:
        return fail("--verify-seeds needs --export DIR (the re-training reads the exported config)")
    try:
        return _main(args)
    except ResultsError as exc:
        return fail(str(exc))


def _main(args: argparse.Namespace) -> int:
    front = analyze_run(args.run_dir, args.objectives)
    selection = select_trials(front, args.where, prefer=args.prefer, knee=args.knee, top=args.top)
    print(f"{front.run.name}: {selection.describe()}")
    columns = list(dict.fromkeys([*front.names, "test_accuracy", *(m for m in _TABLE_COSTS if m in front.trials.column_names)]))
    columns = [c for c in columns if c in front.trials.column_names]
    header = f"  {'#':>2}  {'trial':<10}" + "".join(f"  {c:>14}" for c in columns) + "  front"
    print(header)
    for k, index in enumerate(selection.picks):
        row = front.row(index)
        place = "knee" if index == front.knee else "yes" if front.ranks[index] == 0 else f"rank {front.ranks[index]}"
        print(f"  {k + 1:>2}  {row['trial_id']:<10}" + "".join(f"  {_fmt(row.get(c)):>14}" for c in columns) + f"  {place}")
    if not args.export:
        return 0
    status = 0
    for k in range(len(selection.picks)):
        bundle = export_bundle(selection, k, args.export, evaluate=not args.no_eval, overwrite=args.overwrite, portable=not args.no_portable)
        files = " ".join(sorted(p.name for p in bundle.path.iterdir()))
        again = {"re-exported": " (replaced the earlier export of this trial)", "overwritten": " (replaced another trial's bundle: --overwrite)"}.get(bundle.replaced, "")
        print(f"exported {bundle.path}{again}: {files}")
        if bundle.reproduced is not None:
            recorded = float(bundle.recorded["val_accuracy"])
            error = bundle.reproduction_error or 0.0
            verdict = "ok" if bundle.reproduces else f"MISMATCH (more than {100 * REPRODUCE_TOLERANCE:.1f} points)"
            print(f"  weights reloaded: val_accuracy {bundle.reproduced['val_accuracy']:.4f} (recorded {recorded:.4f}, |Δ| {100 * error:.2f} points) {verdict}")
            if not bundle.reproduces:
                status = EXIT_MISMATCH
        else:
            print(f"  weights {bundle.reproduce_note}")
        portable = bundle.portable or {}
        if "error" in portable:
            print(f"  no portable file: {portable['error']}")
        elif "val_accuracy" in portable:
            runtime = "onnxruntime" if portable["format"] == "onnx" else "snntorch"
            print(f"  {portable['file']} run by {runtime}: val_accuracy {portable['val_accuracy']:.4f}")
        if args.verify_seeds:
            print(f"  re-training with {args.verify_seeds} seeds on Ray ({args.address or 'local'}) …", flush=True)
            bundle = verify_seeds(bundle, args.verify_seeds, address=args.address, num_cpus=args.num_cpus)
            assert bundle.seeds is not None
            for metric, s in bundle.seeds.summary.items():
                if metric in front.names or metric == "test_accuracy":
                    print(f"  {metric}: {s['mean']:.4g} ± {s['std']:.2g} over {s['n']} seeds")
    return status


if __name__ == "__main__":
    sys.exit(main())
