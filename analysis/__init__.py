"""Analysis of finished or running sweeps: results tables, Pareto fronts, plots, selection.

``analysis.pareto`` is pure (arrays in, arrays out); ``analysis.results`` reads run dirs;
``analysis.plot`` draws; ``analysis.select`` picks and exports deployable bundles. Command
lines: ``python -m analysis.pareto`` and ``python -m analysis.select``.

Names are imported lazily on first use, so ``import analysis`` stays light and
``python -m analysis.pareto`` does not import the module it is about to run twice.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    # analysis.pareto (pure)
    "DIRECTIONS",
    "ParetoFront",
    "compute_front",
    "front_summary",
    "hypervolume",
    "hypervolume_progress",
    "knee_point",
    "nondominated_ranks",
    "pareto_front",
    "pareto_mask",
    "reference_point",
    "to_minimization",
    # analysis.results
    "HypervolumeTrace",
    "ReferencePoint",
    "ResultsError",
    "RunFront",
    "RunResults",
    "analyze_run",
    "common_reference",
    "completed_mask",
    "feasible_mask",
    "filter_trials",
    "finite_mask",
    "fix_reference",
    "full_budget_mask",
    "hypervolume_trace",
    "load_epochs",
    "load_run",
    "load_trials",
    "parse_objectives",
    "recorded_reference",
    "run_front",
    # analysis.plot
    "FrontPlot",
    "FrontSeries",
    "ProgressPlot",
    "front_plot",
    "progress_plot",
    "render_front_matplotlib",
    "render_front_plotly",
    "render_progress_matplotlib",
    "render_progress_plotly",
    "write_html",
    "write_png",
    # analysis.select
    "Bundle",
    "Condition",
    "SeedCheck",
    "Selection",
    "export_bundle",
    "load_bundle",
    "load_bundle_model",
    "select_trials",
    "verify_seeds",
]

_MODULES = ("pareto", "results", "plot", "select")


def _home(name: str) -> str:
    sections = {
        "pareto": __all__[: __all__.index("HypervolumeTrace")],
        "results": __all__[__all__.index("HypervolumeTrace") : __all__.index("FrontPlot")],
        "plot": __all__[__all__.index("FrontPlot") : __all__.index("Bundle")],
        "select": __all__[__all__.index("Bundle") :],
    }
    return next(module for module in _MODULES if name in sections[module])


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'analysis' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"analysis.{_home(name)}"), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
