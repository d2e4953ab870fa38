"""The evaluation client's config for a generated project, as `auditc run` would write it.

The config comes from the local backend's own `evaluation_config` on the resolved graph,
so the client alone runs exactly as it does under `auditc run`; only the output
directory is moved, so the measured run starts from nothing.
"""

from __future__ import annotations

import json
from pathlib import Path


def build(project: Path, output: Path, base_url: str) -> Path:
    """Write `<output>.json`: the config of the project's `bench` Evaluation.

    The project's Dataset node must already be in `<project>/.auditc` (run `auditc run`
    once first): the client reads its input from there.

    Raises:
        RuntimeError: the dataset node is not in the store yet.
    """
    from compiler import load_project, resolve_graph
    from compiler.backends.local._configs import evaluation_config
    from schemas import Store

    graph = resolve_graph(load_project(project, [project / "audits"]))
    store = Store.open(project / ".auditc")
    node = graph["bench"]
    dataset = graph[node.resource.spec.dataset]  # type: ignore[union-attr]
    if not store.is_complete(dataset.store_path):
        raise RuntimeError(f"{dataset.store_path} is not in {store.uri} (run `auditc run` first)")
    config = evaluation_config(graph, node, store, base_url=base_url, shard=(0, 1))
    config = config.model_copy(update={"output_uri": str(output)})
    path = output.with_suffix(".json")
    path.write_text(json.dumps(config.model_dump(mode="json")))
    return path


def output_of(config: Path) -> Path:
    """The output directory a config written by `build` names."""
    return Path(json.loads(config.read_text())["output_uri"])
