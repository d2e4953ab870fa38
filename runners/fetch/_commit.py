"""Write a node's `_manifest.json` once its step has succeeded in the cluster.

Runners never write manifests (docs/contracts.md); the backend does, last. On
Kubernetes the backend is not running when the step ends, so this step does it in
the cluster: it is the main container of a dataset or method pod (after the step ran
as an init container) and its own Job after all shards of an evaluation finished.
The compiler supplies everything known before the run (spec, upstream ids, input
hashes, image, git state); this step adds what the run produced (rows, outputs with
their digests, times, the run number).
"""

from __future__ import annotations

import importlib.metadata
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas import (
    ERROR_COLUMN,
    INDEX_COLUMN,
    REPLICATION_COLUMN,
    Manifest,
    RunnerError,
    Store,
    is_node_metadata,
)

__all__ = ["CommitConfig", "ExpectedRows", "commit_node"]

logger = logging.getLogger(__name__)


class ExpectedRows(BaseModel):
    """An evaluation must hold every (`_index_`, `_replication_`) of its dataset once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset_uri: str
    replications: int = Field(ge=1)


class CommitConfig(BaseModel):
    """What the commit step needs: the node's URI and the manifest fields known beforehand.

    Example:
        >>> CommitConfig(node_uri="s3://b/p/method/m/3f2a", manifest={...})  # doctest: +SKIP
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    node_uri: str
    manifest: dict[str, Any]
    """`Manifest` fields except status, times, rows, outputs (and metrics)."""
    started_file: str | None = None
    """Where the fetch step wrote the start time; else the oldest output's time is used."""
    count_rows: bool = True
    """Count the rows of the node's Parquet parts (Dataset, Evaluation, Measurement)."""
    expected: ExpectedRows | None = None


def commit_node(config: CommitConfig) -> Manifest:
    """Check the node's outputs and write its manifest with status `complete`.

    Raises:
        RunnerError: the node wrote nothing, or an evaluation misses or repeats rows.
        StoreError: the store cannot be read or written.
    """
    store = Store.open(config.node_uri, create=False)
    if not any(".tmp-" not in f and not is_node_metadata(f) for f in store.list_files()):
        raise RunnerError(f"{config.node_uri} holds no outputs: the step wrote nothing")
    rows: int | None = None
    metrics: dict[str, float] = {}
    if config.count_rows:
        rows, metrics = _count(store, config)
    if config.expected is not None:  # a complete evaluation: its shards' parts, made canonical
        from runners.evaluation import finalize_parts

        finalize_parts(store)
    outputs = store.collect_outputs("")
    finished = datetime.now(UTC)
    started = _started(store, config.started_file, list(outputs)) or finished
    manifest = Manifest.model_validate(
        {
            **config.manifest,
            "auditc_version": config.manifest.get("auditc_version") or _auditc_version(),
            "status": "complete",
            "started_at": started,
            "finished_at": finished,
            "duration_s": max(0.0, (finished - started).total_seconds()),
            "rows": rows,
            "metrics": {**config.manifest.get("metrics", {}), **metrics},
            "outputs": outputs,
            "run": store.next_run(""),
        }
    )
    store.write_manifest("", manifest)
    logger.info("%s/%s %s complete: %s rows", manifest.kind, manifest.name, manifest.id, rows)
    return manifest


def _auditc_version() -> str:
    """The version of auditc in this image: it is what ran the step."""
    try:
        return importlib.metadata.version("auditc")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        import schemas

        return schemas.__version__


def _count(store: Store, config: CommitConfig) -> tuple[int, dict[str, float]]:
    import pyarrow.compute as pc

    dataset = store.open_dataset("", verify=False)  # its manifest is being made
    names = set(dataset.schema.names)
    rows = dataset.count_rows()
    metrics: dict[str, float] = {}
    if ERROR_COLUMN in names:
        metrics["errors"] = float(dataset.count_rows(filter=pc.field(ERROR_COLUMN).is_valid()))
    if config.expected is not None:
        _check_complete(store, config.expected, rows)
    return rows, metrics


def _check_complete(store: Store, expected: ExpectedRows, rows: int) -> None:
    keys = [INDEX_COLUMN, REPLICATION_COLUMN]
    table = store.open_dataset("", verify=False).to_table(columns=keys)
    distinct = table.group_by(keys).aggregate([]).num_rows
    want = Store.open(expected.dataset_uri, create=False).open_dataset("").count_rows()
    want *= expected.replications
    if distinct != want or rows != want:
        raise RunnerError(
            f"{store.uri}: expected {want} rows (one per _index_ and _replication_), "
            f"found {rows} rows with {distinct} distinct pairs; a shard is missing or repeated"
        )


def _started(store: Store, started_file: str | None, outputs: list[str]) -> datetime | None:
    if started_file and Path(started_file).is_file():
        return datetime.fromisoformat(Path(started_file).read_text(encoding="utf-8").strip())
    times = [store.fs.get_file_info(store.path(f)).mtime for f in outputs]
    known = [t if t.tzinfo else t.replace(tzinfo=UTC) for t in times if t is not None]
    return min(known) if known else None
