"""Provenance of a node's outputs: the `_manifest.json` the backend writes last."""

from __future__ import annotations

import functools
import importlib.metadata
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from schemas import LOGS_DIR, FileDigest, Manifest, NodeStatus

from ..._git import GitState
from .._fingerprints import service_version

if TYPE_CHECKING:
    from ..._resolve import Graph, Node

__all__ = ["LOGS_DIR", "StepOutcome", "auditc_version", "build_manifest"]


@dataclass
class StepOutcome:
    """What a node's step produced, whether it succeeded or not."""

    error: str | None = None
    """None when the step succeeded."""
    rows: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    log: str | None = None
    """The log that explains the outcome, relative to the node directory (`logs/x.log`)."""
    service_fingerprint: str | None = None
    """An Evaluation's external service: the fingerprint it answered with."""

    @property
    def ok(self) -> bool:
        """Whether the step succeeded."""
        return self.error is None


@functools.cache
def auditc_version() -> str:
    """The installed auditc distribution's version."""
    try:
        return importlib.metadata.version("auditc")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        import schemas

        return schemas.__version__


def build_manifest(
    graph: Graph,
    node: Node,
    outcome: StepOutcome,
    *,
    started: datetime,
    finished: datetime,
    git: GitState,
    outputs: dict[str, FileDigest],
    run: int = 1,
) -> Manifest:
    """The manifest of a node that ran: complete when `outcome.ok`, else failed.

    `outputs` are the node's files with their digests (`Store.collect_outputs`), logs
    included; `run` numbers this run among the node id's runs kept in the store.
    """
    status: NodeStatus = "complete" if outcome.ok else "failed"
    return Manifest(
        kind=node.kind,
        name=node.name,
        id=node.id,
        status=status,
        spec=node.resource.model_dump(mode="json"),
        upstream={graph[n].key: graph[n].id for n in _ordered_upstream(graph, node)},
        input_files=dict(node.files),
        model_revision=graph.model_revision(node.name),
        service_version=service_version(graph, node),
        service_fingerprint=outcome.service_fingerprint,
        auditc_version=auditc_version(),
        git_commit=git.commit,
        git_dirty=git.dirty,
        git_uncommitted_sha256=git.uncommitted_sha256,
        run=run,
        started_at=started,
        finished_at=finished,
        duration_s=round((finished - started).total_seconds(), 3),
        rows=outcome.rows,
        metrics=outcome.metrics,
        error=outcome.error,
        log=outcome.log,
        outputs=outputs,
    )


def _ordered_upstream(graph: Graph, node: Node) -> list[str]:
    """Every node `node` depends on, directly or not, in the graph's topological order."""
    names = graph.upstream(node.name)
    return [n.name for n in graph if n.name in names]
