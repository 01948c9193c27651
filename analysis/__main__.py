"""``python -m analysis COMMAND ...``: the analysis commands under one name.

``python -m analysis pareto RUN_DIR ...`` is ``python -m analysis.pareto RUN_DIR ...``,
``python -m analysis select RUN_DIR ...`` is ``python -m analysis.select RUN_DIR ...`` and
``python -m analysis robustness RUN_DIR --trial ID`` is ``python -m analysis.robustness ...``.
Each command's module is imported only when it runs, so ``--help`` is instant.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from search.cli import fail

__all__ = ["main"]

_USAGE = """usage: python -m analysis COMMAND [ARGS ...]

commands:
  pareto RUN_DIR [RUN_DIR ...]   Pareto front(s), hypervolume, PNG/HTML/CSV   (python -m analysis pareto --help)
  select RUN_DIR                 pick configurations and export bundles       (python -m analysis select --help)
  robustness RUN_DIR --trial ID  an SNE trial's accuracy-energy curve, noise robustness  (python -m analysis robustness --help)"""

#: Command → module whose ``main(argv)`` runs it.
COMMANDS: dict[str, str] = {"pareto": "analysis.pareto_cli", "select": "analysis.select", "robustness": "analysis.robustness"}


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to a command's ``main``; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        return fail(f"unknown command {command!r} (choose {', '.join(COMMANDS)})")
    return importlib.import_module(COMMANDS[command]).main(rest)


if __name__ == "__main__":
    sys.exit(main())
