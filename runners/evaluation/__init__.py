"""The evaluation client: a dataset shard through an inference service, into Parquet parts.

Example:
    >>> from runners.evaluation import EvaluationConfig, run_evaluation
    >>> result = run_evaluation(EvaluationConfig.model_validate_json(text))  # doctest: +SKIP

Run as `python -m runners.evaluation CONFIG.json [--shard i/n] [--result FILE]`.
"""

from ._client import parse_retry_after, read_api_key, run_evaluation, run_evaluation_async
from ._config import DEFAULT_FLUSH_INTERVAL_S, DEFAULT_PART_ROWS, EvaluationConfig, EvaluationResult
from ._finalize import CANONICAL_PART_ROWS, finalize_parts
from ._infer import infer_row
from ._ready import EXIT_NOT_READY, ServiceNotReadyError, wait_for_service

__all__ = [
    "CANONICAL_PART_ROWS",
    "DEFAULT_FLUSH_INTERVAL_S",
    "EXIT_NOT_READY",
    "DEFAULT_PART_ROWS",
    "EvaluationConfig",
    "EvaluationResult",
    "finalize_parts",
    "ServiceNotReadyError",
    "infer_row",
    "parse_retry_after",
    "read_api_key",
    "run_evaluation",
    "run_evaluation_async",
    "wait_for_service",
]
