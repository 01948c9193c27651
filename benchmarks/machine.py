"""What a benchmark says about the machine it ran on (imported by the scripts beside it)."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

__all__ = ["ROOT", "cpu_model", "quiet_local_tune"]


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


#: The project root: importing this module puts it on ``sys.path`` (scripts run from a checkout).
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def quiet_local_tune() -> None:
    """Environment for a benchmark's local Ray Tune run: loopback only, no per-trial loggers, no boxes."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
