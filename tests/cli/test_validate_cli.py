"""`auditc validate`: success output, exit codes, and the process boundary (no traceback)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.cli.main import main

ROOT = Path(__file__).parents[2]
BASIC = ROOT / "tests" / "fixtures" / "audits" / "compiler-basic"
INVALID = ROOT / "tests" / "fixtures" / "invalid"


def auditc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the real console entry point in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "compiler.cli.main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_valid_project(capsys: pytest.CaptureFixture[str]) -> None:
    main(["-C", str(BASIC), "validate"])
    assert capsys.readouterr().out == "ok: 7 resources (4 workflows) in 3 files\n"


def test_paths_may_be_files(capsys: pytest.CaptureFixture[str]) -> None:
    main(["-C", str(BASIC), "validate", "audits/data.yaml"])
    assert capsys.readouterr().out == "ok: 1 resource (1 workflow) in 1 file\n"


def test_process_exit_codes_and_no_traceback(tmp_path: Path) -> None:
    ok = auditc("validate", cwd=BASIC)
    assert (ok.returncode, ok.stderr) == (0, "")
    bad = auditc("validate", cwd=INVALID / "python-object-tag")
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert bad.stderr == (INVALID / "python-object-tag" / "expected.txt").read_text()
    usage = auditc("validate", "--no-such-option", cwd=BASIC)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr


def test_validating_never_runs_module_code(tmp_path: Path) -> None:
    project = tmp_path / "p"
    shutil.copytree(BASIC, project)
    marker = tmp_path / "ran"
    for name in ("__init__.py", "bias_metrics.py", "fpr.py"):  # what a run would import
        module = project / "audits" / "bias_metrics" / name
        module.write_text(f"open({str(marker)!r}, 'w').write('x')\n" + module.read_text())
    assert auditc("validate", cwd=project).returncode == 0
    assert auditc("graph", cwd=project).returncode == 0
    assert not marker.exists()


def test_help_documents_exit_codes() -> None:
    result = auditc("validate", "--help", cwd=BASIC)
    assert result.returncode == 0
    assert "2 invalid specs or usage" in " ".join(result.stdout.split())


def _spec_projects() -> list[tuple[Path, str]]:
    """This repository's `audits/` once it holds specs (written alongside), and the fixture."""
    audits = ROOT / "audits"
    found = [(ROOT, "audits")] if audits.is_dir() and any(audits.rglob("*.y*ml")) else []
    return [*found, (BASIC, "audits")]


@pytest.mark.parametrize(("root", "paths"), _spec_projects(), ids=lambda v: str(v)[-30:])
def test_spec_projects_validate(root: Path, paths: str, capsys: pytest.CaptureFixture[str]) -> None:
    main(["-C", str(root), "validate", paths])
    assert capsys.readouterr().out.startswith("ok: ")
