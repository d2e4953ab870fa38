"""What both backends hand each runner step: one builder per runner config.

The backends differ only in where things are, so each passes a `RunnerPlaces`: where a
spec path lives (an absolute path on this machine, a path inside a pod) and the URI of
a node's directory in the store (as `Store.uri_of` gives it here, or as pods see the
stack's store). What depends on where the step runs (an evaluation's base URL, its
shard, a readiness URL in a pod) comes as arguments of the builder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from schemas import Dataset, Evaluation, InferenceService, Method, Model, Module

if TYPE_CHECKING:
    from runners.datasets import IngestConfig
    from runners.evaluation import EvaluationConfig
    from runners.imports import ImportConfig
    from runners.inference import ServerConfig
    from runners.methods import MethodConfig

    from .._resolve import Graph, Node

__all__ = [
    "INPUT_KINDS",
    "Locate",
    "RunnerPlaces",
    "evaluation_config",
    "import_config",
    "ingest_config",
    "method_config",
    "server_config",
]

Locate = Callable[["Node", str], str]
"""(node, path as written in its spec) → where the runner finds that path."""

INPUT_KINDS: dict[str, Literal["Dataset", "Evaluation", "Measurement"]] = {
    "Dataset": "Dataset",
    "Evaluation": "Evaluation",
    "Method": "Measurement",
}
"""What a method receives from an upstream node of each kind."""


@dataclass(frozen=True)
class RunnerPlaces:
    """Where a backend's runners find spec paths and node directories."""

    locate: Locate
    node_uri: Callable[[Node], str]
    """The URI of a node's directory in the store, as the runner opens it."""

    def module_dirs(self, graph: Graph, names: list[str]) -> list[str]:
        """The directories of the named Modules, in order."""
        dirs: list[str] = []
        for name in names:
            node = graph[name]
            assert isinstance(node.resource, Module)
            dirs.append(self.locate(node, node.resource.spec.path))
        return dirs


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


def ingest_config(graph: Graph, node: Node, places: RunnerPlaces) -> IngestConfig:
    """The config of `python -m runners.datasets` for a Dataset node."""
    from runners.datasets import IngestConfig

    dataset = node.resource
    assert isinstance(dataset, Dataset)
    source = dataset.spec.file
    return IngestConfig(
        dataset=dataset,
        source_path=places.locate(node, source.path) if source is not None else None,
        output_uri=places.node_uri(node),
    )


def import_config(graph: Graph, node: Node, places: RunnerPlaces) -> ImportConfig:
    """The config of `python -m runners.imports` for an Evaluation whose spec says `imported`."""
    from runners.imports import ImportConfig

    evaluation = node.resource
    assert isinstance(evaluation, Evaluation) and evaluation.spec.imported is not None
    dataset = evaluation.spec.dataset
    return ImportConfig(
        evaluation=evaluation,
        source_path=places.locate(node, evaluation.spec.imported.path),
        dataset_uri=places.node_uri(graph[dataset]) if dataset is not None else None,
        output_uri=places.node_uri(node),
    )


def evaluation_config(
    graph: Graph,
    node: Node,
    places: RunnerPlaces,
    *,
    base_url: str,
    shard: tuple[int, int],
    ready_url: str | None = None,
    ready_any_status: bool = False,
    progress: bool | None = None,
    concurrency_cap: int | None = None,
) -> EvaluationConfig:
    """The config of `python -m runners.evaluation` for one shard of an Evaluation node.

    The keyword arguments are the `EvaluationConfig` fields that depend on where the
    client runs (a pod sets `ready_url` and `ready_any_status`, `progress` and a shared
    service's cap).
    """
    from runners.evaluation import EvaluationConfig

    evaluation = node.resource
    assert isinstance(evaluation, Evaluation)
    assert evaluation.spec.service is not None and evaluation.spec.dataset is not None
    service = graph[evaluation.spec.service].resource
    assert isinstance(service, InferenceService)
    runner = service.spec.runner
    return EvaluationConfig(
        evaluation=evaluation,
        service=service,
        base_url=base_url,
        api_key_env=runner.api_key_env if runner.kind == "external" else None,
        dataset_uri=places.node_uri(graph[evaluation.spec.dataset]),
        output_uri=places.node_uri(node),
        shard_index=shard[0],
        shard_count=shard[1],
        ready_url=ready_url,
        ready_any_status=ready_any_status,
        progress=progress,
        concurrency_cap=concurrency_cap,
    )


def method_config(graph: Graph, node: Node, places: RunnerPlaces) -> MethodConfig:
    """The config of `python -m runners.methods` for a Method node."""
    from runners.methods import MethodConfig, MethodInputRef

    method = node.resource
    assert isinstance(method, Method)
    inputs = {
        keyword: MethodInputRef(
            kind=INPUT_KINDS[graph[item.resource].kind], uri=places.node_uri(graph[item.resource])
        )
        for keyword, item in method.spec.inputs.items()
    }
    notebook = method.spec.implementation.notebook
    return MethodConfig(
        method=method,
        inputs=inputs,
        notebook_path=places.locate(node, notebook) if notebook else None,
        python_paths=places.module_dirs(graph, list(method.spec.modules)),
        output_uri=places.node_uri(node),
    )
