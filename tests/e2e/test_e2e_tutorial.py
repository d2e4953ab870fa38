"""The tutorial from a fresh copy: `auditc run audits/tutorial`, then a no-op re-run."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from e2e_helpers import REPO, auditc, run_store_docs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project holding a copy of audits/tutorial and nothing else (no store)."""
    project = tmp_path_factory.mktemp("tutorial")
    shutil.copytree(
        REPO / "audits" / "tutorial",
        project / "audits" / "tutorial",
        ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"),
    )
    return project


def test_tutorial_runs_to_a_safety_case_and_a_second_run_is_a_no_op(tutorial: Path) -> None:
    done = auditc("-C", str(tutorial), "run", "audits/tutorial", timeout=600)
    assert done.returncode == 0, done.stderr
    assert " 0 failed, 0 skipped" in done.stdout
    line = next(x for x in done.stdout.splitlines() if x.startswith("SafetyCase "))
    report = Path(line.split(": ", 1)[1])
    assert report.name == "index.html" and report.stat().st_size > 1000
    scores = json.loads((report.parent / "scores.json").read_text())
    primary = [s for s in scores["scores"] if s["primary"]]
    assert [s["name"] for s in primary] == ["max_fpr_gap"]
    assert 0.0 <= primary[0]["value"] <= 1.0

    started = time.monotonic()
    again = auditc("-C", str(tutorial), "run", "audits/tutorial")
    took = time.monotonic() - started
    assert again.returncode == 0, again.stderr
    assert "Nothing to run: all 9 workflow nodes are complete in" in again.stdout
    assert line in again.stdout  # the same safety case, kept
    assert took < 10  # under 1 s on an idle machine; CI machines are shared


def test_store_docs_examples_read_the_tutorial_store(tutorial: Path) -> None:
    if not (tutorial / ".auditc").is_dir():
        pytest.fail("the tutorial run above did not produce a store")
    out = run_store_docs(tutorial)
    assert "rows with errors: 0" in out
    assert "max_fpr_gap" in out and "(primary)" in out
