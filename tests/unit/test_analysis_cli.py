"""``python -m analysis.pareto``: the printed front, hypervolume, files and one-line errors."""

from __future__ import annotations

import csv

from analysis.pareto.__main__ import main
from tests.unit.test_analysis_results import mixed_trials, report, synth_spec, trial, write_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_pareto_prints_the_front_and_hypervolume_and_writes_every_file(tmp_path, capsys):
    run_dir = write_run(tmp_path, mixed_trials())
    out_dir = tmp_path / "out"
    code = main([
        str(run_dir),
        "--png", str(out_dir / "front.png"),
        "--html", str(out_dir / "front.html"),
        "--progress-png", str(out_dir / "hv.png"),
        "--progress-html", str(out_dir / "hv.html"),
        "--csv", str(out_dir / "front.csv"),
    ])
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("synth  (") and "8 trials, 5 compete" in lines[0]
    assert "1 error, 1 running, 1 stopped early" in lines[0]
    assert "Pareto front: 4 of 5 feasible trials" in out
    start = next(i for i, line in enumerate(lines) if line.startswith("Pareto front:"))
    header, *rows = lines[start + 1 : next(i for i, line in enumerate(lines) if line.startswith("hypervolume:"))]
    assert header.split()[:3] == ["trial", "val_accuracy", "energy_uj"] and "model.width" in header
    tokens = [row.split() for row in rows]
    assert sorted(t[1] if t[0] == "*" else t[0] for t in tokens) == ["a0", "a1", "a2", "a4"]
    assert sum(t[0] == "*" for t in tokens) == 1  # the knee
    hv_line = next(line for line in lines if line.startswith("hypervolume:"))
    assert "reference: val_accuracy=0.891, energy_uj=4.35" in hv_line and "recorded in analysis.json" in hv_line
    for name in ("front.png", "hv.png"):
        assert (out_dir / name).read_bytes()[:8] == PNG_MAGIC
    assert "trial a2" in (out_dir / "front.html").read_text()
    with open(out_dir / "front.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["trial_id"] for r in rows) == ["a0", "a1", "a2", "a4"]
    assert sum(r["knee"] == "True" for r in rows) == 1 and {"model.width", "energy_uj", "checkpoint"} <= set(rows[0])
    # A second look reuses the recorded reference: the same hypervolume and reference.
    assert main([str(run_dir)]) == 0
    again = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("hypervolume:"))
    assert again == hv_line.split(" (derived")[0] + " (recorded in analysis.json)"


def test_pareto_compares_runs_against_one_reference(tmp_path, capsys):
    tpe = write_run(tmp_path / "a", mixed_trials(), name="sweep")
    rnd = write_run(tmp_path / "b", [trial("b0", report(0.96, 1.5)), trial("b1", report(0.91, 0.8))], name="sweep")
    assert main([str(tpe), str(rnd), "--png", str(tmp_path / "cmp.png")]) == 0
    out = capsys.readouterr().out
    # Same run names from two storages are told apart by their parent folder.
    assert "a/sweep  (" in out and "b/sweep  (" in out
    assert out.count("(common: the worst of the runs' references)") >= 3
    comparison = out[out.index("comparison"):].splitlines()
    a_row = next(line for line in comparison if "a/sweep" in line).split()
    b_row = next(line for line in comparison if "b/sweep" in line).split()
    # Combined front: b0 (0.96, 1.5) and b1 (0.91, 0.8) dominate a0, a1, a4; a2 (0.97, 4) survives.
    assert a_row[-1] == "1/3" and b_row[-1] == "2/3"
    assert (tmp_path / "cmp.png").read_bytes()[:8] == PNG_MAGIC


def test_pareto_user_errors_are_one_line_with_status_2(tmp_path, capsys):
    run_dir = write_run(tmp_path, mixed_trials(), synth_spec())
    cases = [
        ([str(tmp_path / "missing")], "no such run dir"),
        ([str(run_dir), "--objectives", "val_accuracy:max", "spike_rate:min"], "no metric spike_rate"),
        ([str(run_dir), "--reference", "0.5"], "--reference needs 2 values"),
        ([str(run_dir), "--objectives", "val_accuracy", "energy_uj", "macs", "params", "--png", str(tmp_path / "x.png")], "draw 2 or 3 objectives"),
    ]
    for argv, message in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "x.png").exists()


def test_the_package_exports_its_public_api_lazily():
    import analysis

    for name in analysis.__all__:
        assert getattr(analysis, name) is not None, name
    assert analysis.select_trials.__module__ == "analysis.select"
    assert analysis.compute_front.__module__ == "analysis.pareto"


def test_python_m_analysis_dispatches_to_the_commands(tmp_path, capsys):
    from analysis.__main__ import main as analysis_main

    run_dir = write_run(tmp_path, mixed_trials())
    assert analysis_main(["pareto", str(run_dir)]) == 0
    assert "Pareto front: 4 of 5" in capsys.readouterr().out
    assert analysis_main(["select", str(run_dir), "--prefer", "energy_uj"]) == 0
    assert "lowest energy_uj" in capsys.readouterr().out
    assert analysis_main(["plot"]) == 2
    assert "unknown command 'plot'" in capsys.readouterr().err


def test_each_public_name_of_the_package_has_one_home():
    import importlib

    import analysis

    homes: dict[str, list[str]] = {}
    for module in analysis._MODULES:
        for name in importlib.import_module(f"analysis.{module}").__all__:
            homes.setdefault(name, []).append(module)
    assert {name: where for name, where in homes.items() if len(where) > 1} == {}
    assert analysis.load_bundle.__module__ == "analysis.bundle"
    assert analysis.export_bundle.__module__ == "analysis.export"
    assert analysis.verify_seeds.__module__ == "analysis.seeds"
    assert "main" not in analysis.__all__  # command lines live in the commands' __main__ modules
