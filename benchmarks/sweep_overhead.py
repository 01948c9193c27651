"""Per-trial overhead of a sweep: our tuned path vs. stock Ray Tune defaults.

Runs sweeps of fixed-length trials (``--work-s`` seconds of real single-threaded matmul work,
reported once per epoch like a training loop) on the local CPUs and measures how much of the
workers' time goes to trials rather than to Ray and our bookkeeping:

    utilisation          = trial compute / (workers × wall)
    overhead_per_trial_s = (workers × wall − trial compute) / trials

"ours" is the path ``python -m search.run`` takes (spec → Optuna searcher with a persisted
study → Tune with actor reuse, our Parquet recorder, no per-trial auto loggers). "stock" is a
``tune.Tuner`` with Ray Tune's defaults and the stock ``OptunaSearch``. The last line printed is
the JSON summary of "ours", with the stock figures alongside.

    python benchmarks/sweep_overhead.py [--trials 32] [--work-s 5] [--epochs 5]

Each worker pays a fixed start-up once (a fresh actor process importing Ray Tune and PyTorch,
~3-4 s here); with actor reuse the per-trial cost after that is a few tens of milliseconds, so
the measured overhead per trial is that start-up spread over the trials of the sweep.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")


def _bench_entry():
    """The benchmark's family: a trial of fixed compute, ``work.seconds`` of matmuls over ``budget.epochs`` reports."""
    from pydantic import Field

    from trainables.config import ConfigModel, TrialConfig
    from trainables.registry import TrainableEntry

    class WorkConfig(ConfigModel):
        seconds: float = Field(default=5.0, gt=0)
        x: float = 0.5
        log: str = ""  # where each epoch appends "pid start end epoch" (wall clock), for the breakdown

    class BenchConfig(TrialConfig):
        work: WorkConfig = WorkConfig()

    class FixedWork:
        """Follows trainables.loop.Training: each epoch is ``seconds / epochs`` of real matmul work."""

        def __init__(self, config, splits=None):
            import torch

            self.cfg, self.device = config, "cpu"
            self.epoch, self.epochs, self.compute = 0, config.budget.epochs, 0.0
            self.a = torch.randn(256, 256)

        @classmethod
        def build_model(cls, config, info):
            return None

        def train_epoch(self):
            import torch

            wall, start = time.time(), time.perf_counter()
            while time.perf_counter() - start < self.cfg.work.seconds / self.epochs:
                self.a = torch.tanh(self.a @ self.a)
            self.compute += time.perf_counter() - start
            self.epoch += 1
            if self.cfg.work.log:
                with open(self.cfg.work.log, "a") as log:
                    log.write(f"{os.getpid()} {wall:.6f} {time.time():.6f} {self.epoch}\n")
            return 0.0

        def metrics(self):
            return dict(epoch=self.epoch, val_accuracy=float(self.cfg.work.x), val_loss=0.0, macs=1, energy_uj=0.0, params=1,
                        density=1.0, train_time_s=self.compute, budget_fraction=self.epoch / self.epochs)

        def state_dict(self):
            return {"epoch": self.epoch, "compute": self.compute}

        def load_state_dict(self, state):
            self.epoch, self.compute = int(state["epoch"]), float(state["compute"])

    return TrainableEntry("bench_fixed_work", config=BenchConfig, training=FixedWork)


def fixed_work(config: dict) -> None:
    """The stock variant's function trainable: the same work as the benchmark family, its own loop."""
    from ray import tune

    from trainables.report import make_report
    from trainables.training import configure_threads

    entry = _bench_entry()
    configure_threads(1)
    run = entry.training_class()(entry.resolve(config))
    while run.epoch < run.epochs:
        run.train_epoch()
        tune.report(make_report(run.metrics()))


def breakdown(log: Path, start: float, end: float) -> dict:
    """Where the workers' idle time went, from the epochs' wall-clock intervals per worker process.

    ``startup``: from the sweep's start to each worker's first epoch (Ray starting the trial
    actor's process, its imports); ``between_epochs``: gaps inside a trial (a report's round
    trip to the driver, the checkpoint); ``between_trials``: from a trial's last epoch to the
    next trial's first on the same worker; ``tail``: after a worker's last epoch.
    """
    per_pid: dict[str, list[tuple[float, float, int]]] = {}
    for line in log.read_text().splitlines():
        pid, a, b, epoch = line.split()
        per_pid.setdefault(pid, []).append((float(a), float(b), int(epoch)))
    out = {"startup_s": 0.0, "between_epochs_s": 0.0, "between_trials_s": 0.0, "tail_s": 0.0}
    for spans in per_pid.values():
        spans.sort()
        out["startup_s"] += spans[0][0] - start
        out["tail_s"] += max(0.0, end - spans[-1][1])
        for (_, prev_end, _), (nxt_start, _, epoch) in zip(spans, spans[1:]):
            out["between_trials_s" if epoch == 1 else "between_epochs_s"] += nxt_start - prev_end
    result: dict = {key: round(value, 2) for key, value in out.items()}
    result["worker_processes"] = len(per_pid)
    return result


def _spec(trials: int, work_s: float, epochs: int, storage: str, log: str = ""):
    from search.spec import parse_spec

    return parse_spec(
        {
            "name": "overhead",
            "trainable": "bench_fixed_work",
            "budget": {"epochs": epochs, "eval_test": False},
            "objectives": [{"metric": "val_accuracy", "mode": "max"}],
            "space": {"work.x": {"float": [0.0, 1.0]}},
            "fixed": {"work.seconds": work_s, "work.log": log},
            "sampler": "tpe",
            "run": {"num_samples": trials, "seed": 0, "storage": storage},
        },
        "<benchmark>",
    )


def _measure(results_compute: float, wall: float, workers: int, trials: int) -> dict:
    return {
        "trials": trials,
        "workers": workers,
        "wall_s": round(wall, 2),
        "trial_compute_s": round(results_compute, 2),
        "utilisation": round(results_compute / (workers * wall), 3),
        "overhead_per_trial_s": round((workers * wall - results_compute) / trials, 3),
    }


def run_ours(trials: int, work_s: float, epochs: int, workers: int) -> dict:
    from search.rundir.records import TRIALS_FILE
    from search.sweep import build_tuner, prepare_sweep
    from trainables.report import TERMINATED_STATE

    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "epochs.log"
        sweep = prepare_sweep(_spec(trials, work_s, epochs, tmp, str(log)))
        tuner = build_tuner(sweep, progress=False, max_concurrent=workers)
        start, cpu, wall_start = time.perf_counter(), time.process_time(), time.time()
        tuner.fit()
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        rows = sweep.location.read_table(TRIALS_FILE).to_pylist()
        compute = sum(r["train_time_s"] for r in rows)
        assert len(rows) == trials and all(r["state"] == TERMINATED_STATE for r in rows)
        idle = breakdown(log, wall_start, wall_start + wall)
    return dict(_measure(compute, wall, workers, trials), driver_cpu_s=round(cpu, 2), idle=idle)


def run_stock(trials: int, work_s: float, epochs: int, workers: int) -> dict:
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    os.environ.pop("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", None)
    with tempfile.TemporaryDirectory() as tmp:
        tuner = tune.Tuner(
            fixed_work,
            param_space={"work": {"x": tune.uniform(0.0, 1.0), "seconds": work_s}, "budget": {"epochs": epochs}},
            tune_config=tune.TuneConfig(num_samples=trials, metric="val_accuracy", mode="max", search_alg=OptunaSearch(seed=0),
                                        max_concurrent_trials=workers),
            run_config=tune.RunConfig(storage_path=tmp, name="stock", verbose=0),
        )
        start = time.perf_counter()
        grid = tuner.fit()
        wall = time.perf_counter() - start
        compute = sum(r.metrics["train_time_s"] for r in grid)
        assert len(grid) == trials and not grid.errors
    return _measure(compute, wall, workers, trials)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--work-s", type=float, default=5.0)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--skip-stock", action="store_true")
    args = parser.parse_args()

    import logging

    import ray

    from trainables.registry import register_trainable

    register_trainable(_bench_entry())
    ray.init(address="local", num_cpus=args.workers, include_dashboard=False, logging_level=logging.ERROR)
    try:
        # Warm the cluster once (worker processes, imports) so neither variant pays for it.
        ray.get(ray.remote(lambda: __import__("torch").zeros(1).sum().item()).remote())
        os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
        ours = run_ours(args.trials, args.work_s, args.epochs, args.workers)
        print("ours :", json.dumps(ours), flush=True)
        stock = None if args.skip_stock else run_stock(args.trials, args.work_s, args.epochs, args.workers)
        if stock:
            print("stock:", json.dumps(stock), flush=True)
    finally:
        ray.shutdown()
    summary = dict(ours, work_s_per_trial=args.work_s)
    if stock:
        summary.update(stock_utilisation=stock["utilisation"], stock_overhead_per_trial_s=stock["overhead_per_trial_s"])
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
