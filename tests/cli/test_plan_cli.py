"""`auditc plan`: store baseline by default, --store, formats, and git errors as usage errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from compiler.cli.main import main

BASIC = Path(__file__).parents[2] / "tests" / "fixtures" / "audits" / "compiler-basic"


def test_plan_against_an_empty_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "store"
    main(["-C", str(BASIC), "plan", "--store", str(store), "--format", "markdown"])
    out = capsys.readouterr().out
    assert out.startswith(f"### auditc plan against store {store} (empty)\n")
    assert "**4 to create, 0 to re-run, 0 to keep, 0 to remove**" in out
    assert not store.exists()


def test_against_outside_git_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "p"
    shutil.copytree(BASIC, project)
    with pytest.raises(SystemExit) as info:
        main(["-C", str(project), "plan", "--against", "HEAD"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err == f"error: {project} is not inside a git repository; --against needs one\n"


AUDIT = """\
kind: Dataset
name: DATASET
spec:
  file: {path: rows.jsonl}
  columns: {text: string}
"""


def _audit(project: Path, folder: str, dataset: str) -> None:
    (project / "audits" / folder).mkdir(parents=True, exist_ok=True)
    (project / "audits" / folder / "rows.jsonl").write_text('{"text": "a"}\n')
    (project / "audits" / folder / "audit.yaml").write_text(AUDIT.replace("DATASET", dataset))


def test_plan_of_paths_shows_their_nodes_and_removes_nothing_else(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 11, defect 5: `plan audits/newcomer` listed every other audit's nodes as removed."""
    project = tmp_path / "p"
    _audit(project, "old", "old-rows")
    assert main(["-C", str(project), "run"]) is None
    capsys.readouterr()
    _audit(project, "newcomer", "new-rows")

    main(["-C", str(project), "plan", "audits/newcomer"])
    subset = capsys.readouterr().out
    main(["-C", str(project), "plan"])
    whole = capsys.readouterr().out

    assert "1 to create, 0 to re-run, 0 to keep, 0 to remove." in subset
    assert "old-rows" not in subset and "+ Dataset/new-rows" in subset
    assert "nothing is listed as removed; `auditc gc --dry-run`" in subset
    assert "1 to create, 0 to re-run, 1 to keep, 0 to remove." in whole


def test_validating_a_subset_still_checks_names_across_the_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 11, defect 5: a subset validate skipped the project-wide duplicate-name check."""
    project = tmp_path / "p"
    _audit(project, "one", "rows")
    _audit(project, "two", "rows")

    with pytest.raises(SystemExit) as info:
        main(["-C", str(project), "validate", "audits/two"])

    assert info.value.code == 2
    assert "duplicate name 'rows'" in capsys.readouterr().err
