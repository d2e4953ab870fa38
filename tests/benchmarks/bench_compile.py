"""Benchmark 3 — scale of the compiler, end to end through the CLI.

    .venv/bin/python tests/benchmarks/bench_compile.py [--sizes 1000 10000] [--repeats 3]

The projects are those of `bench_compiler.py` (which times load/validate, resolve and
plan in-process); this one times what a user or CI runs, each a fresh process:
`auditc validate`, `auditc plan`, `auditc compile --target local` and
`auditc compile --target kubernetes` (the Pulumi program under Pulumi's mock runtime,
every manifest checked with kubernetes-validate; `--no-validate` shown apart). A command
slower than a minute runs once; the rest are medians of the repeats. Targets:
validate + plan + compile under 2 s at 1,000 resources and under 15 s at 10,000, per
command. How time grows with size is printed as the 10k/1k ratio (10 = linear).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import _common as common
from bench_compiler import SIZES, generate

TARGETS = {1_000: 2.0, 10_000: 15.0}
SLOW_S = 60.0
"""A command slower than this on its first run is not repeated."""
STORE = "s3://auditc-bench/store"
"""The cluster store named in the manifests; compiling never contacts it."""


def commands(project: Path, out: Path) -> dict[str, list[str]]:
    """The timed commands, in order."""
    base = [common.AUDITC, "-C", str(project), "--log-level", "warning"]
    return {
        "validate": [*base, "validate"],
        "plan": [*base, "plan"],
        "compile --target local": [*base, "compile", "--target", "local", "--out", str(out / "l")],
        "compile --target kubernetes --no-validate": [
            *base, "compile", "--target", "kubernetes", "--store", STORE, "--no-validate", "--out", str(out / "k"),
        ],
        "compile --target kubernetes": [
            *base, "compile", "--target", "kubernetes", "--store", STORE, "--out", str(out / "kv"),
        ],
    }  # fmt: skip


def bench_size(size: int, repeats: int, work: Path, timeout_s: float) -> dict[str, float]:
    """Median wall seconds of each command on a generated project of `size` resources."""
    project = work / f"p{size}"
    count = generate(project, *SIZES[size])
    print(f"  {count:,} resources", flush=True)
    walls: dict[str, list[float]] = {}
    for rep in range(repeats):
        out = work / f"out{size}"
        shutil.rmtree(out, ignore_errors=True)
        for label, cmd in commands(project, out).items():
            if rep and not walls[label][0] < SLOW_S:
                continue  # one run of a slow command is enough to read; it bounds the benchmark
            try:
                m = common.run_measured(cmd, timeout_s=timeout_s)
            except RuntimeError as exc:
                print(f"    {label}: {str(exc).strip().splitlines()[-1][:200]}", flush=True)
                walls.setdefault(label, []).append(float("nan"))
                continue
            walls.setdefault(label, []).append(m.wall_s)
            print(f"    repeat {rep + 1}: {label}: {m.wall_s:.2f} s", flush=True)
    return {label: common.median(values) for label, values in walls.items()}


def main() -> None:
    """Generate, time, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", type=int, nargs="*", default=sorted(SIZES), choices=sorted(SIZES)
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per command")
    args = parser.parse_args()
    common.conditions("compiler scale (CLI)", {"sizes": args.sizes, "repeats": args.repeats})
    results: dict[int, dict[str, float]] = {}
    with common.temp_dir("auditc-bench-compile-") as work:
        for size in args.sizes:
            results[size] = bench_size(size, args.repeats, work, args.timeout)
    labels = list(next(iter(results.values())))
    headers = ["command", *(f"{s:,} resources (s)" for s in args.sizes)]
    rows = [[label, *(results[s][label] for s in args.sizes)] for label in labels]
    if len(args.sizes) > 1:
        small, large = min(args.sizes), max(args.sizes)
        headers.append(f"{large // small}x resources → time x")
        for row, label in zip(rows, labels, strict=True):
            row.append(results[large][label] / results[small][label])
    print()
    print(common.table(headers, rows))
    print("\nTargets (each command): " + ", ".join(f"{s:,}: < {t:g} s" for s, t in TARGETS.items()))
    for size in args.sizes:
        missed = [label for label in labels if not results[size][label] < TARGETS[size]]
        print(f"  {size:,}: " + (f"NOT met by {', '.join(missed)}" if missed else "met"))


if __name__ == "__main__":
    main()
