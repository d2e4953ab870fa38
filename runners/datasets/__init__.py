"""Dataset ingestion: JSONL, CSV, Parquet, Arrow or a Hugging Face dataset → stored Parquet.

`python -m runners.datasets CONFIG.json [--result FILE]` ingests one Dataset (what the
local backend spawns and a Kubernetes Job runs); `ingest_dataset` does it in-process.

Example:
    >>> from runners.datasets import IngestConfig, ingest_dataset     # doctest: +SKIP
    >>> ingest_dataset(IngestConfig.model_validate_json(text)).rows
"""

from ._config import IngestConfig, IngestResult
from ._ingest import ingest_dataset

__all__ = ["IngestConfig", "IngestResult", "ingest_dataset"]
