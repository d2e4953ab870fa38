"""The runner configs of each step, with every path made absolute for this machine.

Runners never see project-relative paths (docs/contracts.md): a spec path is
relative to its YAML file, and the file is relative to the project root, so the
absolute path is `<root>/<dir of the YAML file>/<value>`. Runner modules are
imported here, lazily, so that a run with nothing to do never loads them.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from schemas import Dataset, Evaluation, InferenceService, Method, Module, Store

if TYPE_CHECKING:
    from runners.datasets import IngestConfig
    from runners.evaluation import EvaluationConfig
    from runners.imports import ImportConfig
    from runners.inference import ServerConfig
    from runners.methods import MethodConfig

    from ..._resolve import Graph, Node

__all__ = [
    "absolute_path",
    "evaluation_config",
    "import_config",
    "ingest_config",
    "method_config",
    "module_dirs",
    "server_config",
]

_INPUT_KINDS: dict[str, Literal["Dataset", "Evaluation", "Measurement"]] = {
    "Dataset": "Dataset",
    "Evaluation": "Evaluation",
    "Method": "Measurement",
}
"""What a method receives from an upstream node of each kind."""


def absolute_path(graph: Graph, node: Node, value: str) -> Path:
    """The absolute path of `value` as written in `node`'s spec."""
    base = posixpath.dirname(node.location.file)
    return Path(graph.root).resolve() / posixpath.normpath(posixpath.join(base, value))


def module_dirs(graph: Graph, names: list[str]) -> list[str]:
    """Absolute directories of the named Modules, in order."""
    dirs: list[str] = []
    for name in names:
        node = graph[name]
        module = node.resource
        assert isinstance(module, Module)
        dirs.append(str(absolute_path(graph, node, module.spec.path)))
    return dirs


def ingest_config(graph: Graph, node: Node, store: Store) -> IngestConfig:
    """The config of `python -m runners.datasets` for a Dataset node."""
    from runners.datasets import IngestConfig

    dataset = node.resource
    assert isinstance(dataset, Dataset)
    source = dataset.spec.file
    return IngestConfig(
        dataset=dataset,
        source_path=str(absolute_path(graph, node, source.path)) if source is not None else None,
        output_uri=store.uri_of(node.store_path),
    )


def server_config(graph: Graph, service_name: str, port: int) -> ServerConfig:
    """The config of `python -m runners.inference` for one replica of a service."""
    from .._servers import server_config as build

    def locate(node: Node, value: str) -> str:
        return str(absolute_path(graph, node, value))

    return build(graph, service_name, locate=locate, host="127.0.0.1", port=port)


def evaluation_config(
    graph: Graph, node: Node, store: Store, *, base_url: str, shard: tuple[int, int]
) -> EvaluationConfig:
    """The config of `python -m runners.evaluation` for one shard of an Evaluation node."""
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
        dataset_uri=store.uri_of(graph[evaluation.spec.dataset].store_path),
        output_uri=store.uri_of(node.store_path),
        shard_index=shard[0],
        shard_count=shard[1],
    )


def import_config(graph: Graph, node: Node, store: Store) -> ImportConfig:
    """The config of `python -m runners.imports` for an Evaluation whose spec says `imported`."""
    from runners.imports import ImportConfig

    evaluation = node.resource
    assert isinstance(evaluation, Evaluation) and evaluation.spec.imported is not None
    dataset = evaluation.spec.dataset
    return ImportConfig(
        evaluation=evaluation,
        source_path=str(absolute_path(graph, node, evaluation.spec.imported.path)),
        dataset_uri=store.uri_of(graph[dataset].store_path) if dataset is not None else None,
        output_uri=store.uri_of(node.store_path),
    )


def method_config(graph: Graph, node: Node, store: Store) -> MethodConfig:
    """The config of `python -m runners.methods` for a Method node."""
    from runners.methods import MethodConfig, MethodInputRef

    method = node.resource
    assert isinstance(method, Method)
    inputs = {}
    for keyword, item in method.spec.inputs.items():
        upstream = graph[item.resource]
        inputs[keyword] = MethodInputRef(
            kind=_INPUT_KINDS[upstream.kind], uri=store.uri_of(upstream.store_path)
        )
    notebook = method.spec.implementation.notebook
    return MethodConfig(
        method=method,
        inputs=inputs,
        notebook_path=str(absolute_path(graph, node, notebook)) if notebook else None,
        python_paths=module_dirs(graph, list(method.spec.modules)),
        output_uri=store.uri_of(node.store_path),
    )
