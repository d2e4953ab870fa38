"""`auditc verify --rerun NAME`: run one node again and compare its outputs bit for bit.

The node's upstream nodes are copied from the store (after checking them against their
manifests) into a temporary store, the node runs there with the local backend, and the
digests of its outputs are compared with the stored run's. Logs are not compared: they
hold times and ports. Everything else — Parquet parts, a safety case's scores, pages and
notebook — is expected to be the same bytes for a deterministic model (docs/store.md).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schemas import (
    ATTESTATIONS_DIR,
    LOGS_DIR,
    RUNS_DIR,
    FileDigest,
    Store,
    StoreError,
    UsageError,
)

from ._resolve import Graph

__all__ = ["RerunResult", "compared_outputs", "rerun_node"]


@dataclass(frozen=True)
class RerunResult:
    """How a node's re-run compares with its stored run, output by output."""

    key: str
    node_id: str
    same: list[str] = field(default_factory=list)
    differ: list[tuple[str, str, str]] = field(default_factory=list)
    """(file, stored sha256, re-run sha256); an empty sha256 means the file is absent there."""
    error: str | None = None
    """Why the re-run failed, when it did."""

    @property
    def ok(self) -> bool:
        """Whether the re-run reproduced every output."""
        return self.error is None and not self.differ

    def lines(self) -> list[str]:
        """One line per output that differs (or the re-run's error)."""
        if self.error is not None:
            return [f"{self.key} {self.node_id}: not-reproduced: the re-run failed: {self.error}"]
        return [
            f"{self.key} {self.node_id}/{name}: not-reproduced: stored "
            f"{stored[:16] or 'absent'}, re-run {again[:16] or 'absent'}"
            for name, stored, again in self.differ
        ]

    def as_json(self) -> dict[str, Any]:
        """The result for `--format json`."""
        return {
            "node": self.key,
            "id": self.node_id,
            "ok": self.ok,
            "same": self.same,
            "differ": [{"file": f, "stored": s, "rerun": r} for f, s, r in self.differ],
            "error": self.error,
        }


def compared_outputs(outputs: dict[str, FileDigest]) -> dict[str, FileDigest]:
    """The outputs a re-run must reproduce: all but the logs."""
    return {path: d for path, d in outputs.items() if not path.startswith(LOGS_DIR + "/")}


def rerun_node(graph: Graph, store: Store, name: str) -> RerunResult:
    """Run the node `name` again into a temporary store and compare digests with `store`'s.

    Raises:
        UsageError: no workflow node of the graph is named `name`, or the store has no
            complete run of the node's current id.
        IntegrityError: the stored node or one of its upstream nodes does not match
            its manifest.
    """
    from .backends.local import run_local

    if name not in graph.nodes or not graph[name].is_workflow:
        raise UsageError(f"--rerun: no Dataset, Evaluation or Method named {name!r} in the specs")
    node = graph[name]
    stored = store.verify_node(node.store_path)
    if stored is None or stored.status != "complete":
        raise UsageError(
            f"{node.key} {node.id} is not complete in {store.uri}: run it first (auditc run)"
        )
    work = Path(tempfile.mkdtemp(prefix="auditc-rerun-"))
    try:
        scratch = Store.open(work / "store")
        for upstream in graph.upstream(name):
            if graph[upstream].is_workflow:
                _copy_node(store, scratch, graph[upstream].store_path)
        result = run_local(graph, scratch, selected=[name])
        again = scratch.read_manifest(node.store_path)
        if result[name].status != "ran" or again is None or again.status != "complete":
            return RerunResult(node.key, node.id, error=result[name].error or "no manifest")
        return _compare(node.key, node.id, stored.outputs, again.outputs)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _copy_node(source: Store, target: Store, path: str) -> None:
    """Copy a verified node's current run (not its history or attestations)."""
    manifest = source.verify_node(path)
    if manifest is None or manifest.status != "complete":
        raise StoreError(f"{source.uri_of(path)}: an upstream node is not complete in the store")
    for relative in source.list_files(path):
        if not relative.startswith((RUNS_DIR + "/", ATTESTATIONS_DIR + "/")):
            target.write_bytes(source.read_bytes(path, relative), path, relative)


def _compare(
    key: str, node_id: str, stored: dict[str, FileDigest], again: dict[str, FileDigest]
) -> RerunResult:
    old, new = compared_outputs(stored), compared_outputs(again)
    same = sorted(p for p in old if p in new and old[p] == new[p])
    differ = [
        (p, old[p].sha256 if p in old else "", new[p].sha256 if p in new else "")
        for p in sorted(old.keys() | new.keys())
        if p not in same
    ]
    return RerunResult(key, node_id, same, differ)
