"""Command line: ``python -m analysis select RUN_DIR ...`` (also ``python -m analysis.select``).

Picks, among the completed full-budget trials that satisfy the spec's constraints and every
``--where`` condition, the best by one metric (``--prefer``) or the knee of their front
(``--knee``), ``--top K`` of them, prints them and, with ``--export DIR``, writes one bundle
per pick (:mod:`analysis.export`; the files: :mod:`analysis.bundle`), with ``--verify-seeds N``
re-trained over N seeds (:mod:`analysis.seeds`).

User errors print one line starting with ``error:`` and exit with status 2; exported weights
that do not reproduce the recorded accuracy exit with status 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from analysis.bundle import REPRODUCE_TOLERANCE, SEEDS_DIR
from analysis.card import CARD_STYLE
from trainables.report import format_number
from analysis.export import export_bundle
from analysis.results import ResultsError, analyze_run
from analysis.seeds import verify_seeds
from analysis.select import select_trials
from search.cli import run_command

__all__ = ["build_parser", "main"]

EXIT_MISMATCH = 1
#: Cost columns of the selection table, when the run has them.
_TABLE_COSTS = ("energy_uj", "macs", "synops")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m analysis select",
        description="Pick configurations from a sweep (under conditions, best by a metric or the knee) and export deployable bundles.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run dir written by python -m search.run (path or pyarrow URI)")
    parser.add_argument("--objectives", nargs="+", metavar="METRIC:MODE", help="objectives of the front (default: the spec's)")
    parser.add_argument("--where", action="append", default=[], metavar="COND", help="a condition such as 'energy_uj <= 2' (also <, >=, >, ==; 'and' joins); repeatable")
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--prefer", metavar="METRIC[:MODE]", help="pick the best by this metric (default: the first objective)")
    how.add_argument("--knee", action="store_true", help="pick the knee of the front of the trials that satisfy the conditions")
    parser.add_argument("--top", type=int, default=1, metavar="K", help="how many trials to pick (default 1)")
    parser.add_argument("--export", metavar="DIR", help="write one bundle per pick into DIR (config.yaml, model.pt, card.md, metrics.json)")
    parser.add_argument("--overwrite", action="store_true", help="replace a bundle directory that holds another trial's export (the same trial's is always replaced)")
    parser.add_argument("--no-portable", action="store_true", help="do not write model.onnx / model.nir")
    parser.add_argument("--no-eval", action="store_true", help="do not measure the exported weights again")
    parser.add_argument("--verify-seeds", type=int, metavar="N", help="re-train each pick with N seeds (a sweep on Ray) and add mean ± std to its card")
    parser.add_argument("--address", metavar="ADDR", help="Ray cluster for --verify-seeds (default: start Ray locally)")
    parser.add_argument("--num-cpus", type=int, metavar="N", help="CPUs of a local Ray for --verify-seeds")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    return run_command(build_parser(), _main, argv, ResultsError)


def _main(args: argparse.Namespace) -> int:
    if args.verify_seeds is not None and not args.export:
        raise ResultsError("--verify-seeds needs --export DIR (the re-training reads the exported config)")
    if args.verify_seeds is not None and not args.address:
        from search.ray_session import bind_local_ray_to_loopback

        bind_local_ray_to_loopback()  # the re-training's local Ray: before the export imports Ray
    front = analyze_run(args.run_dir, args.objectives)
    selection = select_trials(front, args.where, prefer=args.prefer, knee=args.knee, top=args.top)
    print(f"{front.run.name}: {selection.describe()}")
    columns = list(dict.fromkeys([*front.names, "test_accuracy", *(m for m in _TABLE_COSTS if m in front.trials.column_names)]))
    columns = [c for c in columns if c in front.trials.column_names]
    header = f"  {'#':>2}  {'trial':<10}" + "".join(f"  {c:>14}" for c in columns) + "  front"
    print(header)
    for k, index in enumerate(selection.picks):
        row = front.row(index)
        place = "knee" if index == front.knee else "yes" if front.ranks[index] == 0 else f"rank {front.ranks[index]}"
        print(f"  {k + 1:>2}  {row['trial_id']:<10}" + "".join(f"  {format_number(row.get(c), **CARD_STYLE):>14}" for c in columns) + f"  {place}")
    if not args.export:
        return 0
    status = 0
    for k in range(len(selection.picks)):
        bundle = export_bundle(selection, k, args.export, evaluate=not args.no_eval, overwrite=args.overwrite, portable=not args.no_portable)
        files = " ".join(sorted(p.name for p in bundle.path.iterdir()))
        again = {"re-exported": " (replaced the earlier export of this trial)", "overwritten": " (replaced another trial's bundle: --overwrite)"}.get(bundle.replaced, "")
        if bundle.replaced == "re-exported" and bundle.seeds is not None:
            again = f" (replaced the earlier export of this trial; kept its {len(bundle.seeds.seeds)}-seed re-training in {SEEDS_DIR}/)"
        print(f"exported {bundle.path}{again}: {files}")
        if bundle.reproduced is not None:
            recorded = float(bundle.recorded["val_accuracy"])
            error = bundle.reproduction_error or 0.0
            verdict = "ok" if bundle.reproduces else f"MISMATCH (more than {100 * REPRODUCE_TOLERANCE:.1f} points)"
            print(f"  weights reloaded: val_accuracy {bundle.reproduced['val_accuracy']:.4f} (recorded {recorded:.4f}, |Δ| {100 * error:.2f} points) {verdict}")
            if not bundle.reproduces:
                status = EXIT_MISMATCH
        else:
            print(f"  weights {bundle.reproduce_note}")
        portable = bundle.portable or {}
        if "error" in portable:
            print(f"  no portable file: {portable['error']}")
        elif "val_accuracy" in portable:
            runtime = "onnxruntime" if portable["format"] == "onnx" else "snntorch"
            print(f"  {portable['file']} run by {runtime}: val_accuracy {portable['val_accuracy']:.4f}")
        if args.verify_seeds:
            print(f"  re-training with {args.verify_seeds} seeds on Ray ({args.address or 'local'}) …", flush=True)
            bundle = verify_seeds(bundle, args.verify_seeds, address=args.address, num_cpus=args.num_cpus)
            assert bundle.seeds is not None
            for metric, s in bundle.seeds.summary.items():
                if metric in front.names or metric == "test_accuracy":
                    print(f"  {metric}: {s['mean']:.4g} ± {s['std']:.2g} over {s['n']} seeds")
    return status


if __name__ == "__main__":
    sys.exit(main())
