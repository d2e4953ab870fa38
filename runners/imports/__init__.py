"""Results made by other tools: an Inspect AI log as an Evaluation's output (or as a Dataset).

`python -m runners.imports CONFIG.json [--result FILE]` imports one Evaluation whose spec
says `imported:` (what the local backend spawns and a Kubernetes Job runs);
`import_evaluation` does it in-process. `inspect_table` reads a log as a Dataset's rows
(the dataset ingestion step uses it for `format: inspect`).

Example:
    >>> from runners.imports import ImportConfig, import_evaluation     # doctest: +SKIP
    >>> import_evaluation(ImportConfig.model_validate_json(text)).rows
"""

from typing import TYPE_CHECKING, Any

from ._config import ImportConfig, ImportResult

if TYPE_CHECKING:
    from ._import import import_evaluation
    from ._inspect_log import inspect_evaluation_table, inspect_table

__all__ = [
    "ImportConfig",
    "ImportResult",
    "import_evaluation",
    "inspect_evaluation_table",
    "inspect_table",
]


def __getattr__(name: str) -> Any:
    # The backend builds ImportConfigs in the `auditc` process; pyarrow loads only where
    # an import actually runs.
    if name == "import_evaluation":
        from ._import import import_evaluation

        return import_evaluation
    if name in ("inspect_evaluation_table", "inspect_table"):
        from . import _inspect_log

        return getattr(_inspect_log, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
