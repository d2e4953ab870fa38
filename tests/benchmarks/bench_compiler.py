"""Benchmark of the compiler: validate, resolve and plan on generated projects.

Generates projects of about 1,000 and 10,000 resources (services × datasets
evaluations, one method per evaluation, plus a notebook safety case per service),
and times `load_project` (load + validate), `resolve_graph` and `plan` (against
the project itself, so every node is compared). Targets on a 2-core machine:
1,000 resources under 2 s and 10,000 under 15 s for validate + resolve + plan.

Run: `.venv/bin/python tests/benchmarks/bench_compiler.py` (not part of pytest).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from compiler import Baseline, load_project, plan, render_plan, resolve_graph  # noqa: E402

TARGETS = {1_000: 2.0, 10_000: 15.0}
SIZES = {1_000: (20, 24), 10_000: (50, 99)}
"""Resources → (services, datasets); resources = 2·S + D + 2·S·D + S + 1."""


def generate(root: Path, services: int, datasets: int) -> int:
    """Write a project: one YAML file per service (its model, evaluations, methods)."""
    audits = root / "audits"
    (audits / "data").mkdir(parents=True)
    (audits / "code").mkdir()
    (audits / "code" / "metrics.py").write_text("def score(**kwargs):\n    return None\n")
    (audits / "case.ipynb").write_text(
        '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n'
    )
    docs = ["kind: Module\nname: metrics\nspec: {path: code}\n"]
    for d in range(datasets):
        (audits / "data" / f"d{d}.jsonl").write_text(f'{{"text": "row {d}", "label": {d % 2}}}\n')
        docs.append(
            f"kind: Dataset\nname: data-{d}\nspec:\n  file: {{path: data/d{d}.jsonl}}\n"
            "  columns: {text: string, label: int8}\n"
        )
    (audits / "datasets.yaml").write_text("---\n".join(docs))
    count = len(docs)
    for s in range(services):
        docs = [
            f"kind: Model\nname: model-{s}\nspec:\n  python: {{callable: 'pkg.m{s}:predict', "
            "module: metrics}\n",
            f"kind: InferenceService\nname: service-{s}\nspec:\n  model: model-{s}\n"
            "  runner: {kind: python}\n  interface:\n    request: {text: $.text}\n"
            "    output: {score: float64}\n    batching: true\n",
        ]
        for d in range(datasets):
            docs.append(
                f"kind: Evaluation\nname: eval-{s}-{d}\nspec:\n  service: service-{s}\n"
                f"  dataset: data-{d}\n  batch_size: 8\n  concurrency: 16\n"
            )
            docs.append(
                f"kind: Method\nname: metric-{s}-{d}\nspec:\n"
                "  implementation: {python: 'metrics:score'}\n"
                f"  inputs:\n    predictions: {{resource: eval-{s}-{d}, columns: [score]}}\n"
                f"    rows: {{resource: data-{d}, columns: [label]}}\n"
                "  modules: [metrics]\n  parameters: {threshold: 0.5}\n"
                "  output: {kind: Measurement, columns: {score: float64}}\n"
            )
        docs.append(
            f"kind: Method\nname: case-{s}\nspec:\n  implementation: {{notebook: case.ipynb}}\n"
            f"  inputs: {{m0: metric-{s}-0}}\n  output: {{kind: SafetyCase}}\n"
            "  scores: [{name: worst, primary: true}]\n"
        )
        (audits / f"service-{s}.yaml").write_text("---\n".join(docs))
        count += len(docs)
    return count


def bench(size: int) -> tuple[int, float, float, float, float]:
    services, datasets = SIZES[size]
    with tempfile.TemporaryDirectory(prefix="auditc-bench-") as temp:
        root = Path(temp)
        count = generate(root, services, datasets)
        start = time.perf_counter()
        project = load_project(root, [root / "audits"])
        validated = time.perf_counter()
        graph = resolve_graph(project)
        resolved = time.perf_counter()
        result = plan(graph, Baseline.from_graph(graph, "itself"))
        render_plan(result, "text")
        planned = time.perf_counter()
    assert len(graph) == count and not result.has_changes
    return count, validated - start, resolved - validated, planned - resolved, planned - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=int, nargs="*", default=sorted(SIZES), choices=sorted(SIZES)
    )
    args = parser.parse_args()
    header = f"{'resources':>10} {'validate s':>11} {'resolve s':>10} {'plan s':>8} {'total s':>8} {'target s':>9}  ok"
    print(header)
    print("-" * len(header))
    failed = False
    for size in args.sizes:
        count, validate, resolve, plan_s, total = bench(size)
        ok = total < TARGETS[size]
        failed |= not ok
        print(
            f"{count:>10,} {validate:>11.2f} {resolve:>10.2f} {plan_s:>8.2f} {total:>8.2f} "
            f"{TARGETS[size]:>9.1f}  {'yes' if ok else 'NO'}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
