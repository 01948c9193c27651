"""``python -m analysis COMMAND ...``: the analysis commands under one name.

``python -m analysis pareto RUN_DIR ...`` is ``python -m analysis.pareto RUN_DIR ...`` and
``python -m analysis select RUN_DIR ...`` is ``python -m analysis.select RUN_DIR ...``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

_USAGE = """usage: python -m analysis COMMAND [ARGS ...]

commands:
  pareto RUN_DIR [RUN_DIR ...]   Pareto front(s), hypervolume, PNG/HTML/CSV   (python -m analysis pareto --help)
  select RUN_DIR                 pick configurations and export bundles       (python -m analysis select --help)"""


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to a command's ``main``; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "pareto":
        from analysis.pareto_cli import main as pareto_main

        return pareto_main(rest)
    if command == "select":
        from analysis.select import main as select_main

        return select_main(rest)
    print(f"error: unknown command {command!r} (choose pareto or select)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
