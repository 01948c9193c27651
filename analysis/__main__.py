"""``python -m analysis COMMAND ...``: the analysis commands under one name.

Each command is a package of ``analysis`` whose ``__main__`` module holds its command line
(``build_parser()`` and ``main(argv)``, user errors as one ``error:`` line and exit status 2):
``python -m analysis pareto RUN_DIR ...`` runs ``analysis/pareto/__main__.py``, as
``python -m analysis.pareto RUN_DIR ...`` does. A new command is one more such package and one
more row of :data:`COMMANDS`. Each command's module is imported only when it runs, so
``--help`` is instant.
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
  robustness RUN_DIR --trial ID  an SNE trial's accuracy-energy curve, noise robustness  (python -m analysis robustness --help)
  track RUN_DIR --mlflow URI     log a run dir to MLflow and/or TensorBoard   (python -m analysis track --help)"""

#: Command → module whose ``main(argv)`` runs it.
COMMANDS: dict[str, str] = {name: f"analysis.{name}.__main__" for name in ("pareto", "select", "robustness", "track")}


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
