"""The range of energy ratios (teacher / SNE) an SNE spec's search space can reach, before any training.

SNE energy depends on measured spikes, so the range is computed at assumed firing rates (every
spiking layer at the same rate; trained students on the digits sets fire at 0.1-0.3 spikes per
neuron per step). The teacher's MACs and each student's per-layer MACs come from the same cost
code a trial uses (:func:`trainables.costs.model_costs`, :func:`trainables.sne.students.student_cost_plan`),
on an untrained network of the spec's shapes; no data is loaded (the input shape comes from the
data set's name, or ``--input-shape`` for ``npz``).

The student-size parameters of the space (``student.*``, ``sne.students``, ``sne.active``,
``sne.timesteps``) are taken at the ends of their ranges (every value of a choice), and every
combination is costed; the cheapest and the dearest configurations bound the range::

    python benchmarks/sne_energy_range.py spaces/sne_digits28.yaml [--rates 0.1 0.3]

The last line printed is JSON: ``ratio_min``/``ratio_max`` over the combinations and rates, with
the configurations that reach them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: ``(C, H, W)`` and classes of the named data sets (the loaders' shapes, without loading them).
SHAPES: dict[str, tuple[tuple[int, int, int], int]] = {
    "digits": ((1, 8, 8), 10),
    "digits28": ((1, 28, 28), 10),
    "fashion_mnist": ((1, 28, 28), 10),
    "cifar10": ((3, 32, 32), 10),
    "cifar100": ((3, 32, 32), 100),
}
SIZE_PARAMS = ("sne.students", "sne.active", "sne.timesteps", "student.shape", "student.width", "student.channels", "student.depth")


def _ends(param: Any) -> list[Any]:
    if param.choice is not None:
        return list(param.choice)
    bounds = next(b for b in (param.int_, param.float_, param.log_) if isinstance(b, tuple))
    return list(dict.fromkeys(bounds))


def energy_ratios(
    spec_path: str, rates: list[float], input_shape: tuple[int, int, int] | None = None, every: bool = False
) -> dict[str, Any]:
    """Cost every combination of the space's size-parameter ends at each rate; return the bounds (and, with ``every``, each row)."""
    import torch

    from search.space import trial_config
    from search.spec import load_spec
    from trainables.costs import model_costs, snn_energy_uj
    from trainables.data import DataInfo
    from trainables.energy import energy_model
    from trainables.sne.partition import part_sizes
    from trainables.sne.students import SpikingStudent, student_cost_plan
    from trainables.sne.teacher import build_teacher

    spec = load_spec(spec_path)
    if spec.trainable != "sne":
        raise SystemExit(f"error: {spec_path} searches {spec.trainable!r}, not sne")
    name = spec.data.name
    if input_shape is None:
        if name not in SHAPES:
            raise SystemExit(f"error: data.name {name!r} has no fixed shape; pass --input-shape C H W")
        input_shape, classes = SHAPES[name]
    else:
        classes = 10
    searched = {k: _ends(p) for k, p in spec.space.items() if k in SIZE_PARAMS}
    keys = list(searched)
    first = trial_config(spec, {})
    info = DataInfo(name=name, input_shape=input_shape, num_classes=classes, n_train=1, n_val=1, n_test=1)
    torch.manual_seed(0)
    teacher = build_teacher(spec.entry.resolve(first).teacher, info)
    teacher_macs = model_costs(teacher.eval(), input_shape).macs
    emodel = energy_model(spec.entry.resolve(first).cost.energy_model)
    teacher_uj = teacher_macs * emodel.e_mac_pj * 1e-6
    rows = []
    for values in itertools.product(*(searched[k] for k in keys)):
        params = dict(zip(keys, values))
        students = int(params.get("sne.students", first["sne"]["students"]))
        active = params.get("sne.active", first["sne"]["active"])
        if isinstance(active, str):  # "$sne.students": the dependent end
            active = students
        params["sne.active"] = min(int(active), students)
        cfg = spec.entry.resolve(trial_config(spec, params))
        sizes = part_sizes(teacher.feature_dim, cfg.sne.students)
        plans = [
            student_cost_plan(SpikingStudent(cfg.student, cfg.sne.neuron(), input_shape, size), input_shape)
            for size in sizes[: cfg.sne.active]
        ]
        for rate in rates:
            energy = 0.0
            for plan in plans:
                real, synops = plan.ops([rate * plan.timesteps * n for n in plan.neurons])
                energy += snn_energy_uj(real, synops, emodel)
            rows.append({"params": params, "rate": rate, "energy_uj": energy, "ratio": teacher_uj / energy})
    low = min(rows, key=lambda r: r["ratio"])
    high = max(rows, key=lambda r: r["ratio"])
    out = {
        "spec": spec_path,
        "input_shape": list(input_shape),
        "teacher_macs": int(teacher_macs),
        "teacher_energy_uj": round(teacher_uj, 3),
        "rates": rates,
        "combinations": len(rows) // len(rates),
        "ratio_min": round(low["ratio"], 2),
        "ratio_max": round(high["ratio"], 1),
        "fraction_of_teacher_max": round(1 / low["ratio"], 4),
        "fraction_of_teacher_min": round(1 / high["ratio"], 5),
        "dearest": low,
        "cheapest": high,
    }
    if every:
        out["rows"] = rows
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", help="an SNE spec (spaces/sne_*.yaml)")
    parser.add_argument("--rates", type=float, nargs="+", default=[0.1, 0.3], help="assumed spikes per neuron per step")
    parser.add_argument("--every", action="store_true", help="print the ratio of every combination too")
    parser.add_argument("--input-shape", type=int, nargs=3, metavar=("C", "H", "W"), help="for data.name: npz")
    args = parser.parse_args(argv)
    out = energy_ratios(args.spec, args.rates, tuple(args.input_shape) if args.input_shape else None, args.every)
    for row in out.pop("rows", []):
        print(f"{row['ratio']:9.1f}x  rate {row['rate']}  " + "  ".join(f"{k}={v}" for k, v in row["params"].items()))
    print(
        f"{out['spec']}: teacher {out['teacher_macs']:,} MACs ({out['teacher_energy_uj']} µJ); "
        f"{out['combinations']} size combinations at rates {out['rates']}: energy ratio "
        f"{out['ratio_min']}x .. {out['ratio_max']}x (SNE = 1/{out['ratio_max']:.0f} .. 1/{out['ratio_min']:.1f} of the teacher)"
    )
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
