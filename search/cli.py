"""What every command line of the project shares: exit statuses and the one-line error."""

from __future__ import annotations

import sys

__all__ = ["EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_INTERRUPTED", "fail"]

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
