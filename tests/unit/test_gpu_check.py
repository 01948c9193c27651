"""benchmarks/gpu_check.py, CI-sized on the CPU: the device run's code paths, every part answering."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]


def test_the_gpu_check_documents_the_device_run():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    for words in ("--fetch-wheels", "--wheels benchmarks/wheels", "--device cpu --quick", "shared_gpu", "pytest -m cuda"):
        assert words in done.stdout, words
