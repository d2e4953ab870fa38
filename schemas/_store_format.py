"""On-disk formats of the store (format 2): node layout, `_manifest.json`, `scores.json`.

```
<store>/<kind>/<name>/<id>/        kind in lower case: dataset, evaluation, method
    part-*.parquet                  the node's rows: Dataset, Evaluation and Measurement
                                    rows; a SafetyCase's scores, one row per score
    _manifest.json                  written last and atomically; `status` says complete or
                                    failed; `outputs` lists every file with size and sha256
    _logs/                          what the step printed
    _case/                          SafetyCase files: index.html, notebook.ipynb,
                                    scores.json, instances/<score>.parquet
    _runs/<n>/                      earlier runs of the same node id, kept whole
    _attestations/                  signed in-toto statements about the outputs
```

Everything that is not data starts with `_`, so that pyarrow's dataset discovery
(pandas, `pd.read_parquet(node_dir)`), polars and DuckDB read a node directory as it is.
A node is complete only when its manifest exists and says `complete`.
"""

from __future__ import annotations

import hashlib
import posixpath
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ._aggregate import GateOutcome, ScoreAggregate, ScoreInterval, gate_outcome
from ._base import check_score_format
from ._errors import StoreError

__all__ = [
    "ATTESTATIONS_DIR",
    "CASE_DIR",
    "CASE_HTML_FILE",
    "CASE_NOTEBOOK_FILE",
    "DIGESTS_DIR",
    "ERROR_COLUMN",
    "ERROR_TYPE_COLUMN",
    "INDEX_COLUMN",
    "LEGACY_MANIFEST_FILE",
    "LOGS_DIR",
    "MANIFEST_FILE",
    "REPLICATION_COLUMN",
    "RESERVED_COLUMNS",
    "RUNS_DIR",
    "SCORES_FILE",
    "SHA256_PATTERN",
    "STORE_SCHEMA_VERSION",
    "FileDigest",
    "Manifest",
    "NodeStatus",
    "ScoreValue",
    "ScoresFile",
    "case_file",
    "node_path",
]

STORE_SCHEMA_VERSION: Literal[2] = 2
"""Format 2 (this one): data at the node's top level, everything else `_`-prefixed,
digests of every output. Format 1 (`manifest.json`, `logs/`, no digests) is refused."""
MANIFEST_FILE = "_manifest.json"
LEGACY_MANIFEST_FILE = "manifest.json"
"""The manifest of store format 1: how an old store is recognised (and refused)."""
LOGS_DIR = "_logs"
"""What each step printed (`dataset.log`, `evaluation.log`, `server-<service>-<i>.log`, …)."""
RUNS_DIR = "_runs"
"""Earlier runs of the node id, each whole in `_runs/<n>/` (`run --force` keeps them)."""
ATTESTATIONS_DIR = "_attestations"
"""Signed in-toto statements (DSSE envelopes, Sigstore bundles) about the node's outputs."""
DIGESTS_DIR = "_digests"
"""While a node runs: `<file>.json` digest of each output, written by its writer.
Gathered into the manifest at commit and removed."""
CASE_DIR = "_case"
"""A SafetyCase's files: what its notebook wrote to its output directory."""
SCORES_FILE = "scores.json"
"""A SafetyCase's scores, in `_case/` (`case_file(SCORES_FILE)`)."""
CASE_HTML_FILE = "index.html"
"""The rendered safety case, in `_case/`."""
CASE_NOTEBOOK_FILE = "notebook.ipynb"
"""The executed notebook, in `_case/`."""
SHA256_PATTERN = r"^[0-9a-f]{64}$"

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


def case_file(*parts: str) -> str:
    """A path in a SafetyCase's `_case/` directory, relative to the node directory."""
    return posixpath.join(CASE_DIR, *parts)


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


class FileDigest(BaseModel):
    """Size and sha256 of one stored file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    size: int = Field(ge=0)
    sha256: str = Field(pattern=SHA256_PATTERN)

    @classmethod
    def of(cls, data: bytes) -> FileDigest:
        """The digest of bytes in memory."""
        return cls(size=len(data), sha256=hashlib.sha256(data).hexdigest())


def _check_output_path(path: str) -> str:
    parts = path.split("/")
    if not path or path.startswith("/") or "\\" in path or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"output path {path!r} is not a plain path inside the node directory")
    return path


class Manifest(_StoreModel):
    """Provenance and status of one node's outputs."""

    schema_version: Literal[2] = STORE_SCHEMA_VERSION
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
    image_digests: dict[str, str | None] = Field(default_factory=dict)
    """Every container image the node's pods ran on Kubernetes, reference → its `sha256:…`
    digest (None where the stack named a tag, whose digest is unknown before the run)."""
    service_version: str | None = None
    """An Evaluation's external service: its declared `runner.version`."""
    service_fingerprint: str | None = None
    """An Evaluation's external service: the fingerprint it answered with when it ran."""
    auditc_version: str
    git_commit: str | None = None
    """`git rev-parse HEAD` of the project (None outside git)."""
    git_dirty: bool | None = None
    """Whether files under the project root differed from `git_commit` (None outside git)."""
    git_uncommitted_sha256: str | None = None
    """sha256 over the uncommitted changes under the project root (path and content of every
    modified, added, deleted or untracked file); None when the tree was clean."""
    run: int = Field(default=1, ge=1)
    """Which run of this node id in this store: earlier runs are kept in `_runs/<n>/`."""
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
    outputs: dict[str, FileDigest] = Field(default_factory=dict)
    """Every file of the node (data, logs, safety-case files), relative to the node
    directory, with its size and sha256; the manifest, `_runs/` and `_attestations/` excepted."""

    @field_validator("outputs")
    @classmethod
    def _sorted_outputs(cls, value: dict[str, FileDigest]) -> dict[str, FileDigest]:
        return {_check_output_path(path): value[path] for path in sorted(value)}

    @property
    def output_kind(self) -> str:
        """What the node produced: its kind, or `Measurement`/`SafetyCase` for a Method."""
        if self.kind != "Method":
            return self.kind
        # The manifest stores the whole resource (or, written by older code, its spec only).
        inner = self.spec.get("spec")
        body = inner if "kind" in self.spec and isinstance(inner, dict) else self.spec
        declared = body.get("output")
        if isinstance(declared, dict) and declared.get("kind") in ("Measurement", "SafetyCase"):
            return str(declared["kind"])
        # Without a readable spec, a scores file is what makes a safety case.
        return "SafetyCase" if case_file(SCORES_FILE) in self.outputs else "Measurement"


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

    def formatted(self, value: float | None = None) -> str:
        """A value (default: the score's own) rendered with the score's format and unit."""
        text = self.format.format(value=self.value if value is None else value)
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
    """`_case/scores.json` of a SafetyCase node."""

    schema_version: Literal[2] = STORE_SCHEMA_VERSION
    method: str
    id: str
    scores: list[ScoreValue]
