"""Benchmark 4 — no-op re-run: `auditc run` of the completed tutorial, target under 0.5 s.

    .venv/bin/python tests/benchmarks/bench_noop.py [--repeats 5]

The tutorial (`audits/tutorial`) is copied into a temporary project and run once in
full; then `auditc run` is timed again on the completed store, where every node is kept.
For scale, the same repeats time `auditc --version` (interpreter and CLI start-up) and
`auditc validate` (load and validate the specs): a no-op run costs those plus resolving
the graph and reading one manifest per node.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import _common as common

TUTORIAL = common.REPO / "audits" / "tutorial"


def copy_project(work: Path, source: Path) -> Path:
    """A project at `work/project` holding `source` at the same relative path."""
    project = work / "project"
    relative = source.relative_to(common.REPO)
    shutil.copytree(source, project / relative, ignore=shutil.ignore_patterns(".auditc"))
    return project


def manifests(project: Path) -> dict[str, int]:
    """Every manifest in the project's store, with its modification time (ns)."""
    return {str(p): p.stat().st_mtime_ns for p in (project / ".auditc").rglob("_manifest.json")}


def main() -> None:
    """Run the tutorial once, then time the no-op runs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--spec-dir", type=Path, default=TUTORIAL, help="the audit to run")
    args = parser.parse_args()
    source = args.spec_dir.resolve()
    common.conditions("no-op re-run", {"audit": str(source.relative_to(common.REPO))})
    with common.temp_dir("auditc-bench-noop-") as work:
        project = copy_project(work, source)
        spec = str(source.relative_to(common.REPO))
        base = [common.AUDITC, "-C", str(project), "--log-level", "warning"]
        first = common.run_measured([*base, "run", spec], timeout_s=1800)
        print(f"  first (full) run: {first.wall_s:.1f} s", flush=True)
        done = manifests(project)
        commands = {
            "auditc --version": [common.AUDITC, "--version"],
            "auditc validate": [*base, "validate", spec],
            "auditc run (no-op)": [*base, "run", spec],
        }
        walls: dict[str, list[float]] = {label: [] for label in commands}
        cpus: dict[str, list[float]] = {label: [] for label in commands}
        for rep in range(args.repeats):
            for label, cmd in commands.items():
                m = common.run_measured(cmd, timeout_s=120)
                walls[label].append(m.wall_s)
                cpus[label].append(m.cpu_s)
            if manifests(project) != done:
                raise RuntimeError("the no-op run re-ran a node (a manifest changed)")
            print(
                f"  repeat {rep + 1}: no-op run {walls['auditc run (no-op)'][-1]:.3f} s", flush=True
            )
    rows = [
        [label, common.median(walls[label]), min(walls[label]), common.median(cpus[label])]
        for label in commands
    ]
    print()
    print(common.table(["command", "median wall s", "best wall s", "median CPU s"], rows))
    noop = common.median(walls["auditc run (no-op)"])
    print(f"\nNo-op re-run: {noop:.3f} s (target < 0.5 s): {'met' if noop < 0.5 else 'NOT met'}.")


if __name__ == "__main__":
    main()
