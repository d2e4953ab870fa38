"""The audit compiler: load → validate → resolve → plan, and the backends that run a graph.

Example:
    >>> from compiler import load_project, resolve_graph      # doctest: +SKIP
    >>> graph = resolve_graph(load_project(Path("."), [Path("audits/tutorial")]))
"""

from ._project import (
    LoadedResource,
    PathRef,
    Project,
    Reference,
    SourceLocation,
    path_refs,
    references,
)
from ._resolve import ID_LENGTH, Graph, Node, NodeId, resolve_graph
from ._validate import hash_path, load_project

__all__ = [
    "ID_LENGTH",
    "Graph",
    "LoadedResource",
    "Node",
    "NodeId",
    "PathRef",
    "Project",
    "Reference",
    "SourceLocation",
    "hash_path",
    "load_project",
    "path_refs",
    "references",
    "resolve_graph",
]
