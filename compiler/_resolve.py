"""Stage 3, resolve: a validated `Project` → a `Graph` of content-addressed nodes.

A node's id is a hash of its canonical spec, in which every reference to another
resource is replaced by that resource's id and every path by the hash of the file
or directory it names. So ids do not depend on resource names, file names, YAML
layout or key order; they change when data, code or settings change, and every
downstream id changes with them. Documentation and labels are not hashed.

Pure: reads no files (hashes come from the Project) and writes nothing.
"""

from __future__ import annotations

import copy
import graphlib
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NewType

from schemas import (
    WORKFLOW_KINDS,
    AnyResource,
    Evaluation,
    GraphError,
    InferenceService,
    Issue,
    Method,
    Model,
    node_path,
)

from ._project import LoadedResource, Project, SourceLocation, path_refs, references

__all__ = ["ID_LENGTH", "ID_SCHEME", "Graph", "Node", "NodeId", "resolve_graph"]

NodeId = NewType("NodeId", str)
ID_SCHEME = "auditc-node-v1"
"""Hashed into every id: bump it when the id rules change, so old store entries are not reused."""
ID_LENGTH = 20
"""Hex characters of sha256 kept (80 bits)."""


@dataclass(frozen=True)
class Node:
    """One resource of the graph with its content-addressed id."""

    id: NodeId
    resource: AnyResource
    upstream: tuple[str, ...]
    """Names of the resources it refers to directly, in spec order, without repeats."""
    canonical: dict[str, Any]
    """What was hashed: kind and spec, references replaced by ids, paths by hashes."""
    files: dict[str, str]
    """Project-relative path → hash of every file or directory it reads directly."""
    location: SourceLocation

    @property
    def kind(self) -> str:
        return self.resource.kind

    @property
    def name(self) -> str:
        return self.resource.name

    @property
    def key(self) -> str:
        """`Kind/name`."""
        return f"{self.kind}/{self.name}"

    @property
    def output_kind(self) -> str:
        """What the node's outputs are: the kind, or Measurement/SafetyCase for a Method."""
        if isinstance(self.resource, Method):
            return self.resource.spec.output.kind
        return self.kind

    @property
    def is_workflow(self) -> bool:
        """Whether the node runs and writes outputs to the store."""
        return self.kind in WORKFLOW_KINDS

    @property
    def store_path(self) -> str:
        """The node's directory relative to the store root."""
        return node_path(self.kind, self.name, self.id)


@dataclass(frozen=True)
class Graph:
    """The resolved DAG. Edges point from a node to the nodes it depends on."""

    root: Path
    nodes: dict[str, Node]
    """By name, in topological order (dependencies first, ties in spec order)."""
    _downstream: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def __len__(self) -> int:
        return len(self.nodes)

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]

    def downstream(self, name: str) -> set[str]:
        """Names of every node that depends on `name`, directly or not."""
        return _closure(name, lambda n: self._downstream.get(n, ()))

    def upstream(self, name: str) -> set[str]:
        """Names of every node `name` depends on, directly or not."""
        return _closure(name, lambda n: self.nodes[n].upstream)

    def direct_downstream(self, name: str) -> tuple[str, ...]:
        """Names of the nodes that refer to `name` directly."""
        return self._downstream.get(name, ())

    def model_revision(self, name: str) -> str | None:
        """What pins the model an Evaluation ran against, as manifests record it.

        A Hugging Face `repo@commit`, a pip requirement, or the content hashes of a
        local model directory or the Module providing the callable; None for other
        kinds, for services without a model (external, container) and for imported
        Evaluations.
        """
        evaluation = self.nodes[name].resource
        if not isinstance(evaluation, Evaluation) or evaluation.spec.service is None:
            return None  # an imported Evaluation: its log's digest is among its input files
        service = self.nodes[evaluation.spec.service].resource
        assert isinstance(service, InferenceService)
        if service.spec.model is None:
            return None
        model_node = self.nodes[service.spec.model]
        model = model_node.resource
        assert isinstance(model, Model)
        if model.spec.huggingface is not None:
            return f"{model.spec.huggingface.repo}@{model.spec.huggingface.revision}"
        if model.spec.python is not None and model.spec.python.package is not None:
            return model.spec.python.package
        hashed = dict(model_node.files)
        for upstream in model_node.upstream:  # the Module providing the callable
            hashed.update(self.nodes[upstream].files)
        return ", ".join(f"{p}@sha256:{d}" for p, d in sorted(hashed.items())) or None

    def select(self, selectors: Iterable[str]) -> Graph:
        """The subgraph of the selected nodes and everything they need.

        A selector is a name, `name+` (with its downstream) or `+name` (same as `name`:
        upstream is always included so the selection can run).
        """
        chosen: set[str] = set()
        for raw in selectors:
            name = raw.strip("+")
            if name not in self.nodes:
                raise GraphError([_selector_issue(raw, self.nodes)])
            chosen.add(name)
            if raw.endswith("+"):
                chosen |= self.downstream(name)
        for name in list(chosen):
            chosen |= self.upstream(name)
        nodes = {n: node for n, node in self.nodes.items() if n in chosen}
        return Graph(self.root, nodes, _downstream_index(nodes))


def _selector_issue(raw: str, nodes: dict[str, Node]) -> Issue:
    import difflib

    name = raw.strip("+")
    close = difflib.get_close_matches(name, list(nodes), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return Issue("--select", 0, 0, f"no resource named {name!r}{hint}", "unknown-selector")


def _closure(start: str, step: Any) -> set[str]:
    seen: set[str] = set()
    todo = list(step(start))
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(step(name))
    return seen


def _downstream_index(nodes: dict[str, Node]) -> dict[str, tuple[str, ...]]:
    index: dict[str, list[str]] = {}
    for node in nodes.values():
        for up in node.upstream:
            index.setdefault(up, []).append(node.name)
    return {k: tuple(v) for k, v in index.items()}


def resolve_graph(project: Project) -> Graph:
    """Give every resource its content-addressed id, dependencies first.

    Raises:
        GraphError: a dependency cycle (validation normally reports it first).
    """
    order = _topological_order(project)
    nodes: dict[str, Node] = {}
    for name in order:
        nodes[name] = _resolve_node(project, project.resources[name], nodes)
    return Graph(project.root, nodes, _downstream_index(nodes))


def _topological_order(project: Project) -> list[str]:
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    position = {name: i for i, name in enumerate(project.resources)}
    for name, loaded in project.resources.items():
        sorter.add(name, *(r.target for r in references(loaded.resource)))
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        cycle: list[str] = exc.args[1]
        first = project.resources[cycle[0]]
        raise GraphError(
            [
                Issue(
                    first.location.file,
                    first.location.line,
                    first.location.column,
                    "dependency cycle: " + " -> ".join(cycle),
                    "cycle",
                    first.key,
                )
            ]
        ) from None
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=lambda n: position.get(n, -1))
        order.extend(n for n in ready if n in project.resources)
        sorter.done(*ready)
    return order


def _resolve_node(project: Project, loaded: LoadedResource, done: dict[str, Node]) -> Node:
    resource = loaded.resource
    canonical: dict[str, Any] = {
        "scheme": ID_SCHEME,
        "kind": resource.kind,
        "spec": copy.deepcopy(resource.spec.model_dump(mode="json")),
    }
    files: dict[str, str] = {}
    for path_ref in path_refs(resource):
        project_path = project.resolve_path(loaded, path_ref.value)
        digest = project.file_hashes[project_path]
        files[project_path] = digest
        _set(canonical, path_ref.field, f"sha256:{digest}")
    upstream: list[str] = []
    for ref in references(resource):
        _set(canonical, ref.field, f"node:{done[ref.target].id}")
        if ref.target not in upstream:
            upstream.append(ref.target)
    blob = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    node_id = NodeId(hashlib.sha256(blob.encode()).hexdigest()[:ID_LENGTH])
    return Node(node_id, resource, tuple(upstream), canonical, files, loaded.location)


def _set(tree: dict[str, Any], path: tuple[str | int, ...], value: str) -> None:
    target: Any = tree
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
