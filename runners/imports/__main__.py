"""`python -m runners.imports CONFIG.json [--result FILE]`: import one Evaluation's output.

Exit codes: 0 success; 1 the import failed (message on stderr); 2 the config is
invalid; 3 a bug (with a traceback).
"""

from __future__ import annotations

import sys

from .._entry import run_entry, step_command
from . import ImportConfig, import_evaluation

command = step_command(
    step="imports", description=__doc__, config_type=ImportConfig, run=import_evaluation
)


def main(argv: list[str] | None = None) -> int:
    """Import the log an ImportConfig names; return the exit code."""
    return run_entry(command, argv, prog="python -m runners.imports")


if __name__ == "__main__":
    sys.exit(main())
