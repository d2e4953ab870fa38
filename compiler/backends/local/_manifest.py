"""Provenance of a node's outputs: the `manifest.json` the backend writes last."""

from __future__ import annotations

import functools
import importlib.metadata
import subprocess
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from schemas import Manifest, NodeStatus

if TYPE_CHECKING:
    from ..._resolve import Graph, Node

__all__ = ["StepOutcome", "auditc_version", "build_manifest", "git_commit"]

LOGS_DIR = "logs"


@dataclass
class StepOutcome:
    """What a node's step produced, whether it succeeded or not."""

    error: str | None = None
    """None when the step succeeded."""
    rows: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    log: str | None = None
    """The log that explains the outcome, relative to the node directory (`logs/x.log`)."""

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


def git_commit(project_dir: Path) -> str | None:
    """`git rev-parse HEAD` in the project, or None when it is not a repository (never fails)."""
    try:
        done = subprocess.run(
            ["git", "-C", str(project_dir), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None


def build_manifest(
    graph: Graph,
    node: Node,
    outcome: StepOutcome,
    *,
    started: datetime,
    finished: datetime,
    commit: str | None,
    outputs: list[str],
) -> Manifest:
    """The manifest of a node that ran: complete when `outcome.ok`, else failed."""
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
        auditc_version=auditc_version(),
        git_commit=commit,
        started_at=started,
        finished_at=finished,
        duration_s=round((finished - started).total_seconds(), 3),
        rows=outcome.rows,
        metrics=outcome.metrics,
        error=outcome.error,
        log=outcome.log,
        outputs=[f for f in outputs if not f.startswith(LOGS_DIR + "/")],
    )


def _ordered_upstream(graph: Graph, node: Node) -> list[str]:
    """Every node `node` depends on, directly or not, in the graph's topological order."""
    names = graph.upstream(node.name)
    return [n.name for n in graph if n.name in names]
