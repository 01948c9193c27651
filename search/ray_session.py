"""Ray's session for one sweep: start or join it, keep it safe, wait for room, shut it down.

- A local sweep (no ``--address``) starts Ray on this machine with every process listening on
  127.0.0.1 only: Ray binds its nodes to the loopback address when its documented variable
  ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` is ``0`` as Ray is imported. ``python -m search.run`` sets
  it before anything imports Ray (:func:`bind_local_ray_to_loopback`); a program that imported
  Ray itself beforehand gets a clear error instead of a Ray listening on the network. The token
  Ray generates for a new local cluster is made readable by its owner alone.
- A cluster (``--address auto``, ``HOST:PORT``, ``ray://…``) keeps Ray's own binding and token
  authentication; an unreachable address fails in seconds, not after Ray's minutes of retries.
- Stop signals (SIGTERM, SIGHUP) reach only the driver while the local Ray starts, so a signal
  sent to the whole process group stops the sweep cleanly (:mod:`search.signals`).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["LOOPBACK_VARIABLE", "bind_local_ray_to_loopback", "start_ray", "stop_ray", "unplaceable"]

#: Ray's documented switch: ``0`` binds a local Ray to the loopback address (read as Ray is imported).
LOOPBACK_VARIABLE = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
_LOOPBACK = ("127.0.0.1", "::1", "localhost")
_IMPORTED_TOO_EARLY = (
    f"this process imported Ray before the sweep without {LOOPBACK_VARIABLE}=0, so a local Ray would listen on the "
    f"network; set {LOOPBACK_VARIABLE}=0 before importing Ray (python -m search.run and python -m analysis do), "
    "or join a cluster with --address"
)


def bind_local_ray_to_loopback() -> None:
    """Make the Ray this process starts listen on 127.0.0.1 (call before Ray is imported)."""
    os.environ[LOOPBACK_VARIABLE] = "0"


def _probe_address(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast on an unreachable HOST:PORT (Ray itself retries for minutes)."""
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto" or a form Ray resolves itself
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise ConnectionError(f"{exc.strerror or exc} (is the head node running? see docs/howto/cluster.md)") from None


def start_ray(address: str | None, num_cpus: int | None) -> None:
    """Join the cluster at ``address``, or start a local Ray bound to 127.0.0.1.

    Raises:
        ConnectionError: the cluster cannot be reached.
        RuntimeError: a local Ray would listen on the network (Ray was imported by this
            process before :func:`bind_local_ray_to_loopback`).
    """
    if not address:
        if "ray" not in sys.modules:
            bind_local_ray_to_loopback()
        elif os.environ.get(LOOPBACK_VARIABLE) != "0":
            raise RuntimeError(_IMPORTED_TOO_EARLY)
    import ray

    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # the run dir's Parquet tables are the results store
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the sweep's progress lines replace Tune's tables
    # Stop signals are search.signals': Tune's own SIGINT handler would stop the sweep for SIGINT only.
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    kwargs: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": True, "include_dashboard": False}
    # Trial failures and retries are reported by the progress lines, one line each; Tune's own
    # multi-line tracebacks for them would drown the sweep's output.
    logging.getLogger("ray.tune").setLevel(logging.CRITICAL)
    if address:
        _probe_address(address)
        ray.init(address=address, **kwargs)
        return
    # The local Ray processes inherit a blocked SIGTERM/SIGHUP: a signal sent to the whole process
    # group (``timeout``, Slurm, a closed terminal) then reaches only this driver, which stops the
    # sweep cleanly and shuts Ray down itself (search.signals.catch_stop_signals unblocks them).
    shield = {signal.SIGTERM, signal.SIGHUP}
    signal.pthread_sigmask(signal.SIG_BLOCK, shield)
    token = Path.home() / ".ray" / "auth_token"
    had_token = token.exists()
    try:
        ray.init(address="local", num_cpus=num_cpus or os.cpu_count(), **kwargs)
        exposed = sorted({n.get("NodeManagerAddress") for n in ray.nodes()} - set(_LOOPBACK))
        if exposed:
            ray.shutdown()
            raise RuntimeError(f"a local Ray would listen on {', '.join(exposed)}: {_IMPORTED_TOO_EARLY}")
    except BaseException:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, shield)
        raise
    if not had_token and token.exists():
        # Ray writes the token it generates for a new local cluster with the default umask
        # (world-readable): it is a credential, readable by its owner alone.
        token.chmod(0o600)


def stop_ray() -> None:
    """Shut down the Ray this process started or joined (a no-op when there is none)."""
    if "ray" in sys.modules:
        import ray

        ray.shutdown()


def _need_text(need: dict[str, float]) -> str:
    return " and ".join(f"{v:g} {k}" for k, v in need.items() if v > 0)


def unplaceable(spec: Any, wait_s: float | None = None) -> str | None:
    """Why no node of the Ray cluster can run one trial (checked for up to ``wait_s``), or None.

    An autoscaling cluster may add a node with what is missing, so this waits
    (``BRAINSWEEP_RESOURCE_WAIT_S``, default 30 s) before giving up.
    """
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
