"""Render a resolved `Graph` as text, JSON or Graphviz DOT (for `auditc graph`).

DOT follows the data flow of the Dyff figure: Dataset and Model feed an
InferenceService and an Evaluation, Evaluations feed Methods, and each Method
produces a Measurement or a SafetyCase node that later Methods read. Every kind
has its own shape and colour. Edges point downstream (from input to consumer).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from schemas import Method, UsageError

from ._resolve import Graph, Node

__all__ = ["GRAPH_SCHEMA_VERSION", "GraphFormat", "render_graph"]

GRAPH_SCHEMA_VERSION = 1
GraphFormat = Literal["text", "json", "dot"]

_STYLE: dict[str, tuple[str, str]] = {
    # kind: (shape, fill colour)
    "Dataset": ("cylinder", "#cfe2f3"),
    "Model": ("box3d", "#d9d2e9"),
    "Module": ("folder", "#eeeeee"),
    "InferenceService": ("component", "#f4cccc"),
    "InferenceSession": ("box", "#fce5cd"),
    "Evaluation": ("box", "#fff2cc"),
    "Method": ("hexagon", "#d9ead3"),
    "Measurement": ("note", "#b6d7a8"),
    "SafetyCase": ("tab", "#93c47d"),
}


def render_graph(graph: Graph, format: GraphFormat = "text") -> str:
    """The graph as `text` (one line per node), `json` (versioned) or `dot` (Graphviz).

    Raises:
        UsageError: an unknown format.
    """
    if format == "text":
        return _text(graph)
    if format == "json":
        return json.dumps(_json(graph), indent=2) + "\n"
    if format == "dot":
        return _dot(graph)
    raise UsageError(f"unknown graph format {format!r}; expected text, json or dot")


def _text(graph: Graph) -> str:
    lines = []
    for node in graph:
        after = ", ".join(graph[name].key for name in node.upstream)
        suffix = f"  <- {after}" if after else ""
        lines.append(f"{node.id}  {node.key}{suffix}")
    lines.append(f"{len(graph)} node{'s' if len(graph) != 1 else ''}")
    return "\n".join(lines) + "\n"


def _json(graph: Graph) -> dict[str, Any]:
    nodes = [
        {
            "key": node.key,
            "kind": node.kind,
            "name": node.name,
            "id": node.id,
            "output_kind": node.output_kind,
            "workflow": node.is_workflow,
            "upstream": [graph[name].key for name in node.upstream],
            "files": node.files,
            "location": str(node.location),
        }
        for node in graph
    ]
    edges = [{"from": graph[name].key, "to": node.key} for node in graph for name in node.upstream]
    return {"schema_version": GRAPH_SCHEMA_VERSION, "nodes": nodes, "edges": edges}


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _node_line(node_id: str, kind: str, label: str) -> str:
    shape, colour = _STYLE[kind]
    style = "filled,rounded" if kind == "Evaluation" else "filled"
    return (
        f"  {_quote(node_id)} [label={_quote(label)}, shape={shape}, "
        f'style="{style}", fillcolor="{colour}"];'
    )


def _output_id(node: Node) -> str:
    return f"{node.key}#output"


def _dot(graph: Graph) -> str:
    lines = [
        "digraph auditc {",
        "  rankdir=LR;",
        '  node [fontname="Helvetica", fontsize=11];',
        '  edge [color="#555555"];',
    ]
    for node in graph:
        lines.append(_node_line(node.key, node.kind, f"{node.kind}\n{node.name}\n{node.id[:12]}"))
        if isinstance(node.resource, Method):
            output = node.output_kind
            lines.append(_node_line(_output_id(node), output, f"{output}\n{node.name}"))
            lines.append(f"  {_quote(node.key)} -> {_quote(_output_id(node))};")
    for node in graph:
        for name in node.upstream:
            source = graph[name]
            # A method's consumers read its output (Measurement), not the method itself.
            start = _output_id(source) if isinstance(source.resource, Method) else source.key
            lines.append(f"  {_quote(start)} -> {_quote(node.key)};")
    lines.append("}")
    return "\n".join(lines) + "\n"
