"""What one suggestion of the default sampler costs the driver, from the first trial to the 600th.

Drives the sweep's searcher (``SweepSearcher``: the spec's sampler on a persisted SQLite
study, the refusal check, the curve writes) directly, without Ray or training: two trials run at
a time (each ask sees one pending trial), and each finished trial is told a synthetic accuracy
(a smooth function of its config's real static MACs and learning rate, with seeded noise). Costs
are the quickstart's real ones (G2G on digits), so the cost-aware sampler computes a real net's
costs for every candidate.

Prints, per phase of the default sampler (random start-up, cost-aware model, multivariate TPE
fallback), the median and 90th percentile of the wall time per suggestion; the last line is JSON,
with ``median_s_at_500`` (suggestions 480-520) and the CPU model.

    python benchmarks/suggest_cost.py                    # the quickstart's sampler, 600 trials
    python benchmarks/suggest_cost.py --sampler gp --trials 200
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import ROOT, cpu_model  # noqa: E402  (puts the project on sys.path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=600)
    parser.add_argument("--sampler", default=None, help="sampler name (default: the quickstart's)")
    args = parser.parse_args()

    from search.searcher import SweepSearcher
    from search.space import trial_config
    from search.spec import load_spec
    from trainables.data import check_available

    overrides = [f"run.num_samples={args.trials}"] + ([f"sampler.name={args.sampler}", "sampler.options={}"] if args.sampler else [])
    spec = load_spec(ROOT / "spaces" / "quickstart.yaml", overrides)
    info = check_available(spec.data.model_dump())
    rng = np.random.default_rng(0)
    times: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        from search.rundir.records import STUDY_FILE, study_storage

        # The sweep's own storage (the journal file a run dir holds).
        searcher = SweepSearcher(spec, "suggest-cost", storage=study_storage(Path(tmp) / STUDY_FILE), num_samples=args.trials, data_info=info)
        running: list[str] = []
        for k in range(args.trials):
            start = time.perf_counter()
            searcher.suggest(f"t{k}")
            times.append(time.perf_counter() - start)
            running.append(f"t{k}")
            if len(running) == 2:
                trial_id = running.pop(0)
                params = searcher.params_of(trial_id)
                macs = spec.entry.static_costs_of(trial_config(spec, params), info)["macs"].value
                lr = params["optim.lr"]
                accuracy = 0.6 + 0.35 * math.tanh(macs / 8000) - 0.05 * (math.log10(lr) + 2.5) ** 2 + rng.normal(0, 0.01)
                result = {"val_accuracy": accuracy, "energy_uj": 4.6e-6 * macs, "macs": macs, "budget_fraction": 1.0, "epoch": 12}
                searcher.on_trial_result(trial_id, result)
                searcher.on_trial_complete(trial_id, result)
            if (k + 1) % 100 == 0:
                print(f"  {k + 1}/{args.trials} suggestions, last median {1000 * np.median(times[-50:]):.1f} ms", file=sys.stderr, flush=True)
    ms = 1000 * np.asarray(times)
    startup = int(spec.sampler.options.get("n_startup_trials", 8)) if spec.sampler.name == "cost_aware" else 0
    switch = int(spec.sampler.options.get("switch_after", 100)) if spec.sampler.name == "cost_aware" else 0
    phases = {"start-up (random)": (0, startup), "cost-aware model": (startup, switch), "fallback (multivariate TPE)": (switch, args.trials)}
    if spec.sampler.name != "cost_aware":
        phases = {spec.sampler.name: (0, args.trials)}
    summary: dict = {"sampler": spec.sampler.name, "trials": args.trials}
    for name, (lo, hi) in phases.items():
        part = ms[lo:hi]
        if len(part):
            print(f"{name:<30} suggestions {lo + 1}-{hi}: median {np.median(part):.1f} ms, p90 {np.percentile(part, 90):.1f} ms, max {part.max():.0f} ms")
            summary[name] = {"median_ms": round(float(np.median(part)), 1), "p90_ms": round(float(np.percentile(part, 90)), 1)}
    if args.trials >= 520:
        summary["median_s_at_500"] = round(float(np.median(ms[480:520])) / 1000, 4)
    summary["cpu"] = cpu_model()
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
