"""Command line: ``python -m search.run SPEC [options]`` runs a sweep.

User errors (a malformed spec, missing data, an unreachable cluster, an occupied run dir, a
GPU request on a machine without one) print one line starting with ``error:`` and exit with
status 2 before anything is written. A sweep in which every trial failed exits with status 1.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Sequence
from typing import Any

from search.cli import EXIT_FAILED, EXIT_INTERRUPTED, fail

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m search.run",
        description="Run a multi-objective Ray Tune + Optuna sweep described by a YAML spec.",
    )
    parser.add_argument("spec", help="path to the sweep spec (YAML), e.g. spaces/quickstart.yaml")
    parser.add_argument("--storage", metavar="DIR", help="parent of the run dir (default: run.storage); the run dir is DIR/NAME")
    parser.add_argument("--name", help="sweep name (default: the spec's name)")
    parser.add_argument("--num-samples", type=int, metavar="N", help="number of trials (overrides run.num_samples)")
    parser.add_argument("--address", metavar="ADDR", help="join a Ray cluster ('auto', 'HOST:PORT' or 'ray://HOST:PORT'); default: start Ray locally")
    parser.add_argument("--num-cpus", type=int, metavar="N", help="CPUs for a local Ray (default: all)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a spec value by dotted path (run.seed=3), or pin a searched parameter (model.width=128); repeatable",
    )
    parser.add_argument("--dry-run", action="store_true", help="validate, print the resolved space and a few sampled configs; run nothing")
    parser.add_argument("--resume", action="store_true", help="continue the sweep in the existing run dir")
    parser.add_argument("--quiet", action="store_true", help="no per-trial progress lines")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Imports after argument parsing keep --help fast.
    from search.spec import SpecError, check_sweep_name, load_spec
    from trainables.data import DataError, check_available

    overrides = list(args.overrides)
    if args.num_samples is not None:
        if args.num_samples < 1:
            return fail("--num-samples must be >= 1")
        overrides.append(f"run.num_samples={args.num_samples}")
    try:
        spec = load_spec(args.spec, overrides)
    except SpecError as exc:
        return fail(str(exc))
    if args.name:
        try:
            check_sweep_name(args.name)
        except ValueError as exc:
            return fail(f"--name: {exc}")
        spec = spec.model_copy(update={"name": args.name})

    if args.dry_run:
        _dry_run(spec)
        return 0
    try:
        info = check_available(spec.data.model_dump())
    except DataError as exc:
        return fail(f"data: {exc}")
    except ValueError as exc:  # a value the data config rejects
        return fail(f"data: {' '.join(str(exc).split())}")
    if not args.address:
        problem = _missing_gpu(spec)
        if problem:
            return fail(problem)

    from search.tuner import RunDirError, check_run_dir, prepare_sweep

    try:
        check_run_dir(spec, storage=args.storage, name=args.name, resume=args.resume)
    except RunDirError as exc:
        return fail(str(exc))

    import ray

    try:
        _init_ray(args.address, args.num_cpus)
    except (ConnectionError, RuntimeError, ValueError, OSError) as exc:
        return fail(f"cannot reach the Ray cluster at {args.address!r}: {str(exc).strip().splitlines()[0]}")
    try:
        try:
            sweep = prepare_sweep(spec, storage=args.storage, name=args.name, resume=args.resume)
        except RunDirError as exc:
            return fail(str(exc))
        return _run(sweep, info, args)
    finally:
        ray.shutdown()


def _missing_gpu(spec: Any) -> str | None:
    """Why a GPU request cannot be met on this machine (a local sweep), or None."""
    wants = spec.run.resources.gpu > 0 or spec.run.device.startswith("cuda")
    if not wants:
        return None
    import torch

    if torch.cuda.is_available():
        return None
    what = f"run.resources.gpu is {spec.run.resources.gpu:g}" if spec.run.resources.gpu > 0 else f"run.device is {spec.run.device!r}"
    return (
        f"{what} but this machine has no CUDA GPU (torch.cuda.is_available() is False): "
        "set run.resources.gpu: 0 and run.device: auto (or cpu), or join a cluster with GPU nodes (--address)"
    )


def _probe_address(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast on an unreachable HOST:PORT (Ray itself retries for minutes)."""
    import socket

    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto" or a form Ray resolves itself
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise ConnectionError(f"{exc.strerror or exc} (is the head node running? see 'Running on a cluster' in README.md)") from None


def _init_ray(address: str | None, num_cpus: int | None) -> None:
    import ray

    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # parquet is our results store
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # our ProgressPrinter replaces Tune's tables
    kwargs: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": True, "include_dashboard": False}
    # Trial failures and retries are reported by our progress lines, one line each; Tune's
    # own multi-line tracebacks for them would drown the sweep's output.
    logging.getLogger("ray.tune").setLevel(logging.CRITICAL)
    if address:
        _probe_address(address)
        ray.init(address=address, **kwargs)
    else:
        ray.init(address="local", num_cpus=num_cpus or os.cpu_count(), **kwargs)


def _run(sweep: Any, info: Any, args: argparse.Namespace) -> int:
    from search.tuner import build_tuner, finished_trials, restore_tuner

    spec = sweep.spec
    print(
        f"sweep {sweep.name}: {spec.num_samples} trials of {spec.trainable} on {spec.data.name} "
        f"({info.n_train} train / {info.n_val} val), sampler {spec.sampler.name}, scheduler {spec.scheduler.name}\n"
        f"run dir: {sweep.run_dir}   (watch the study: optuna-dashboard {sweep.study_url})",
        flush=True,
    )
    tuners = []
    if args.resume:
        restored = restore_tuner(sweep)
        if restored is not None:
            print(f"resuming: {finished_trials(sweep)} trials finished before", flush=True)
            tuners.append(lambda: restored)
    # A fresh sweep, or the extension of a resumed one to a larger --num-samples: the searcher
    # counts the persisted study's trials, so only the missing ones are added.
    tuners.append(lambda: build_tuner(sweep, progress=not args.quiet, on_cluster=bool(args.address)))
    try:
        for make in tuners:
            if args.resume and finished_trials(sweep) >= spec.num_samples:
                break
            try:
                make().fit()
            except KeyboardInterrupt:  # a second Ctrl-C while Tune was saving its state
                return _interrupted(sweep, args)
            if finished_trials(sweep) < spec.num_samples and _was_interrupted(sweep):
                return _interrupted(sweep, args)
    finally:
        sweep.upload_study()
    return _summary(sweep)


def _was_interrupted(sweep: Any) -> bool:
    """Tune handles Ctrl-C by stopping and saving; its fit() then returns normally."""
    from search.tuner import trial_states

    states = trial_states(sweep)
    return not states or any(state not in ("TERMINATED", "ERROR") for state in states)


def _interrupted(sweep: Any, args: argparse.Namespace) -> int:
    print(
        f"\ninterrupted: finished trials are saved in {sweep.run_dir}\n"
        f"resume with: python -m search.run {args.spec} --storage {sweep.storage} --name {sweep.name} --resume",
        file=sys.stderr,
    )
    return EXIT_INTERRUPTED


def _summary(sweep: Any) -> int:
    """Print the sweep's outcome; returns the exit status (1 when every trial failed)."""
    from search.rundir import TRIALS_FILE
    from trainables.report import format_number, is_full_budget

    spec = sweep.spec
    table = sweep.location.read_table(TRIALS_FILE)
    if table is None:
        print(f"no trial finished; run dir: {sweep.run_dir}")
        return 0
    rows = table.to_pylist()
    full = [r for r in rows if r["state"] == "TERMINATED" and is_full_budget(r.get("budget_fraction"))]
    states: dict[str, int] = {}
    for r in rows:
        key = "STOPPED EARLY" if r["state"] == "TERMINATED" and r not in full else r["state"]
        states[key] = states.get(key, 0) + 1
    print("\ntrials: " + ", ".join(f"{n} {s.lower()}" for s, n in sorted(states.items())))
    if rows and all(r["state"] == "ERROR" for r in rows):
        first = next((r.get("error") for r in rows if r.get("error")), "unknown error")
        return fail(
            f"all {len(rows)} trials failed (first error: {first}); every trial's error is in the 'error' column of "
            f"{sweep.run_dir}/{TRIALS_FILE} and its trial dir's error.txt",
            EXIT_FAILED,
        )
    candidates = [r for r in full if spec.is_feasible(r)]
    if candidates:
        print("best feasible full-budget trials per objective:" if spec.constraints else "best full-budget trials per objective:")
        cols = [*spec.metrics, "test_accuracy"]
        print(f"  {'objective':<16} {'trial':<14} " + " ".join(f"{c:>14}" for c in cols))
        for metric, mode in zip(spec.metrics, spec.modes):
            finite = [r for r in candidates if r.get(metric) is not None and math.isfinite(r[metric])]
            if not finite:
                continue
            best = (max if mode == "max" else min)(finite, key=lambda r: r[metric])
            print(f"  {metric + ' ' + mode:<16} {best['trial_id']:<14} " + " ".join(f"{format_number(best.get(c)):>14}" for c in cols))
    elif full and spec.constraints:
        print(f"no full-budget trial satisfies {', '.join(c.text for c in spec.constraints)}")
    print(f"run dir: {sweep.run_dir}")
    return 0


def _dry_run(spec: Any) -> None:
    import yaml

    from search.space import describe_space, sample_configs

    print(f"spec {spec.name}: trainable {spec.trainable}, data {spec.data.name}, {spec.budget.epochs} epochs, {spec.num_samples} trials")
    print("objectives: " + ", ".join(f"{o.metric} ({o.mode})" for o in spec.objectives))
    if spec.constraints:
        print("constraints: " + ", ".join(c.text for c in spec.constraints))
    print(f"sampler: {spec.sampler.name} (seed {spec.run.seed}); scheduler: {spec.scheduler.name}")
    print("space:")
    print("\n".join(describe_space(spec)))
    if spec.fixed:
        print("fixed:")
        for key, value in spec.fixed.items():
            print(f"  {key:<22} {value}")
    n = min(5, spec.num_samples)
    print(f"first {n} sampled configs:")
    for i, params in enumerate(sample_configs(spec, n)):
        print(f"  {i}: " + yaml.safe_dump(params, default_flow_style=True, sort_keys=False, width=10_000).strip())


if __name__ == "__main__":
    sys.exit(main())
