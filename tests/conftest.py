"""Shared test setup: keep Ray on loopback and quiet, give tests small specs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# Ray binds its nodes to 127.0.0.1 instead of the machine's address (tests stay on loopback).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture
def repo_root() -> Path:
    return ROOT


def rows_of(path) -> list[dict]:
    """A Parquet table's rows, or ``[]`` while it is not written yet (a sweep refreshes its tables as it runs)."""
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except Exception:  # noqa: BLE001 - not written yet, or mid-rename
        return []


def same_row(a: dict, b: dict) -> bool:
    """Row equality with NaN == NaN (a comparison of results before and after a resume)."""
    import math

    def equal(x, y):
        return (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y)) or x == y

    return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)


def tiny_spec(**sections) -> dict:
    """A valid raw spec for a fast digits G2G sweep; keyword sections replace defaults."""
    spec = {
        "name": "tiny",
        "trainable": "g2g",
        "data": {"name": "digits", "val_fraction": 0.2},
        "budget": {"epochs": 3},
        "objectives": [{"metric": "val_accuracy", "mode": "max"}, {"metric": "macs", "mode": "min"}],
        "space": {
            "model.groups": {"choice": [2, 4]},
            "model.p_inter": {"float": [0.0, 0.5]},
            "optim.lr": {"log": [1e-3, 1e-2]},
        },
        "fixed": {"model.width": 32, "model.depth": 2, "optim.batch_size": 128},
        "sampler": {"name": "random"},
        "run": {"num_samples": 4, "seed": 0, "max_concurrent": 2},
    }
    spec.update(sections)
    return spec
