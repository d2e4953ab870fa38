"""Which optional extras running a graph on this machine needs, checked before anything runs.

`auditc run` needs the `run` extra for any workflow; a notebook method also needs
`notebooks`, and a Hugging Face dataset, model or runner needs `huggingface`. Checking
the whole (selected) graph up front means a missing extra is one clear message with
exit code 2, not a node that fails half-way through a run.
"""

from __future__ import annotations

from schemas import (
    EXTRA_MODULES,
    Dataset,
    Extra,
    InferenceService,
    Method,
    Model,
    missing_extra_error,
    missing_modules,
)

from ._resolve import Graph, Node

__all__ = ["graph_extras", "require_graph_extras"]


def _needs_huggingface(node: Node) -> bool:
    resource = node.resource
    if isinstance(resource, Dataset | Model):
        return resource.spec.huggingface is not None
    return isinstance(resource, InferenceService) and resource.spec.runner.kind == "huggingface"


def _node_extras(node: Node) -> list[Extra]:
    resource = node.resource
    extras: list[Extra] = ["run"] if node.is_workflow else []
    if isinstance(resource, Method) and resource.spec.implementation.notebook is not None:
        extras.append("notebooks")
    if _needs_huggingface(node):
        extras.append("huggingface")
    return extras


def graph_extras(graph: Graph) -> dict[Extra, list[str]]:
    """The extras that running `graph` locally needs, each with the `Kind/name`s needing it."""
    needed: dict[Extra, list[str]] = {}
    for node in graph:
        for extra in _node_extras(node):
            needed.setdefault(extra, []).append(node.key)
    return needed


def require_graph_extras(graph: Graph) -> None:
    """Check that every extra running `graph` needs is installed.

    Raises:
        MissingDependencyError: the first extra (in the order run, notebooks,
            huggingface) with a module missing; the message names a resource needing it.
    """
    needed = graph_extras(graph)
    for extra in [e for e in EXTRA_MODULES if e in needed]:
        keys = needed[extra]
        missing = missing_modules(extra)
        if missing:
            more = f" and {len(keys) - 1} more" if len(keys) > 1 else ""
            raise missing_extra_error(extra, f"running {keys[0]}{more}", missing)
