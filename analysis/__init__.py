"""Analysis of finished or running sweeps: results tables, Pareto fronts, plots, selection, bundles.

One module per job, imports running one way (each module imports only those listed before it):

* ``analysis.pareto`` — fronts, ranks, hypervolume, knee (pure: arrays in, arrays out; imports
  nothing of the project, so the search may use it too);
* ``analysis.columns`` — a trials table's columns as numbers, and ``ResultsError``;
* ``analysis.reference`` — the hypervolume reference point a run records;
* ``analysis.results`` — a run dir as Arrow tables (through ``search.rundir.RunDir``), the
  competing trials, the run's front;
* ``analysis.plot`` — front and progress figures (compute, then matplotlib / plotly renderers);
* ``analysis.select`` — picking trials under conditions, by a metric or the knee;
* ``analysis.bundle`` — the deployable bundle's files and record, and loading a bundle back;
* ``analysis.card`` — a bundle's ``card.md`` and ``metrics.json``;
* ``analysis.export`` — writing a pick's bundle and measuring it again;
* ``analysis.seeds`` — re-training a pick with several seeds (a sweep through the search API);
* ``analysis.robustness`` — an SNE trial's accuracy-energy curve and noise robustness;
* ``analysis.track`` — a run dir logged to MLflow and TensorBoard after the fact (the search's
  trackers, :mod:`search.tracking`).

Every command has one shape: ``python -m analysis COMMAND ...`` runs the ``main(argv)`` of the
command package's ``__main__`` module (``analysis/pareto/__main__.py``, ``analysis/select/__main__.py``,
``analysis/robustness/__main__.py``, ``analysis/track/__main__.py``), which is also what
``python -m analysis.COMMAND`` runs.

The public names of the modules above (their ``__all__``, robustness aside, which needs torch)
are attributes of this package, imported on first use, so ``import analysis`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Modules whose public names this package exposes, in the order they are looked up.
_MODULES = ("pareto", "results", "plot", "select", "bundle", "card", "export", "seeds")


def _public_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for module in _MODULES:
        for name in importlib.import_module(f"analysis.{module}").__all__:
            names.setdefault(name, module)
    return names


def __getattr__(name: str) -> Any:
    if name == "__all__":
        value: Any = list(_public_names())
    else:
        for module in _MODULES:
            imported = importlib.import_module(f"analysis.{module}")
            if name in imported.__all__:
                value = getattr(imported, name)
                break
        else:
            raise AttributeError(f"module 'analysis' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_public_names()))
