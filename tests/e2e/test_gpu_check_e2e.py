"""benchmarks/gpu_check.py runs every part on the CPU (its CI-sized run) and writes its JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
def test_the_gpu_check_runs_every_part_on_the_cpu_and_writes_its_json(tmp_path):
    out = tmp_path / "gpu_check.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--quick", "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(out.read_text())
    for part in ("layer", "g2g_trial", "sne_trial", "shared_gpu", "tests"):
        assert "error" not in report[part] and "skipped" not in report[part], (part, report[part])
    rows = report["layer"]["rows"]
    assert {r["dtype"] for r in rows} == {"fp32", "bf16"}
    assert all(r["dense_ms"] > 0 and r["block_ms"] > 0 and r["masked_ms"] > 0 for r in rows)
    for trial in ("g2g_trial", "sne_trial"):
        assert report[trial]["epoch_s_median"] > 0 and report[trial]["peak_memory_mb"] > 0
        assert 0.0 <= report[trial]["val_accuracy"] <= 1.0
    assert report["shared_gpu"]["trials"] == 4 and report["shared_gpu"]["throughput_gain"] > 0
    assert report["tests"]["exit_status"] == 0 and "skipped" in report["tests"]["summary"]  # no CUDA here
