"""Wait, in the pod, until a node's inputs exist: the first step of an asynchronous run.

When a stack does not wait for Jobs (`auditc:jobs.waitForCompletion: false`), `pulumi
up` creates every Job at once, so nothing outside the cluster orders them. Each pod
that reads other nodes' outputs first runs `python -m runners.fetch wait CONFIG.json`:
it polls the store until every upstream node's `manifest.json` says `complete` with
the id the pod was compiled for (and, for a server that reads a prefetched model,
until the prefetch Job's marker file exists in the shared cache), then exits 0.

It never gives up by itself: the Job's `activeDeadlineSeconds`, which covers the
upstream nodes' own deadlines, ends a pod whose inputs never come.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from schemas import Store, StoreError

__all__ = ["WaitConfig", "WaitNode", "wait_for_inputs"]

logger = logging.getLogger(__name__)


class WaitNode(BaseModel):
    """An upstream node whose outputs the pod reads."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    """`Kind/name`, for messages."""
    id: str
    uri: str
    """The node's directory in the store."""


class WaitConfig(BaseModel):
    """What to wait for.

    Example:
        >>> WaitConfig(nodes=[WaitNode(key="Dataset/d", id="3f2a…", uri="s3://b/p/dataset/d/3f2a…")])
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    nodes: list[WaitNode] = Field(default_factory=list)
    files: list[str] = Field(default_factory=list)
    """Paths in the pod that must exist (a model's prefetch marker)."""
    poll_s: float = Field(default=10.0, gt=0)
    """Seconds between two looks at the store (doubling on errors, at most 60)."""


def _committed(node: WaitNode) -> bool:
    try:
        manifest = Store.open(node.uri, create=False).read_manifest("")
    except StoreError as exc:
        logger.warning("cannot read %s yet: %s", node.uri, exc)
        return False
    return manifest is not None and manifest.status == "complete" and manifest.id == node.id


def wait_for_inputs(config: WaitConfig, *, sleep: float | None = None) -> float:
    """Block until every node is committed and every file exists; returns the seconds waited."""
    start = time.monotonic()
    pending_nodes = list(config.nodes)
    pending_files = list(config.files)
    delay = sleep if sleep is not None else config.poll_s
    last_report = 0.0
    while True:
        pending_nodes = [node for node in pending_nodes if not _committed(node)]
        pending_files = [path for path in pending_files if not Path(path).exists()]
        if not pending_nodes and not pending_files:
            waited = time.monotonic() - start
            logger.info("inputs ready after %.0f s", waited)
            return waited
        now = time.monotonic()
        if now - last_report >= 60 or last_report == 0.0:
            waiting = [n.key for n in pending_nodes] + pending_files
            logger.info("waiting for %s (%.0f s so far)", ", ".join(waiting), now - start)
            last_report = now or 1e-9
        time.sleep(delay)
