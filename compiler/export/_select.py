"""Which store entries an export covers: the node named on the command line and what was
computed from it (its Measurements and SafetyCases), read through the store's manifests.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from compiler.report import NodeRef, SafetyCase, StoreIndex
from schemas import Manifest, Store, UsageError

__all__ = ["ExportTarget", "find_node", "select_target"]


@dataclass(frozen=True)
class ExportTarget:
    """A node of the store with everything downstream of it that is complete."""

    store: Store
    index: StoreIndex
    root: Manifest
    measurements: tuple[Manifest, ...]
    """Complete Measurements computed (directly or not) from the root, latest per Method."""
    cases: tuple[SafetyCase, ...]
    """Complete SafetyCases computed from the root (or the root itself), latest per Method."""
    aligned: frozenset[str] = frozenset()
    """Ids of the Measurements and SafetyCases whose only upstream Evaluation is the root:
    their per-instance values (`_index_`) are rows of the root. Values of a node that
    reads several Evaluations cannot be tied to one Evaluation's rows."""

    @property
    def ref(self) -> NodeRef:
        """The root node."""
        return NodeRef.of(self.root)


def find_node(index: StoreIndex, selector: str) -> Manifest:
    """The run of a node named `NAME`, `Kind/NAME` or either with `@ID` (an id prefix).

    Without `@ID`, the complete run that finished last (a failed run only when no run
    completed).

    Raises:
        UsageError: no node matches, or an id prefix matches several runs.
    """
    wanted, _, id_prefix = selector.partition("@")
    kind, _, name = wanted.rpartition("/")
    found = [
        m
        for m in index.manifests
        if m.name == name
        and (not kind or m.kind == kind)
        and (not id_prefix or m.id.startswith(id_prefix))
    ]
    if not found:
        names = sorted({f"{m.kind}/{m.name}" for m in index.manifests})
        close = difflib.get_close_matches(wanted, names + [n.split("/")[1] for n in names], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UsageError(
            f"no run of {selector!r} in the store {index.store.uri}{hint}; "
            f"it holds: {', '.join(names) or 'nothing'}"
        )
    if id_prefix and len({m.id for m in found}) > 1:
        raise UsageError(f"{selector!r} matches several runs: {', '.join(m.id for m in found)}")
    newest = sorted(found, key=lambda m: (m.status == "complete", m.finished_at), reverse=True)
    return newest[0]


def select_target(store: Store, selector: str) -> ExportTarget:
    """Read the store and collect the node `selector` names with its downstream results.

    Raises:
        UsageError: no such node in the store.
        StoreError: a manifest or `scores.json` is unreadable.
    """
    index = StoreIndex.read(store)
    root = find_node(index, selector)
    root_ref = NodeRef.of(root)
    latest: dict[str, Manifest] = {}
    aligned: set[str] = set()
    for manifest in sorted(index.manifests, key=lambda m: m.finished_at, reverse=True):
        if manifest.status != "complete" or manifest.kind != "Method":
            continue
        upstream, _, _ = index.lineage(manifest)
        refs = {NodeRef.of(m) for m in upstream}
        if (manifest == root or root_ref in refs) and manifest.name not in latest:
            latest[manifest.name] = manifest
            if {r for r in refs if r.kind == "Evaluation"} == {root_ref}:
                aligned.add(manifest.id)
    measurements = tuple(m for m in latest.values() if m.output_kind == "Measurement")
    cases = tuple(index.safety_case(m) for m in latest.values() if m.output_kind == "SafetyCase")
    return ExportTarget(store, index, root, measurements, cases, frozenset(aligned))
