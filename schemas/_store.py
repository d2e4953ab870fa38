"""On-disk formats of the store: node layout, `manifest.json`, `scores.json`.

```
<store>/<kind>/<name>/<id>/        kind in lower case: dataset, evaluation, method
    manifest.json                   written last and atomically; `status` says complete or failed
    part-*.parquet                  Dataset, Evaluation and Measurement rows
    logs/                           what the step printed
    index.html, scores.json         SafetyCase outputs (and notebook.ipynb, the executed notebook)
```

A node is complete only when its manifest exists and says `complete`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ._aggregate import GateOutcome, ScoreAggregate, ScoreInterval, gate_outcome
from ._base import check_score_format
from ._errors import StoreError

__all__ = [
    "ERROR_COLUMN",
    "ERROR_TYPE_COLUMN",
    "INDEX_COLUMN",
    "MANIFEST_FILE",
    "REPLICATION_COLUMN",
    "RESERVED_COLUMNS",
    "SCORES_FILE",
    "STORE_SCHEMA_VERSION",
    "Manifest",
    "NodeStatus",
    "ScoreValue",
    "ScoresFile",
    "node_path",
]

STORE_SCHEMA_VERSION: Literal[1] = 1
MANIFEST_FILE = "manifest.json"
SCORES_FILE = "scores.json"

INDEX_COLUMN = "_index_"
"""int64: the dataset row an output row belongs to."""
REPLICATION_COLUMN = "_replication_"
"""int32: 0..replications-1."""
ERROR_COLUMN = "_error_"
"""string: null when the row succeeded, else the last error's message."""
ERROR_TYPE_COLUMN = "_error_type_"
"""string: null, or a slug (`timeout`, `connect`, `http-500`, `http-429`, `bad-json`, `adapter`, …)."""
RESERVED_COLUMNS = (INDEX_COLUMN, REPLICATION_COLUMN, ERROR_COLUMN, ERROR_TYPE_COLUMN)

NodeStatus = Literal["complete", "failed"]


def node_path(kind: str, name: str, node_id: str) -> str:
    """The node's directory, relative to the store root: `<kind>/<name>/<id>`."""
    return f"{kind.lower()}/{name}/{node_id}"


class _StoreModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def parse(cls, text: str | bytes, source: str) -> Any:
        """Parse a stored file, naming it in the error when it is unreadable or of another version."""
        try:
            raw = cls.model_validate_json(text)
        except ValidationError as exc:
            version = _peek_version(text)
            if version is not None and version != STORE_SCHEMA_VERSION:
                raise StoreError(
                    f"{source}: schema_version {version} is not supported "
                    f"(this auditc reads version {STORE_SCHEMA_VERSION})"
                ) from exc
            raise StoreError(
                f"{source}: not a valid {cls.__name__}: {exc.errors()[0]['msg']}"
            ) from exc
        return raw


def _peek_version(text: str | bytes) -> int | None:
    import json

    try:
        value = json.loads(text).get("schema_version")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None


class Manifest(_StoreModel):
    """Provenance and status of one node's outputs."""

    schema_version: Literal[1] = STORE_SCHEMA_VERSION
    kind: str
    name: str
    id: str
    status: NodeStatus
    spec: dict[str, Any]
    """The resolved spec (defaults filled in) that produced these outputs."""
    upstream: dict[str, str] = Field(default_factory=dict)
    """`Kind/name` → node id of every resource this node depends on."""
    input_files: dict[str, str] = Field(default_factory=dict)
    """Project-relative path → sha256 of every file it read."""
    model_revision: str | None = None
    image: str | None = None
    auditc_version: str
    git_commit: str | None = None
    started_at: datetime
    finished_at: datetime
    duration_s: float
    rows: int | None = None
    """Rows written (Dataset, Evaluation, Measurement)."""
    metrics: dict[str, float] = Field(default_factory=dict)
    """Counters such as `errors`, `requests`, `retries`."""
    error: str | None = None
    """Why it failed (status `failed`)."""
    log: str | None = None
    """Log file, relative to the node directory."""
    outputs: list[str] = Field(default_factory=list)
    """Files written, relative to the node directory."""


class ScoreValue(BaseModel):
    """One exported score with its spec, as stored in `scores.json`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    value: float
    title: str | None = None
    summary: str | None = None
    valence: Literal["positive", "negative", "neutral"] = "neutral"
    primary: bool = False
    minimum: float | None = None
    maximum: float | None = None
    unit: str | None = None
    format: str = "{value:.3g}"
    gate_min: float | None = None
    gate_max: float | None = None
    gate_confidence: float | None = None
    """The gate judges `interval` (at this confidence) instead of the value."""
    text: str | None = None
    """A sentence the method wrote about this value."""
    aggregate: ScoreAggregate | None = None
    """How the value aggregates its per-instance values (None: their mean)."""
    interval: ScoreInterval | None = None
    """A confidence interval of the value, when one could be computed."""

    @field_validator("format")
    @classmethod
    def _format_ok(cls, value: str) -> str:
        return check_score_format(value)

    def formatted(self) -> str:
        """The value rendered with its format and unit."""
        text = self.format.format(value=self.value)
        return f"{text} {self.unit}" if self.unit else text

    def gate(self) -> GateOutcome | None:
        """`pass`, `fail` or `inconclusive` (a confidence gate); None without a gate."""
        return gate_outcome(
            self.value, self.gate_min, self.gate_max, self.gate_confidence, self.interval
        )

    def passed(self) -> bool | None:
        """Whether the gate passes (an inconclusive gate does not); None without a gate."""
        outcome = self.gate()
        return None if outcome is None else outcome == "pass"


class ScoresFile(_StoreModel):
    """`scores.json` of a SafetyCase node."""

    schema_version: Literal[1] = STORE_SCHEMA_VERSION
    method: str
    id: str
    scores: list[ScoreValue]
