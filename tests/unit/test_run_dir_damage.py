"""A damaged or foreign run dir on --resume (and in the analysis): one line, exit 2, nothing
overwritten. Every check here stops before Ray starts, so the run dirs are written ones: copies
of the committed fixture (a quickstart run dir of an earlier release, tests/fixtures/), damaged."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from search.run import main
from search.rundir.records import STUDY_FILE
from tests.conftest import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "run_dir_6e60cc9"


@pytest.fixture
def copy(tmp_path):
    """A written run dir (STORAGE/legacy) and the spec it ran with, outside it: (spec, storage, run dir)."""
    storage = tmp_path / "runs"
    shutil.copytree(FIXTURE, storage / "legacy")
    spec = tmp_path / "spec.yaml"
    shutil.copy(FIXTURE / "spec.yaml", spec)
    return spec, storage, storage / "legacy"


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


def test_analysis_of_a_damaged_trials_table_is_one_line(copy):
    _, _, run_dir = copy
    for damage in (_truncate, lambda p: p.write_bytes(b"")):
        damage(run_dir / "trials.parquet")
        proc = subprocess.run([sys.executable, "-m", "analysis", "pareto", str(run_dir)], cwd=ROOT, capture_output=True, text=True, timeout=120)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert lines[0].startswith("error: ") and "trials.parquet" in lines[0], lines


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
