"""docs/security.md: its commands work as written, and every test it cites exists."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from security_helpers import REPO, auditc

DOC = REPO / "docs" / "security.md"


def _cited() -> list[str]:
    """`tests/...` references of the doc, with `{a,b}` groups expanded.

    A `::name` reference without a path names a test of the file cited just before it.
    """
    found: list[str] = []
    last_path = ""
    for ref in re.findall(r"`((?:tests/|::)[^`\s]+)`", DOC.read_text(encoding="utf-8")):
        if ref.startswith("::"):
            assert last_path, f"docs/security.md cites {ref} before any file"
            ref = last_path + ref
        last_path = ref.partition("::")[0]
        group = re.search(r"\{([^}]*)\}", ref)
        if group is None:
            found.append(ref)
        else:
            found += [ref.replace(group.group(0), part) for part in group.group(1).split(",")]
    return found


def test_every_finding_of_the_attack_run_has_a_test() -> None:
    """Findings 1 to 12 and every "also" item each name at least one test."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## The attack run, finding by finding", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    numbered = [int(m.group(1)) for row in rows if (m := re.match(r"\| (\d+)\. ", row))]
    assert numbered == list(range(1, 13))
    assert len(rows) == 1 + 12 + 7  # the header, the twelve defects, the seven "also" items
    for row in rows[1:]:
        assert "`tests/" in row.rsplit("|", 2)[1], f"no test named for: {row[:80]}"


@pytest.mark.parametrize("reference", _cited())
def test_every_cited_test_exists(reference: str) -> None:
    path, _, name = reference.partition("::")
    assert (REPO / path).exists(), f"docs/security.md cites {path}, which does not exist"
    if name:
        assert re.search(rf"^def {re.escape(name)}\(", (REPO / path).read_text(), re.M), (
            f"docs/security.md cites {reference}, which is not a test there"
        )


def test_the_commands_run_as_written(tmp_path: Path) -> None:
    project = tmp_path / "tutorial"
    shutil.copytree(REPO / "audits" / "tutorial", project / "audits")
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "specs"]):
        subprocess.run(["git", *args], cwd=project, check=True, capture_output=True, env=env)
    block = re.search(r"```console\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert block is not None
    commands = [line[2:].split() for line in block.group(1).splitlines() if line.startswith("$ ")]
    assert len(commands) == 3
    for command in commands:
        assert command[0] == "auditc"
        result = auditc(*command[1:], cwd=project)
        assert result.returncode == 0, (command, result.stderr)
