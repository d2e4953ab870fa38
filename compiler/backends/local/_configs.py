"""The runner configs of each step, with every path made absolute for this machine.

Runners never see project-relative paths (docs/contracts.md): a spec path is
relative to its YAML file, and the file is relative to the project root, so the
absolute path is `<root>/<dir of the YAML file>/<value>`. The configs themselves are
built as the Kubernetes backend builds them (`compiler/backends/_runner_configs.py`);
runner modules are imported there, lazily, so that a run with nothing to do never
loads them.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import TYPE_CHECKING

from schemas import Store

from .. import _runner_configs as build

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
    "server_config",
]


def absolute_path(graph: Graph, node: Node, value: str) -> Path:
    """The absolute path of `value` as written in `node`'s spec."""
    base = posixpath.dirname(node.location.file)
    return Path(graph.root).resolve() / posixpath.normpath(posixpath.join(base, value))


def _places(graph: Graph, store: Store) -> build.RunnerPlaces:
    return build.RunnerPlaces(
        locate=lambda node, value: str(absolute_path(graph, node, value)),
        node_uri=lambda node: store.uri_of(node.store_path),
    )


def ingest_config(graph: Graph, node: Node, store: Store) -> IngestConfig:
    """The config of `python -m runners.datasets` for a Dataset node."""
    return build.ingest_config(graph, node, _places(graph, store))


def import_config(graph: Graph, node: Node, store: Store) -> ImportConfig:
    """The config of `python -m runners.imports` for an Evaluation whose spec says `imported`."""
    return build.import_config(graph, node, _places(graph, store))


def server_config(graph: Graph, service_name: str, port: int) -> ServerConfig:
    """The config of `python -m runners.inference` for one replica of a service."""

    def locate(node: Node, value: str) -> str:
        return str(absolute_path(graph, node, value))

    return build.server_config(graph, service_name, locate=locate, host="127.0.0.1", port=port)


def evaluation_config(
    graph: Graph, node: Node, store: Store, *, base_url: str, shard: tuple[int, int]
) -> EvaluationConfig:
    """The config of `python -m runners.evaluation` for one shard of an Evaluation node."""
    return build.evaluation_config(
        graph, node, _places(graph, store), base_url=base_url, shard=shard
    )


def method_config(graph: Graph, node: Node, store: Store) -> MethodConfig:
    """The config of `python -m runners.methods` for a Method node."""
    return build.method_config(graph, node, _places(graph, store))
