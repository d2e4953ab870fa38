"""`python -m runners.methods CONFIG.json [--result FILE]`: run one method.

Exit codes: 0 success; 1 the method failed (message on stderr); 2 the config is
invalid; 3 a bug (with a traceback).
"""

from __future__ import annotations

import sys

from .._entry import run_entry, step_command
from . import MethodConfig, run_method

command = step_command(
    step="methods", description=__doc__, config_type=MethodConfig, run=run_method
)


def main(argv: list[str] | None = None) -> int:
    """Run the method a MethodConfig describes; return the exit code."""
    return run_entry(command, argv, prog="python -m runners.methods")


if __name__ == "__main__":
    sys.exit(main())
