"""GPU check: the layer benchmark, a G2G and an SNE trial, four trials sharing one GPU, the CUDA tests.

One prepared script for a machine with a GPU, PyTorch and no Ray, Optuna or package registry
(the device machines this project is sometimes lent): it drives the trainables directly, with
their training protocol (``G2GTraining`` / ``SNETraining``: ``train_epoch``, ``metrics``), on
synthetic CIFAR-shaped data, and prints one JSON document (also written with ``--out``).

    # here (with network access), once: the wheels of the one dependency the device lacks
    python benchmarks/gpu_check.py --fetch-wheels          # -> benchmarks/wheels/ (git-ignored)
    # on the device (about 5-7 minutes on one H100; every part is bounded by --budget-s):
    python3 benchmarks/gpu_check.py --wheels benchmarks/wheels --out $OUT/gpu_check.json
    # anywhere, CI-sized, the same code paths on the CPU (about half a minute):
    python benchmarks/gpu_check.py --device cpu --quick

Parts of the JSON (each part records its own error instead of stopping the others):

- ``layer``: forward+backward of one hidden layer, dense (cuBLAS) vs masked dense vs block
  sparse (the group-major chain's layer: one gather + one ``baddbmm``), at 75 % sparsity, for
  widths 1024, 2048 and 4096, in fp32 and under bf16 autocast. ``block_beats_dense`` per row,
  and ``block_vs_dense_at_2048_plus``: whether block beats dense at every width ≥ 2048, or by
  how much it misses (the smallest dense/block ratio).
- ``g2g_trial`` / ``sne_trial``: one trial's epochs on the device (3×32×32 inputs, 10 classes):
  seconds per training epoch, peak device memory, the metrics.
- ``shared_gpu``: four G2G trials in four processes on the same GPU, one CPU thread each (what
  ``run.resources: {gpu: 0.25}`` makes Ray do), against one alone: wall seconds and the
  throughput gain ``4 × one / four``.
- ``tests``: ``pytest -m cuda tests/unit/test_cuda.py`` (its summary line and exit status).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WHEELS = ROOT / "benchmarks" / "wheels"
#: What the trainables need beyond PyTorch, NumPy and SciPy: pydantic and its dependencies.
#: The versions this project tests with; the device's Python is 3.12 (x86_64).
DEVICE_WHEELS = ("pydantic==2.12.4", "pydantic_core==2.41.5", "annotated-types==0.8.0", "typing-inspection==0.4.5",
                 "typing-extensions>=4.14")


def fetch_wheels(target: Path, python: str = "3.12") -> int:
    """Download the device's missing dependencies as wheels (run where a registry is reachable)."""
    target.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--no-deps", "--python-version", python,
               "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_17_x86_64", "-d", str(target), *DEVICE_WHEELS]
    code = subprocess.call(command)
    size = sum(f.stat().st_size for f in target.glob("*.whl"))
    print(f"{len(list(target.glob('*.whl')))} wheels, {size / 2**20:.1f} MiB in {target} (carry it to the device)")
    return code


def use_wheels(folder: Path) -> Path:
    """Unpack the wheels in ``folder`` (zip files, binary ones included) and put them on sys.path."""
    site = Path(tempfile.mkdtemp(prefix="gpu-check-site-"))
    for wheel in sorted(folder.glob("*.whl")):
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(site)
    sys.path.insert(0, str(site))
    os.environ["PYTHONPATH"] = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return site


def _synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_memory_mb(device) -> float:
    import resource

    import torch

    if device.type == "cuda":
        return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # the process's peak RSS (Linux: KiB)


def _median_ms(step, device, repeats: int, warmup: int) -> float:
    """Median milliseconds of ``step`` (CUDA events on a GPU, the wall clock on a CPU)."""
    import torch

    for _ in range(warmup):
        step()
    _synchronize(device)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            step()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            step()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def layer_part(device, widths: list[int], batch: int, repeats: int, warmup: int) -> dict[str, Any]:
    """Dense vs masked vs block forward+backward at 75 % sparsity, fp32 and bf16 autocast."""
    import torch

    from trainables.g2g.block import BlockSparseLinear, block_pattern
    from trainables.g2g.layers import MaskedLinear, group_labels

    rows = []
    groups, fan_in = 8, 2
    for width in widths:
        gen = torch.Generator().manual_seed(0)
        labels = group_labels(width, groups)
        block = BlockSparseLinear(labels, labels, block_pattern(groups, fan_in, generator=gen), generator=gen).to(device)
        masked = MaskedLinear(width, width, block.connection_mask().cpu(), generator=gen).to(device)
        dense = torch.nn.Linear(width, width).to(device)
        x = torch.randn(batch, width, device=device)
        upstream = torch.randn(batch, width, device=device)
        x_chain, upstream_chain = x.t().contiguous(), upstream.t().contiguous()
        for dtype in ("fp32", "bf16"):
            autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bf16")

            def step(call, params, inputs, grad):
                def run():
                    for p in params:
                        p.grad = None
                    xg = inputs.detach().requires_grad_()
                    with autocast:
                        out = call(xg)
                    out.backward(grad.to(out.dtype))

                return run

            timing = {
                "dense_ms": _median_ms(step(dense, list(dense.parameters()), x, upstream), device, repeats, warmup),
                "masked_ms": _median_ms(step(masked, list(masked.parameters()), x, upstream), device, repeats, warmup),
                "block_ms": _median_ms(step(block.forward_group_major, list(block.parameters()), x_chain, upstream_chain),
                                       device, repeats, warmup),
            }
            row = {"width": width, "batch": batch, "dtype": dtype, "sparsity": 0.75, **{k: round(v, 4) for k, v in timing.items()}}
            row["speedup_block_vs_dense"] = round(timing["dense_ms"] / timing["block_ms"], 3)
            row["speedup_block_vs_masked"] = round(timing["masked_ms"] / timing["block_ms"], 3)
            row["block_beats_dense"] = timing["block_ms"] < timing["dense_ms"]
            rows.append(row)
            print(f"  layer {width:>5} {dtype}: dense {row['dense_ms']:.3f} ms, masked {row['masked_ms']:.3f} ms, "
                  f"block {row['block_ms']:.3f} ms ({row['speedup_block_vs_dense']:.2f}x dense)", flush=True)
    wide = [r for r in rows if r["width"] >= 2048]
    verdict: dict[str, Any] = {}
    for dtype in ("fp32", "bf16"):
        mine = [r for r in wide if r["dtype"] == dtype]
        if mine:
            worst = min(r["speedup_block_vs_dense"] for r in mine)
            verdict[dtype] = "block beats dense at every width >= 2048" if worst > 1 else (
                f"misses: block takes {1 / worst:.2f}x dense's time at its worst width >= 2048")
    return {"rows": rows, "block_vs_dense_at_2048_plus": verdict}


def synthetic_splits(device, samples: int, seed: int = 0):
    """CIFAR-shaped standardised inputs with learnable labels (a random linear teacher), on ``device``."""
    import torch

    from trainables.data import DataInfo, Splits

    gen = torch.Generator().manual_seed(seed)
    val = max(64, samples // 8)
    x = torch.randn(samples + val, 3, 32, 32, generator=gen)
    teacher = torch.randn(3 * 32 * 32, 10, generator=gen)
    y = (x.flatten(1) @ teacher).argmax(1)
    info = DataInfo("synthetic_cifar", (3, 32, 32), 10, samples, val, 0)
    x, y = x.to(device), y.to(device)
    return Splits(info, x[:samples], y[:samples], x[samples:], y[samples:], x[:0], y[:0], augment=False)


def g2g_config(device, quick: bool, threads: int = 1) -> dict[str, Any]:
    width = 256 if quick else 2048
    return {
        "model": {"kind": "g2g", "width": width, "depth": 3, "groups": 8, "granularity": "block", "block_fan_in": 2},
        "optim": {"batch_size": 256, "lr": 1e-3},
        "budget": {"epochs": 3, "eval_test": False},
        "runtime": {"device": device.type if device.type == "cpu" else str(device), "threads": threads},
        "seed": 0,
    }


def _epochs(run, epochs: int, device) -> dict[str, Any]:
    times = []
    for _ in range(epochs):
        _synchronize(device)
        start = time.perf_counter()
        run.train_epoch()
        _synchronize(device)
        times.append(time.perf_counter() - start)
    metrics = run.metrics()
    return {
        "epoch_s": [round(t, 3) for t in times],
        "epoch_s_median": round(statistics.median(times[1:] if len(times) > 1 else times), 3),
        "peak_memory_mb": _peak_memory_mb(device),
        "val_accuracy": round(float(metrics["val_accuracy"]), 4),
        "macs": int(metrics["macs"]),
    }


def g2g_part(device, quick: bool) -> dict[str, Any]:
    """One G2G trial (block granularity, 3 hidden layers) on the device: its epochs and memory."""
    import torch

    from trainables.g2g.trainable import G2GTraining

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    splits = synthetic_splits(device, 1024 if quick else 20000)
    run = G2GTraining(g2g_config(device, quick), splits)
    result = _epochs(run, 2 if quick else 3, device)
    result["config"] = g2g_config(device, quick)["model"]
    result["train_samples"] = splits.info.n_train
    return result


def sne_part(device, quick: bool, cache_dir: str) -> dict[str, Any]:
    """One SNE trial (teacher trained first, four conv students, T = 4) on the device."""
    import torch

    from trainables.sne.trainable import SNETraining

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    splits = synthetic_splits(device, 512 if quick else 10000)
    config = {
        "teacher": {"arch": "cnn", "width": 16 if quick else 32, "epochs": 1 if quick else 3},
        "student": {"shape": "conv", "channels": 8 if quick else 24, "depth": 2 if quick else 4, "stem_stride": 2,
                    "init": "scratch"},
        "sne": {"students": 4, "active": 4, "timesteps": 4, "learn_neuron": True},
        "optim": {"batch_size": 64, "lr": 3e-3},
        "budget": {"epochs": 3, "eval_test": False},
        "runtime": {"device": device.type if device.type == "cpu" else str(device), "cache_dir": cache_dir},
        "seed": 0,
    }
    start = time.perf_counter()
    run = SNETraining(config, splits)  # trains (or loads) the teacher
    _synchronize(device)
    setup = time.perf_counter() - start
    result = _epochs(run, 2 if quick else 3, device)
    result["teacher_and_setup_s"] = round(setup, 2)
    result["energy_uj"] = float(run.metrics().get("energy_uj", float("nan")))
    result["train_samples"] = splits.info.n_train
    return result


def _child_g2g(device_name: str, quick: bool) -> None:
    """One shared-GPU trial, in its own process: one CPU thread, the trial's epochs."""
    import torch

    from trainables.g2g.trainable import G2GTraining

    torch.set_num_threads(1)
    device = torch.device(device_name)
    splits = synthetic_splits(device, 1024 if quick else 20000)
    run = G2GTraining(g2g_config(device, quick), splits)
    run.train_epoch()  # warm-up, as the parent's timing excludes process start-up
    _synchronize(device)
    print("READY", flush=True)
    sys.stdin.readline()  # the parent starts every child's timed epochs at once
    start = time.perf_counter()
    for _ in range(2):
        run.train_epoch()
    _synchronize(device)
    print(json.dumps({"seconds": time.perf_counter() - start}), flush=True)


def shared_part(device, quick: bool, trials: int = 4) -> dict[str, Any]:
    """``trials`` processes training on one device at once vs one alone (warm, same work each)."""

    def run_children(n: int) -> float:
        command = [sys.executable, str(Path(__file__).resolve()), "--child-g2g", "--device", str(device)]
        if quick:
            command.append("--quick")
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        children = [subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
                    for _ in range(n)]
        try:
            for child in children:
                line = child.stdout.readline()
                if line.strip() != "READY":
                    raise RuntimeError(f"a shared-GPU trial did not start: {line.strip() or child.wait()}")
            start = time.perf_counter()
            for child in children:
                child.stdin.write("go\n")
                child.stdin.flush()
            seconds = [json.loads(child.stdout.readline())["seconds"] for child in children]
            wall = time.perf_counter() - start
        finally:
            for child in children:
                if child.poll() is None:
                    child.kill()
                child.wait()
        return wall if n > 1 else seconds[0]

    one = run_children(1)
    many = run_children(trials)
    return {"trials": trials, "one_trial_s": round(one, 3), "all_trials_s": round(many, 3),
            "throughput_gain": round(trials * one / many, 3), "epochs_per_trial": 2}


def tests_part(timeout_s: float) -> dict[str, Any]:
    """The CUDA-marked tests (tests/unit/test_cuda.py), in a subprocess."""
    command = [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider", "tests/unit/test_cuda.py"]
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return {"exit_status": done.returncode, "summary": lines[-1] if lines else done.stderr.strip()[-500:]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0], epilog=__doc__.split("\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="cuda (default when available), cuda:N or cpu")
    parser.add_argument("--quick", action="store_true", help="CI-sized: small widths and data, few repeats")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--wheels", type=Path, default=None, help="unpack these wheels onto sys.path first (the device lacks pydantic)")
    parser.add_argument("--fetch-wheels", action="store_true", help=f"download the device's wheels into {WHEELS.relative_to(ROOT)} and stop")
    parser.add_argument("--budget-s", type=float, default=450.0, help="skip the parts that would start after this many seconds")
    parser.add_argument("--skip", action="append", default=[], choices=("layer", "g2g_trial", "sne_trial", "shared_gpu", "tests"))
    parser.add_argument("--child-g2g", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.fetch_wheels:
        return fetch_wheels(WHEELS)
    if args.wheels:
        use_wheels(args.wheels)
    sys.path.insert(0, str(ROOT))
    import torch

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.child_g2g:
        _child_g2g(str(device), args.quick)
        return 0
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but PyTorch sees no CUDA device", file=sys.stderr)
        return 2
    started = time.perf_counter()
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "quick": args.quick,
        "cpu_threads": torch.get_num_threads(),
    }
    print(f"gpu_check on {report['device']} (torch {torch.__version__}){' quick' if args.quick else ''}", flush=True)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as cache:
        parts = {
            "layer": lambda: layer_part(device, [256] if args.quick else [1024, 2048, 4096], 64 if args.quick else 1024,
                                        3 if args.quick else 30, 1 if args.quick else 10),
            "g2g_trial": lambda: g2g_part(device, args.quick),
            "sne_trial": lambda: sne_part(device, args.quick, cache),
            "shared_gpu": lambda: shared_part(device, args.quick),
            "tests": lambda: tests_part(max(30.0, args.budget_s - (time.perf_counter() - started))),
        }
        for name, part in parts.items():
            elapsed = time.perf_counter() - started
            if name in args.skip:
                report[name] = {"skipped": "--skip"}
                continue
            if elapsed > args.budget_s:
                report[name] = {"skipped": f"time budget ({elapsed:.0f} s of {args.budget_s:.0f} s used)"}
                continue
            print(f"{name} ...", flush=True)
            part_start = time.perf_counter()
            try:
                report[name] = part()
            except Exception as exc:  # noqa: BLE001 - every part reports its own failure; the others still run
                report[name] = {"error": f"{type(exc).__name__}: {exc}"}
            report[name]["part_s"] = round(time.perf_counter() - part_start, 1)
    report["total_s"] = round(time.perf_counter() - started, 1)
    text = json.dumps(report, indent=1)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)
    failed = [name for name in parts if "error" in report.get(name, {})]
    if report.get("tests", {}).get("exit_status") not in (None, 0, 5):
        failed.append("tests")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
