"""Benchmark 6 — install by role: size and time of `pip install .` and of `pip install '.[all]'`.

    .venv/bin/python tests/benchmarks/bench_install.py [--extras core,tutorial,all]

Each install goes into a fresh virtual environment from a copy of the working tree, with
pip as this machine configures it (its package index and wheel cache: no download is
timed where the cache is warm). The size is the sum of the files every installed
distribution lists in its RECORD, pip and setuptools (the environment's own tools) left
out. Then `auditc validate audits/` and `auditc plan` run in the environment.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "tests" / "install"))

from test_core_install import SIZE_SCRIPT, copy_project, run  # noqa: E402


def measure(extra: str, work: Path, project: Path) -> dict[str, object]:
    """Install `.` (or `.[extra]`) into a fresh venv; its time, size and distribution count."""
    env_dir = work / f"venv-{extra}"
    venv.create(env_dir, with_pip=True)
    python = str(env_dir / "bin" / "python")
    target = "." if extra == "core" else f".[{extra}]"
    started = time.monotonic()
    done = run([python, "-m", "pip", "install", "--quiet", target], cwd=project, timeout=3600)
    took = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"pip install {target} failed:\n{done.stderr[-3000:]}")
    sizes = json.loads(run([python, "-c", SIZE_SCRIPT], cwd=project).stdout)
    checks = {
        " ".join(cmd): run([str(env_dir / "bin" / "auditc"), *cmd], cwd=project).returncode
        for cmd in (["validate", "audits/"], ["plan"])
    }
    largest = sorted(sizes.items(), key=lambda kv: -kv[1])[:5]
    return {
        "install": target,
        "seconds": round(took, 1),
        "megabytes": round(sum(sizes.values()) / 1e6, 1),
        "distributions": len(sizes),
        "largest": [f"{name} {size / 1e6:.1f} MB" for name, size in largest],
        "exit codes": checks,
    }


def main() -> None:
    """Measure each requested install and print one JSON line per install."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--extras", default="core,all", help="comma-separated: core, all, …")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}; pip as configured on this machine", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        project = work / "project"
        copy_project(project)
        for extra in args.extras.split(","):
            print(json.dumps(measure(extra.strip(), work, project)), flush=True)


if __name__ == "__main__":
    main()
