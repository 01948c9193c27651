"""Sweep specs: YAML → a validated, typed :class:`Spec`, checked once at load.

Every error names the file, the dotted field path and what was expected, in one line, and is
raised as :class:`SpecError` before any trial starts or any directory is written.

A spec names a registered trainable family; the parameters in ``space`` and ``fixed`` are dotted
names into that family's config (``model.width``), so a typo is an error, not a silent no-op.

One job per module, every public name importable from here:

- :mod:`search.spec.model`: the typed spec (pydantic models) and the feasibility rules its
  constraints define (:meth:`Constraint.violation_of`, :func:`feasible`, :func:`provably_broken`);
- :mod:`search.spec.checks`: checks against the trainable family and across fields;
- :mod:`search.spec.load`: YAML and ``--set`` overrides in, a validated :class:`Spec` out, and back.
"""

from __future__ import annotations

from search.samplers import SAMPLERS
from search.schedulers import SCHEDULERS
from search.spec.load import apply_overrides, load_spec, load_yaml, parse_spec, spec_to_yaml
from search.spec.model import (
    CONSTRAINT_OPS,
    TIE_BREAKS,
    Constraint,
    MlflowSection,
    Objective,
    Param,
    Resources,
    RunSection,
    SamplerSection,
    SchedulerSection,
    Spec,
    SpecError,
    TrackingSection,
    check_sweep_name,
    feasible,
    provably_broken,
)

__all__ = [
    "SpecError",
    "load_yaml",
    "check_sweep_name",
    "feasible",
    "provably_broken",
    "Spec",
    "Param",
    "Objective",
    "Constraint",
    "SamplerSection",
    "SchedulerSection",
    "Resources",
    "RunSection",
    "MlflowSection",
    "TrackingSection",
    "CONSTRAINT_OPS",
    "TIE_BREAKS",
    "SAMPLERS",
    "SCHEDULERS",
    "load_spec",
    "parse_spec",
    "apply_overrides",
    "spec_to_yaml",
]
