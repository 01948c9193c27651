"""Driver cost per trial as a sweep grows: does the 2,000th trial cost the driver more than the 1st?

Runs one sweep through the path ``python -m search.run`` takes (spec → persisted Optuna study
with the default sampler → Ray Tune with our recorder, progress lines and searcher) over trials of trivial work
(a benchmark family registered in this process: one epoch, no training), two objectives and
a constraint, on the local CPUs. Whatever grows with the number of finished trials (sampler
cost, table rewrites, Pareto fronts, snapshots of the searcher) shows as a rising driver cost.

Per finished trial it records the driver process's CPU time (all its threads: Tune's loop,
the sampler, the recorder, the progress lines) and the wall clock. The last line printed is
JSON with ``trials``, ``wall_s``, ``driver_ms_per_trial_first`` (driver CPU per trial over the
first 10 % of trials), ``driver_ms_per_trial_last`` (the last 10 %), ``growth`` (last / first),
the same for wall time, and the CPU model.

    python benchmarks/driver_scale.py                  # 2,000 trials (~10 min on 2 cores)
    python benchmarks/driver_scale.py --trials 10000   # the 10k-trial case (about an hour)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_model, quiet_local_tune  # noqa: E402  (puts the project on sys.path)

quiet_local_tune()


def _trivial_entry():
    """A family whose trial is one report: objectives read off two searched numbers."""
    from trainables.config import ConfigModel, TrialConfig
    from trainables.registry import TrainableEntry

    class PointConfig(ConfigModel):
        x: float = 0.5
        y: float = 0.5

    class ScaleConfig(TrialConfig):
        point: PointConfig = PointConfig()

    class Instant:
        """Follows trainables.loop.Training with no work: accuracy x, energy (1 - x)² + y."""

        def __init__(self, config, splits=None):
            self.cfg, self.device, self.epoch, self.epochs = config, "cpu", 0, config.budget.epochs

        @classmethod
        def build_model(cls, config, info):
            return None

        def train_epoch(self):
            self.epoch += 1
            return 0.0

        def metrics(self):
            x, y = self.cfg.point.x, self.cfg.point.y
            return dict(epoch=self.epoch, val_accuracy=x, val_loss=1 - x, macs=int(1000 * y), energy_uj=(1 - x) ** 2 + y,
                        params=1, density=1.0, train_time_s=0.0, budget_fraction=self.epoch / self.epochs)

        def state_dict(self):
            return {"epoch": self.epoch}

        def load_state_dict(self, state):
            self.epoch = int(state["epoch"])

    # Its costs are known before training (as a G2G net's are), so the default sampler models
    # accuracy alone for its first trials, as it does on a real space.
    return TrainableEntry("bench_instant", config=ScaleConfig, training=Instant, static_costs="driver_scale:instant_costs")


def instant_costs(config, info):
    """The trivial family's costs known before training: MACs and energy follow from the point."""
    from trainables.report import StaticCost

    x, y = config.point.x, config.point.y
    return {"macs": StaticCost(float(int(1000 * y))), "energy_uj": StaticCost((1 - x) ** 2 + y)}


def _spec(trials: int, storage: str, sampler: str):
    from search.spec import parse_spec

    return parse_spec(
        {
            "name": "driver-scale",
            "trainable": "bench_instant",
            "budget": {"epochs": 1, "eval_test": False},
            "objectives": [{"metric": "val_accuracy", "mode": "max"}, {"metric": "energy_uj", "mode": "min"}],
            "constraints": ["macs <= 900"],
            "space": {"point.x": {"float": [0.0, 1.0]}, "point.y": {"float": [0.0, 1.0]}},
            "sampler": sampler,
            "run": {"num_samples": trials, "seed": 0, "storage": storage},
        },
        "<benchmark>",
    )


class _Clock:
    """A Tune callback: driver CPU and wall clock at every finished trial."""

    def __init__(self, total: int) -> None:
        from ray.tune import Callback

        class Probe(Callback):
            def on_trial_complete(probe, iteration, trials, trial, **info):  # noqa: N805
                self.marks.append((time.perf_counter(), time.process_time()))
                if len(self.marks) % max(1, total // 20) == 0:
                    print(f"  {len(self.marks)}/{total} trials", file=sys.stderr, flush=True)

        self.marks: list[tuple[float, float]] = []
        self.callback = Probe()

    def per_trial_ms(self, lo: int, hi: int) -> tuple[float, float]:
        (w0, c0), (w1, c1) = self.marks[lo], self.marks[hi]
        n = hi - lo
        return 1000 * (c1 - c0) / n, 1000 * (w1 - w0) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--sampler", default="cost_aware", help="sampler of the sweep (default: cost_aware, the quickstart's)")
    args = parser.parse_args()

    import ray

    from search.rundir.records import TRIALS_FILE
    from search.sweep import build_tuner, prepare_sweep
    from trainables.registry import register_trainable
    from trainables.report import TERMINATED_STATE, REFUSED_STATE

    register_trainable(_trivial_entry())
    ray.init(address="local", num_cpus=args.workers, include_dashboard=False, logging_level=logging.ERROR)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            sweep = prepare_sweep(_spec(args.trials, tmp, args.sampler))
            clock = _Clock(args.trials)
            tuner = build_tuner(sweep, progress=True, max_concurrent=args.workers, callbacks=[clock.callback])
            start = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):  # the progress lines are computed, not shown
                tuner.fit()
            wall = time.perf_counter() - start
            rows = sweep.location.read_table(TRIALS_FILE).to_pylist()
            refused = sum(r["state"] == REFUSED_STATE for r in rows)  # candidates whose known costs broke the constraint
            rows = [r for r in rows if r["state"] != REFUSED_STATE]
            assert len(rows) == args.trials and all(r["state"] == TERMINATED_STATE for r in rows), "every trial must finish"
    finally:
        ray.shutdown()
    n = len(clock.marks)
    tenth = max(1, n // 10)
    first_cpu, first_wall = clock.per_trial_ms(0, tenth)
    last_cpu, last_wall = clock.per_trial_ms(n - 1 - tenth, n - 1)
    summary = {
        "trials": n,
        "workers": args.workers,
        "sampler": args.sampler,
        "refused": refused,
        "wall_s": round(wall, 1),
        "driver_ms_per_trial_first": round(first_cpu, 2),
        "driver_ms_per_trial_last": round(last_cpu, 2),
        "growth": round(last_cpu / first_cpu, 3),
        "wall_ms_per_trial_first": round(first_wall, 2),
        "wall_ms_per_trial_last": round(last_wall, 2),
        "wall_growth": round(last_wall / first_wall, 3),
        "cpu": cpu_model(),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
