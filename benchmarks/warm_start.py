"""Does a warm start pay? A sweep told an earlier sweep's trials against the same sweep started cold.

Per space and seed, three real sweeps on the path ``python -m search.run`` takes (preflight,
``prepare_sweep``, ``build_tuner``), each with the space as shipped (its sampler and scheduler):

* ``earlier``: the same space with another seed (``100 + seed``) and half the trials;
* ``cold``: the sweep itself, started from nothing;
* ``warm``: the same sweep (same seed, same trials) with ``--warm-start`` the earlier run dir.

Both are scored by the hypervolume of **their own trials** (the earlier sweep's are not counted)
against the epochs they trained, with one fixed reference point per space (from every run of it).
Reported per space: final hypervolumes (mean ± std over seeds), the epochs the warm sweep needs to
reach the cold sweep's final hypervolume as a fraction of the cold sweep's epochs (per seed and
the median; goal ≤ 1/3), and how many configs the warm sweep trained that the earlier one had
(goal 0). Beside the goal: the earlier sweep's epochs over the cold sweep's (what the warm sweep
was told cost), and the warm sweep's epochs to the cold final when the told trials' points count
too. ``--out DIR`` gets ``warm_start.json`` (every run; a re-run with the same ``--out``
continues where it stopped). The last line printed is the summary.

    python benchmarks/warm_start.py --out benchmarks/results     # ~10 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_model, quiet_local_tune  # noqa: E402  (puts the project on sys.path)
from search_efficiency import MNIST1D, SPACES, _median, _ok, _record, _spec, curves, first_reaching, make_mnist1d, scoring_box  # noqa: E402

quiet_local_tune()

#: The spaces compared (names of ``search_efficiency.SPACES``).
DEFAULT_SPACES = ("quickstart", "g2g_mnist1d")
GOAL = 1 / 3


def _sweep(spec, warm_from: str | None = None) -> tuple[dict, list[dict]]:
    """One sweep as the command line runs it; its record for scoring, and its trials' rows."""
    from search.sweep import SweepOptions, build_tuner, checked_spec, prepare_sweep

    options = SweepOptions(warm_start=(warm_from,) if warm_from else ())
    spec, checked, problem = checked_spec(spec, options)
    if problem:
        raise SystemExit(f"error: {problem}")
    sweep = prepare_sweep(spec, checked=checked)
    start = time.time()
    build_tuner(sweep, progress=False, data_info=checked.info).fit()
    wall = time.time() - start
    trials = sweep.records.read_trials().to_pylist()
    epochs = sweep.records.read_epochs().to_pylist()
    return _record(spec, start, wall, trials, epochs), trials


def _configs(rows: list[dict], names: list[str]) -> set[tuple]:
    return {tuple(repr(r.get(n)) for n in names) for r in rows if r.get("state") != "REFUSED"}


def summarise(space: str, runs: dict, seeds: list[int]) -> dict:
    spec = _spec(space, "default", 0, tempfile.gettempdir())
    objectives, directions = list(spec.metrics), list(spec.modes)
    mine = {k.split("/", 1)[1]: r for k, r in runs.items() if k.split("/")[0] == space}
    scoring = scoring_box(mine.values(), objectives, directions)
    if scoring is None:
        return {}
    reference, box = scoring
    finals: dict[str, list[float]] = {"cold": [], "warm": [], "earlier": []}
    to_cold, overlap, seeds_done, head_start, with_told = [], [], [], [], []
    for seed in seeds:
        if any(f"{arm}/{seed}" not in mine for arm in ("earlier", "cold", "warm")):
            continue
        seeds_done.append(seed)
        scored = {arm: curves(mine[f"{arm}/{seed}"], objectives, directions, reference, box) for arm in ("earlier", "cold", "warm")}
        for arm, c in scored.items():
            finals[arm].append(c["hv_trials"][-1] if c["hv_trials"] else 0.0)
        target = finals["cold"][-1]
        n = first_reaching(scored["warm"]["hv_epochs"], scored["warm"]["epochs"], target)
        to_cold.append(None if n is None else round(n / scored["cold"]["total_epochs"], 3))
        overlap.append(mine[f"warm/{seed}"]["trained_before"])
        head_start.append(round(scored["earlier"]["total_epochs"] / scored["cold"]["total_epochs"], 3))
        told = [[t[m] for m in objectives] for t in mine[f"earlier/{seed}"]["trials"] if _ok(t, objectives)]
        union = curves(mine[f"warm/{seed}"], objectives, directions, reference, box, known=told)
        n = first_reaching(union["hv_epochs"], union["epochs"], target)
        with_told.append(None if n is None else round(n / scored["cold"]["total_epochs"], 3))
    return {
        "objectives": objectives,
        "reference": reference.tolist(),
        "seeds": seeds_done,
        "hv_final": {arm: {"mean": round(float(np.mean(v)), 4), "std": round(float(np.std(v)), 4)} for arm, v in finals.items() if v},
        "warm_epochs_to_cold_final": to_cold,
        "warm_epochs_to_cold_final_median": _median(to_cold),
        "goal": round(GOAL, 3),
        "configs_trained_again": overlap,
        # Beside the goal: the earlier sweep's epochs (what the warm sweep was told) over the cold
        # sweep's, and the epochs the warm sweep needs when the told trials' points count too.
        "earlier_epochs_over_cold": head_start,
        "warm_with_told_epochs_to_cold_final": with_told,
        "warm_with_told_epochs_to_cold_final_median": _median(with_told),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", default=",".join(DEFAULT_SPACES), help=f"comma-separated, of {', '.join(SPACES)}")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", type=Path, default=None, help="write (and continue) warm_start.json here")
    args = parser.parse_args()
    spaces = args.spaces.split(",")
    for name in spaces:
        if name not in SPACES:
            parser.error(f"unknown space {name!r}; choose from {', '.join(SPACES)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    if "g2g_mnist1d" in spaces and not MNIST1D.exists():
        make_mnist1d(MNIST1D)
    out_json = args.out / "warm_start.json" if args.out else None
    runs: dict[str, dict] = json.loads(out_json.read_text()).get("runs", {}) if out_json and out_json.exists() else {}

    def save() -> dict:
        result = {"cpu": cpu_model(), "seeds": seeds, "trials": {s: SPACES[s][2] for s in spaces}, "spaces": {s: summarise(s, runs, seeds) for s in spaces}}
        if out_json:
            args.out.mkdir(parents=True, exist_ok=True)
            out_json.write_text(json.dumps({**result, "runs": runs}) + "\n")
        return result

    import ray

    ray.init(address="local", num_cpus=os.cpu_count() or 2, include_dashboard=False, logging_level=logging.ERROR)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for space in spaces:
                trials = SPACES[space][2]
                for seed in seeds:
                    if all(f"{space}/{arm}/{seed}" in runs for arm in ("earlier", "cold", "warm")):
                        continue
                    earlier = _spec(space, "default", 100 + seed, tmp).model_copy(update={"name": f"{space}-earlier-s{seed}"})
                    earlier = earlier.model_copy(update={"run": earlier.run.model_copy(update={"num_samples": trials // 2})})
                    runs[f"{space}/earlier/{seed}"], earlier_rows = _sweep(earlier)
                    names = list(earlier.space)
                    for arm in ("cold", "warm"):
                        spec = _spec(space, "default", seed, tmp).model_copy(update={"name": f"{space}-{arm}-s{seed}"})
                        run, rows = _sweep(spec, warm_from=f"{tmp}/{earlier.name}" if arm == "warm" else None)
                        run["trained_before"] = len(_configs(rows, names) & _configs(earlier_rows, names))
                        runs[f"{space}/{arm}/{seed}"] = run
                        print(f"{space}/{arm}/{seed}: {len(run['trials'])} trials, {len(run['epoch_rows'])} epochs, {run['wall_s']} s", file=sys.stderr, flush=True)
                    save()
    finally:
        ray.shutdown()
    result = save()
    for space, summary in result["spaces"].items():
        print(json.dumps({"space": space, **{k: v for k, v in summary.items() if k != "reference"}}), file=sys.stderr)
    print(json.dumps({"cpu": result["cpu"], "seeds": seeds, **{s: {k: v.get(k) for k in ("hv_final", "warm_epochs_to_cold_final_median", "configs_trained_again")} for s, v in result["spaces"].items()}}))


if __name__ == "__main__":
    main()
