"""`python -m runners.datasets CONFIG.json [--result FILE]`: ingest one dataset.

Exit codes: 0 success; 1 the ingestion failed (message on stderr); 2 the config is
invalid; 3 a bug (with a traceback).
"""

from __future__ import annotations

import sys

from .._entry import keep_pandas_out, run_entry, step_command
from . import IngestConfig, ingest_dataset

command = step_command(
    step="datasets", description=__doc__, config_type=IngestConfig, run=ingest_dataset
)


def main(argv: list[str] | None = None) -> int:
    """Ingest the dataset an IngestConfig describes; return the exit code."""
    return run_entry(command, argv, prog="python -m runners.datasets")


if __name__ == "__main__":
    keep_pandas_out()
    sys.exit(main())
