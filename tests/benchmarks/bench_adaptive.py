"""Benchmark 7 — `concurrency: auto` against three kinds of server, beside the best fixed level.

    .venv/bin/python tests/benchmarks/bench_adaptive.py [--cases slots,rate-limit,cpu] [--scale 1]
        [--repeats 1]

For each kind of server (`_adaptive_server.py`, pinned to one core; the client on the
other), the evaluation client (`python -m runners.evaluation`) is run at a sweep of fixed
concurrency levels to find the best throughput, then the best fixed level and `auto` are
run on the same N rows, one after the other (`--repeats K`: K such pairs, interleaved;
the ratio reported is the median of the pairs' ratios). Throughput is rows answered per second in
flight, from the server's own clock (first request to last answer). The error budget is
`errors.max_error_fraction: 0`: a run with a row error fails.

- **slots** (a GPU batch server): 32 slots, 50 ms a step (slower with more slots busy).
  Target: `auto` ≥ 90 % of the best fixed level.
- **rate-limit** (a hosted API): 200 requests/s, 429 with `Retry-After: 1` above it,
  100 ms a request. Target: no row error, and ≥ 90 % of 200 rows/s.
- **cpu** (a model on a CPU): one request at a time, 20 ms each. Target: ≥ 90 % of the
  best fixed level.

The sweep runs each fixed level for about `--sweep-s` seconds (fewer rows at low levels);
the final pair runs N rows each (`--scale` multiplies N). About 12 minutes in all with
one repeat, about 27 with three.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _common as common
from bench_memory import write_dataset

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Case:
    """One kind of server: how to start it, what to sweep, what it can do at most."""

    name: str
    server_args: list[str]
    rows: int
    levels: list[int]
    rate: Callable[[int], float]
    """Expected rows/s at a fixed level (sizes the sweep's runs only)."""
    limit: float | None = None
    """The server's own ceiling in rows/s, when it has one (the rate limit)."""


CASES = {
    "slots": Case(
        "slots",
        ["slots", "--slots", "32", "--service-ms", "50"],
        30_000,
        [1, 2, 4, 8, 16, 32, 48, 64, 128, 256],
        lambda c: min(c, 32) / (0.05 * (1 + 0.3 * min(c, 32) / 32)),
    ),
    "rate-limit": Case(
        "rate-limit",
        ["rate-limit", "--rate", "200", "--burst", "20", "--latency-ms", "100"],
        12_000,
        [1, 2, 4, 8, 16, 20, 24, 32, 64],
        lambda c: min(c / 0.1, 200.0),
        limit=200.0,
    ),
    "cpu": Case(
        "cpu",
        ["cpu", "--service-ms", "20"],
        3_000,
        [1, 2, 4, 8, 16, 64],
        lambda c: 50.0,
    ),
}


@dataclass
class Run:
    """One client run against one server."""

    level: str
    rows: int
    rows_per_s: float
    rejected: int
    errors: int
    status: str
    peak: int
    ended_at: int
    settled: str


@contextlib.contextmanager
def model_server(case: Case) -> Iterator[str]:
    """Start `_adaptive_server.py` for `case`, pinned to the server core; its base URL."""
    port = common.free_port()
    cmd = common.pinned(
        [common.PYTHON, str(HERE / "_adaptive_server.py"), "--port", str(port), *case.server_args],
        common.SERVER_CPU,
    )
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError):
                common.http_json(url + "/health", timeout=1.0)
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the model server did not start: {proc.stderr.read()!r}")  # type: ignore[union-attr]
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def client_config(work: Path, dataset_uri: str, url: str, level: int | str) -> Path:
    """The client's config: `/predict`, every row once, no row error allowed."""
    from runners.evaluation import EvaluationConfig
    from schemas import Evaluation, InferenceService

    service = InferenceService.model_validate(
        {
            "kind": "InferenceService",
            "name": "model",
            "spec": {
                "runner": {"kind": "external", "url": url},
                "interface": {
                    "request": {"text": "$.text"},
                    "response": {"score": "$.score"},
                    "output": {"score": "float64"},
                },
            },
        }
    )
    evaluation = Evaluation.model_validate(
        {
            "kind": "Evaluation",
            "name": "bench",
            "spec": {
                "service": "model",
                "dataset": "prompts",
                "concurrency": level,
                "errors": {"max_error_fraction": 0},
            },
        }
    )
    config = EvaluationConfig(
        evaluation=evaluation,
        service=service,
        base_url=url,
        dataset_uri=dataset_uri,
        output_uri=str(work / "output"),
        progress=False,
    )
    path = work / "client.json"
    path.write_text(json.dumps(config.model_dump(mode="json")))
    return path


def run_client(work: Path, url: str, dataset_uri: str, level: int | str) -> Run:
    """One run into an empty output directory, measured by the server's counters."""
    import shutil

    shutil.rmtree(work / "output", ignore_errors=True)
    config = client_config(work, dataset_uri, url, level)
    common.http_json(url + "/reset", data=b"{}")
    result_path = work / "result.json"
    result_path.unlink(missing_ok=True)
    measured = common.run_measured(
        common.pinned(
            [common.PYTHON, "-m", "runners.evaluation", str(config), "--result", str(result_path)]
        ),
        env={"PYTHONPATH": str(common.REPO)},
        timeout_s=1800,
        check=False,
    )
    stats = common.http_json(url + "/stats")
    if not result_path.exists():
        raise RuntimeError(f"the client wrote no result:\n{measured.stderr[-3000:]}")
    result = json.loads(result_path.read_text())
    window = max(stats["last"] - stats["first"], 1e-9)
    settled = re.findall(r"settled at (\d+)", measured.stderr)
    return Run(
        level=str(level),
        rows=result["rows"],
        rows_per_s=stats["answered"] / window,
        rejected=stats["rejected"],
        errors=result["errors"],
        status=result["status"],
        peak=stats["peak"],
        ended_at=result["concurrency"],
        settled=" → ".join(settled) if settled else "-",
    )


def sweep_rows(case: Case, level: int, sweep_s: float) -> int:
    """Rows for about `sweep_s` seconds at `level` (at least 200, at most the case's N)."""
    return max(200, min(case.rows, int(case.rate(level) * sweep_s)))


def run_case(case: Case, work: Path, scale: float, sweep_s: float, repeats: int) -> dict[str, Any]:
    """Sweep the fixed levels, then run the best one and `auto` on the full N, `repeats` times."""
    rows = int(case.rows * scale)
    uris: dict[int, str] = {}

    def dataset(n: int) -> str:
        if n not in uris:
            uris[n] = write_dataset(work / f"store-{n}", n)
        return uris[n]

    sweep: list[Run] = []
    with model_server(case) as url:
        for level in case.levels:
            n = min(rows, sweep_rows(case, level, sweep_s))
            run = run_client(work, url, dataset(n), level)
            sweep.append(run)
            print(
                f"  {case.name}: fixed {level:>3}: {run.rows_per_s:8.1f} rows/s, "
                f"{run.rejected} refused, {run.errors} row errors ({n} rows)",
                flush=True,
            )
        within = [r for r in sweep if r.errors == 0 and r.status == "complete"]
        best_level = int(max(within, key=lambda r: r.rows_per_s).level)
        pairs: list[tuple[Run, Run]] = []
        for repeat in range(1, repeats + 1):
            best = run_client(work, url, dataset(rows), best_level)
            auto = run_client(work, url, dataset(rows), "auto")
            pairs.append((best, auto))
            print(
                f"  {case.name}: pair {repeat}/{repeats}: best fixed {best_level}: "
                f"{best.rows_per_s:8.1f} rows/s; auto: {auto.rows_per_s:8.1f} rows/s, "
                f"settled {auto.settled}, ended at {auto.ended_at}, {auto.rejected} refused, "
                f"{auto.errors} row errors",
                flush=True,
            )
    return {"case": case, "rows": rows, "sweep": sweep, "pairs": pairs}


def report(outcome: dict[str, Any]) -> None:
    """Print the sweep and the comparison of one case."""
    case: Case = outcome["case"]
    print(f"\n### {case.name} ({' '.join(case.server_args)})\n")
    print(
        common.table(
            ["concurrency", "rows/s in flight", "429s", "row errors", "peak at server"],
            [[r.level, r.rows_per_s, r.rejected, r.errors, r.peak] for r in outcome["sweep"]],
        )
    )
    pairs: list[tuple[Run, Run]] = outcome["pairs"]
    print()
    rows = []
    for repeat, (best, auto) in enumerate(pairs, 1):
        for label, run, level in (
            (f"best fixed ({best.level})", best, best.level),
            ("auto", auto, f"settled {auto.settled}, ended {auto.ended_at}"),
        ):
            rows.append(
                [
                    repeat,
                    outcome["rows"],
                    label,
                    run.rows_per_s,
                    run.rejected,
                    run.errors,
                    run.status,
                    level,
                ]
            )
    print(
        common.table(
            ["pair", "N rows", "run", "rows/s in flight", "429s", "row errors", "status", "level"],
            rows,
        )
    )
    what = "the rate limit" if case.limit else "the best fixed level"
    to_reference = [auto.rows_per_s / (case.limit or best.rows_per_s) for best, auto in pairs]
    to_best = [auto.rows_per_s / best.rows_per_s for best, auto in pairs]
    errors = [auto.errors for _, auto in pairs]
    print(
        f"\nauto / {what}: {statistics.median(to_reference):.3f} (target ≥ 0.9; median of "
        f"{len(pairs)}: {', '.join(f'{r:.3f}' for r in to_reference)}); "
        f"auto / best fixed: {statistics.median(to_best):.3f}; "
        f"auto row errors: {', '.join(map(str, errors))} (budget 0)"
    )


def main() -> None:
    """Parse options, measure, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="slots,rate-limit,cpu")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies each case's N")
    parser.add_argument("--sweep-s", type=float, default=12.0, help="seconds per sweep run")
    parser.add_argument(
        "--repeats", type=int, default=1, help="pairs of (best fixed, auto) runs per case"
    )
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    names = args.cases.split(",")
    common.conditions(
        "adaptive concurrency",
        {
            "cases": ", ".join(names),
            "scale": args.scale,
            "sweep_s": args.sweep_s,
            "repeats": args.repeats,
            "cpus": f"server {common.SERVER_CPU}, client {common.CLIENT_CPU}",
        },
    )
    outcomes = []
    with common.temp_dir("auditc-bench-adaptive-") as work:
        for name in names:
            case_dir = work / name
            case_dir.mkdir()
            outcomes.append(run_case(CASES[name], case_dir, args.scale, args.sweep_s, args.repeats))
    for outcome in outcomes:
        report(outcome)
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
