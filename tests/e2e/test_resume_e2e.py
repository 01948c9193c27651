"""Recovery never changes a finished result: a quickstart-sized sweep stopped by SIGTERM, SIGINT
or SIGKILL (sent to the driver's whole process group, as ``timeout``, Slurm or a terminal do)
after >= 8 finished trials, then ``--resume``d, is compared with itself before the stop."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pyarrow.parquet as pq
import pytest
from optuna.trial import TrialState

from search.study import ORPHAN_ATTR, RAY_TRIAL_ATTR
from tests.conftest import ROOT, rows_of as _rows, same_row as _same
from search.rundir.records import STUDY_FILE, study_storage

pytestmark = pytest.mark.e2e

NUM_SAMPLES = 12
EPOCHS = 20
# The quickstart spec (TPE + ASHA) as a user would shrink it; wide nets and small batches so
# trials run for a while.
ARGS = [
    "spaces/quickstart.yaml", "--num-samples", str(NUM_SAMPLES), "--num-cpus", "2",
    "--set", f"budget.epochs={EPOCHS}", "--set", "model.width=256", "--set", "model.depth=3", "--set", "optim.batch_size=32",
]
# Tables refreshed every 0.5 s: a SIGKILLed driver's last rows are recent.
ENV = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "BRAINSWEEP_FLUSH_S": "0.5"}


#: Where ASHA (quickstart: grace 4, reduction 2) or the budget may end a trial.
ENDS = (4, 8, 16, EPOCHS)


def _stop_when_ready(proc, run_dir, sig):
    """Signal the driver's process group once >= 8 trials finished and one is mid-training.

    "Mid-training": its epoch rows are on disk, and its checkpoints (written as each epoch ends,
    unlike the tables) show it past a rung, with >= 3 epochs to go before ASHA or the budget
    could end it, so it is still running when the stop takes effect.
    """
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        trials = _rows(run_dir / "trials.parquet")
        final = {t["trial_id"] for t in trials if t["state"] in ("TERMINATED", "ERROR")}
        if len(final) >= 8:
            recorded = {e["trial_id"] for e in _rows(run_dir / "epochs.parquet")}
            for trial_dir in run_dir.glob("trial_*"):
                trial_id = trial_dir.name[len("trial_"):]
                epochs = [int(c.name.split("_")[1]) + 1 for c in trial_dir.glob("checkpoint_*")]
                if trial_id in final or trial_id not in recorded or not epochs:
                    continue
                latest = max(epochs)
                # At a rung the scheduler may have ended it already (the tables are flushed
                # every 0.5 s, the checkpoints at once): only a trial between rungs is surely running.
                if latest not in ENDS and min(e for e in ENDS if e > latest) - latest >= 3:
                    os.killpg(proc.pid, sig)
                    if sig == signal.SIGINT:  # Ctrl-C twice: the second exits at once, still resumable
                        time.sleep(0.3)
                        os.killpg(proc.pid, sig)
                    return True
        time.sleep(0.05)
    return False


# SIGINT (sent twice: the second exits at once) shares SIGTERM's handler: marked slow to keep the
# default suite short.
@pytest.mark.parametrize(
    "sig", [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow), signal.SIGKILL], ids=lambda s: s.name
)
def test_stopped_sweep_resumes_without_changing_what_finished(sig, tmp_path):
    storage = tmp_path / "runs"
    run_dir = storage / "q"
    args = [*ARGS, "--storage", str(storage), "--name", "q"]
    log = tmp_path / "driver.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "search.run", *args], cwd=ROOT, env=ENV,
        stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        assert _stop_when_ready(proc, run_dir, sig), log.read_text()[-3000:]
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        try:  # the Ray processes a SIGKILLed driver leaves behind (same process group)
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    output = log.read_text()
    if sig == signal.SIGKILL:
        assert code == -signal.SIGKILL
    else:
        assert code == 128 + sig, output[-3000:]
        last = output.strip().splitlines()[-1]
        assert last.startswith(f"interrupted by {sig.name}:") and "resume with: python -m search.run" in last, output[-2000:]
        assert last.endswith("--resume") and "Traceback" not in output, output[-3000:]

    before = {t["trial_id"]: t for t in _rows(run_dir / "trials.parquet")}
    before_epochs = collections.defaultdict(dict)
    for e in _rows(run_dir / "epochs.parquet"):
        before_epochs[e["trial_id"]][e["epoch"]] = e
    finished = {k for k, t in before.items() if t["state"] in ("TERMINATED", "ERROR")}
    running = {k for k, t in before.items() if t["state"] not in ("TERMINATED", "ERROR") and before_epochs.get(k)}
    assert len(finished) >= 8 and running, (sorted(t["state"] for t in before.values()), output[-2000:])

    resumed = subprocess.run(
        [sys.executable, "-m", "search.run", *args, "--resume"], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=400
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    lines = resumed.stdout.splitlines()
    # Progress counts on from what finished before (and never starts again at 1).
    counters = [int(line.split("[", 2)[2].split("/")[0]) for line in lines if line.count("[") >= 2 and f"/{NUM_SAMPLES}]" in line]
    assert counters and counters[0] == len(finished) + 1 and counters[-1] == NUM_SAMPLES, lines

    after = {t["trial_id"]: t for t in pq.read_table(run_dir / "trials.parquet").to_pylist()}
    after_epochs = collections.defaultdict(dict)
    epoch_keys = []
    for e in pq.read_table(run_dir / "epochs.parquet").to_pylist():
        after_epochs[e["trial_id"]][e["epoch"]] = e
        epoch_keys.append((e["trial_id"], e["epoch"]))
    assert len(after) == NUM_SAMPLES and all(t["state"] == "TERMINATED" for t in after.values()), [(t["trial_id"], t["state"], t["error"]) for t in after.values()]
    assert len(epoch_keys) == len(set(epoch_keys)), "no epoch twice"

    for trial_id in finished:  # identical rows and epoch rows: never run again
        assert _same(after[trial_id], before[trial_id]), (after[trial_id], before[trial_id])
        assert after_epochs[trial_id].keys() == before_epochs[trial_id].keys()
        assert all(_same(after_epochs[trial_id][k], before_epochs[trial_id][k]) for k in before_epochs[trial_id])
        assert not any(trial_id in line and "continues" in line for line in lines)
    continued_from_checkpoint = 0
    for trial_id in running:  # continued: epochs 1..E once, the earlier ones untouched
        epochs = sorted(after_epochs[trial_id])
        assert epochs == list(range(1, after[trial_id]["epoch"] + 1)), (trial_id, epochs)
        kept = [k for k in before_epochs[trial_id] if _same(after_epochs[trial_id].get(k, {}), before_epochs[trial_id][k])]
        assert kept == sorted(kept) and (not kept or kept == list(range(1, len(kept) + 1)))
        continued_from_checkpoint += bool(kept)
        assert any(f"{trial_id} continues from its checkpoint" in line for line in lines) == bool(kept), lines
    assert continued_from_checkpoint >= 1, "a trial running at the stop continued from its checkpoint"

    meta = json.loads((run_dir / "sweep.json").read_text())
    study = optuna.load_study(study_name=meta["study_name"], storage=study_storage(run_dir / STUDY_FILE))
    assert not [t for t in study.trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    counted = {t.user_attrs[RAY_TRIAL_ATTR]: t for t in study.trials if not t.user_attrs.get(ORPHAN_ATTR)}
    assert sorted(counted) == sorted(after), "one Optuna trial per trial of the run dir"
    for trial_id, ot in counted.items():
        row = after[trial_id]
        if row["budget_fraction"] == 1.0:
            assert ot.state == TrialState.COMPLETE and ot.values == [row["val_accuracy"], row["energy_uj"]], (trial_id, ot, row)
        else:
            assert ot.state == TrialState.PRUNED, (trial_id, ot.state, row["budget_fraction"])
