"""What one suggestion of the default sampler costs the driver, from the first trial to the 600th.

Drives the sweep's searcher (``SweepSearcher``: the spec's sampler on a persisted study, the
refusal check, the curve writes) directly, without Ray or training: two trials run at a time (each
ask sees one pending trial), and each finished trial is told a synthetic accuracy (a smooth
function of its config's real static MACs and learning rate, with seeded noise). Costs are the
space's real ones, so the cost-aware sampler computes a real net's costs for every candidate:
``quickstart`` (G2G on digits: energy known before training) or ``sne_quickstart`` (SNE on
digits: energy known up to the spike rate, which is told as a synthetic rate).

Prints, per phase of the sampler (random start-up, cost-aware model, multivariate TPE fallback),
the median and 90th percentile of the wall time per suggestion. Where the space's scheduler has
rungs (MO-ASHA), the sampler weighs candidates by their chance of getting past them as in a sweep:
each trial reports its accuracy at every rung's epoch too (a synthetic curve), and the rungs fill
with those results. The last line is JSON, with
``median_s_at_300`` (suggestions 280-320) and ``median_s_at_500`` (480-520) where reached, and
the CPU model. ``--no-handover`` keeps the model deciding at every study size (no fallback).

    python benchmarks/suggest_cost.py                                  # the quickstart's sampler, 600 trials
    python benchmarks/suggest_cost.py --space sne_quickstart --no-handover --trials 320
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
    parser.add_argument("--space", default="quickstart", choices=("quickstart", "sne_quickstart"), help="the spec under spaces/")
    parser.add_argument("--sampler", default=None, help="sampler name (default: the space's)")
    parser.add_argument("--no-handover", action="store_true", help="cost_aware: the model decides at every study size (switch_after: null)")
    args = parser.parse_args()

    from search.searcher import SweepSearcher
    from search.space import trial_config
    from search.spec import load_spec
    from trainables.data import check_available

    overrides = [f"run.num_samples={args.trials}"] + ([f"sampler.name={args.sampler}", "sampler.options={}"] if args.sampler else [])
    if args.no_handover:
        overrides.append("sampler.options.switch_after=null")
    spec = load_spec(ROOT / "spaces" / f"{args.space}.yaml", overrides)
    info = check_available(spec.data.model_dump())
    rng = np.random.default_rng(0)
    from search.static_costs import SpaceDraw

    # The accuracy's scale: the space's median static MACs.
    scale = float(np.median([spec.entry.static_costs_of(trial_config(spec, p), info)["macs"].value for p, _ in SpaceDraw(spec)(np.random.default_rng(1), 64)]))
    times: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        from search.rundir.records import STUDY_FILE, study_storage

        # The sweep's own storage (the journal file a run dir holds).
        searcher = SweepSearcher(spec, "suggest-cost", storage=study_storage(Path(tmp) / STUDY_FILE), num_samples=args.trials, data_info=info)
        from search.schedulers import make_scheduler

        scheduler = make_scheduler(spec)  # wired as build_tuner wires it
        milestones = list(getattr(scheduler, "milestones", []))
        if milestones and hasattr(scheduler, "rung_tests") and hasattr(searcher.study.sampler, "rungs"):
            searcher.study.sampler.rungs = scheduler.rung_tests
        running: list[str] = []
        for k in range(args.trials):
            start = time.perf_counter()
            searcher.suggest(f"t{k}")
            times.append(time.perf_counter() - start)
            running.append(f"t{k}")
            if len(running) == 2:
                trial_id = running.pop(0)
                params = searcher.params_of(trial_id)
                static = spec.entry.static_costs_of(trial_config(spec, params), info)
                macs, energy = static["macs"].value, static["energy_uj"]
                lr = params["optim.lr"]
                accuracy = 0.6 + 0.35 * math.tanh(macs / scale) - 0.05 * (math.log10(lr) + 2.5) ** 2 + rng.normal(0, 0.01)
                if energy.span is not None:  # SNE: a spike rate, learnt in a real sweep
                    energy_uj = energy.value + energy.span * float(np.clip(0.2 + 0.1 * (math.log10(lr) + 2.5) + rng.normal(0, 0.02), 0.01, 1.0))
                else:
                    energy_uj = energy.value
                result = {"val_accuracy": accuracy, "energy_uj": energy_uj, "macs": macs, "budget_fraction": 1.0, "epoch": spec.budget.epochs}
                for epoch in milestones:  # its curve at the rungs: what a sweep's trial reports there
                    at = {**result, "val_accuracy": accuracy * (0.8 + 0.2 * epoch / spec.budget.epochs), "epoch": epoch, "budget_fraction": epoch / spec.budget.epochs}
                    searcher.on_trial_result(trial_id, at)
                    scheduler.seed([{"trial_id": trial_id, **at}])
                searcher.on_trial_result(trial_id, result)
                searcher.on_trial_complete(trial_id, result)
            if (k + 1) % 100 == 0:
                print(f"  {k + 1}/{args.trials} suggestions, last median {1000 * np.median(times[-50:]):.1f} ms", file=sys.stderr, flush=True)
    ms = 1000 * np.asarray(times)
    startup = int(spec.sampler.options.get("n_startup_trials", 8)) if spec.sampler.name == "cost_aware" else 0
    switch = spec.sampler.options.get("switch_after", 100) if spec.sampler.name == "cost_aware" else 0
    switch = args.trials if switch is None else int(switch)
    phases = {"start-up (random)": (0, startup), "cost-aware model": (startup, switch), "fallback (multivariate TPE)": (switch, args.trials)}
    if spec.sampler.name != "cost_aware":
        phases = {spec.sampler.name: (0, args.trials)}
    summary: dict = {"space": args.space, "sampler": spec.sampler.name, "handover": not args.no_handover, "trials": args.trials}
    for name, (lo, hi) in phases.items():
        part = ms[lo:hi]
        if len(part):
            print(f"{name:<30} suggestions {lo + 1}-{hi}: median {np.median(part):.1f} ms, p90 {np.percentile(part, 90):.1f} ms, max {part.max():.0f} ms")
            summary[name] = {"median_ms": round(float(np.median(part)), 1), "p90_ms": round(float(np.percentile(part, 90)), 1)}
    if args.trials >= 320:
        summary["median_s_at_300"] = round(float(np.median(ms[280:320])) / 1000, 4)
    if args.trials >= 520:
        summary["median_s_at_500"] = round(float(np.median(ms[480:520])) / 1000, 4)
    summary["cpu"] = cpu_model()
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
