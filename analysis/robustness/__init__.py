"""One SNE trial, after the fact: its accuracy-vs-energy curve and its robustness to input noise.

``python -m analysis robustness RUN_DIR --trial ID`` (command line: ``__main__.py`` here) rebuilds the trial's ensemble from its
checkpoint (through the trainables registry) and the sweep's cached teacher, then measures test
accuracy of the teacher and of every static subset size ``k`` under test-time noise in pixel
space:

- Gaussian: ``x + N(0, sigma^2)``, sigma in {0, .02, .05, .1, .15, .2, .3};
- salt-and-pepper: each pixel set to 0 or 1 (half each) with probability p in {0, .01, .02, .05, .1};

clipped to ``[0, 1]`` and normalised as in training. It writes a table (CSV and Markdown, with the
relative accuracy drop from the clean input) and two PNGs: accuracy vs noise, and the trial's
accuracy-vs-energy curve (static subsets and dynamic activation) from its ``curve`` report.

Compute and render are separate, as in the rest of ``analysis``: :func:`noise_robustness`
returns a :class:`RobustnessTable`; :func:`plot_robustness` and :func:`plot_subset_curve` draw.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from analysis.results import ResultsError
from search.rundir import CACHE_DIR

__all__ = [
    "NOISE_LEVELS",
    "RobustnessTable",
    "gaussian_noise",
    "salt_and_pepper",
    "noise_robustness",
    "plot_robustness",
    "load_curve",
    "plot_subset_curve",
    "load_trial",
    "RobustnessError",
]

#: Noise kind -> levels (Gaussian sigma, salt-and-pepper probability), in pixel units of [0, 1].
NOISE_LEVELS: dict[str, tuple[float, ...]] = {
    "gaussian": (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3),
    "salt_pepper": (0.0, 0.01, 0.02, 0.05, 0.1),
}



class RobustnessError(ResultsError):
    """A user error (run dir, trial id, a trial without what is asked): one line, exit status 2."""



def _save_figure(fig, path: str | Path) -> Path:
    """Lay out, write (creating the folder) and close a matplotlib figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def gaussian_noise(pixels: Tensor, sigma: float, generator: torch.Generator) -> Tensor:
    """``pixels + N(0, sigma^2)``, clipped to ``[0, 1]``."""
    noise = torch.randn(pixels.shape, generator=generator, device=generator.device).to(pixels.device)
    return (pixels + sigma * noise).clamp(0.0, 1.0)


def salt_and_pepper(pixels: Tensor, p: float, generator: torch.Generator) -> Tensor:
    """Each pixel becomes 0 or 1 (equally likely) with probability ``p``."""
    hit = (torch.rand(pixels.shape, generator=generator, device=generator.device) < p).to(pixels.device)
    salt = (torch.rand(pixels.shape, generator=generator, device=generator.device) < 0.5).to(pixels.device)
    return torch.where(hit, salt.to(pixels.dtype), pixels)


@dataclass(frozen=True)
class RobustnessTable:
    """Accuracy under noise. One row per (model, noise, level).

    Attributes:
        rows: Dicts with ``model`` (``teacher`` or ``sne_k{k}``), ``students`` (k, 0 for the
            teacher), ``noise``, ``level``, ``accuracy`` and ``relative_drop`` (``1 - acc /
            clean acc`` of the same model and noise kind).
    """

    rows: tuple[dict[str, Any], ...]

    def accuracy(self, model: str, noise: str, level: float) -> float:
        for row in self.rows:
            if row["model"] == model and row["noise"] == noise and math.isclose(row["level"], level):
                return float(row["accuracy"])
        raise KeyError((model, noise, level))

    def models(self) -> list[str]:
        return list(dict.fromkeys(row["model"] for row in self.rows))

    def to_markdown(self) -> str:
        """One table per noise kind: models as rows, levels as columns (accuracy, then drop)."""
        lines: list[str] = []
        for noise in dict.fromkeys(row["noise"] for row in self.rows):
            levels = list(dict.fromkeys(row["level"] for row in self.rows if row["noise"] == noise))
            lines.append(f"{noise}: accuracy (relative drop)")
            lines.append("")
            lines.append("| model | " + " | ".join(f"{lvl:g}" for lvl in levels) + " |")
            lines.append("| --- |" + " --- |" * len(levels))
            for model in self.models():
                cells = []
                for lvl in levels:
                    row = next(r for r in self.rows if r["model"] == model and r["noise"] == noise and r["level"] == lvl)
                    cells.append(f"{row['accuracy']:.4f} ({row['relative_drop']:+.1%})")
                lines.append(f"| {model} | " + " | ".join(cells) + " |")
            lines.append("")
        return "\n".join(lines)

    def to_csv(self) -> str:
        keys = ["model", "students", "noise", "level", "accuracy", "relative_drop"]
        out = [",".join(keys)]
        out += [",".join(str(row[k]) for k in keys) for row in self.rows]
        return "\n".join(out) + "\n"


@torch.no_grad()
def noise_robustness(
    teacher: torch.nn.Module,
    ensemble: Any,
    pixels: Tensor,
    labels: Tensor,
    mean: Tensor,
    std: Tensor,
    levels: Mapping[str, Sequence[float]] = NOISE_LEVELS,
    seed: int = 0,
    batch_size: int = 1024,
) -> RobustnessTable:
    """Accuracy of the teacher and of every static subset of the ensemble under pixel noise.

    Args:
        teacher: The teacher classifier (normalised input -> logits).
        ensemble: A :class:`trainables.sne.students.SpikingEnsemble` whose ``order`` holds the
            greedy activation order (as saved by the trainable).
        pixels: ``N x C x H x W`` clean inputs in ``[0, 1]``.
        labels: ``N`` labels.
        mean: Per-channel mean used to normalise inputs in training.
        std: Per-channel std used to normalise inputs in training.
        levels: Noise kind (``gaussian``/``salt_pepper``) -> levels.
        seed: Seed of the noise (the same noise for every model at a level).

    Returns:
        The table; every subset size ``k = 1..K`` is scored from one pass of all students.
    """
    from trainables.sne.adaptive import run_students, subset_logits

    noisers = {"gaussian": gaussian_noise, "salt_pepper": salt_and_pepper}
    teacher.eval()
    order = [int(i) for i in ensemble.order]
    rows: list[dict[str, Any]] = []
    for noise, values in levels.items():
        if noise not in noisers:
            raise ValueError(f"unknown noise {noise!r} (choose from {', '.join(noisers)})")
        clean: dict[str, float] = {}
        for level in values:
            generator = torch.Generator().manual_seed(seed)
            noisy = noisers[noise](pixels, float(level), generator) if level > 0 else pixels
            x = (noisy - mean[:, None, None]) / std[:, None, None]
            predictions = torch.cat([teacher(x[s : s + batch_size]).argmax(1) for s in range(0, len(x), batch_size)])
            scores = {"teacher": (0, (predictions == labels).float().mean().item())}
            out = run_students(ensemble, x, labels, batch_size)
            for k in range(1, len(order) + 1):
                logits = subset_logits(out, order[:k])
                scores[f"sne_k{k}"] = (k, (logits.argmax(1) == labels).float().mean().item())
            for model, (k, accuracy) in scores.items():
                clean.setdefault(model, accuracy)
                drop = 1.0 - accuracy / clean[model] if clean[model] > 0 else 0.0
                rows.append(
                    {"model": model, "students": k, "noise": noise, "level": float(level), "accuracy": accuracy, "relative_drop": drop}
                )
    return RobustnessTable(tuple(rows))


def plot_robustness(table: RobustnessTable, path: str | Path, title: str = "") -> Path:
    """Accuracy vs noise level, one panel per noise kind, teacher vs SNE subsets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(dict.fromkeys(row["noise"] for row in table.rows))
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.5 * len(kinds), 4), squeeze=False)
    for ax, noise in zip(axes[0], kinds):
        for model in table.models():
            rows = [r for r in table.rows if r["model"] == model and r["noise"] == noise]
            style = {"color": "black", "linewidth": 2.5} if model == "teacher" else {"alpha": 0.8}
            ax.plot([r["level"] for r in rows], [r["accuracy"] for r in rows], marker="o", label=model, **style)
        ax.set_xlabel("sigma" if noise == "gaussian" else "p (pixels flipped)")
        ax.set_ylabel("test accuracy")
        ax.set_title(noise.replace("_", "-"))
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return _save_figure(fig, path)


# ---- the curve of one trial ----------------------------------------------------------------------


def trial_row(run_dir: Path, trial_id: str) -> dict[str, Any]:
    from search.rundir import RunDir, RunDirError

    records = RunDir(run_dir)
    try:
        table = records.read_trials()
    except RunDirError as exc:
        raise RobustnessError(str(exc)) from None
    if table is None:
        raise RobustnessError(f"{run_dir} holds no {records.file_name('trials')} (is it a run dir?)")
    rows = table.to_pylist()
    matches = [r for r in rows if str(r["trial_id"]) == trial_id] or [r for r in rows if str(r["trial_id"]).startswith(trial_id)]
    if len(matches) != 1:
        known = ", ".join(str(r["trial_id"]) for r in rows[:10])
        what = "no trial" if not matches else f"{len(matches)} trials"
        raise RobustnessError(f"{what} matching {trial_id!r} in {records.shown('trials')} (trials: {known}{', …' if len(rows) > 10 else ''})")
    return matches[0]


def load_curve(run_dir: str | Path, trial_id: str) -> Any:
    """The :class:`trainables.sne.adaptive.SubsetCurve` last reported by an SNE trial."""
    from trainables.sne.adaptive import SubsetCurve

    row = trial_row(Path(run_dir), trial_id)
    if not row.get("curve"):
        raise RobustnessError(f"trial {row['trial_id']} reported no curve (is it an SNE sweep?)")
    return SubsetCurve.from_json(row["curve"])


def plot_subset_curve(curve: Any, path: str | Path, title: str = "") -> Path:
    """Accuracy vs energy of one trial: static subsets k = 1..K, dynamic activation, the teacher."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.plot(curve.energy_uj, curve.val_accuracy, marker="o", label="static subset (greedy), val")
    if curve.test_accuracy:
        ax.plot(curve.energy_uj, curve.test_accuracy, marker="s", linestyle="--", alpha=0.7, label="static subset, test")
    if curve.dynamic_energy_uj:
        ax.plot(curve.dynamic_energy_uj, curve.dynamic_accuracy, marker="^", linestyle=":", label="dynamic (confidence thresholds), val")
    if curve.teacher_energy_uj and curve.teacher_accuracy is not None:
        ax.scatter([curve.teacher_energy_uj], [curve.teacher_accuracy], marker="*", s=180, color="black", zorder=5, label="teacher, val")
        ax.axhline(curve.teacher_accuracy - 0.02, color="grey", linewidth=0.8, linestyle="--", label="teacher − 2 points (val)")
    if curve.teacher_energy_uj and curve.teacher_test_accuracy is not None:
        ax.scatter([curve.teacher_energy_uj], [curve.teacher_test_accuracy], marker="*", s=180, facecolors="none", edgecolors="black", zorder=5, label="teacher, test")
    ax.set_xscale("log")
    ax.set_xlabel("modelled energy per sample (µJ, log scale)")
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    if title:
        ax.set_title(title)
    from analysis.plot import annotate_without_overlap

    drawn = [list(zip(curve.energy_uj, curve.val_accuracy)), list(zip(curve.energy_uj, curve.test_accuracy or []))]
    drawn.append(list(zip(curve.dynamic_energy_uj or [], curve.dynamic_accuracy or [])))
    everything = np.array([p for group in drawn for p in group], dtype=np.float64).reshape(-1, 2)
    labelled = np.column_stack([curve.energy_uj, curve.val_accuracy])
    annotate_without_overlap(ax, fig, labelled, [f"k={k}" for k in curve.k], everything, 8)
    return _save_figure(fig, path)


# ---- rebuilding a trial --------------------------------------------------------------------------


def load_trial(run_dir: str | Path, trial_id: str, device: str = "cpu") -> tuple[dict[str, Any], Any, Any, Any]:
    """Rebuild an SNE trial from its checkpoint: ``(config, ensemble, teacher record, splits)``.

    The teacher is loaded from the sweep's cache (``runtime.cache_dir``, or ``RUN_DIR/cache``
    when the run dir has moved); it is never retrained here.
    """
    from trainables.data import load_splits
    from trainables.registry import get_trainable
    from trainables.sne.teacher import load_cached_teacher
    from trainables.training import load_state

    run_dir = Path(run_dir)
    row = trial_row(run_dir, trial_id)
    checkpoint = row.get("checkpoint")
    if not checkpoint or not Path(checkpoint).exists():
        raise RobustnessError(f"trial {row['trial_id']} has no checkpoint on disk ({checkpoint})")
    state = load_state(checkpoint, map_location=device)
    if "config" not in state:
        raise RobustnessError(f"checkpoint {checkpoint} holds no config (is it an SNE trial?)")
    config = json.loads(state["config"])
    entry = get_trainable("sne")
    splits = load_splits(config["data"], device=device)
    ensemble = entry.build_model(config, splits.info).to(device)
    ensemble.load_state_dict(state["model"])
    ensemble.eval()
    cache_dir = config["runtime"].get("cache_dir")
    if not cache_dir or not Path(cache_dir).exists():
        cache_dir = run_dir / CACHE_DIR
    try:
        teacher = load_cached_teacher(config["teacher"], config["data"], splits, cache_dir, device)
    except FileNotFoundError as exc:
        raise RobustnessError(str(exc)) from None
    return config, ensemble, teacher, splits
