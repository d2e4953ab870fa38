"""Dataset ingestion: JSONL, CSV, Parquet, Arrow or a Hugging Face dataset → stored Parquet.

`python -m runners.datasets CONFIG.json [--result FILE]` ingests one Dataset (what the
local backend spawns and a Kubernetes Job runs); `ingest_dataset` does it in-process.

Example:
    >>> from runners.datasets import IngestConfig, ingest_dataset     # doctest: +SKIP
    >>> ingest_dataset(IngestConfig.model_validate_json(text)).rows
"""

from typing import TYPE_CHECKING, Any

from ._config import IngestConfig, IngestResult

if TYPE_CHECKING:
    from ._ingest import ingest_dataset

__all__ = ["IngestConfig", "IngestResult", "ingest_dataset"]


def __getattr__(name: str) -> Any:
    # The backend builds IngestConfigs in the `auditc` process; the readers (pyarrow
    # compute, parquet, csv, json) load only where ingestion actually runs.
    if name == "ingest_dataset":
        from ._ingest import ingest_dataset

        return ingest_dataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
