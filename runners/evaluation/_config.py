"""The evaluation client's configuration and result models."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas import Evaluation, InferenceService

__all__ = [
    "DEFAULT_FLUSH_INTERVAL_S",
    "DEFAULT_PART_ROWS",
    "EvaluationConfig",
    "EvaluationResult",
]

DEFAULT_PART_ROWS = 100_000
"""Rows per Parquet part (one row group): large parts read fast and cost little to write."""
DEFAULT_FLUSH_INTERVAL_S = 5.0
"""A part is also written after this many seconds, so a killed run loses at most this much."""


class EvaluationConfig(BaseModel):
    """One shard of an evaluation: which rows, through which service, into which node.

    Example:
        >>> EvaluationConfig(evaluation=ev, service=svc, base_url="http://127.0.0.1:8123",
        ...     dataset_uri="/p/.auditc/dataset/d/ab12", output_uri="/p/.auditc/evaluation/e/cd34")
        ... # doctest: +SKIP
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    evaluation: Evaluation
    service: InferenceService
    base_url: str = Field(pattern=r"^https?://[^\s]+$")
    """The service's base URL; `service.spec.interface.endpoint` is appended."""
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """Environment variable holding an API key, sent as `Authorization: Bearer`."""
    ready_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")
    """If set, poll this health URL until HTTP 200 before sending, for at most
    `evaluation.spec.timeouts.ready` seconds (its default depends on the runner), and fail
    with exit code 4 after that (`runners.evaluation._ready`). None: the caller made sure
    the service is up."""
    ready_any_status: bool = False
    """Any HTTP answer at `ready_url` means ready (an external service without a health route)."""
    dataset_uri: str
    """Node URI of the stored Dataset (its `part-*.parquet` hold `_index_`)."""
    output_uri: str
    """Node URI the output parts are written into."""
    shard_index: int = Field(default=0, ge=0)
    shard_count: int = Field(default=1, ge=1)
    progress: bool | None = None
    """A rich progress bar (True), periodic log lines (False), or a bar on a terminal (None)."""
    part_rows: int = Field(default=DEFAULT_PART_ROWS, ge=1)
    """Rows per output part (and row group)."""
    flush_interval_s: float = Field(default=DEFAULT_FLUSH_INTERVAL_S, gt=0)
    """Seconds after which buffered rows are written even if fewer than `part_rows`."""
    concurrency_cap: int | None = Field(default=None, ge=1)
    """Most requests in flight for this shard whatever `concurrency` says (a stack's share of
    a shared service's total, set by the Kubernetes backend)."""

    @model_validator(mode="after")
    def _shard_in_range(self) -> EvaluationConfig:
        if self.shard_index >= self.shard_count:
            raise ValueError(
                f"shard_index {self.shard_index} is out of range for shard_count {self.shard_count}"
            )
        return self


class EvaluationResult(BaseModel):
    """What one shard's run did; written with `--result FILE`."""

    model_config = ConfigDict(extra="forbid")

    rows: int
    """Output rows this shard's parts hold now (resumed ones included)."""
    concurrency: int = 0
    """Requests in flight at the end (with `concurrency: auto`, where the controller got to)."""
    errors: int
    """Of those, rows with an error."""
    requests: int
    """HTTP requests sent by this run, retries included."""
    retries: int
    resumed_rows: int
    """Rows already written by an earlier, interrupted run (not sent again)."""
    duration_s: float
    in_flight_s: float
    """From the first request sent to the last response received."""
    service_fingerprint: str | None = None
    """What the (external) service answered its fingerprint request with, if it has one."""
    status: Literal["complete", "failed"]
    message: str | None = None
    """Why the run failed, or a summary."""
