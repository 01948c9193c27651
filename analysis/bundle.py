"""The deployable bundle: what a bundle directory holds, its record, and loading it back.

A bundle (written by :func:`analysis.export.export_bundle`, ``python -m analysis select
--export DIR``) is one directory per pick:

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
    the mean ± std of N re-trainings (``seeds/``, :mod:`analysis.seeds`). Rendered by
    :mod:`analysis.card`.

This module is the bundle's format (file names, the :class:`Bundle` record) and its reader;
:mod:`analysis.export` writes bundles, :mod:`analysis.card` renders their cards.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis.results import ResultsError

__all__ = [
    "Bundle",
    "CARD_FILE",
    "CONFIG_FILE",
    "METRICS_FILE",
    "PREPROCESSING_FILE",
    "REPRODUCE_TOLERANCE",
    "SEEDS_DIR",
    "SeedCheck",
    "WEIGHTS_FILE",
    "load_bundle",
    "load_bundle_model",
]

#: Exported weights must reproduce the recorded validation accuracy within this (0.5 points).
REPRODUCE_TOLERANCE = 0.005

CONFIG_FILE = "config.yaml"
WEIGHTS_FILE = "model.pt"
PREPROCESSING_FILE = "preprocessing.json"
CARD_FILE = "card.md"
METRICS_FILE = "metrics.json"
SEEDS_DIR = "seeds"


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
        warm_start: Per earlier run dir a ``--warm-start`` told the sweep, what it gave
            (``run_dir``, ``taken``, …); empty for a sweep started cold.
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
    warm_start: tuple[dict[str, Any], ...] = ()

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
