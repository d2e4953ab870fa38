"""One builder per runner config for both backends: every path and store URI a runner gets
comes from the backend's places, never from the spec as written (docs/contracts.md, "Paths")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from compiler import load_project, resolve_graph
from compiler.backends import _runner_configs as build
from schemas import Dataset, Evaluation, Method

REPO = Path(__file__).parents[3]
TUTORIAL = REPO / "audits" / "tutorial"

PLACES = build.RunnerPlaces(
    locate=lambda node, value: f"/place/{node.name}/{value}",
    node_uri=lambda node: f"store://{node.kind}/{node.name}/{node.id}",
)


def _leaves(value: Any, key: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(v, k)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v, key)]
    return [(key, value)]


def test_every_path_and_uri_comes_from_the_backends_places() -> None:
    graph = resolve_graph(load_project(TUTORIAL, [TUTORIAL]))
    built: dict[str, str] = {}
    for node in graph:
        resource = node.resource
        if isinstance(resource, Dataset):
            config: Any = build.ingest_config(graph, node, PLACES)
        elif isinstance(resource, Evaluation):
            config = build.evaluation_config(
                graph, node, PLACES, base_url="http://127.0.0.1:1", shard=(0, 1)
            )
        elif isinstance(resource, Method):
            config = build.method_config(graph, node, PLACES)
        else:
            continue
        built[node.key] = type(config).__name__
        dumped = json.loads(config.model_dump_json())
        runner_fields = {
            k: v
            for k, v in dumped.items()
            if k not in ("dataset", "evaluation", "method", "service")
        }
        for key, value in _leaves(runner_fields):
            if key.endswith(("_path", "_paths")) and value is not None:
                assert value.startswith("/place/"), (node.key, key, value)
            if key.endswith(("_uri", "uri")) and value is not None:
                assert value.startswith("store://"), (node.key, key, value)
    assert sorted(set(built.values())) == ["EvaluationConfig", "IngestConfig", "MethodConfig"]
    method = next(n for n in graph if isinstance(n.resource, Method) and n.resource.spec.modules)
    config = build.method_config(graph, method, PLACES)
    assert config.python_paths and all(p.startswith("/place/") for p in config.python_paths)
    assert all(ref.uri.startswith("store://") for ref in config.inputs.values())
