"""What CI runs on a fork's pull request executes nothing from it (docs/security.md).

A hostile project whose every piece of code would leave a mark if it ran: the Module's
files, the notebook, a `sitecustomize.py` and a `.pth` file in a Module directory, and
git's own extension points (a smudge filter, hooks, an fsmonitor command). `validate`,
`graph`, `plan` (against the store and against a git ref), `compile` (both targets) and
`push --dry-run` must leave no mark.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from security_helpers import DATASET, METHOD, auditc, write_project

SPECS = (
    METHOD
    + """\
---
kind: Method
name: case
spec:
  implementation: {notebook: case.ipynb}
  inputs: {mean: mean}
  output: {kind: SafetyCase}
---
kind: Model
name: model
spec:
  python: {callable: "metrics:mean", module: metrics}
---
kind: InferenceService
name: service
spec:
  model: model
  runner: {kind: python}
  interface:
    request: {text: "$.text"}
    output: {score: float64}
---
kind: Evaluation
name: scores
spec: {service: service, dataset: rows}
"""
)


def _mark(marks: Path, name: str) -> str:
    return f"open({str(marks / name)!r}, 'w').write('ran')\n"


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[Path, Path]:
    marks = tmp_path / "marks"
    marks.mkdir()
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {},
                "source": _mark(marks, "notebook"),
                "outputs": [],
                "execution_count": None,
            }
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    project = write_project(
        tmp_path / "p",
        DATASET + SPECS,
        {
            "metrics/metrics.py": _mark(marks, "module") + "def mean(rows):\n    return rows\n",
            "metrics/__init__.py": _mark(marks, "package"),
            "metrics/sitecustomize.py": _mark(marks, "sitecustomize"),
            "metrics/evil.pth": f"import os; os.makedirs({str(marks / 'pth')!r})\n",
            "case.ipynb": json.dumps(notebook),
        },
    )
    hook = marks.parent / "hook.sh"
    hook.write_text(f"#!/bin/sh\ntouch {marks / 'git'}\n")
    hook.chmod(0o755)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "fork",
        "GIT_AUTHOR_EMAIL": "fork@example.com",
        "GIT_COMMITTER_NAME": "fork",
        "GIT_COMMITTER_EMAIL": "fork@example.com",
    }

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=project, check=True, capture_output=True, env=env)

    git("init", "-q")
    (project / ".gitattributes").write_text("* filter=evil\n")
    git("add", "-A")
    git("commit", "-q", "-m", "a fork's pull request")
    # Extension points of the repository git would run if asked to check out or refresh.
    git("config", "filter.evil.smudge", str(hook))
    git("config", "filter.evil.clean", str(hook))
    git("config", "core.fsmonitor", str(hook))
    for name in ("post-checkout", "post-merge", "pre-commit", "reference-transaction"):
        (project / ".git" / "hooks" / name).symlink_to(hook)
    return project, marks


@pytest.mark.parametrize(
    "command",
    [
        ["validate"],
        ["graph"],
        ["plan"],
        ["plan", "--against", "HEAD"],
        ["compile", "--target", "local", "--out", "out-local"],
        ["compile", "--target", "kubernetes", "--store", "s3://b/a", "--out", "out-k8s"],
        ["push", "--dry-run", "--store", "STORE"],
        ["diff", "HEAD", "HEAD"],
    ],
    ids=lambda c: " ".join(c),
)
def test_reviewing_a_pull_request_runs_none_of_its_code(
    hostile: tuple[Path, Path], command: list[str], tmp_path: Path
) -> None:
    project, marks = hostile
    args = [str(tmp_path / "store") if a == "STORE" else a for a in command]
    (tmp_path / "store").mkdir()
    result = auditc(*args, cwd=project)
    assert result.returncode in (0, 1), result.stderr  # diff: nothing run yet is exit 1
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in marks.iterdir()) == []


def test_the_marks_show_when_the_code_runs(hostile: tuple[Path, Path], tmp_path: Path) -> None:
    """The control: `auditc run` imports the Module, and its mark appears."""
    project, marks = hostile
    auditc("run", "--store", str(tmp_path / "store"), cwd=project, timeout=600)
    assert "module" in {p.name for p in marks.iterdir()}
