"""A resume reads a run dir's own records and nothing else: never one of its pickles; an SQLite
study of an earlier release is resumed on as it is. (Each resumes a real sweep through Ray.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import yaml

from search.run import main
from search.rundir.records import STUDY_FILE
from tests.conftest import ROOT, tiny_spec
from tests.unit.test_run_dir_damage import _digest

ENV = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory):
    """A real, finished 4-trial sweep: (spec path, storage, run dir)."""
    root = tmp_path_factory.mktemp("finished")
    spec = root / "spec.yaml"
    spec.write_text(yaml.safe_dump(tiny_spec(), sort_keys=False))
    storage = root / "runs"
    proc = subprocess.run(
        [sys.executable, "-m", "search.run", str(spec), "--storage", str(storage), "--num-cpus", "2", "--quiet"],
        cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return spec, storage, storage / "tiny"


@pytest.fixture
def copy(finished_sweep, tmp_path):
    spec, _, run_dir = finished_sweep
    storage = tmp_path / "runs"
    shutil.copytree(run_dir, storage / "tiny")
    return spec, storage, storage / "tiny"


class _Planted:
    """Unpickling this writes a marker file: proof that something was unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_resume_never_unpickles_the_run_dir(copy, tmp_path):
    import pickle

    spec, storage, run_dir = copy
    marker = tmp_path / "unpickled"
    for path in [run_dir / "tuner.pkl", *run_dir.glob("searcher-state-*.pkl")]:
        path.write_bytes(pickle.dumps(_Planted(marker)))
    before = _digest(run_dir)
    proc = subprocess.run(
        [sys.executable, "-m", "search.run", str(spec), "--storage", str(storage), "--num-cpus", "2", "--resume"],
        cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "resuming: 4 trials finished before" in proc.stdout
    assert not marker.exists(), "a pickle of the run dir was loaded"
    assert _digest(run_dir) == before, "a finished sweep's run dir is left as it was"


def test_a_run_dir_with_an_sqlite_study_from_an_earlier_release_resumes_on_it(copy, capsys):
    """Run dirs made before the journal hold study.db (named in sweep.json): --resume keeps using it."""
    import json

    import optuna

    from search.rundir.records import SQLITE_STUDY_FILE, study_storage

    spec, storage, run_dir = copy
    meta = json.loads((run_dir / "sweep.json").read_text())
    optuna.copy_study(
        from_study_name=meta["study_name"], from_storage=study_storage(run_dir / STUDY_FILE),
        to_storage=f"sqlite:///{run_dir / SQLITE_STUDY_FILE}",
    )
    (run_dir / STUDY_FILE).unlink()
    meta["study_storage"] = SQLITE_STUDY_FILE
    (run_dir / "sweep.json").write_text(json.dumps(meta))
    before = [(t.number, t.params, t.values) for t in optuna.load_study(study_name=meta["study_name"], storage=study_storage(run_dir / SQLITE_STUDY_FILE)).trials]
    assert main([str(spec), "--storage", str(storage), "--resume", "--num-samples", "6", "--quiet", "--num-cpus", "2"]) == 0, capsys.readouterr().err
    assert not (run_dir / STUDY_FILE).exists()  # no journal next to it
    after = optuna.load_study(study_name=meta["study_name"], storage=study_storage(run_dir / SQLITE_STUDY_FILE)).trials
    assert [(t.number, t.params, t.values) for t in after[: len(before)]] == before  # kept as they were
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in after) == 6


