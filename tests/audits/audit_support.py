"""Runs an example audit's steps directly through the runners, the way the local backend does.

For the tutorial the real filter (alt-profanity-check) scores the real data; only the
HTTP hop of the evaluation is skipped, so the methods and the notebook see
evaluation-shaped data. The GPU example gets answers written by its test.
"""

from __future__ import annotations

from collections.abc import Callable
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

AUDITS = Path(__file__).resolve().parents[2] / "audits"
TUTORIAL = AUDITS / "tutorial"
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


Evaluate = Callable[[Evaluation, pa.Table], dict[str, pa.Array]]
"""Output columns (other than the reserved ones) for every row of an evaluation's dataset."""


@dataclass
class AuditRun:
    root: Path
    store: Path
    resources: dict[str, Any]
    results: dict[str, MethodResult]

    def uri(self, name: str) -> str:
        kind = self.resources[name].kind.lower()
        return str(self.store / kind / name / NODE_ID)

    def table(self, name: str) -> pa.Table:
        return pq.read_table(self.uri(name))


def run_tutorial(store: Path) -> AuditRun:
    """Ingest, evaluate with the real filter, and run every method of the tutorial."""
    from profanity_check import predict_prob

    def evaluate(evaluation: Evaluation, rows: pa.Table) -> dict[str, pa.Array]:
        return {"score": pa.array(predict_prob(rows["text"].to_pylist()), pa.float64())}

    return run_audit(TUTORIAL, store, evaluate)


def run_audit(root: Path, store: Path, evaluate: Evaluate) -> AuditRun:
    """Ingest every Dataset, evaluate with `evaluate`, and run every Method of an audit."""
    resources = load_resources(root)
    run = AuditRun(root, store, resources, {})
    for resource in resources.values():
        if isinstance(resource, Dataset):
            assert resource.spec.file is not None
            source = root / resource.spec.file.path
            config = IngestConfig(
                dataset=resource, source_path=str(source), output_uri=run.uri(resource.name)
            )
            ingest_dataset(config)
    for resource in resources.values():
        if isinstance(resource, Evaluation):
            _write_evaluation(run, resource, evaluate)
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


def _method_config(run: AuditRun, method: Method) -> MethodConfig:
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
        notebook_path=str(run.root / notebook) if notebook else None,
        python_paths=[str(run.root / m.spec.path) for m in modules if isinstance(m, Module)],
        output_uri=run.uri(method.name),
    )


def _write_evaluation(run: AuditRun, evaluation: Evaluation, evaluate: Evaluate) -> None:
    rows = run.table(evaluation.spec.dataset).sort_by("_index_")
    service = run.resources[evaluation.spec.service]
    columns = {
        "_index_": rows["_index_"],
        "_replication_": pa.array([0] * rows.num_rows, pa.int32()),
        **evaluate(evaluation, rows),
        "_error_": pa.nulls(rows.num_rows, pa.string()),
        "_error_type_": pa.nulls(rows.num_rows, pa.string()),
    }
    schema = evaluation_output_schema(dict(service.spec.interface.output))
    node = Path(run.uri(evaluation.name))
    node.mkdir(parents=True)
    pq.write_table(pa.table(columns, schema=schema), node / "part-0-00000.parquet")
