"""What every command line of the project shares: exit statuses, the one-line error, the command shape."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

__all__ = ["EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_INTERRUPTED", "fail", "run_command"]

EXIT_OK = 0
#: The work ran but produced nothing usable (e.g. every trial of a sweep failed).
EXIT_FAILED = 1
#: A user error caught before anything ran: bad spec, missing data, unreachable cluster, bad run dir.
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def fail(message: str, status: int = EXIT_USAGE) -> int:
    """Print ``error: message`` (one line) on stderr; return ``status`` for ``sys.exit``."""
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    return status


def run_command(
    parser: argparse.ArgumentParser,
    body: Callable[[argparse.Namespace], int],
    argv: Sequence[str] | None,
    user_errors: type[Exception] | tuple[type[Exception], ...],
) -> int:
    """The shape of every command: parse ``argv``, run ``body``, turn a user error into one line.

    Returns ``body``'s exit status, or :data:`EXIT_USAGE` after printing ``error: …`` when it
    raises one of ``user_errors`` (programming errors keep their traceback).
    """
    args = parser.parse_args(argv)
    try:
        return body(args)
    except user_errors as exc:
        return fail(str(exc))
