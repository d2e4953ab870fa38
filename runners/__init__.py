"""What runs inside a workflow: inference servers, the evaluation client, dataset
ingestion, the method runner, and the analysis helpers notebooks import.

Each subpackage has its own public API and a `python -m runners.<name> CONFIG.json`
entry point (what the local backend spawns and what a Kubernetes container runs).
`runners` imports `schemas` and never `compiler`.
"""

from ._bytecode import (
    PYCACHE_ENV,
    RUNNER_IMAGE_PYCACHE,
    default_bytecode_cache,
    private_bytecode_cache,
)
from ._callables import CallableSourceError, import_callable

__all__ = [
    "PYCACHE_ENV",
    "RUNNER_IMAGE_PYCACHE",
    "CallableSourceError",
    "default_bytecode_cache",
    "import_callable",
    "private_bytecode_cache",
]
