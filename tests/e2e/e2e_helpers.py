"""Helpers of the end-to-end tests: whole `auditc` invocations in subprocesses.

A module with a name of its own (not `conftest`), so test files import it unambiguously.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "audits"
AUDITC = [str(Path(sys.executable).parent / "auditc")]
"""The console script installed next to this interpreter (the venv's)."""


def copy_fixture(name: str, target: Path) -> Path:
    """A fresh copy of `tests/fixtures/audits/<name>`."""
    shutil.copytree(
        FIXTURES / name, target, ignore=shutil.ignore_patterns("__pycache__", ".auditc")
    )
    return target


def edit(path: Path, old: str, new: str) -> None:
    """Replace one exact piece of a file."""
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} is not exactly once in {path}"
    path.write_text(text.replace(old, new))


def auditc(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `auditc ARGS` to completion and capture its output."""
    return subprocess.run(
        [*AUDITC, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        input=stdin,
        check=False,
    )


def run_store_docs(project: Path, renames: dict[str, str] | None = None) -> str:
    """Run every Python example of docs/store.md, in order, in `project`; their stdout.

    `renames` maps the tutorial's node names in the examples to a test audit's.
    """
    import re

    text = (REPO / "docs" / "store.md").read_text()
    code = "\n".join(re.findall(r"```python\n(.*?)```", text, re.S))
    for old, new in (renames or {}).items():
        assert f'"{old}"' in code, f"docs/store.md no longer names {old!r}"
        code = code.replace(f'"{old}"', f'"{new}"')
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=project, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
