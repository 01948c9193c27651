"""A bundle's card: ``card.md`` (for people) and ``metrics.json`` (for programs).

Rendering only: :func:`render_card` turns a :class:`~analysis.bundle.Bundle` into markdown —
recorded and re-measured metrics, where the trial sits on its front, the portable file, the
seed re-training, snippets that run as pasted — and :func:`write_card` writes both files.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np

from analysis.bundle import CARD_FILE, CONFIG_FILE, METRICS_FILE, PREPROCESSING_FILE, REPRODUCE_TOLERANCE, WEIGHTS_FILE, Bundle
from trainables.registry import metric_table
from trainables.report import format_number

__all__ = ["CARD_STYLE", "card_metrics", "render_card", "write_card"]

#: How cards and selection tables write a value: ``format_number(value, **CARD_STYLE)``, with a
#: missing value (None or NaN) as an en dash.
CARD_STYLE: Mapping[str, Any] = MappingProxyType({"missing": "–", "nan_is_missing": True})


def card_metrics(trainable: str, kind: str | None = None) -> list[str]:
    """The family's declared metrics a card shows: quality ones, or costs (training time with them)."""
    table = metric_table(trainable)
    quality = [m for m, info in table.items() if info.kind == "quality"]
    cost = [m for m, info in table.items() if info.kind == "cost"] + ["train_time_s"]
    return {"quality": quality, "cost": cost}.get(kind or "", quality + cost)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(format_number(c, **CARD_STYLE) if not isinstance(c, str) else c for c in row) + " |" for row in rows]
    return lines


def render_card(bundle: Bundle) -> str:
    """The markdown card of a bundle."""
    metrics = metric_table(bundle.trainable)

    rec = bundle.recorded
    pos = bundle.position
    lines = [
        f"# {bundle.run} · trial {bundle.trial_id}",
        "",
        f"Pick {bundle.pick}: {bundle.rule}.",
        f"Sweep `{bundle.run_dir}`, trainable `{bundle.trainable}`, seed {bundle.seed}, "
        f"{format_number(rec.get('epoch'), **CARD_STYLE)} epochs (full budget).",
        *_warm_start_lines(bundle),
        "",
        *_usage_lines(bundle),
        "## Quality",
        "",
    ]
    rows = []
    for metric in card_metrics(bundle.trainable, "quality"):
        if metric in rec:
            again = bundle.reproduced.get(metric) if bundle.reproduced else None
            rows.append([metrics[metric].axis_label + f" (`{metric}`)", format_number(rec.get(metric), **CARD_STYLE), format_number(again, **CARD_STYLE)])
    lines += _table(["metric", "recorded by the sweep", "measured again from model.pt"], rows)
    # What the model is compared with (e.g. the teacher an SNE was distilled from): numbers only.
    context = [
        [info.axis_label + f" (`{name}`)", format_number(rec[name], **CARD_STYLE)]
        for name, info in metrics.items()
        if info.kind == "info" and isinstance(rec.get(name), (int, float)) and not isinstance(rec.get(name), bool)
    ]
    if context:
        lines += ["", *_table(["reference", "recorded by the sweep"], context)]
    if bundle.reproduced is not None:
        error = bundle.reproduction_error or 0.0
        verdict = "reproduced" if bundle.reproduces else "NOT reproduced"
        lines += ["", f"Validation accuracy {verdict} from the exported weights: |Δ| = {100 * error:.2f} points (tolerance {100 * REPRODUCE_TOLERANCE:.1f})."]
    else:
        lines += ["", f"Exported weights {bundle.reproduce_note}."]
    lines += ["", "## Costs (per inference sample, as trained)", ""]
    lines += _table(["cost", "value"], [[metrics[m].axis_label + f" (`{m}`)", format_number(rec.get(m), **CARD_STYLE)] for m in card_metrics(bundle.trainable, "cost") if m in rec])
    lines += _portable_lines(bundle)
    objectives = ", ".join(f"`{m}` ({mode})" for m, mode in bundle.objectives)
    lines += ["", "## On the Pareto front", "", f"Objectives {objectives}; the front of the sweep's {pos['feasible_trials']} feasible full-budget trials has {pos['front_size']} points."]
    if pos["on_front"]:
        if pos.get("knee_bends", True):
            knee = " It is the **knee** (best trade-off)." if pos["knee"] else (f" The knee is trial {pos['knee_trial']}." if pos["knee_trial"] else "")
        else:  # fewer than 3 points, or a concave front: no knee, the point closest to the ideal instead
            closest = "It is" if pos["knee"] else f"Trial {pos['knee_trial']} is"
            knee = f" The front has no knee (fewer than 3 points, or it does not bend towards the ideal point); {closest} the point closest to the ideal point."
        lines.append(
            f"This trial is **on the front**, point {pos['position']} of {pos['front_size']} (ordered by `{bundle.objectives[0][0]}`, best first).{knee} "
            f"Neighbours on the front: {', '.join(pos['neighbours']) or 'none'}."
        )
        lines.append(
            f"Without it the front's hypervolume drops by {format_number(pos['hypervolume_contribution'], **CARD_STYLE)} "
            f"(of {format_number(pos['hypervolume'], **CARD_STYLE)}, reference {', '.join(format_number(v, **CARD_STYLE) for v in pos['reference'])})."
        )
    elif not pos["feasible"]:
        lines.append("This trial violates the spec's constraints, so it is not ranked.")
    else:
        lines.append(f"This trial is dominated (rank {pos['rank']}) by front trial(s) {', '.join(pos['dominated_by'][:6])}; it was picked under the conditions above.")
    places = ", ".join(f"`{m}` {place}{_ordinal(place)} of {pos['feasible_trials']}" for m, place in pos["places"].items())
    lines += ["", f"Place per objective among the feasible trials: {places}."]
    if bundle.seeds is not None:
        check = bundle.seeds
        lines += ["", f"## Re-trained with {len(check.seeds)} seeds ({', '.join(map(str, check.seeds))})", ""]
        lines += _table(["metric", "mean ± std", "n"], [[f"`{m}`", f"{format_number(s['mean'], **CARD_STYLE)} ± {format_number(s['std'], **CARD_STYLE)}", str(s["n"])] for m, s in check.summary.items()])
        lines += [""]
        shown = [m for m in check.summary][:5]
        lines += _table(["seed", *shown], [[str(r["seed"]), *(r.get(m) for m in shown)] for r in check.rows])
        lines += ["", f"Sweep: `{check.run_dir}`."]
    lines += ["", "## Configuration (the sweep's searched and fixed parameters; every resolved value is in config.yaml)", ""]
    lines += _table(["parameter", "value"], [[f"`{k}`", format_number(v, **CARD_STYLE)] for k, v in bundle.params.items()])
    lines += [
        "",
        "## Files",
        "",
        f"- `{CONFIG_FILE}`: a spec with this trial's resolved config; `python -m search.run {CONFIG_FILE} --storage DIR` trains it again (seed {bundle.seed}).",
        f"- `{WEIGHTS_FILE}`: the deployable model's state dict (`preprocess.mean`/`preprocess.std`, then the network's `model.*`), "
        f"read with `torch.load('{WEIGHTS_FILE}', weights_only=True)`; `analysis.bundle.load_bundle` rebuilds the module from it.",
        f"- `{PREPROCESSING_FILE}`: input shape, dtype, units and range, the standardisation statistics, class names.",
        *([f"- `{bundle.portable['file']}`: the model outside PyTorch (see above)."] if bundle.portable and "file" in bundle.portable else []),
        f"- `{METRICS_FILE}`: everything above, machine-readable.",
        "",
    ]
    return "\n".join(lines)


def _warm_start_lines(bundle: Bundle) -> list[str]:
    """Where the sweep's warm start came from (the trials earlier sweeps trained, told to its study)."""
    if not bundle.warm_start:
        return []
    sources = ", ".join(f"`{w.get('run_dir')}` ({w.get('taken', 0)} trials)" for w in bundle.warm_start)
    return [f"Warm-started from {sources}: their trials were told to the sweep's study before its first suggestion; they are not on this front."]


def _usage_lines(bundle: Bundle) -> list[str]:
    """The card's 'Use it' section: what the model takes and a snippet that runs as pasted."""
    prep = bundle.preprocessing
    if not prep:
        return []
    shape = " × ".join(str(s) for s in prep["input_shape"])
    low, high = prep["value_range"]
    where = str(bundle.path)
    lines = [
        "## Use it",
        "",
        f"Inputs: `{prep['dtype']}` tensors N × {shape} ({prep['layout']}) of {prep['natural_units']}; "
        f"the training inputs span [{format_number(low, **CARD_STYLE)}, {format_number(high, **CARD_STYLE)}]. The model standardises them itself "
        f"(per-channel mean {', '.join(format_number(v, **CARD_STYLE) for v in prep['mean'])}, std {', '.join(format_number(v, **CARD_STYLE) for v in prep['std'])}, "
        f"from the training split): do not normalise them again. It returns {prep['output']} over "
        f"{len(prep['class_names'])} classes ({', '.join(prep['class_names'][:10])}{', …' if len(prep['class_names']) > 10 else ''}).",
        "",
        "```python",
        "import torch",
        "from analysis.bundle import load_bundle",
        f"model = load_bundle({where!r})  # a torch.nn.Module in eval mode",
        "x = torch.rand(8, *model.input_shape)  # your inputs, in the units above",
        "print([model.class_names[i] for i in model(x).argmax(1)])",
        "```",
        "",
    ]
    portable = bundle.portable or {}
    if portable.get("format") == "onnx" and "file" in portable:
        lines += [
            "Without PyTorch or this package, with onnxruntime:",
            "",
            "```python",
            "import numpy as np, onnxruntime",
            f"session = onnxruntime.InferenceSession({str(bundle.path / portable['file'])!r})",
            f"x = np.random.rand(8, {', '.join(str(s) for s in prep['input_shape'])}).astype(np.float32)  # the same units",
            "logits = session.run(None, {'input': x})[0]",
            "print(logits.argmax(1))",
            "```",
            "",
        ]
    if portable.get("format") == "nir" and "file" in portable:
        lines += [
            "As a NIR graph (any NIR-capable simulator or chip toolchain), here with snntorch; "
            f"feed the same input at each of the {portable.get('timesteps')} steps and average the outputs:",
            "",
            "```python",
            "import torch",
            "from trainables.sne.nir_export import run_nir",
            f"logits = run_nir({str(bundle.path / portable['file'])!r}, torch.rand(8, {', '.join(str(s) for s in prep['input_shape'])}))",
            "print(logits.argmax(1))",
            "```",
            "",
        ]
    return lines


def _portable_lines(bundle: Bundle) -> list[str]:
    """The card's section on the portable file (ONNX / NIR)."""
    portable = bundle.portable
    if not portable:
        return []
    if "error" in portable:
        return ["", "## Outside PyTorch", "", f"No portable file was written: {portable['error']}."]
    recorded = bundle.recorded.get("val_accuracy")
    name = {"onnx": "ONNX", "nir": "NIR"}.get(portable["format"], portable["format"])
    lines = ["", f"## Outside PyTorch: `{portable['file']}` ({name})", ""]
    if portable["format"] == "onnx":
        macs = portable["macs"]
        ops = ", ".join(f"{op} × {n}" for op, n in portable["ops"].items())
        sparse = portable["sparse_initializers"]
        lines += [
            f"Opset {portable['opset']}, input `input` (dynamic batch), output `logits`; operators: {ops}.",
            ("Block layers are gathers and batched MatMuls of their blocks (never densified)." if any(op in portable["ops"] for op in ("Gather", "MatMul")) else "")
            + (f" Weights stored sparse (non-zeros only): {', '.join(f'`{n}`' for n in sparse)}." if sparse else ""),
            "",
        ]
        lines += _table(
            ["MACs per sample", "value"],
            [
                ["counted from the ONNX graph, non-zero weights", str(macs["effective"])],
                ["counted from the ONNX graph, dense", str(macs["dense"])],
                ["recorded by the sweep (`macs`)", format_number(bundle.recorded.get("macs"), **CARD_STYLE)],
            ],
        )
    else:
        lines += [portable.get("summary", "")]
    if portable.get("neurobench"):
        source = "the snntorch import of this graph" if portable["format"] == "nir" else "the model as nn.Linear + nn.ReLU layers"
        lines += ["", f"NeuroBench's figures (per sample, validation split, {source}; docs/explanation/energy-model.md says how they differ from ours):", ""]
        lines += _table(["NeuroBench metric", "value"], [[k, format_number(v, **CARD_STYLE)] for k, v in portable["neurobench"].items()])
    elif portable.get("neurobench_error"):
        lines += ["", f"NeuroBench's figures were not computed: {portable['neurobench_error']}."]
    if "val_accuracy" in portable:
        delta = abs(portable["val_accuracy"] - float(recorded)) if recorded is not None else math.nan
        runtime = "onnxruntime" if portable["format"] == "onnx" else "snntorch"
        lines += ["", f"Validation accuracy of `{portable['file']}` run by {runtime} on natural-unit inputs: "
                  f"{format_number(portable['val_accuracy'], **CARD_STYLE)} (recorded {format_number(recorded, **CARD_STYLE)}, |Δ| = {100 * delta:.2f} points)."]
    elif portable.get("run_error"):
        lines += ["", f"Not run here: {portable['run_error']}."]
    return lines


def _ordinal(n: int) -> str:
    return "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def write_card(bundle: Bundle) -> None:
    """Write ``card.md`` and ``metrics.json`` of a bundle."""
    (bundle.path / CARD_FILE).write_text(render_card(bundle))
    data = {
        "run": bundle.run,
        "run_dir": bundle.run_dir,
        "trainable": bundle.trainable,
        "trial_id": bundle.trial_id,
        "pick": bundle.pick,
        "rule": bundle.rule,
        "seed": bundle.seed,
        "objectives": [list(o) for o in bundle.objectives],
        "params": bundle.params,
        "recorded": bundle.recorded,
        "reproduced": bundle.reproduced,
        "reproduce_note": bundle.reproduce_note,
        "reproduces": bundle.reproduces,
        "front": bundle.position,
        "preprocessing": bundle.preprocessing,
        "portable": bundle.portable,
        "warm_start": list(bundle.warm_start),
        "seeds": None
        if bundle.seeds is None
        else {"seeds": list(bundle.seeds.seeds), "rows": list(bundle.seeds.rows), "summary": bundle.seeds.summary, "run_dir": bundle.seeds.run_dir},
    }
    (bundle.path / METRICS_FILE).write_text(json.dumps(_json_ready(data), indent=2) + "\n")


def _json_ready(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        return _json_ready(value.item())
    return value
