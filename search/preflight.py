"""Every check a sweep makes before Ray starts, once; the sweep reuses what it found.

The experiment trackers the spec asks for are installed, the data is there (its shape read), a
GPU asked for exists (a local sweep), the run dir is free (or holds the sweep to resume, checked
by :func:`search.resume.check_resumable`), and the space holds valid configs. ``--dry-run`` makes
the same checks with the same one-line messages, so a dry run approves exactly what a real run
would start.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from search.rundir import RunDir, RunDirError

__all__ = ["PROBE_CONFIGS", "PROBE_SECONDS", "Preflight", "check_run_dir", "preflight"]

#: Configs drawn to find relations the space can never (or only sometimes) meet.
PROBE_CONFIGS = 200
#: ... for at most this long (at least 20 configs): SNE configs take tens of ms each to build.
PROBE_SECONDS = 3.0


@dataclass(frozen=True)
class Preflight:
    """What the checks found, for the sweep to reuse.

    Attributes:
        info: The data's :class:`~trainables.data.DataInfo`.
        run_dir: The sweep's run dir.
        resumed: For ``--resume``, the records the checks read (:class:`~search.resume.ResumeState`).
        warm: With ``--warm-start``, what the earlier run dirs give (:class:`~search.warm_start.WarmStart`).
    """

    info: Any
    run_dir: RunDir
    resumed: Any = None
    warm: Any = None


def preflight(
    spec: Any,
    storage: str | None,
    name: str | None,
    resume: bool,
    address: str | None,
    warm_start: tuple[str, ...] = (),
    warm_start_any: bool = False,
) -> tuple[Preflight | None, str | None]:
    """Run every check; returns what they found, or the one-line problem.

    ``warm_start`` names earlier run dirs whose trials the new sweep is told
    (:func:`search.warm_start.read_warm_start`; ``warm_start_any`` takes what fits from another
    experiment too). A resumed sweep keeps the warm start it started with.
    """
    from search.tracking import missing_extra
    from trainables.data import DataError, check_available

    problem = missing_extra(spec.tracking)
    if problem:
        return None, problem
    try:
        info = check_available(spec.data.model_dump())
    except DataError as exc:
        return None, f"data: {exc}"
    except ValueError as exc:  # a value the data config rejects
        return None, f"data: {' '.join(str(exc).split())}"
    if not address:
        problem = _missing_gpu(spec)
        if problem:
            return None, problem
    run_dir = RunDir.at(storage or spec.run.storage, name or spec.name)
    try:
        resumed = check_run_dir(spec, run_dir, resume)
    except RunDirError as exc:
        return None, str(exc)
    problem = _invalid_space(spec, info)
    if problem:
        return None, problem
    warm = None
    if warm_start:
        from search.warm_start import WarmStartError, read_warm_start

        if resume:
            return None, "--warm-start: a warm start is chosen when a sweep starts; on --resume the sweep keeps its own (drop --warm-start)"
        try:
            warm = read_warm_start(spec, warm_start, any_source=warm_start_any)
        except WarmStartError as exc:
            return None, str(exc)
    return Preflight(info=info, run_dir=run_dir, resumed=resumed, warm=warm), None


def check_run_dir(spec: Any, run_dir: RunDir, resume: bool) -> Any:
    """A new sweep needs a free run dir; a resumed one its own, intact (RunDirError otherwise)."""
    if resume:
        from search.resume import check_resumable

        return check_resumable(spec, run_dir)
    if run_dir.has_sweep():
        raise RunDirError(
            f"{run_dir.uri} already holds a sweep: pass --resume to continue it, or --name NEW (or --storage DIR) to start another"
        )
    return None


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


def _invalid_space(spec: Any, info: Any) -> str | None:
    """The problem when no sampled config of the space is valid; prints the share when some are not.

    :data:`PROBE_CONFIGS` random configs are resolved and (for a family with static costs) built
    from the data's shape: when none is valid (e.g. ``model.groups`` above every ``model.width``
    searched) the sweep is refused, when some are not the share is printed.
    """
    import optuna
    from pydantic import ValidationError

    from search.space import sample_configs, trial_config
    from trainables.config import describe_validation_error

    if spec.sampler.name == "grid" or not spec.space:
        return None
    deadline = time.monotonic() + PROBE_SECONDS
    invalid, probed, reason = 0, 0, ""
    for params in sample_configs(spec, PROBE_CONFIGS, sampler=optuna.samplers.RandomSampler(seed=spec.run.seed)):
        probed += 1
        try:
            config = trial_config(spec, params)
            spec.entry.static_costs_of(config, info)  # builds the net (G2G, SNE) from the shape
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
