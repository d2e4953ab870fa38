"""Helpers of the attack tests: hostile projects, and `auditc` run the way users run it.

A module with a name of its own (not `conftest`), so test files import it unambiguously.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).parents[2]
INVALID = REPO / "tests" / "fixtures" / "invalid"
AUDITC = [str(Path(sys.executable).parent / "auditc")]
"""The console script installed next to this interpreter (the venv's)."""

DATASET = """\
kind: Dataset
name: rows
spec:
  file: {path: data/rows.jsonl}
  columns: {text: string, label: int8}
"""
METHOD = """\
---
kind: Module
name: metrics
spec: {path: metrics}
---
kind: Method
name: mean
spec:
  implementation: {python: "metrics:mean"}
  modules: [metrics]
  inputs: {rows: rows}
  output: {kind: Measurement}
"""
"""A Method `mean` over `rows`, from the Module `metrics` (files: `MODULE`)."""
MODULE = {"metrics/metrics.py": "def mean(rows):\n    return rows\n"}


def auditc(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 180,
) -> subprocess.CompletedProcess[str]:
    """Run `auditc ARGS` in a child process to completion and capture its output."""
    return subprocess.run(
        [*AUDITC, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def write_project(root: Path, specs: str, files: dict[str, str] | None = None) -> Path:
    """A project at `root`: `audits/a.yaml` with `specs`, a two-row dataset and `files`."""
    audits = root / "audits"
    (audits / "data").mkdir(parents=True, exist_ok=True)
    (audits / "data" / "rows.jsonl").write_text(
        '{"text": "a", "label": 0}\n{"text": "b", "label": 1}\n'
    )
    (audits / "a.yaml").write_text(textwrap.dedent(specs))
    for relative, text in (files or {}).items():
        path = audits / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def assert_usage_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit 2 with a message on stderr and no traceback (never exit 3)."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)
