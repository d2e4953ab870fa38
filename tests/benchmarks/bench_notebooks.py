"""Benchmark 5 — notebook overhead: time per safety case, and safety cases in parallel.

    .venv/bin/python tests/benchmarks/bench_notebooks.py [--cases 6] [--repeats 3]

A generated project has a 20-row Dataset and CASES trivial notebook safety cases (read
the input, export one score, show one Markdown line). It measures:

1. `auditc run --jobs 1` against `--jobs 2` from an empty store: with two jobs the cases
   run two at a time, so the wall time should fall towards half (on 2 cores).
2. One safety case from start to HTML, split into kernel start, execution and rendering,
   with the method runner's own libraries and options: papermill (its nbclient hooks
   mark when the kernel is ready and when the last cell finished) and the runner's
   `render_html`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import _common as common
import yaml

NOTEBOOK = {
    "cells": [
        {
            "id": "parameters",
            "cell_type": "code",
            "metadata": {"tags": ["parameters"]},
            "source": ["case = 0"],
            "outputs": [],
            "execution_count": None,
        },
        {
            "id": "read",
            "cell_type": "code",
            "metadata": {},
            "source": [
                "from runners import analysis\n",
                "rows = analysis.input('data')\n",
                "value = sum(rows.column('label').to_pylist()) / rows.num_rows",
            ],
            "outputs": [],
            "execution_count": None,
        },
        {
            "id": "score",
            "cell_type": "code",
            "metadata": {},
            "source": [
                "analysis.score('value', value, text=f'{value:.0%} of rows are labelled 1')"
            ],
            "outputs": [],
            "execution_count": None,
        },
        {
            "id": "text",
            "cell_type": "markdown",
            "metadata": {},
            "source": ["A trivial safety case."],
        },
    ],
    "metadata": {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}


def make_project(root: Path, cases: int) -> Path:
    """A project with one Dataset and `cases` notebook safety cases reading it."""
    audits = root / "audits"
    (audits / "data").mkdir(parents=True)
    (audits / "notebooks").mkdir()
    (audits / "notebooks" / "case.ipynb").write_text(json.dumps(NOTEBOOK))
    with (audits / "data" / "rows.jsonl").open("w") as out:
        for i in range(20):
            out.write(json.dumps({"text": f"row {i}", "label": i % 3 == 0}) + "\n")
    documents: list[dict[str, object]] = [
        {
            "kind": "Dataset",
            "name": "rows",
            "spec": {
                "file": {"path": "data/rows.jsonl"},
                "columns": {"text": "string", "label": "bool"},
            },
        }
    ]
    for i in range(cases):
        documents.append(
            {
                "kind": "Method",
                "name": f"case-{i + 1}",
                "spec": {
                    "implementation": {"notebook": "notebooks/case.ipynb"},
                    "inputs": {"data": "rows"},
                    "parameters": {"case": i + 1},
                    "output": {"kind": "SafetyCase"},
                    "scores": [{"name": "value", "primary": True, "minimum": 0, "maximum": 1}],
                },
            }
        )
    (audits / "cases.yaml").write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return root


def time_run(project: Path, jobs: int) -> tuple[float, list[float]]:
    """`auditc run --jobs N` from an empty store; the wall time and each case's duration."""
    shutil.rmtree(project / ".auditc", ignore_errors=True)
    cmd = [common.AUDITC, "-C", str(project), "--log-level", "warning", "run", "--jobs", str(jobs)]
    measured = common.run_measured(cmd, timeout_s=1200)
    durations = []
    for path in (project / ".auditc" / "method").rglob("_manifest.json"):
        durations.append(json.loads(path.read_text())["duration_s"])
    return measured.wall_s, durations


def split_one(project: Path) -> dict[str, float]:
    """One safety case run in-process by the method runner, and its phases timed apart.

    `run_method` (the runner itself, from the config `auditc run` gives it) is timed
    whole; a kernel is started and stopped alone with jupyter_client, as papermill does;
    and the executed notebook is rendered again with the runner's `render_html`.
    Execution is what remains. The project's dataset node must be in its store.
    """
    from jupyter_client.manager import start_new_kernel

    from compiler import load_project, resolve_graph
    from compiler.backends.local._configs import method_config
    from runners.methods import run_method
    from runners.methods._notebook import render_html
    from schemas import Store

    graph = resolve_graph(load_project(project, [project / "audits"]))
    out = project / "split"
    shutil.rmtree(out, ignore_errors=True)
    config = method_config(graph, graph["case-1"], Store.open(project / ".auditc"))
    config = config.model_copy(update={"output_uri": str(out / graph["case-1"].id)})
    start = time.perf_counter()
    run_method(config)
    total = time.perf_counter() - start

    start = time.perf_counter()
    manager, client = start_new_kernel(
        kernel_name="python3",
        startup_timeout=120,
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
    )
    kernel = time.perf_counter() - start
    client.stop_channels()
    manager.shutdown_kernel(now=True)

    start = time.perf_counter()
    render_html(out / graph["case-1"].id / "_case" / "notebook.ipynb", "case-1")
    rendering = time.perf_counter() - start
    return {
        "kernel start": kernel,
        "execution (the rest)": total - kernel - rendering,
        "rendering to HTML": rendering,
        "total (run_method)": total,
    }


def main() -> None:
    """Parse options, measure, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    common.conditions("notebook overhead", {"cases": args.cases, "repeats": args.repeats})
    walls: dict[int, list[float]] = {1: [], 2: []}
    per_case: list[float] = []
    splits: list[dict[str, float]] = []
    with common.temp_dir("auditc-bench-notebooks-") as work:
        project = make_project(work / "project", args.cases)
        for rep in range(args.repeats):
            for jobs in (1, 2):
                wall, durations = time_run(project, jobs)
                walls[jobs].append(wall)
                if jobs == 1:
                    per_case += durations
                print(f"  repeat {rep + 1}: --jobs {jobs}: {wall:.1f} s", flush=True)
            splits.append(split_one(project))
    print()
    rows = [
        [f"auditc run --jobs {j}", common.median(w), common.median(w) / args.cases]
        for j, w in walls.items()
    ]
    print(common.table(["command", f"wall s ({args.cases} cases)", "s per case"], rows))
    speedup = common.median(walls[1]) / common.median(walls[2])
    print(f"\n--jobs 2 is {speedup:.2f}x faster than --jobs 1 (ideal on 2 cores: 2x).")
    print(
        f"Median duration of one safety case (its manifest, --jobs 1): {common.median(per_case):.2f} s"
    )
    print()
    phases = list(splits[0])
    print(
        common.table(
            ["phase (one safety case, in-process)", "median s"],
            [[p, common.median([s[p] for s in splits])] for p in phases],
        )
    )


if __name__ == "__main__":
    main()
