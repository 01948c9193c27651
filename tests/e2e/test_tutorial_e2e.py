"""End-to-end: the tutorial's commands, read from ``docs/tutorial.md`` itself, run as written.

The page's fenced ``bash`` and ``python`` blocks run in the order the page gives them, in one
working directory laid out like a checkout's root (a temporary directory with ``spaces`` linking
to the repository's ``spaces/``): each ``bash`` block with ``bash -eu``, each ``python`` block as a
script of the interpreter running the tests (first on ``PATH`` as ``python`` too). Output blocks
(``text``) are not run.

The install block (the one with ``pip install``) is checked instead of run: the tests run in the
environment such an install made, so the package must be installed and every requirement of the
extras the block names must be present.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.e2e

TUTORIAL = ROOT / "docs" / "tutorial.md"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
_EXTRAS = re.compile(r"""pip install -e ["']?\.\[([\w,-]+)\]["']?""")
_ACCURACY_LINE = re.compile(r"onnxruntime test accuracy ([0-9.]+) \(the sweep recorded ([0-9.]+)\)")


def tutorial_blocks(text: str) -> list[tuple[str, str]]:
    """The page's runnable fenced blocks, ``(language, code)``, in page order."""
    return [(lang, code) for lang, code in _FENCE.findall(text) if lang in ("bash", "python")]


def _requirement_name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9_.-]+", requirement).group(0)


def check_install_block(code: str) -> list[str]:
    """What the install block asks for that this environment lacks (empty: nothing)."""
    extras = _EXTRAS.search(code)
    assert extras, f"the install block installs the package with extras, as pip install -e \".[...]\": {code!r}"
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    missing = []
    for extra in extras.group(1).split(","):
        assert extra in declared, f"the tutorial installs extra {extra!r}, which pyproject.toml does not declare"
        for requirement in declared[extra]:
            try:
                metadata.distribution(_requirement_name(requirement))
            except metadata.PackageNotFoundError:
                missing.append(f"{requirement} (extra {extra})")
    metadata.distribution("brainsweep")  # installed, editable or not
    return missing


def _run(lang: str, code: str, index: int, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    if lang == "bash":
        argv = ["bash", "-eu", "-c", code]
    else:
        script = cwd / f"tutorial_block_{index}.py"
        script.write_text(code, encoding="utf-8")
        argv = [sys.executable, script.name]
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_the_tutorial_runs_as_written(tmp_path):
    blocks = tutorial_blocks(TUTORIAL.read_text(encoding="utf-8"))
    install = [i for i, (lang, code) in enumerate(blocks) if lang == "bash" and "pip install" in code]
    assert install == [0], "the tutorial opens with one install block (pip install -e ...), before any other command"
    missing = check_install_block(blocks[0][1])
    if missing:
        pytest.skip(f"this environment lacks what the tutorial installs: {', '.join(missing)}")

    commands = "\n".join(code for _, code in blocks)
    for step in ("python -m search.run spaces/quickstart.yaml", "python -m analysis pareto", "python -m analysis select", "--export"):
        assert step in commands, f"the tutorial's commands no longer include {step!r}"
    assert any(lang == "python" and "onnxruntime" in code for lang, code in blocks), "the tutorial runs model.onnx in onnxruntime"

    (tmp_path / "spaces").symlink_to(ROOT / "spaces", target_is_directory=True)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    outputs = []
    for index, (lang, code) in enumerate(blocks[1:], start=1):
        result = _run(lang, code, index, tmp_path, env)
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"tutorial block {index} ({lang}) exited {result.returncode}:\n{code}\n--- output ---\n{output[-4000:]}"
        outputs.append(output)

    run_dir = tmp_path / "runs" / "quickstart"
    trials = pq.read_table(run_dir / "trials.parquet", columns=["trial_id", "state"]).to_pylist()
    assert len([row for row in trials if row["state"] != "REFUSED"]) == 24
    assert (tmp_path / "front.png").read_bytes().startswith(PNG_MAGIC)
    front = (tmp_path / "front.csv").read_text(encoding="utf-8").splitlines()
    assert "trial_id" in front[0].split(",") and len(front) >= 2

    bundles = sorted((tmp_path / "bundles").glob("quickstart-*"))
    assert len(bundles) == 1, bundles
    for name in ("model.onnx", "model.pt", "preprocessing.json", "config.yaml", "card.md", "metrics.json"):
        assert (bundles[0] / name).is_file(), f"the bundle lacks {name}"

    scored = [m for out in outputs for m in _ACCURACY_LINE.finditer(out)]
    assert len(scored) == 1, "the onnxruntime block prints its accuracy once"
    onnx_accuracy, recorded = (float(v) for v in scored[0].groups())
    assert onnx_accuracy > 0.8
    assert abs(onnx_accuracy - recorded) <= 0.01, "model.onnx under onnxruntime scores what the sweep recorded on the test split"


def test_tutorial_blocks_are_read_in_page_order():
    page = "intro\n```bash\necho one\n```\n\n```text\nnot run\n```\n\n```python\nprint(2)\n```\n```bash\necho three\n```\n"
    assert tutorial_blocks(page) == [("bash", "echo one\n"), ("python", "print(2)\n"), ("bash", "echo three\n")]
