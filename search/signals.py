"""Stop signals of a sweep: SIGINT (Ctrl-C), SIGTERM (Slurm, Kubernetes, ``timeout``), SIGHUP.

The first signal asks the sweep to stop cleanly: Ray Tune launches nothing more and stops its
running trials (each keeps its checkpoints), the results recorder writes ``trials.parquet`` and
``epochs.parquet``, and the driver exits with ``128 + signal number`` (130, 143, 129) and one line
naming the ``--resume`` command. A second signal exits at once; the sweep is still resumable,
since finished trials are on disk as they finish and running ones resume from their checkpoints.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ray.tune.stopper import Stopper

__all__ = ["SIGNALS", "SignalStopper", "stop_requested", "stop_signal", "catch_stop_signals"]

#: The signals that stop a sweep.
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

_received: list[int] = []


def stop_requested() -> bool:
    """Whether a stop signal has arrived in this process."""
    return bool(_received)


def stop_signal() -> int | None:
    """The first stop signal received, or None."""
    return _received[0] if _received else None


def _handler(signum: int, frame: Any) -> None:
    _received.append(signum)
    if len(_received) > 1:
        raise KeyboardInterrupt  # a second signal: stop now


@contextmanager
def catch_stop_signals() -> Iterator[None]:
    """Handle :data:`SIGNALS` as stop requests inside the block (main thread only).

    Install it after ``ray.init``: a local Ray installs its own SIGTERM handler, which would
    otherwise end the driver with a crash dump and leave nothing to resume from.
    """
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
    for sig in SIGNALS:
        signal.signal(sig, _handler)
    # Delivered now if one arrived while they were blocked (during a local ray.init).
    signal.pthread_sigmask(signal.SIG_UNBLOCK, set(SIGNALS))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class SignalStopper(Stopper):
    """A Ray Tune stopper that ends the whole experiment once a stop signal has arrived."""

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        return stop_requested()
