"""Store garbage collection: the node directories no spec references, and their removal.

A store keeps every run it was given: runs of Methods since renamed, of parameters
since changed, of branches long merged. `plan_gc` lists the node directories
(`<kind>/<name>/<id>/`) whose `(kind, name, id)` is in none of the graphs to keep —
the current specs, and the specs at any git refs named — and `remove_nodes` deletes
them, manifest first, so that a half-removed node is never taken as complete.

Never removed: a node of a kept graph (complete, failed or unfinished), a node
written to recently (a run elsewhere may be writing it), and anything outside the
node layout (`inputs/`, lock files, …).
"""

from __future__ import annotations

import posixpath
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from schemas import MANIFEST_FILE, WORKFLOW_KINDS, Store, StoreError

if TYPE_CHECKING:
    import pyarrow.fs as pafs

    from ._resolve import Graph

__all__ = ["DEFAULT_MIN_AGE", "GcNode", "GcPlan", "plan_gc", "remove_nodes"]

DEFAULT_MIN_AGE = 3600.0
"""Seconds since a node's last write before it may be removed."""
_KINDS = {kind.lower(): kind for kind in WORKFLOW_KINDS}


@dataclass(frozen=True)
class GcNode:
    """One node directory of the store."""

    kind: str
    name: str
    id: str
    status: Literal["complete", "failed", "unfinished"]
    bytes: int
    files: int
    modified: float
    """Newest file's modification time (seconds since the epoch; 0 when unknown)."""

    @property
    def path(self) -> str:
        """The node directory, relative to the store root."""
        return f"{self.kind.lower()}/{self.name}/{self.id}"

    @property
    def key(self) -> str:
        """`Kind/name`."""
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class GcPlan:
    """What a collection would remove and keep."""

    store: str
    remove: list[GcNode]
    kept: int
    """Node directories referenced by a kept graph."""
    recent: list[GcNode] = field(default_factory=list)
    """Unreferenced nodes written to too recently to remove."""
    other: list[str] = field(default_factory=list)
    """Top-level entries outside the node layout, left alone."""

    @property
    def bytes(self) -> int:
        """Bytes the removal frees."""
        return sum(node.bytes for node in self.remove)


def plan_gc(
    store: Store,
    keep: Iterable[Graph],
    *,
    min_age: float = DEFAULT_MIN_AGE,
    now: float | None = None,
) -> GcPlan:
    """The node directories of `store` that no graph in `keep` references.

    Args:
        store: the store to collect.
        keep: graphs whose nodes stay (the current specs, specs at git refs).
        min_age: unreferenced nodes written to more recently than this many seconds
            ago are kept too.
        now: the current time (for tests).

    Raises:
        StoreError: the store cannot be listed.
    """
    referenced = {(node.kind, node.name, node.id) for graph in keep for node in graph}
    nodes, other = _nodes(store)
    moment = time.time() if now is None else now
    unreferenced = [n for n in nodes if (n.kind, n.name, n.id) not in referenced]
    return GcPlan(
        store.uri,
        [n for n in unreferenced if moment - n.modified >= min_age],
        len(nodes) - len(unreferenced),
        [n for n in unreferenced if moment - n.modified < min_age],
        other,
    )


def _nodes(store: Store) -> tuple[list[GcNode], list[str]]:
    import pyarrow.fs as pafs

    try:
        infos = store.fs.get_file_info(
            pafs.FileSelector(store.base, recursive=True, allow_not_found=True)
        )
    except OSError as exc:
        raise StoreError(f"cannot list {store.uri}: {exc}") from exc
    found: dict[tuple[str, str, str], list[pafs.FileInfo]] = {}
    other: set[str] = set()
    for info in infos:
        if info.type != pafs.FileType.File:
            continue
        parts = posixpath.relpath(info.path, store.base).split("/")
        if len(parts) >= 4 and parts[0] in _KINDS:
            found.setdefault((parts[0], parts[1], parts[2]), []).append(info)
        elif not parts[0].startswith("."):  # the writer's lock file and the like: not data
            other.add(parts[0])
    nodes = [
        _node(store, _KINDS[kind], name, node_id, infos_)
        for (kind, name, node_id), infos_ in sorted(found.items())
    ]
    return nodes, sorted(other)


def _node(store: Store, kind: str, name: str, node_id: str, files: list[pafs.FileInfo]) -> GcNode:
    path = f"{kind.lower()}/{name}/{node_id}"
    status: Literal["complete", "failed", "unfinished"] = "unfinished"
    if any(posixpath.basename(i.path) == MANIFEST_FILE for i in files):
        manifest = store.read_manifest(path)
        status = manifest.status if manifest is not None else "unfinished"
    times = [i.mtime.timestamp() for i in files if i.mtime is not None]
    size = sum(int(i.size or 0) for i in files)
    return GcNode(kind, name, node_id, status, size, len(files), max(times, default=0.0))


def remove_nodes(store: Store, nodes: Iterable[GcNode]) -> int:
    """Delete node directories, each manifest first; return the bytes freed.

    Raises:
        StoreError: a directory could not be deleted (the ones before it are gone).
    """
    freed = 0
    for node in nodes:
        try:
            if store.exists(node.path, MANIFEST_FILE):
                store.fs.delete_file(store.path(node.path, MANIFEST_FILE))
            store.delete_dir(node.path)
            _remove_if_empty(store, posixpath.dirname(node.path))
        except OSError as exc:
            raise StoreError(f"cannot remove {store.uri_of(node.path)}: {exc}") from exc
        freed += node.bytes
    return freed


def _remove_if_empty(store: Store, directory: str) -> None:
    """Drop `<kind>/<name>/` once its last node is gone (object stores have no directories)."""
    if store.is_local and not store.list_files(directory):
        store.delete_dir(directory)
