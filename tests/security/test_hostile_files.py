"""Files a fork's pull request can commit end in a clear error, never a crash or exhaustion.

Issue 10, defects 4 (a 1 MB scalar repeated by 8,999 aliases passed `validate`; `plan`
died with MemoryError) and 5 (symlink loops crashed validate, plan, compile,
`plan --against` and `diff REF REF` with exit 3).
"""

from __future__ import annotations

import os
import resource
import subprocess
from pathlib import Path

import pytest
from security_helpers import (
    AUDITC,
    DATASET,
    METHOD,
    MODULE,
    assert_usage_error,
    auditc,
    write_project,
)

MEMORY_LIMIT = 2 * 1024**3
"""Address space the attacked commands get: far more than they need, far less than the bomb."""


def _limited(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    return subprocess.run(
        [*AUDITC, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit,
        check=False,
    )


def test_an_alias_memory_bomb_is_refused_by_every_command(tmp_path: Path) -> None:
    bomb = (
        "  parameters:\n"
        f"    blob: &blob {'x' * 1_000_000}\n"
        f"    copies: [{', '.join(['*blob'] * 8_999)}]\n"
    )
    project = write_project(tmp_path / "p", DATASET + METHOD + bomb, MODULE)
    expected = (
        "audits/a.yaml:19:11: aliases expand this file to more than 10,485,760 characters "
        "of text (an alias bomb?); write large values once, or move data into a data file "
        "[alias-limit]\n1 error in 1 file\n"
    )
    for command in (["validate"], ["plan"], ["compile", "--target", "local", "--out", "o"]):
        result = _limited(*command, cwd=project)
        assert_usage_error(result)
        assert result.stderr == expected, command


def test_expansion_is_budgeted_per_file_not_per_document(tmp_path: Path) -> None:
    # Anchors are per document: many documents, each under the limit, add up.
    text = "y" * 9_000
    labels = ", ".join(f"l{j}: *s" for j in range(6))
    document = (
        "kind: Dataset\nname: d-NUMBER\nspec:\n  file: {path: data/rows.jsonl}\n"
        "  columns: {text: string}\n"
        f"documentation: {{summary: &s {text}, markdown: *s}}\nlabels: {{{labels}}}\n"
    )
    specs = "---\n".join(document.replace("NUMBER", str(i)) for i in range(250))
    project = write_project(tmp_path / "p", specs)
    result = auditc("-C", str(project), "validate")
    assert_usage_error(result, "aliases expand this file to more than 10,485,760", "[alias-limit]")
    assert result.stderr.count("[alias-limit]") == 1


@pytest.fixture
def looped(tmp_path: Path) -> Path:
    """A project whose Module holds `self -> .` and whose audits/ holds a.yaml <-> b.yaml."""
    project = write_project(tmp_path / "p", DATASET + METHOD, MODULE)
    (project / "audits" / "metrics" / "self").symlink_to(".")
    (project / "audits" / "x.yaml").symlink_to("y.yaml")
    (project / "audits" / "y.yaml").symlink_to("x.yaml")
    return project


LOOP_ERRORS = [
    "audits/a.yaml:9:14: Module/metrics: spec.path: 'audits/metrics/self' in 'audits/metrics' "
    "is a symlink loop (it leads back to 'audits/metrics'); remove it [symlink-loop]",
    "audits/x.yaml: is a symlink loop; expected a spec file [symlink-loop]",
    "audits/y.yaml: is a symlink loop; expected a spec file [symlink-loop]",
]


@pytest.mark.parametrize(
    "command",
    [["validate"], ["plan"], ["graph"], ["compile", "--target", "local", "--out", "out"]],
)
def test_symlink_loops_are_errors(looped: Path, command: list[str]) -> None:
    result = auditc("-C", str(looped), *command)
    assert_usage_error(result, *LOOP_ERRORS)


def _git(project: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    subprocess.run(["git", *args], cwd=project, check=True, capture_output=True, env=env)


def test_symlink_loops_committed_at_a_ref_are_errors(looped: Path) -> None:
    _git(looped, "init", "-q")
    _git(looped, "add", "-A")
    _git(looped, "commit", "-q", "-m", "a fork's pull request")
    # The working tree is fixed; the loops live on in the commit.
    for link in ("audits/metrics/self", "audits/x.yaml", "audits/y.yaml"):
        (looped / link).unlink()
    at_ref = [f"HEAD:{line}" for line in LOOP_ERRORS]
    assert_usage_error(auditc("-C", str(looped), "plan", "--against", "HEAD"), *at_ref)
    assert_usage_error(auditc("-C", str(looped), "diff", "HEAD", "HEAD"), *at_ref)


def test_long_strings_are_checked_in_linear_time(tmp_path: Path) -> None:
    # Scanning values for secrets must not backtrack: a pattern that may start anywhere
    # and run up to `://` took minutes on one 600 kB parameter.
    long = "w" * 600_000
    url = "https://reader:hunter22@example.com/data"
    specs = DATASET + METHOD + f'  parameters: {{a: "{long}://{long}", b: "{long} {url}"}}\n'
    project = write_project(tmp_path / "p", specs, MODULE)
    result = auditc("-C", str(project), "validate", timeout=60)
    assert result.returncode == 2, result.stderr  # b holds a URL with a password
    assert "spec.parameters.b: looks like a secret" in result.stderr
    assert "spec.parameters.a" not in result.stderr
