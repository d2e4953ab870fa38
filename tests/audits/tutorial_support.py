"""Runs the tutorial's steps directly through the runners, the way the local backend does.

The real filter (alt-profanity-check) scores the real tutorial data; only the HTTP hop
of the evaluation is skipped, so the methods and the notebook see evaluation-shaped data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from pydantic import TypeAdapter

from runners.datasets import IngestConfig, ingest_dataset
from runners.methods import MethodConfig, MethodInputRef, MethodResult, run_method
from schemas import AnyResource, Dataset, Evaluation, Method, Module, evaluation_output_schema

TUTORIAL = Path(__file__).resolve().parents[2] / "audits" / "tutorial"
NODE_ID = "0123abcd"


def load_resources(root: Path = TUTORIAL) -> dict[str, Any]:
    """Every resource of the tutorial's YAML files, by name."""
    adapter: TypeAdapter[Any] = TypeAdapter(AnyResource)
    resources = {}
    for path in sorted(root.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            resource = adapter.validate_python(document)
            resources[resource.name] = resource
    return resources


@dataclass
class TutorialRun:
    store: Path
    resources: dict[str, Any]
    results: dict[str, MethodResult]

    def uri(self, name: str) -> str:
        kind = self.resources[name].kind.lower()
        return str(self.store / kind / name / NODE_ID)

    def table(self, name: str) -> pa.Table:
        return pq.read_table(self.uri(name))


def run_tutorial(store: Path) -> TutorialRun:
    """Ingest, evaluate, and run every method of the tutorial into `store`."""
    from profanity_check import predict_prob

    resources = load_resources()
    run = TutorialRun(store, resources, {})
    for resource in resources.values():
        if isinstance(resource, Dataset):
            assert resource.spec.file is not None
            source = TUTORIAL / resource.spec.file.path
            ingest_dataset(
                IngestConfig(
                    dataset=resource, source_path=str(source), output_uri=run.uri(resource.name)
                )
            )
    for resource in resources.values():
        if isinstance(resource, Evaluation):
            rows = run.table(resource.spec.dataset)
            scores = predict_prob(rows["text"].to_pylist())
            output = pa.table(
                {
                    "_index_": rows["_index_"],
                    "_replication_": pa.array([0] * rows.num_rows, pa.int32()),
                    "score": pa.array(scores, pa.float64()),
                    "_error_": pa.nulls(rows.num_rows, pa.string()),
                    "_error_type_": pa.nulls(rows.num_rows, pa.string()),
                },
                schema=evaluation_output_schema({"score": "float64"}),
            )
            Path(run.uri(resource.name)).mkdir(parents=True)
            pq.write_table(output, Path(run.uri(resource.name)) / "part-0-00000.parquet")
    methods = [r for r in resources.values() if isinstance(r, Method)]
    done: set[str] = set()
    while len(done) < len(methods):  # dependency order: a method after the methods it reads
        for method in methods:
            needs = {
                i.resource
                for i in method.spec.inputs.values()
                if isinstance(resources[i.resource], Method)
            }
            if method.name not in done and needs <= done:
                run.results[method.name] = run_method(_method_config(run, method))
                done.add(method.name)
    return run


def _method_config(run: TutorialRun, method: Method) -> MethodConfig:
    inputs = {}
    for keyword, item in method.spec.inputs.items():
        target = run.resources[item.resource]
        kind = "Measurement" if isinstance(target, Method) else target.kind
        inputs[keyword] = MethodInputRef(kind=kind, uri=run.uri(item.resource))
    modules = [run.resources[m] for m in method.spec.modules]
    notebook = method.spec.implementation.notebook
    return MethodConfig(
        method=method,
        inputs=inputs,
        notebook_path=str(TUTORIAL / notebook) if notebook else None,
        python_paths=[str(TUTORIAL / m.spec.path) for m in modules if isinstance(m, Module)],
        output_uri=run.uri(method.name),
    )
