"""Helpers of the local backend's tests: copies of tests/fixtures/audits/local-basic.

A module with a name of its own (not `conftest`), so test files import it unambiguously.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import IO

from compiler import Graph, load_project, resolve_graph

FIXTURE = Path(__file__).parents[3] / "fixtures" / "audits" / "local-basic"


def copy_project(target: Path) -> Path:
    """A fresh, editable copy of the test audit under `target`."""
    shutil.copytree(FIXTURE, target, ignore=shutil.ignore_patterns("__pycache__", ".auditc"))
    return target


def edit_spec(project: Path, old: str, new: str) -> None:
    """Replace one exact piece of `audit.yaml`."""
    spec = project / "audit.yaml"
    text = spec.read_text()
    assert text.count(old) == 1, f"{old!r} is not exactly once in {spec}"
    spec.write_text(text.replace(old, new))


def load_graph(project: Path) -> Graph:
    """The resolved graph of a project copy."""
    return resolve_graph(load_project(project, [project / "audit.yaml"]))


def git_commit_all(project: Path) -> str:
    """Make the project a git repository with one commit; its sha."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(project), *args], capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    git("init", "-q")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "audit")
    return git("rev-parse", "HEAD")


AUDITC = [str(Path(sys.executable).parent / "auditc")]
"""The console script installed next to this interpreter (the venv's)."""


def start_auditc(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`auditc ARGS` running in the background, stdout and stderr as text pipes."""
    return subprocess.Popen(
        [*AUDITC, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def read_until(stream: IO[str] | None, marker: str) -> str:
    """Lines of a running process's output up to the first that contains `marker`."""
    assert stream is not None
    seen = []
    for line in stream:
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"the process ended before {marker!r}:\n{''.join(seen)}")


def write_method_project(root: Path, function_source: str, method_spec: str) -> Path:
    """A project with a 3-row Dataset and one function Method `m` (module `steps`).

    `function_source` is the module's code; `method_spec` is YAML added to the Method's
    spec (it must name `implementation`).
    """
    (root / "data").mkdir(parents=True)
    (root / "data" / "rows.jsonl").write_text("".join(f'{{"text": "row {i}"}}\n' for i in range(3)))
    (root / "modules" / "steps").mkdir(parents=True)
    (root / "modules" / "steps" / "steps.py").write_text(function_source)
    (root / "audit.yaml").write_text(
        "kind: Dataset\nname: rows\nspec:\n  file: {path: data/rows.jsonl}\n"
        "  columns: {text: string}\n---\n"
        "kind: Module\nname: steps\nspec: {path: modules/steps}\n---\n"
        "kind: Method\nname: m\nspec:\n  modules: [steps]\n  inputs: {rows: rows}\n"
        "  output: {kind: Measurement, columns: {n: int64}}\n"
        + "".join(f"  {line}\n" for line in method_spec.strip().splitlines())
    )
    return root
