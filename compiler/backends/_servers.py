"""What both backends hand an inference server: one `runners.inference.ServerConfig` builder.

The backends differ only in where a spec path lives (an absolute path on this machine,
a path inside a pod), so each passes its own `locate`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from schemas import InferenceService, Model, Module

if TYPE_CHECKING:
    from runners.inference import ServerConfig

    from .._resolve import Graph, Node

__all__ = ["server_config"]

Locate = Callable[["Node", str], str]
"""(node, path as written in its spec) → where the runner finds that path."""


def server_config(
    graph: Graph, service_name: str, *, locate: Locate, host: str, port: int
) -> ServerConfig:
    """The config of `python -m runners.inference` for one replica of a service."""
    from runners.inference import ServerConfig

    service = graph[service_name].resource
    assert isinstance(service, InferenceService)
    model: Model | None = None
    model_dir: str | None = None
    python_paths: list[str] = []
    if service.spec.model is not None:
        model_node = graph[service.spec.model]
        assert isinstance(model_node.resource, Model)
        model = model_node.resource
        if model.spec.path is not None:
            model_dir = locate(model_node, model.spec.path)
        if model.spec.python is not None and model.spec.python.module is not None:
            module_node = graph[model.spec.python.module]
            assert isinstance(module_node.resource, Module)
            python_paths = [locate(module_node, module_node.resource.spec.path)]
    return ServerConfig(
        service=service,
        model=model,
        model_dir=model_dir,
        python_paths=python_paths,
        host=host,
        port=port,
    )
