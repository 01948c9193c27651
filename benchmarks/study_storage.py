"""What one study write costs the driver: Optuna's SQLite storage vs the journal file a run dir holds.

    python benchmarks/study_storage.py [--trials 30] [--epochs 5]

The writes a sweep's driver makes per trial, on this machine's disk, in a fresh temporary dir:
``ask`` (create the trial, two parameters and a user attribute), one curve point per epoch
(``set_trial_intermediate_value``) and the ``tell`` (a constraint attribute and the values).
They sit on the trials' path: a report waits for its curve point, the next trial for the tell
and the ask. Medians in milliseconds; the last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import cpu_model  # noqa: E402  (puts the project on sys.path)


def time_storage(storage, trials: int, epochs: int) -> dict[str, float]:
    """Median milliseconds of ask, curve point and tell on ``storage``."""
    import optuna

    study = optuna.create_study(storage=storage, directions=["maximize", "minimize"], study_name="bench")
    ask, point, tell = [], [], []
    for _ in range(trials):
        start = time.perf_counter()
        trial = study.ask()
        x = trial.suggest_float("x", 0.0, 1.0)
        y = trial.suggest_int("y", 1, 8)
        trial.set_user_attr("ray_trial_id", "abc")
        ask.append(time.perf_counter() - start)
        for epoch in range(epochs):
            start = time.perf_counter()
            storage.set_trial_intermediate_value(trial._trial_id, epoch, 0.5)
            point.append(time.perf_counter() - start)
        start = time.perf_counter()
        storage.set_trial_system_attr(trial._trial_id, "constraints", [0.0])
        study.tell(trial, [x, y])
        tell.append(time.perf_counter() - start)
    return {name: round(statistics.median(values) * 1e3, 3) for name, values in (("ask_ms", ask), ("curve_point_ms", point), ("tell_ms", tell))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args(argv)

    import optuna

    from search.rundir.records import SQLITE_STUDY_FILE, STUDY_FILE, study_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    result: dict = {"cpu": cpu_model(), "trials": args.trials, "epochs": args.epochs}
    with tempfile.TemporaryDirectory() as tmp:
        for name, file in (("sqlite", SQLITE_STUDY_FILE), ("journal", STUDY_FILE)):
            timing = time_storage(study_storage(Path(tmp) / file), args.trials, args.epochs)
            result[name] = timing
            print(f"  {name:<8} ask {timing['ask_ms']:.2f} ms, curve point {timing['curve_point_ms']:.2f} ms, tell {timing['tell_ms']:.2f} ms", flush=True)
    result["speedup_journal_vs_sqlite_per_trial"] = round(
        sum(result["sqlite"][k] * (args.epochs if k == "curve_point_ms" else 1) for k in result["sqlite"])
        / sum(result["journal"][k] * (args.epochs if k == "curve_point_ms" else 1) for k in result["journal"]),
        2,
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
