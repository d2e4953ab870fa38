"""Generated audit projects for the benchmarks: one Evaluation against the benchmark server."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

OPENAI_REQUEST = {
    "model": "bench",
    "messages": [{"role": "user", "content": "$.text"}],
    "max_tokens": 16,
}
"""The request template: the same body the bare client and wrk send."""


def evaluation_project(
    root: Path,
    data: Path,
    url: str,
    *,
    concurrency: int,
    api: str = "openai",
    batch_size: int = 1,
) -> Path:
    """Write `root/audits/bench.yaml` (Dataset, external InferenceService, Evaluation).

    The prompts Parquet file `data` is linked (or copied) into `root/audits/data/`, so the
    Dataset node ingests it as part of the run.
    """
    audits = root / "audits"
    (audits / "data").mkdir(parents=True, exist_ok=True)
    target = audits / "data" / "prompts.parquet"
    if not target.exists():
        try:
            target.hardlink_to(data)
        except OSError:
            shutil.copyfile(data, target)
    if api == "openai":
        interface = {
            "endpoint": "/v1/chat/completions",
            "request": OPENAI_REQUEST,
            "response": {"completion": "$.choices[0].message.content"},
            "output": {"completion": "string"},
        }
    else:
        interface = {
            "endpoint": "/predict",
            "request": {"text": "$.text"},
            "response": {"score": "$.score"},
            "output": {"score": "float64"},
            "batching": batch_size > 1,
        }
    documents = [
        {
            "kind": "Dataset",
            "name": "prompts",
            "spec": {"file": {"path": "data/prompts.parquet"}, "columns": {"text": "string"}},
        },
        {
            "kind": "InferenceService",
            "name": "bench-server",
            "spec": {
                "runner": {"kind": "external", "url": url, "health_path": "/health"},
                "interface": interface,
            },
        },
        {
            "kind": "Evaluation",
            "name": "bench",
            "spec": {
                "service": "bench-server",
                "dataset": "prompts",
                "concurrency": concurrency,
                "batch_size": batch_size,
            },
        },
    ]
    (audits / "bench.yaml").write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return root
