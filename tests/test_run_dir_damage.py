"""A damaged or foreign run dir on --resume (and in the analysis): one line, exit 2, nothing
overwritten; and nothing in a run dir is ever unpickled."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from search.run import main
from tests.conftest import ROOT, tiny_spec
from search.rundir.records import STUDY_FILE

ENV = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
#: Every test here damages a copy of a real sweep's run dir (the module fixture runs one through Ray).
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


def _digest(run_dir):
    return {
        p.relative_to(run_dir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run_dir.rglob("*"))
        if p.is_file()
    }


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


DAMAGE = {
    "trials.parquet truncated": ("trials.parquet", _truncate),
    "trials.parquet empty": ("trials.parquet", lambda p: p.write_bytes(b"")),
    "epochs.parquet garbage": ("epochs.parquet", lambda p: p.write_bytes(b"PAR1 not really parquet")),
    "study garbage": (STUDY_FILE, lambda p: p.write_bytes(os.urandom(4096))),
    "study empty": (STUDY_FILE, lambda p: p.write_bytes(b"")),
    "study truncated": (STUDY_FILE, _truncate),
    "sweep.json garbage": ("sweep.json", lambda p: p.write_text('{"study_name": ')),
    "spec.yaml garbage": ("spec.yaml", lambda p: p.write_text("name: [unclosed\n")),
    "progress.json garbage": ("progress.json", lambda p: p.write_text("{")),
}


@pytest.mark.parametrize("case", list(DAMAGE), ids=lambda c: c.replace(" ", "-"))
def test_damaged_file_stops_resume_with_one_line_and_touches_nothing(case, copy, capsys):
    spec, storage, run_dir = copy
    name, damage = DAMAGE[case]
    damage(run_dir / name)
    before = _digest(run_dir)
    code = main([str(spec), "--storage", str(storage), "--resume", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in err, err
    assert f"{run_dir}/{name}" in err, err
    assert _digest(run_dir) == before, "nothing in the run dir was written"


def test_world_writable_or_foreign_run_dir_is_refused(copy, capsys, monkeypatch):
    spec, storage, run_dir = copy
    os.chmod(run_dir / STUDY_FILE, 0o666)
    assert main([str(spec), "--storage", str(storage), "--resume"]) == 2
    err = capsys.readouterr().err
    assert f"{STUDY_FILE} is writable by every user" in err and "chmod o-w" in err
    os.chmod(run_dir / STUDY_FILE, 0o644)
    uid = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: uid + 1)  # the run dir now belongs to "another user"
    assert main([str(spec), "--storage", str(storage), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "belongs to another user" in err and "trusted input" in err


def test_run_dir_of_another_trainable_is_refused(copy, capsys):
    spec, storage, run_dir = copy
    raw = yaml.safe_load(spec.read_text())
    raw.update(trainable="sne", space={"sne.students": {"choice": [2, 4]}}, fixed={})
    other = spec.parent / "other.yaml"
    other.write_text(yaml.safe_dump(raw))
    assert main([str(other), "--storage", str(storage), "--resume"]) == 2
    assert "holds a sweep of 'g2g', not 'sne'" in capsys.readouterr().err


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


def test_analysis_of_a_damaged_trials_table_is_one_line(copy):
    _, _, run_dir = copy
    for damage in (_truncate, lambda p: p.write_bytes(b"")):
        damage(run_dir / "trials.parquet")
        proc = subprocess.run([sys.executable, "-m", "analysis", "pareto", str(run_dir)], cwd=ROOT, capture_output=True, text=True, timeout=120)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert lines[0].startswith("error: ") and "trials.parquet" in lines[0], lines


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


def test_a_sweep_json_naming_an_unknown_study_file_stops_resume_with_one_line(copy, capsys):
    import json

    spec, storage, run_dir = copy
    meta = json.loads((run_dir / "sweep.json").read_text())
    meta["study_storage"] = "study.pickle"
    (run_dir / "sweep.json").write_text(json.dumps(meta))
    before = _digest(run_dir)
    assert main([str(spec), "--storage", str(storage), "--resume", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{run_dir}/sweep.json" in err and "'study.pickle'" in err, err
    assert _digest(run_dir) == before
