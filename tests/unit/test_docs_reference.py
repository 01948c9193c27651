"""The documentation's reference pages are generated from the code and committed: regenerating them changes nothing."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def _generator():
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generated():
    return _generator().generate()


def test_the_committed_reference_pages_are_what_the_code_generates(generated):
    stale = [name for name, text in generated.items() if (ROOT / "docs" / "reference" / name).read_text() != text]
    assert not stale, f"docs/reference/{stale} out of date: run python docs/generate.py"


def test_the_reference_lists_every_spec_key_family_parameter_and_command(generated):
    from search.spec import Spec
    from trainables.config import param_names
    from trainables.registry import get_trainable, trainable_names

    for key in Spec.model_fields:
        assert f"| `{key}` |" in generated["spec.md"], key
    for family in trainable_names():
        for name in param_names(get_trainable(family).config):
            assert f"| `{name}` |" in generated["families.md"], (family, name)
    for flag in ("--warm-start", "--resume", "--set", "--mlflow", "--export", "--write"):
        assert f"`{flag}`" in generated["cli.md"], flag
    for name in ("trials.parquet", "epochs.parquet", "warm_start.parquet", "study.journal", "sweep.json"):
        assert f"`{name}`" in generated["rundir.md"], name


def test_check_mode_fails_on_a_stale_page(tmp_path, monkeypatch):
    generator = _generator()
    monkeypatch.setattr(generator, "REFERENCE", tmp_path)
    for name, text in generator.generate().items():
        (tmp_path / name).write_text(text)
    assert generator.main(["--check"]) == 0
    (tmp_path / "spec.md").write_text("# edited by hand\n")
    assert generator.main(["--check"]) == 1


def test_the_schema_command_checks_the_committed_file():
    done = subprocess.run([sys.executable, "-m", "search.schema", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
