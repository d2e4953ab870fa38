"""The Kubernetes commands of README.md and docs/kubernetes.md, run as written.

Each runs the installed `auditc` in a copy of the repository's project files (audits/,
stacks/, Pulumi.yaml), in that directory, exactly as the page shows it.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from k8s_helpers import REPO

AUDITC = str(Path(sys.executable).parent / "auditc")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    target = tmp_path / "project"
    for name in ("audits", "stacks"):
        shutil.copytree(REPO / name, target / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "Pulumi.yaml", target / "Pulumi.yaml")
    return target


def _run(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    words = shlex.split(command)
    assert words[0] == "auditc", command
    return subprocess.run(
        [AUDITC, *words[1:]], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def _readme_commands(pattern: str) -> list[str]:
    found = re.findall(rf"`({pattern}[^`]*)`", (REPO / "README.md").read_text())
    assert found, f"README.md no longer shows {pattern!r}"
    return [str(command) for command in found]


def test_readme_compile_command_works_as_written(project: Path) -> None:
    commands = [c for c in _readme_commands("auditc compile --target kubernetes") if "--out" in c]
    assert commands == ["auditc compile --target kubernetes --out manifests/"]
    command = commands[0]
    done = _run(command, project)
    assert done.returncode == 0, done.stderr
    assert "using stack dev (stacks/Pulumi.dev.yaml)" in done.stderr
    assert "warning:" not in done.stderr, done.stderr
    assert done.stdout.startswith("wrote ") and "valid for Kubernetes 1.33" in done.stdout
    jobs = set()
    for path in (project / "manifests").glob("*.yaml"):
        manifest = yaml.safe_load(path.read_text())
        if manifest["kind"] == "Job":
            jobs.add(manifest["metadata"]["labels"]["auditc.io/name"])
    assert {"filter-on-identity-sentences", "qwen-on-refusal-prompts"} <= jobs, "both audits"


def test_docs_compile_commands_work_as_written(project: Path) -> None:
    text = (REPO / "docs" / "kubernetes.md").read_text()
    commands = re.findall(r"^\$ (auditc compile [^#\n]*?)\s*(?:#.*)?$", text, re.MULTILINE)
    assert len(commands) == 2, commands
    for command in commands:
        done = _run(command, project)
        assert done.returncode == 0, f"{command}: {done.stderr}"
        out = project / shlex.split(command)[shlex.split(command).index("--out") + 1]
        assert any(out.iterdir()), command


def test_push_to_an_unreachable_store_names_the_endpoint(project: Path) -> None:
    """The example stack's endpoint only resolves inside its cluster."""
    start = time.monotonic()
    done = _run("auditc push --stack dev --dry-run", project)
    elapsed = time.monotonic() - start
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith(
        "error: cannot reach the store's endpoint minio.storage.svc.cluster.local:9000: "
    ), done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    assert elapsed < 60, "one bounded connect, not the S3 client's retries"

    stack = project / "stacks" / "Pulumi.dev.yaml"
    stack.write_text(
        stack.read_text().replace("minio.storage.svc.cluster.local:9000", "127.0.0.1:1")
    )
    done = _run("auditc push --stack dev --dry-run", project)
    assert done.returncode == 1, done.stderr
    assert "cannot reach the store's endpoint 127.0.0.1:1: Connection refused" in done.stderr
