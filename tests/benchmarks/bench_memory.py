"""Benchmark 2 — memory: peak RSS of the evaluation client at 100,000 and 1,000,000 rows.

    .venv/bin/python tests/benchmarks/bench_memory.py [--rows 100000,1000000] [--repeats 1]

A Dataset node of N prompts is written with `schemas.Store` (parts of 100,000 rows),
and `python -m runners.evaluation CONFIG.json` sends it to the granian benchmark server
(`/predict`, answering at once, concurrency 64), pinned to its own core. Its peak RSS
comes from GNU time (`%M`), so it is the client process's own high-water mark. Target:
under 300 MB, and flat in dataset size (the client streams record batches and writes
bounded parts; nothing it holds grows with N).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import _common as common

PART_ROWS = 100_000


def write_dataset(store_dir: Path, n: int) -> str:
    """A stored Dataset node of `n` prompts (`_index_`, `text`); returns its node URI."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from schemas import Store, dataset_schema

    store = Store.open(store_dir)
    node = f"dataset/prompts/{n:012d}"
    store.makedirs(store.path(node))
    schema = dataset_schema({"text": "string"})
    texts = common.prompts(n)
    for part, start in enumerate(range(0, n, PART_ROWS)):
        chunk = texts[start : start + PART_ROWS]
        table = pa.table(
            {"_index_": pa.array(range(start, start + len(chunk)), pa.int64()), "text": chunk},
            schema=schema,
        )
        pq.write_table(table, store.path(node, f"part-{part:05d}.parquet"))
    return store.uri_of(node)


def client_config(work: Path, dataset_uri: str, url: str, concurrency: int, batch: int) -> Path:
    """The evaluation client's config: `/predict` of the benchmark server, every row once."""
    from runners.evaluation import EvaluationConfig
    from schemas import Evaluation, InferenceService

    service = InferenceService.model_validate(
        {
            "kind": "InferenceService",
            "name": "bench-server",
            "spec": {
                "runner": {"kind": "external", "url": url},
                "interface": {
                    "endpoint": "/predict",
                    "request": {"text": "$.text"},
                    "response": {"score": "$.score"},
                    "output": {"score": "float64"},
                    "batching": batch > 1,
                },
            },
        }
    )
    evaluation = Evaluation.model_validate(
        {
            "kind": "Evaluation",
            "name": "bench",
            "spec": {
                "service": "bench-server",
                "dataset": "prompts",
                "concurrency": concurrency,
                "batch_size": batch,
            },
        }
    )
    output = work / "output"
    config = EvaluationConfig(
        evaluation=evaluation,
        service=service,
        base_url=url,
        dataset_uri=dataset_uri,
        output_uri=str(output),
        progress=False,
    )
    path = work / "client.json"
    path.write_text(json.dumps(config.model_dump(mode="json")))
    return path


def run_once(server: common.BenchServer, config: Path, n: int) -> common.Measured:
    """One client run into an empty output directory; checks every row came back."""
    output = Path(json.loads(config.read_text())["output_uri"])
    shutil.rmtree(output, ignore_errors=True)
    output.mkdir(parents=True)
    server.reset()
    measured = common.run_measured(
        common.pinned([common.PYTHON, "-m", "runners.evaluation", str(config)]),
        env={"PYTHONPATH": str(common.REPO)},
        timeout_s=1800,
    )
    import pyarrow.dataset as pads

    written = pads.dataset(str(output), format="parquet").count_rows()
    if written != n:
        raise RuntimeError(f"the client wrote {written} rows, expected {n}")
    return measured


def main() -> None:
    """Parse options, measure, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rows", type=lambda s: [int(x) for x in s.split(",")], default=[100_000, 1_000_000]
    )
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--batch", type=int, default=1, help="rows per request")
    args = parser.parse_args()
    common.conditions(
        "memory",
        {
            "rows": ", ".join(f"{n:,}" for n in args.rows),
            "concurrency": args.concurrency,
            "batch": args.batch,
            "repeats": args.repeats,
        },
    )
    results = []
    with common.temp_dir("auditc-bench-memory-") as work, common.BenchServer() as server:
        for n in args.rows:
            run_dir = work / f"n{n}"
            run_dir.mkdir()
            uri = write_dataset(run_dir / "store", n)
            config = client_config(run_dir, uri, server.url, args.concurrency, args.batch)
            runs = []
            for rep in range(args.repeats):
                m = run_once(server, config, n)
                print(
                    f"  {n:>9,} rows, repeat {rep + 1}: peak RSS {m.max_rss_mb:.0f} MB, "
                    f"{n / m.wall_s:,.0f} rows/s, CPU {1000 * m.cpu_s / n:.3f} ms/row",
                    flush=True,
                )
                runs.append(m)
            results.append(
                [
                    n,
                    common.median([m.max_rss_mb for m in runs]),
                    common.median([m.wall_s for m in runs]),
                    common.median([n / m.wall_s for m in runs]),
                    common.median([1000 * m.cpu_s / n for m in runs]),
                ]
            )
    print()
    print(
        common.table(
            ["rows", "peak RSS MB", "wall s", "rows/s end to end", "client CPU ms/row"], results
        )
    )
    if len(results) > 1:
        growth = results[-1][1] / results[0][1]
        print(
            f"\nPeak RSS at {results[-1][0]:,} rows is {growth:.2f}x that at {results[0][0]:,} "
            "rows. Target: under 300 MB and flat in dataset size."
        )


if __name__ == "__main__":
    main()
