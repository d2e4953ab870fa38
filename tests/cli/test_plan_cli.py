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
