"""`auditc plan --stack NAME`: every workflow a change of stack settings re-runs, and why.

A change of the stack file leaves node ids alone, yet replaces the Jobs whose pod
templates (or ConfigMaps) it changes, and a replaced Job runs again. The plan compares
the stack file with its committed version (`--against`, default HEAD).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from k8s_helpers import STACK, copy_project

from compiler.cli.main import main

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}
WORKFLOWS = {
    "Dataset/phrases",
    "Evaluation/phrases-length",
    "Evaluation/phrases-llm",
    "Evaluation/phrases-echo",
    "Evaluation/phrases-hosted",
    "Method/mean-score",
    "Method/label-counts",
    "Method/case",
}


def _git(project: Path, *args: str) -> None:
    subprocess.run(
        ["git", *args], cwd=project, check=True, capture_output=True, env={**os.environ, **GIT_ENV}
    )


def _write_stack(project: Path, **settings: Any) -> None:
    config = {f"auditc:{key}": value for key, value in {**STACK, **settings}.items()}
    (project / "stacks" / "Pulumi.ci.yaml").write_text(json.dumps({"config": config}, indent=2))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    project = copy_project(tmp_path / "project")
    (project / "stacks").mkdir()
    _write_stack(project, images={"runner": "ghcr.io/acme/auditc-runner:0.1.0"})
    _git(project, "init", "-q")
    _git(project, "add", ".")
    _git(project, "commit", "-qm", "deployed")
    return project


def _plan(project: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    main(
        [
            "-C",
            str(project),
            "plan",
            "--stack",
            "ci",
            "--against",
            "HEAD",
            "--format",
            "json",
            *extra,
        ]
    )
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    return document


def _reruns(document: dict[str, Any]) -> dict[str, list[str]]:
    return {
        f"{e['kind']}/{e['name']}": e["reasons"]
        for e in document["entries"]
        if e["action"] == "re-run"
    }


def test_an_unchanged_stack_re_runs_nothing(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = _plan(project, capsys)
    assert document["baseline"] == "git HEAD and stack ci at HEAD"
    assert {
        f"{e['kind']}/{e['name']}" for e in document["entries"] if e["action"] == "keep"
    } == WORKFLOWS


def test_a_new_runner_image_re_runs_every_workflow_and_says_why(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_stack(project, images={"runner": "ghcr.io/acme/auditc-runner:0.2.0"})
    reruns = _reruns(_plan(project, capsys))
    assert set(reruns) == WORKFLOWS, "every pod runs a step of the runner image"
    change = "ghcr.io/acme/auditc-runner:0.1.0 → ghcr.io/acme/auditc-runner:0.2.0"
    assert (
        f"stack: Job pod template containers[client].image: {change}"
        in reruns["Evaluation/phrases-llm"]
    )
    assert any("ConfigMap commit.json manifest.image" in r for r in reruns["Method/case"])


def test_changes_re_run_only_the_workflows_whose_pods_they_change(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_stack(
        project,
        images={"runner": "ghcr.io/acme/auditc-runner:0.1.0", "vllm": "vllm/vllm-openai:v0.12.0"},
        resources={"method": {"cpu": "2", "memory": "4Gi"}},
        jobs={"ttlSecondsAfterFinished": 3600},
    )
    reruns = _reruns(_plan(project, capsys))
    assert set(reruns) == {
        "Evaluation/phrases-llm",
        "Method/mean-score",
        "Method/label-counts",
        "Method/case",
    }
    assert reruns["Evaluation/phrases-llm"] == [
        "stack: Job pod template initContainers[server].image: "
        "vllm/vllm-openai:v0.11.0 → vllm/vllm-openai:v0.12.0",
        "stack: ConfigMap commit.json manifest.image: "
        "vllm/vllm-openai:v0.11.0 → vllm/vllm-openai:v0.12.0",
    ]
    assert reruns["Method/case"] == [
        "stack: Job pod template initContainers[method].resources.requests.cpu: 1 → 2"
    ]
    # A new TTL updates the Jobs in place: nothing runs again for it.
    assert not any("ttl" in reason.lower() for reasons in reruns.values() for reason in reasons)


def test_a_stack_new_since_the_ref_creates_every_job(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "stacks" / "Pulumi.ci.yaml").rename(project / "stacks" / "Pulumi.staging.yaml")
    main(
        ["-C", str(project), "plan", "--stack", "staging", "--against", "HEAD", "--format", "json"]
    )
    document = json.loads(capsys.readouterr().out)
    assert "no stacks/Pulumi.staging.yaml there" in document["baseline"]
    reruns = _reruns(document)
    assert set(reruns) == WORKFLOWS
    assert reruns["Method/case"] == ["stack: the stack is new: every Job is created"]


def test_the_text_plan_names_the_setting(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write_stack(project, images={"runner": "ghcr.io/acme/auditc-runner:0.1.0"}, namespace="audits")
    main(["-C", str(project), "plan", "--stack", "ci", "--against", "HEAD"])
    text = capsys.readouterr().out
    assert text.startswith("Plan against git HEAD and stack ci at HEAD: 0 to create, 8 to re-run")
    assert "stack: Job metadata.namespace: auditc → audits" in text


def test_outside_git_the_stack_is_not_compared_and_the_plan_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = copy_project(tmp_path / "project")
    (project / "stacks").mkdir()
    _write_stack(project)
    store = tmp_path / "store"
    store.mkdir()
    main(["-C", str(project), "plan", "--stack", "ci", "--store", str(store), "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    assert document["baseline"].startswith(f"store {store} and stack ci (not compared with git: ")
    assert {e["action"] for e in document["entries"]} == {"create"}
