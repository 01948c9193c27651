"""Command line: ``python -m search.run SPEC [options]`` runs a sweep.

User errors (a malformed spec, missing data, an unreachable cluster, an occupied run dir, a
GPU request on a machine without one, a damaged run dir on ``--resume``) print one line starting
with ``error:`` and exit with status 2 before anything is written. A sweep in which every trial
failed exits with status 1. SIGINT, SIGTERM and SIGHUP stop the sweep cleanly (exit 130, 143,
129) with one line naming the ``--resume`` command.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search.cli import EXIT_FAILED, EXIT_INTERRUPTED, fail

__all__ = ["SweepOptions", "build_parser", "main", "run_sweep"]

#: Random configs whose costs ``--dry-run`` computes (it stops after 10 s).
PREVIEW_CONFIGS = 2000


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


@dataclass(frozen=True)
class SweepOptions:
    """How to run a sweep: where its run dir goes, which Ray, what it prints.

    Attributes:
        storage: Parent of the run dir (default: the spec's ``run.storage``).
        name: Sweep name (default: the spec's name); the run dir is ``STORAGE/NAME``.
        address: A Ray cluster to join (``auto``, ``HOST:PORT``, ``ray://…``); None starts Ray
            locally, bound to this machine only.
        num_cpus: CPUs of a local Ray (default: all).
        resume: Continue the sweep in the existing run dir.
        progress: Print a line per trial event.
        command: The command line that ran it (spec path first, then ``--set``/``--num-samples``/
            ``--address`` options), repeated in the line that says how to resume; None names the
            run dir's own ``spec.yaml``.
    """

    storage: str | None = None
    name: str | None = None
    address: str | None = None
    num_cpus: int | None = None
    resume: bool = False
    progress: bool = True
    command: tuple[str, ...] | None = None


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C while loading (imports, spec, data): nothing started yet
        print("\ninterrupted before the sweep started: nothing was run", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Imports after argument parsing keep --help fast.
    from search.spec import SpecError, load_spec

    overrides = list(args.overrides)
    if args.num_samples is not None:
        if args.num_samples < 1:
            return fail("--num-samples must be >= 1")
        overrides.append(f"run.num_samples={args.num_samples}")
    try:
        spec = load_spec(args.spec, overrides)
    except SpecError as exc:
        return fail(str(exc))
    if args.resume and not args.dry_run:
        given = args.num_samples is not None or any(o.partition("=")[0].strip() == "run.num_samples" for o in args.overrides)
        spec, args.num_cpus = _as_started(spec, args, given)
    if args.dry_run:
        if args.name:
            spec, problem = _named(spec, args.name)
            if problem:
                return fail(problem)
        # The real run's checks, each with the real run's line: a dry run approves what it would.
        _, problem = preflight(spec, SweepOptions(storage=args.storage, name=args.name, address=args.address, resume=args.resume))
        if problem:
            return fail(problem)
        _dry_run(spec)
        return 0
    options = SweepOptions(
        storage=args.storage,
        name=args.name,
        address=args.address,
        num_cpus=args.num_cpus,
        resume=args.resume,
        progress=not args.quiet,
        command=(args.spec, *_rerun_options(args)),
    )
    return run_sweep(spec, options)


def _as_started(spec: Any, args: argparse.Namespace, num_samples_given: bool) -> tuple[Any, int | None]:
    """A resumed sweep keeps its size and its local CPUs unless given again (and says when they change).

    The run dir's ``spec.yaml`` holds the ``run.num_samples`` it was started (or last resumed)
    with, ``sweep.json`` the ``--num-cpus``. Returns the spec and ``--num-cpus`` to resume with.
    """
    import json

    import yaml

    from search.rundir import SPEC_FILE, SWEEP_FILE, run_location
    from search.spec import SpecError, load_yaml

    location = run_location(args.storage or spec.run.storage, args.name or spec.name)
    try:
        saved = load_yaml(location.read_text(SPEC_FILE)) or {}
        meta = json.loads(location.read_text(SWEEP_FILE))
    except (OSError, ValueError, SpecError, UnicodeDecodeError, yaml.YAMLError):
        return spec, args.num_cpus  # the run dir checks say what is wrong with it
    before = (saved.get("run") or {}).get("num_samples")
    if isinstance(before, int) and before != spec.run.num_samples:
        if num_samples_given:
            print(f"--resume: run.num_samples {before} -> {spec.run.num_samples} (as given)")
        else:
            print(f"--resume: {before} trials, as the sweep was started (the spec file says {spec.run.num_samples}; --num-samples N changes it)")
            spec = spec.model_copy(update={"run": spec.run.model_copy(update={"num_samples": before})})
    cpus = meta.get("num_cpus")
    if args.num_cpus is None and isinstance(cpus, int) and not args.address:
        print(f"--resume: --num-cpus {cpus}, as the sweep was started")
        return spec, cpus
    return spec, args.num_cpus


def _rerun_options(args: argparse.Namespace) -> list[str]:
    parts: list[str] = []
    for override in args.overrides:
        parts += ["--set", override]
    if args.num_samples is not None:
        parts += ["--num-samples", str(args.num_samples)]
    if args.num_cpus is not None:
        parts += ["--num-cpus", str(args.num_cpus)]
    if args.address:
        parts += ["--address", args.address]
    return parts


def _named(spec: Any, name: str) -> tuple[Any, str | None]:
    """The spec renamed to ``name``, or the one-line problem with that name."""
    from search.spec import check_sweep_name

    try:
        check_sweep_name(name)
    except ValueError as exc:
        return spec, f"--name: {exc}"
    return spec.model_copy(update={"name": name}), None


def run_sweep(spec: Any, options: SweepOptions | None = None) -> int:
    """Run a validated spec's sweep on Ray (the search API behind ``python -m search.run``).

    Checks everything a user can get wrong before anything is written (data, GPUs, the run dir,
    the cluster), runs the sweep, prints its outcome and returns the exit status: 0, 1 when
    every trial failed, 2 on a user error (one ``error:`` line on stderr), 128 + signal when
    stopped by a signal. Ray is started (or joined) here and shut down before returning.

    Args:
        spec: A :class:`~search.spec.Spec` (:func:`search.spec.load_spec`).
        options: Where and how to run it (:class:`SweepOptions`).
    """
    options = options or SweepOptions()
    if options.name:
        spec, problem = _named(spec, options.name)
        if problem:
            return fail(problem)
    info, problem = preflight(spec, options)
    if problem:
        return fail(problem)

    from search.tuner import RunDirError, prepare_sweep

    import ray

    from search.stopping import catch_stop_signals

    sweep = None
    try:
        try:
            _init_ray(options.address, options.num_cpus)
        except (ConnectionError, RuntimeError, ValueError, OSError) as exc:
            return fail(f"cannot reach the Ray cluster at {options.address!r}: {str(exc).strip().splitlines()[0]}")
        # After ray.init: a local Ray installs a SIGTERM handler of its own.
        with catch_stop_signals():
            problem = _unplaceable(spec, wait_s=None if options.address else 0.0)
            if problem:
                return fail(problem)
            try:
                sweep = prepare_sweep(spec, storage=options.storage, name=options.name, resume=options.resume)
            except RunDirError as exc:
                return fail(str(exc))
            if not options.resume and options.num_cpus is not None and not options.address:
                _record_num_cpus(sweep, options.num_cpus)
            return _run(sweep, info, options)
    except KeyboardInterrupt:  # a second stop signal, or one before the sweep started
        return _interrupted(sweep, options)
    finally:
        ray.shutdown()


#: Configs drawn by :func:`preflight` to find relations the space can never (or only sometimes) meet.
PROBE_CONFIGS = 200
#: ... for at most this long (at least 20 configs): SNE configs take tens of ms each to build.
PROBE_SECONDS = 3.0


def preflight(spec: Any, options: SweepOptions) -> tuple[Any, str | None]:
    """Every check a sweep makes before starting Ray; ``--dry-run`` makes the same ones.

    The data is there (its shape read), a GPU asked for exists (a local sweep), the run dir is
    free (or holds the sweep to resume), and the space holds valid configs: :data:`PROBE_CONFIGS`
    random ones are resolved and (for a family with static costs) built from the data's shape;
    when none is valid (e.g. ``model.groups`` above every ``model.width`` searched) the sweep is
    refused, when some are not the share is printed.

    Returns:
        The data's :class:`~trainables.data.DataInfo` and the one-line problem, or None.
    """
    from search.tuner import RunDirError, check_run_dir
    from trainables.data import DataError, check_available

    try:
        info = check_available(spec.data.model_dump())
    except DataError as exc:
        return None, f"data: {exc}"
    except ValueError as exc:  # a value the data config rejects
        return None, f"data: {' '.join(str(exc).split())}"
    if not options.address:
        problem = _missing_gpu(spec)
        if problem:
            return info, problem
    try:
        check_run_dir(spec, storage=options.storage, name=options.name, resume=options.resume)
    except RunDirError as exc:
        return info, str(exc)
    return info, _invalid_space(spec, info)


def _invalid_space(spec: Any, info: Any) -> str | None:
    """The problem when no sampled config of the space is valid; prints the share when some are not."""
    import optuna

    from search.space import sample_configs, trial_config

    if spec.sampler.name == "grid" or not spec.space:
        return None
    import time

    from pydantic import ValidationError

    from trainables.config import describe_validation_error

    deadline = time.monotonic() + PROBE_SECONDS
    invalid, probed, reason = 0, 0, ""
    for params in sample_configs(spec, PROBE_CONFIGS, sampler=optuna.samplers.RandomSampler(seed=spec.run.seed)):
        probed += 1
        try:
            config = trial_config(spec, params)
            spec.entry.costs_before_training(config, info)  # builds the net (G2G, SNE) from the shape
        except ValidationError as exc:
            invalid += 1
            reason = reason or describe_validation_error(exc.errors()[0])
        except ValueError as exc:
            invalid += 1
            reason = reason or " ".join(str(exc).split())
        if probed >= 20 and time.monotonic() > deadline:
            break
    if invalid == probed:
        return f"no valid config in the space: all {probed} sampled configs are refused, e.g. {reason}"
    if invalid:
        print(f"warning: {100 * invalid / probed:.0f} % of {probed} sampled configs are not valid (their trials will fail), e.g. {reason}")
    return None


def _record_num_cpus(sweep: Any, num_cpus: int) -> None:
    """Keep ``--num-cpus`` in the run dir's ``sweep.json``: ``--resume`` uses it again."""
    import json

    from search.rundir import SWEEP_FILE

    meta = json.loads(sweep.location.read_text(SWEEP_FILE))
    sweep.location.write_text(SWEEP_FILE, json.dumps({**meta, "num_cpus": num_cpus}, indent=2) + "\n")


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


def _unplaceable(spec: Any, wait_s: float | None = None) -> str | None:
    """Why no node of the joined cluster can run one trial (checked for up to ``wait_s``), or None.

    An autoscaling cluster may add a node with what is missing, so this waits
    (``BRAINSWEEP_RESOURCE_WAIT_S``, default 30 s) before giving up.
    """
    import time

    import ray

    need = {"CPU": float(spec.run.resources.cpu), "GPU": float(spec.run.resources.gpu)}
    wait_s = float(os.environ.get("BRAINSWEEP_RESOURCE_WAIT_S", "30")) if wait_s is None else wait_s
    deadline, told = time.monotonic() + wait_s, False
    while True:
        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
        if any(all(r.get(k, 0.0) >= v for k, v in need.items() if v > 0) for r in nodes):
            return None
        if time.monotonic() >= deadline:
            break
        if not told:
            print(f"waiting up to {wait_s:g} s for a node with {_need_text(need)} (one trial's resources) to join the cluster", flush=True)
            told = True
        time.sleep(2.0)
    have = ", ".join(f"{r.get('CPU', 0):g} CPU/{r.get('GPU', 0):g} GPU" for r in nodes) or "none alive"
    return (
        f"no node of the Ray cluster can run a trial: run.resources asks for {_need_text(need)} per trial, "
        f"the nodes have {have}; lower run.resources (e.g. run.resources.gpu: 0) or add a node that has them"
    )


def _need_text(need: dict[str, float]) -> str:
    return " and ".join(f"{v:g} {k}" for k, v in need.items() if v > 0)


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
    # Stop signals are this tool's (search.stopping): Tune's own SIGINT handler would stop
    # the sweep for SIGINT only.
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    kwargs: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": True, "include_dashboard": False}
    # Trial failures and retries are reported by our progress lines, one line each; Tune's
    # own multi-line tracebacks for them would drown the sweep's output.
    logging.getLogger("ray.tune").setLevel(logging.CRITICAL)
    if address:
        _probe_address(address)
        ray.init(address=address, **kwargs)
    else:
        # The local Ray processes inherit a blocked SIGTERM/SIGHUP: a signal sent to the whole
        # process group (``timeout``, Slurm, a closed terminal) then reaches only this driver,
        # which stops the sweep cleanly and shuts Ray down itself.
        import signal

        # (search.stopping.catch_stop_signals unblocks them here, its handlers installed.)
        shield = {signal.SIGTERM, signal.SIGHUP}
        signal.pthread_sigmask(signal.SIG_BLOCK, shield)
        token = Path.home() / ".ray" / "auth_token"
        had_token = token.exists()
        try:
            with loopback_only():
                ray.init(address="local", num_cpus=num_cpus or os.cpu_count(), **kwargs)
        except BaseException:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, shield)
            raise
        if not had_token and token.exists():
            # Ray writes the token it generates for a new local cluster with the default umask
            # (world-readable): it is a credential, readable by its owner alone.
            token.chmod(0o600)


@contextlib.contextmanager
def loopback_only() -> Iterator[None]:
    """Start a local Ray whose processes listen on 127.0.0.1 only (a local sweep needs no network).

    Ray binds its nodes to the loopback address where it supports no multi-node clusters
    (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``): set here for the processes ``ray.init`` starts
    (they inherit it) and for this driver, then put back, so the same process can still join
    a real cluster later. Clusters (``--address``) keep Ray's own binding and token auth.
    """
    from ray._private import ray_constants

    name = ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR
    before_env, before_flag = os.environ.get(name), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[name] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before_flag
        if before_env is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before_env


def _run(sweep: Any, info: Any, options: SweepOptions) -> int:
    from search.stopping import stop_requested
    from search.tuner import RunDirError, build_tuner, plan_sweep_resume

    spec = sweep.spec
    print(
        f"sweep {sweep.name}: {spec.num_samples} trials of {spec.trainable} on {spec.data.name} "
        f"({info.n_train} train / {info.n_val} val), sampler {spec.sampler.name}, scheduler {spec.scheduler_text()}\n"
        f"run dir: {sweep.run_dir}   (watch the study: optuna-dashboard {sweep.study_url})",
        flush=True,
    )
    plan = None
    exhausted: str | None = None
    if options.resume:
        try:
            plan = plan_sweep_resume(sweep)
        except RunDirError as exc:
            return fail(str(exc))
        with_ckpt = sum(c.checkpoint is not None for c in plan.continuations)
        print(
            f"resuming: {plan.finished} trials finished before (kept as they are); {len(plan.continuations)} unfinished "
            f"continue ({with_ckpt} from a checkpoint)" + (f"; {plan.told} outcomes told to the study from trials.parquet" if plan.told else ""),
            flush=True,
        )
    try:
        if plan is None or plan.continuations or plan.finished < spec.num_samples:
            from ray.tune.error import TuneError

            try:
                tuner = build_tuner(sweep, progress=options.progress, on_cluster=bool(options.address), plan=plan, data_info=info)
                tuner.fit()
                exhausted = tuner.searcher.exhausted
            except TuneError as exc:
                lines = [line for line in str(exc).strip().splitlines() if line.strip()]
                return fail(
                    f"Ray Tune stopped the sweep: {lines[-1].strip() if lines else 'unknown error'}; finished trials are saved in "
                    f"{sweep.run_dir} (resume with: {_resume_command(sweep, options)})",
                    EXIT_FAILED,
                )
        if stop_requested():
            return _interrupted(sweep, options)
    finally:
        sweep.upload_study()
    status = _summary(sweep)
    return fail(f"{exhausted}; what was trained is saved in {sweep.run_dir}") if exhausted else status


def _resume_command(sweep: Any, options: SweepOptions) -> str:
    import shlex

    from search.rundir import SPEC_FILE

    if options.command:
        spec_path, *rest = options.command
    else:
        spec_path, rest = f"{sweep.run_dir}/{SPEC_FILE}", ["--address", options.address] if options.address else []
    parts = ["python", "-m", "search.run", spec_path, "--storage", sweep.storage, "--name", sweep.name, *rest]
    return " ".join(shlex.quote(p) for p in [*parts, "--resume"])


def _interrupted(sweep: Any, options: SweepOptions) -> int:
    """One line: what stopped the sweep, what is saved, how to resume; exit 128 + signal."""
    import signal

    from search.stopping import stop_signal

    signum = stop_signal() or signal.SIGINT
    name = signal.Signals(signum).name
    if sweep is None:
        print(f"\ninterrupted by {name} before the sweep started: nothing was run", file=sys.stderr, flush=True)
        return 128 + signum
    from search.tuner import finished_trials

    try:
        done = f"{finished_trials(sweep)} of {sweep.spec.num_samples} trials finished"
    except Exception:  # noqa: BLE001 - the line must be printed whatever the run dir holds
        done = "finished trials"
    print(
        f"\ninterrupted by {name}: {done}, saved in {sweep.run_dir}; resume with: {_resume_command(sweep, options)}",
        file=sys.stderr,
        flush=True,
    )
    return 128 + signum


def _summary(sweep: Any) -> int:
    """Print the sweep's outcome; returns the exit status (1 when every trial failed)."""
    from search.rundir import TRIALS_FILE
    from trainables.report import COMPLETED_STATE, ERROR_STATE, REFUSED_STATE, format_number, is_competing

    spec = sweep.spec
    table = sweep.location.read_table(TRIALS_FILE)
    if table is None:
        print(f"no trial finished; run dir: {sweep.run_dir}")
        return 0
    everything = table.to_pylist()
    rows = [r for r in everything if r["state"] != REFUSED_STATE]  # the trials: candidates that were trained
    full = [r for r in rows if is_competing(r["state"], r.get("budget_fraction"))]
    states: dict[str, int] = {}
    for r in rows:
        key = "STOPPED EARLY" if r["state"] == COMPLETED_STATE and r not in full else r["state"]
        states[key] = states.get(key, 0) + 1
    print("\ntrials: " + ", ".join(f"{n} {s.lower()}" for s, n in sorted(states.items())))
    refused = len(everything) - len(rows)
    if refused:
        print(f"refused before training: {refused} candidates whose costs broke a constraint (state REFUSED in {TRIALS_FILE})")
    if rows and all(r["state"] == ERROR_STATE for r in rows):
        first = next((r.get("error") for r in rows if r.get("error")), "unknown error")
        return fail(
            f"all {len(rows)} trials failed (first error: {first}); every trial's error is in the 'error' column of "
            f"{sweep.run_dir}/{TRIALS_FILE} and its trial dir's error.txt",
            EXIT_FAILED,
        )
    candidates = [r for r in full if spec.is_feasible(r)]
    if candidates:
        from analysis.pareto import pareto_mask  # a pure function on arrays

        # The best per objective among the front: on ties, never a dominated trial.
        mask = pareto_mask([[float(r.get(m, math.nan)) for m in spec.metrics] for r in candidates], spec.modes)
        candidates = [r for r, on_front in zip(candidates, mask) if on_front] or candidates
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
    print(f"sampler: {spec.sampler.name} (seed {spec.run.seed}); scheduler: {spec.scheduler_text()}")
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
    _print_cost_preview(spec)


def _print_cost_preview(spec: Any) -> None:
    """The dry run's costs before training: each static metric's range, the constraints' feasible share."""
    from search.space import cost_preview
    from trainables.data import DataError, check_available
    from trainables.report import format_number

    if spec.entry.static_costs is None:
        print(f"costs before training: {spec.trainable} declares none (they are known only from trained trials)")
        return
    try:
        info = check_available(spec.data.model_dump())
    except (DataError, ValueError) as exc:
        print(f"costs before training: not previewed, the data's shape is needed (data: {' '.join(str(exc).split())})")
        return
    preview = cost_preview(spec, info, n=PREVIEW_CONFIGS)
    assert preview is not None
    print(f"costs before training, over {preview.built} of {preview.sampled} configs drawn at random from the space:")
    if preview.built < preview.sampled and preview.invalid:
        print(f"  {preview.sampled - preview.built} sampled configs are not valid, e.g.: {preview.invalid}")
    bound = {"exact": "exact", "upper": "trained value at most this", "lower": "trained value at least this", "bound": "exact or a bound"}
    for metric, (low, median, high) in preview.ranges.items():
        print(f"  {metric:<22} min {format_number(low)}  median {format_number(median)}  max {format_number(high)}  ({bound[preview.relations[metric]]})")
    for constraint in spec.constraints:
        if constraint.text in preview.feasible:
            share = 100 * preview.feasible[constraint.text]
            if preview.relations[constraint.metric] == "exact":
                print(f"  constraint {constraint.text}: met by {share:.1f} % of them (the rest would be refused before training)")
            else:
                print(f"  constraint {constraint.text}: not ruled out for {share:.1f} % of them (the rest would be refused before training)")
    if len(preview.feasible) > 1 and preview.all_feasible is not None:
        print(f"  every constraint above: not ruled out for {100 * preview.all_feasible:.1f} %")
    for text in preview.learnt:
        print(f"  constraint {text}: known only after training")


if __name__ == "__main__":
    sys.exit(main())
