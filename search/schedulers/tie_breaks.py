"""The tie-breaks MO-ASHA orders a Pareto layer by: the one list the spec's ``scheduler.tie_break`` allows.

- ``crowding``: NSGA-II's crowding distance, larger first;
- ``eps_net``: an ε-net (Salinas et al., 2021), points picked greedily, each the furthest from
  those picked before it.
"""

from __future__ import annotations

__all__ = ["TIE_BREAKS"]

#: The accepted ``scheduler.tie_break`` values (the first is the default).
TIE_BREAKS: tuple[str, ...] = ("crowding", "eps_net")
