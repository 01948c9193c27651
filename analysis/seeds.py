"""Re-training a pick with several seeds before anyone deploys it.

:func:`verify_seeds` re-trains a bundle's configuration with the trial's seed and the next
``n - 1``: a sweep of its own (a grid over the seeds, no early stopping) launched through the
search API (:func:`search.run.run_sweep`) on Ray — locally, or on a cluster — with its run dir
``BUNDLE/seeds/verify``. The mean ± std of every metric is added to the bundle's card.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import yaml

from analysis.bundle import CONFIG_FILE, SEEDS_DIR, Bundle, SeedCheck
from analysis.card import card_metrics, write_card
from analysis.results import ResultsError, filter_trials, load_trials

__all__ = ["verify_seeds"]


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
    through the search API (:func:`search.run.run_sweep`) on Ray — locally, or on the cluster
    at ``address`` — with its run dir ``BUNDLE/seeds/verify``.

    Raises:
        ResultsError: If ``n < 1`` or the sweep fails or finishes no trial.
    """
    from search.run import SweepOptions, run_sweep
    from search.spec import SpecError, load_spec

    if n < 1:
        raise ResultsError(f"--verify-seeds must be >= 1, got {n}")
    seeds = [bundle.seed + i for i in range(n)]
    raw = yaml.safe_load((bundle.path / CONFIG_FILE).read_text())
    raw["space"] = {"seed": {"choice": seeds}}
    raw["run"]["num_samples"] = n
    storage = bundle.path / SEEDS_DIR
    if storage.exists():  # asked again: the earlier re-training (kept by a re-export) is replaced
        shutil.rmtree(storage)
    storage.mkdir(parents=True, exist_ok=True)
    spec_path = storage / "verify.yaml"
    spec_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    try:
        spec = load_spec(spec_path)
    except SpecError as exc:
        raise ResultsError(f"the seed re-training spec does not load: {exc}") from None
    options = SweepOptions(storage=str(storage), name="verify", address=address, num_cpus=num_cpus, progress=not quiet,
                           command=(str(spec_path), *(["--address", address] if address else [])))
    code = run_sweep(spec, options)
    run_dir = storage / "verify"
    if code != 0:
        raise ResultsError(f"the seed re-training sweep failed (exit status {code}); see {run_dir}")
    trials = filter_trials(load_trials(run_dir), completed=True, full_budget=True)
    rows = []
    for row in trials.to_pylist():
        rows.append({"seed": int(row["seed"]), **{k: row.get(k) for k in card_metrics(bundle.trainable) if k in row}})
    rows.sort(key=lambda r: r["seed"])
    if not rows:
        raise ResultsError(f"the seed re-training sweep finished no trial at full budget; see {run_dir}")
    metrics = list(dict.fromkeys([m for m, _ in bundle.objectives] + [m for m in card_metrics(bundle.trainable) if m in rows[0]]))
    check = SeedCheck(seeds=tuple(seeds), rows=tuple(rows), summary=_summary(rows, metrics), run_dir=str(run_dir))
    bundle = replace(bundle, seeds=check)
    write_card(bundle)
    return bundle
