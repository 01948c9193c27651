"""Writing deployable bundles: a pick's config, weights, portable file and card, measured again.

:func:`export_bundle` writes one pick of a :class:`~analysis.select.Selection` into
``DIR/RUN-TRIAL`` (the files are described in :mod:`analysis.bundle`) and re-measures the
exported model (:func:`reevaluate`) on inputs in natural units, and the portable file with its
own runtime. Exporting the trial a bundle directory already holds replaces it (the same command
twice gives the same bundle); a directory holding another trial's bundle needs ``overwrite``.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import posixpath
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from analysis.bundle import CONFIG_FILE, METRICS_FILE, PREPROCESSING_FILE, SEEDS_DIR, WEIGHTS_FILE, Bundle, SeedCheck, load_bundle
from analysis.card import write_card
from analysis.results import ResultsError, RunResults
from analysis.select import Selection, front_position
from search.rundir import trial_dirname

__all__ = ["bundle_spec", "export_bundle", "natural_splits", "reevaluate"]

#: Config sections a bundle spec takes from the spec's own sections, not from ``fixed``.
_SPEC_SECTIONS = ("data", "budget", "runtime", "seed")


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
    trial_dir = posixpath.basename(str(row.get("trial_dir") or trial_dirname(row["trial_id"])).rstrip("/"))
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
        if same and child.name == SEEDS_DIR:
            continue  # the seed re-training is not recomputed by an export: kept (see _kept_seeds)
        shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    return "re-exported" if same else "overwritten"


def _kept_seeds(path: Path, previous: Mapping[str, Any] | None) -> SeedCheck | None:
    """The seed re-training of the earlier export of the same trial, when its files are still there."""
    seeds = (previous or {}).get("seeds")
    if not seeds or not (path / SEEDS_DIR).is_dir():
        return None
    try:
        return SeedCheck(seeds=tuple(seeds["seeds"]), rows=tuple(seeds["rows"]), summary=seeds["summary"], run_dir=seeds["run_dir"])
    except (KeyError, TypeError):
        return None


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

    previous = _previous_export(path) if path.is_dir() else None
    replaced = _clear_for_export(path, run, trial_id, overwrite)
    kept_seeds = _kept_seeds(path, previous) if replaced == "re-exported" else None
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
        seeds=kept_seeds,
        warm_start=tuple(dict(source) for source in run.warm_start()[1]),
    )
    write_card(bundle)
    return bundle
