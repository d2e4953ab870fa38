"""Benchmark 1 — client efficiency: auditc against the bare aiohttp loop and wrk.

    .venv/bin/python tests/benchmarks/bench_client.py [--rows 50000] [--repeats 3]

A granian server (one worker, uvloop; `_server.py`) is pinned to core 0 and every
client to core 1. For each server mode (answering at once; after 20 ms like a model)
and concurrency (8, 64), each repeat runs, interleaved:

- `wrk` with the same JSON body (server ceiling; duration-based);
- the bare asyncio + aiohttp loop (`_bare_client.py`), N rows, on uvloop as auditc runs
  (and, against the instant server, on the stock asyncio loop too);
- `auditc run` of a generated one-Evaluation project (an `external` service pointing at
  the server), N rows, end to end: start-up, dataset ingestion, Parquet, manifest;
- the evaluation client alone (`python -m runners.evaluation CONFIG.json`), N rows, for
  its own CPU time and peak RSS (against the instant server).

End to end = N / process wall time. In flight = rows the server answered / (last
response − first request), measured by the server. CPU = user + system time of the
process and its children (GNU time). Figures are medians of the repeats. Batching
(`/predict`, several rows per request) is reported separately.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import sys
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import _client_config
import _common as common
import _project

MODES = {"instant": 0.0, "model-20ms": 20.0}


@dataclass
class Run:
    """One measured run of one tool."""

    tool: str
    mode: str
    concurrency: int
    rows: int
    e2e_rows_s: float
    inflight_rows_s: float
    cpu_ms_per_row: float
    max_rss_mb: float
    server_busy: float
    """Fraction of its core the server used during the run."""
    outside_s: float = float("nan")
    """Wall time outside the request window (start-up, set-up, writing, exit)."""


def _server_run(
    server: common.BenchServer,
    tool: str,
    mode: str,
    conc: int,
    cmd: list[str],
    rows: int | None,
    env: dict[str, str] | None = None,
) -> Run:
    server.reset()
    cpu0 = server.cpu_s()
    measured = common.run_measured(cmd, env=env, timeout_s=1800)
    busy = (server.cpu_s() - cpu0) / measured.wall_s
    stats = server.stats()
    counted = rows if rows is not None else stats.rows
    if rows is not None and stats.rows < rows:
        raise RuntimeError(f"{tool}: the server answered {stats.rows} rows, expected {rows}")
    e2e = counted / measured.wall_s if rows is not None else float("nan")
    outside = measured.wall_s - stats.window_s if rows is not None else float("nan")
    return Run(
        tool,
        mode,
        conc,
        counted,
        e2e,
        stats.rows_per_s,
        1000 * measured.cpu_s / counted,
        measured.max_rss_mb,
        busy,
        outside,
    )


def run_wrk(server: common.BenchServer, mode: str, conc: int, body: Path, seconds: int) -> Run:
    """wrk, one thread, `conc` connections, the same body on every request."""
    cmd = common.pinned(
        [
            "wrk",
            "-t1",
            f"-c{conc}",
            f"-d{seconds}s",
            "-s",
            str(common.HERE / "wrk_post.lua"),
            server.url + "/v1/chat/completions",
            "--",
            str(body),
        ]
    )
    return _server_run(server, "wrk", mode, conc, cmd, None)


def run_bare(
    server: common.BenchServer,
    mode: str,
    conc: int,
    data: Path,
    rows: int,
    *,
    api: str = "openai",
    batch: int = 1,
    uvloop: bool = True,
    tool: str = "bare aiohttp",
) -> Run:
    """The bare asyncio + aiohttp loop over the prompts file (on uvloop, as auditc runs)."""
    endpoint = "/v1/chat/completions" if api == "openai" else "/predict"
    cmd = common.pinned(
        [
            common.PYTHON,
            str(common.HERE / "_bare_client.py"),
            server.url + endpoint,
            str(data),
            str(conc),
            "--api",
            api,
            "--batch",
            str(batch),
            *(["--uvloop"] if uvloop else []),
        ]
    )
    return _server_run(server, tool, mode, conc, cmd, rows)


def run_auditc(
    server: common.BenchServer,
    mode: str,
    conc: int,
    project: Path,
    rows: int,
    *,
    tool: str = "auditc run",
    source: Path | None = None,
) -> Run:
    """`auditc run` of the generated project, from a fresh store.

    With `source`, auditc's packages are imported from that checkout instead (a
    baseline measured side by side, e.g. `git worktree add /tmp/base main`).
    """
    shutil.rmtree(project / ".auditc", ignore_errors=True)
    cmd = common.pinned([common.AUDITC, "-C", str(project), "--log-level", "warning", "run"])
    env = {"PYTHONPATH": str(source)} if source is not None else None
    return _server_run(server, tool, mode, conc, cmd, rows, env=env)


def run_client(
    server: common.BenchServer,
    mode: str,
    conc: int,
    config: Path,
    rows: int,
    *,
    tool: str = "evaluation client",
) -> Run:
    """The evaluation client alone (`python -m runners.evaluation CONFIG.json`)."""
    out = _client_config.output_of(config)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    cmd = common.pinned([common.PYTHON, "-m", "runners.evaluation", str(config)])
    return _server_run(server, tool, mode, conc, cmd, rows, env={"PYTHONPATH": str(common.REPO)})


def _safe(label: str, fn, *args, **kwargs) -> Run | None:  # type: ignore[no-untyped-def]
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # a tool that cannot run is reported, not fatal
        print(f"    {label}: not measured: {str(exc).strip().splitlines()[-1][:300]}", flush=True)
        return None


def _print_run(run: Run) -> None:
    print(
        f"    {run.tool:<22} c={run.concurrency:<3} e2e {run.e2e_rows_s:>9,.0f}/s  "
        f"in flight {run.inflight_rows_s:>9,.0f}/s  cpu {run.cpu_ms_per_row:.3f} ms/row  "
        f"rss {run.max_rss_mb:.0f} MB  server busy {run.server_busy:.0%}  "
        f"outside the window {run.outside_s:.2f} s",
        flush=True,
    )


def measure_mode(
    mode: str, delay: float, args: argparse.Namespace, work: Path, data: Path, body: Path
) -> list[Run]:
    """Every tool at every concurrency against one server mode, `args.repeats` times."""
    runs: list[Run] = []
    with common.BenchServer(delay_ms=delay) as server:
        for conc in args.concurrency:
            project = _project.evaluation_project(
                work / f"{mode}-c{conc}", data, server.url, concurrency=conc
            )
            config: Path | None = None
            if not args.skip_auditc:  # unmeasured: writes the bytecode caches
                _safe("warm-up", run_auditc, server, mode, conc, project, args.rows)
            for rep in range(args.repeats):
                print(f"  {mode} c={conc} repeat {rep + 1}/{args.repeats}", flush=True)
                runs += _repeat(server, mode, conc, args, data, body, project)
                if delay:
                    continue  # the client's own CPU and RSS are measured against the instant server
                if config is None and not args.skip_auditc:
                    # The client alone reads the dataset node the auditc run just ingested.
                    config = _safe(
                        "client config",
                        _client_config.build,
                        project,
                        work / f"client-{mode}-c{conc}",
                        server.url,
                    )
                if config is not None:
                    run = _safe("client", run_client, server, mode, conc, config, args.rows)
                    if run is not None:
                        _print_run(run)
                        runs.append(run)
        if args.batch > 1 and delay == 0:
            runs += _measure_batching(server, mode, args, work, data)
    return runs


def _repeat(
    server: common.BenchServer,
    mode: str,
    conc: int,
    args: argparse.Namespace,
    data: Path,
    body: Path,
    project: Path,
) -> list[Run]:
    runs: list[Run] = []
    todo = [
        ("wrk", run_wrk, (server, mode, conc, body, args.wrk_seconds)),
        ("bare", run_bare, (server, mode, conc, data, args.rows)),
    ]
    if not server.delay_ms:
        # The stock asyncio event loop, for comparison with the peers' figures.
        todo.append(
            (
                "bare asyncio",
                functools.partial(run_bare, uvloop=False, tool="bare aiohttp (asyncio loop)"),
                (server, mode, conc, data, args.rows),
            )
        )
    if not args.skip_auditc:
        todo.append(("auditc", run_auditc, (server, mode, conc, project, args.rows)))
    if args.baseline is not None:
        baseline = functools.partial(run_auditc, tool="auditc run (baseline)", source=args.baseline)
        todo.append(("baseline", baseline, (server, mode, conc, project, args.rows)))
    for label, fn, fargs in todo:
        run = _safe(label, fn, *fargs)
        if run is not None:
            _print_run(run)
            runs.append(run)
    return runs


def _measure_batching(
    server: common.BenchServer, mode: str, args: argparse.Namespace, work: Path, data: Path
) -> list[Run]:
    runs: list[Run] = []
    conc = max(args.concurrency)
    project = _project.evaluation_project(
        work / f"batch-{mode}",
        data,
        server.url,
        concurrency=conc,
        api="predict",
        batch_size=args.batch,
    )
    for rep in range(args.repeats):
        print(f"  {mode} batching {args.batch} rows/request c={conc} repeat {rep + 1}", flush=True)
        for label, fn, fargs, kw in (
            (
                "bare",
                run_bare,
                (server, mode, conc, data, args.rows),
                {"api": "predict", "batch": 1, "tool": "bare /predict"},
            ),
            (
                "bare batch",
                run_bare,
                (server, mode, conc, data, args.rows),
                {"api": "predict", "batch": args.batch, "tool": f"bare /predict x{args.batch}"},
            ),
            (
                "auditc batch",
                run_auditc,
                (server, mode, conc, project, args.rows),
                {"tool": f"auditc run /predict x{args.batch}"},
            ),
        ):
            if args.skip_auditc and label.startswith("auditc"):
                continue
            run = _safe(label, fn, *fargs, **kw)
            if run is not None:
                _print_run(run)
                runs.append(run)
    return runs


def summarize(runs: list[Run]) -> str:
    """Median table per (mode, concurrency, tool), then the target ratios."""
    groups: dict[tuple[str, int, str], list[Run]] = defaultdict(list)
    for run in runs:
        groups[(run.mode, run.concurrency, run.tool)].append(run)
    med: dict[tuple[str, int, str], dict[str, float]] = {}
    rows = []
    for key, group in groups.items():
        m = {
            f: common.median([getattr(r, f) for r in group])
            for f in (
                "e2e_rows_s",
                "inflight_rows_s",
                "cpu_ms_per_row",
                "max_rss_mb",
                "server_busy",
                "outside_s",
            )
        }
        med[key] = m
        rows.append(
            [
                key[0],
                key[1],
                key[2],
                len(group),
                m["e2e_rows_s"],
                m["inflight_rows_s"],
                m["cpu_ms_per_row"],
                m["max_rss_mb"],
                f"{m['server_busy']:.0%}",
                m["outside_s"],
            ]
        )
    out = [
        common.table(
            [
                "server",
                "conc.",
                "tool",
                "runs",
                "rows/s end to end",
                "rows/s in flight",
                "CPU ms/row",
                "peak RSS MB",
                "server busy",
                "s outside the request window",
            ],
            rows,
        )
    ]
    out.append("")
    out.append(_ratios(med))
    return "\n".join(out)


def _ratio(med: dict, a: tuple, b: tuple, field: str) -> float:  # type: ignore[type-arg]
    if a not in med or b not in med:
        return float("nan")
    return med[a][field] / med[b][field]


def _ratios(med: dict) -> str:  # type: ignore[type-arg]
    rows = []
    for mode in MODES:
        for conc in sorted({k[1] for k in med if k[0] == mode}):
            e2e = _ratio(
                med, (mode, conc, "auditc run"), (mode, conc, "bare aiohttp"), "e2e_rows_s"
            )
            fly = _ratio(
                med, (mode, conc, "auditc run"), (mode, conc, "bare aiohttp"), "inflight_rows_s"
            )
            wrk = _ratio(med, (mode, conc, "auditc run"), (mode, conc, "wrk"), "inflight_rows_s")
            client = med.get((mode, conc, "evaluation client"), {}).get(
                "cpu_ms_per_row", float("nan")
            )
            base = "auditc run (baseline)"
            base_e2e = _ratio(med, (mode, conc, base), (mode, conc, "bare aiohttp"), "e2e_rows_s")
            outside = {
                tool: med.get((mode, conc, tool), {}).get("outside_s", float("nan"))
                for tool in ("auditc run", "bare aiohttp", base)
            }
            rows.append(
                [
                    mode,
                    conc,
                    e2e,
                    fly,
                    wrk,
                    client,
                    outside["auditc run"],
                    outside["bare aiohttp"],
                    base_e2e,
                    outside[base],
                ]
            )
    text = common.table(
        [
            "server",
            "conc.",
            "auditc/bare end to end",
            "auditc/bare in flight",
            "auditc/wrk in flight",
            "client CPU ms/row",
            "auditc s outside the window",
            "bare s outside the window",
            "baseline/bare end to end",
            "baseline s outside the window",
        ],
        rows,
    )
    return text + (
        "\n\nTargets: instant server: auditc/bare >= 0.7 end to end (also at 5,000 rows) "
        "and >= 0.8 in flight; auditc <= 0.7 s outside the request window; 20 ms server: "
        "auditc/wrk >= 0.9 in flight; client CPU <= 0.6 ms/row."
    )


def main() -> None:
    """Parse options, measure, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=50_000, help="rows per run (N)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[8, 64]
    )
    parser.add_argument("--modes", type=lambda s: s.split(","), default=list(MODES))
    parser.add_argument("--wrk-seconds", type=int, default=5)
    parser.add_argument(
        "--batch", type=int, default=16, help="rows per request in the batching runs (1: skip them)"
    )
    parser.add_argument("--skip-auditc", action="store_true", help="only the references")
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="CHECKOUT",
        help="also time `auditc run` importing auditc from this source checkout (before/after)",
    )
    parser.add_argument("--json", type=Path, help="also write every run here")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install -y wrk")
    common.conditions(
        "client efficiency",
        {
            "rows": args.rows,
            "repeats": args.repeats,
            "server core": common.SERVER_CPU,
            "client core": common.CLIENT_CPU,
            "wrk": common._wrk_version(),
        },
    )
    runs: list[Run] = []
    with common.temp_dir("auditc-bench-client-") as work:
        data = common.write_prompts_parquet(work / "prompts.parquet", args.rows)
        body = work / "body.json"
        body.write_text(
            json.dumps(
                {
                    **_project.OPENAI_REQUEST,
                    "messages": [{"role": "user", "content": common.prompts(1)[0]}],
                }
            )
        )
        for mode in args.modes:
            runs += measure_mode(mode, MODES[mode], args, work, data, body)
    print()
    print(summarize(runs))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in runs], indent=1))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
