"""Partition comparison for SNE: informed (correlation, class) vs sequential vs random, over seeds.

Runs one grid sweep (partition x seed x ensemble size K, everything else fixed) through the
normal sweep CLI, then prints, for every K and subset size k, the mean and standard deviation over
seeds of the test accuracy of each partition, as JSON and as Markdown tables::

    python -m benchmarks.sne_partitions --storage runs             # digits28, K in {4, 8}, 5 seeds
    python -m benchmarks.sne_partitions --data digits --students 4  # the embedded 8x8 digits
    python -m benchmarks.sne_partitions --read runs/sne_partitions  # report an existing sweep

``digits28`` (the default) is the harder offline set: scikit-learn's digits redrawn at 28x28 with
strong distortions and clutter (see ``trainables.data``). The teacher is shared by every trial
(``teacher.seed`` is fixed; the trial ``seed`` drives the students, the data order and the seeded
partitions), so the rows differ only by the partition. ``--teacher-checkpoint`` reuses a trained
teacher of the same config (e.g. the ``teacher-*.pt`` of an earlier sweep's cache).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trainables.report import is_competing

__all__ = ["partition_spec", "partition_table", "to_markdown", "main"]

PARTITIONS = ("correlation", "class", "sequential", "random")


def partition_spec(
    seeds: int,
    students: Sequence[int],
    epochs: int,
    width: int,
    data: str = "digits28",
    teacher_epochs: int = 10,
    teacher_checkpoint: str | None = None,
) -> dict[str, Any]:
    """The grid sweep: ``sne.partition`` x ``seed`` x ``sne.students``, mlp students with batch norm."""
    space: dict[str, Any] = {"sne.partition": {"choice": list(PARTITIONS)}, "seed": {"choice": list(range(seeds))}}
    if len(students) > 1:
        space["sne.students"] = {"choice": list(students)}
    fixed: dict[str, Any] = {} if len(students) > 1 else {"sne.students": students[0]}
    if teacher_checkpoint:
        fixed["teacher.checkpoint"] = str(Path(teacher_checkpoint).resolve())
    return {
        "name": "sne_partitions",
        "trainable": "sne",
        "description": "partition comparison: informed vs sequential vs random, mean over seeds",
        "data": {"name": data, "val_fraction": 0.2},
        "budget": {"epochs": epochs},
        "objectives": [{"metric": "val_accuracy", "mode": "max"}, {"metric": "energy_uj", "mode": "min"}],
        "space": space,
        "fixed": {
            **fixed,
            "teacher.arch": "cnn",
            "teacher.width": 32,
            "teacher.epochs": teacher_epochs,
            "sne.active": 1,
            "sne.timesteps": 4,
            "sne.dropout": 0.25,
            "student.shape": "mlp",
            "student.width": width,
            "student.depth": 1,
            "student.norm": "batch",
            "optim.batch_size": 64,
        },
        "sampler": {"name": "grid"},
        "run": {"num_samples": seeds * len(PARTITIONS) * len(students), "resources": {"cpu": 1}, "seed": 0},
    }


def partition_table(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean and std over seeds of val and test accuracy per partition and subset size k.

    Args:
        rows: ``trials.parquet`` rows of the partition sweep (full-budget trials are used).
    """
    from trainables.sne.adaptive import SubsetCurve

    by_k: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by_k.setdefault(int(row.get("sne.students") or 0), []).append(row)
    if len(by_k) > 1:
        return {"by_students": {k: _one_table(by_k[k]) for k in sorted(by_k)}}
    return _one_table(rows)


def _one_table(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    from trainables.sne.adaptive import SubsetCurve

    per: dict[str, list[SubsetCurve]] = {}
    for row in rows:
        if not is_competing(row.get("state"), row.get("budget_fraction")) or not row.get("curve"):
            continue
        per.setdefault(row["sne.partition"], []).append(SubsetCurve.from_json(row["curve"]))
    table: dict[str, Any] = {"partitions": {}}
    for name in [p for p in PARTITIONS if p in per]:
        curves = per[name]
        ks = curves[0].k
        entry: dict[str, Any] = {"seeds": len(curves), "k": ks}
        for split in ("val_accuracy", "test_accuracy"):
            values = [[getattr(c, split)[k - 1] for c in curves if getattr(c, split)] for k in ks]
            entry[f"{split}_mean"] = [statistics.fmean(v) for v in values]
            entry[f"{split}_std"] = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in values]
        entry["energy_uj_mean"] = [statistics.fmean(c.energy_uj[k - 1] for c in curves) for k in ks]
        table["partitions"][name] = entry
        table["teacher_test_accuracy"] = curves[0].teacher_test_accuracy
        table["teacher_energy_uj"] = curves[0].teacher_energy_uj
    parts = table["partitions"]
    if "sequential" in parts:
        # The headline ratio: accuracy gained by an informed partition over the contiguous split.
        table["gain_over_sequential"] = {
            name: [a - b for a, b in zip(entry["test_accuracy_mean"], parts["sequential"]["test_accuracy_mean"])]
            for name, entry in parts.items()
            if name != "sequential"
        }
    return table


def to_markdown(table: dict[str, Any]) -> str:
    """Rows: partitions; columns: k; cells: mean ± std test accuracy over seeds (one table per K)."""
    if "by_students" in table:
        return "\n\n".join(f"K = {k}:\n\n{to_markdown(t)}" for k, t in table["by_students"].items())
    parts = table["partitions"]
    if not parts:
        return "(no finished trials)"
    ks = next(iter(parts.values()))["k"]
    lines = [
        "| partition | seeds | " + " | ".join(f"k={k}" for k in ks) + " |",
        "| --- | --- |" + " --- |" * len(ks),
    ]
    for name, entry in parts.items():
        cells = [f"{100 * m:.2f} ± {100 * s:.2f}" for m, s in zip(entry["test_accuracy_mean"], entry["test_accuracy_std"])]
        lines.append(f"| {name} | {entry['seeds']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sne_partitions", description=__doc__.splitlines()[0])
    parser.add_argument("--storage", default="runs", help="parent of the run dir (default runs)")
    parser.add_argument("--read", metavar="RUN_DIR", help="report an existing partition sweep instead of running one")
    parser.add_argument("--data", default="digits28", help="data.name (default digits28, the harder offline set)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--students", type=int, nargs="+", default=[4, 8], help="ensemble sizes K (default 4 8)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--width", type=int, default=64, help="hidden units of each mlp student")
    parser.add_argument("--teacher-epochs", type=int, default=10)
    parser.add_argument("--teacher-checkpoint", help="a trained teacher of the same config to load instead of training")
    parser.add_argument("--num-cpus", type=int, default=None)
    args = parser.parse_args(argv)

    from search.rundir.records import TRIALS_FILE, open_run_dir

    if args.read:
        run_dir = Path(args.read)
    else:
        import yaml

        from search.run import main as run_sweep

        spec = partition_spec(
            args.seeds, args.students, args.epochs, args.width, args.data, args.teacher_epochs, args.teacher_checkpoint
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "sne_partitions.yaml"
            path.write_text(yaml.safe_dump(spec, sort_keys=False))
            cli = [str(path), "--storage", args.storage, "--quiet"]
            if args.num_cpus:
                cli += ["--num-cpus", str(args.num_cpus)]
            code = run_sweep(cli)
        if code != 0:
            return code
        run_dir = Path(args.storage) / spec["name"]
    table = partition_table(open_run_dir(run_dir).read_table(TRIALS_FILE).to_pylist())
    print(json.dumps(table, indent=2))
    print()
    print(to_markdown(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
