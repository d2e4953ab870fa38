"""Helpers of the local backend's tests: copies of tests/fixtures/audits/local-basic.

A module with a name of its own (not `conftest`), so test files import it unambiguously.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

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
