"""Helpers of the manifest-execution tests: project copies, `auditc` on the node, reports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from kubelet_cluster import ApplyResult, Cluster
from kubelet_images import REPO, project_images
from kubelet_network import NodeNetwork
from kubelet_store import CREDENTIALS

__all__ = [
    "AUDITC",
    "NAMESPACE",
    "REPO",
    "RUNNER_IMAGE",
    "STORE_SECRET",
    "auditc",
    "describe",
    "new_cluster",
    "start_auditc",
    "write_project",
]

AUDITC = str(Path(sys.executable).parent / "auditc")
# By digest, as a stack should name it (a tag is a warning of `auditc compile`).
RUNNER_IMAGE = (
    "ghcr.io/acme/auditc-runner@sha256:"
    "866c63aa5dc173525399941eb3deae055b5cbbe74094fec3053caf8bf8665d5d"
)
NAMESPACE = "auditc-kubelet"
STORE_SECRET = "auditc-s3"


def write_project(target: Path, audit: Path, stack: dict[str, Any]) -> Path:
    """A project with one audit under `audits/<name>` and `stacks/Pulumi.kubelet.yaml`."""
    shutil.copytree(
        audit,
        target / "audits" / audit.name,
        ignore=shutil.ignore_patterns("__pycache__", ".auditc"),
    )
    config = {
        "auditc:specs": [f"audits/{audit.name}"],
        "auditc:namespace": NAMESPACE,
        "auditc:images": {"runner": RUNNER_IMAGE, "pullPolicy": "Never"},
        **{f"auditc:{key}": value for key, value in stack.items()},
    }
    (target / "stacks").mkdir()
    (target / "stacks" / "Pulumi.kubelet.yaml").write_text(json.dumps({"config": config}, indent=2))
    return target


def auditc(
    project: Path, *args: str, node: NodeNetwork | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run `auditc -C project ARGS`, on the node (where the store is) when `node` is given."""
    prefix = node.nsenter() if node is not None else []
    done = subprocess.run(
        [*prefix, AUDITC, "-C", str(project), *args],
        cwd=project,
        capture_output=True,
        text=True,
        env={**os.environ, **CREDENTIALS, "NO_COLOR": "1"},
        timeout=600,
        check=False,
    )
    if check and done.returncode not in (0,):
        raise AssertionError(f"auditc {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    return done


def start_auditc(
    project: Path, *args: str, log: Path, node: NodeNetwork | None = None
) -> subprocess.Popen[bytes]:
    """Start `auditc -C project ARGS` in the background, output to `log`: on this machine,
    or on the node (where the store is, with its credentials) when `node` is given."""
    prefix, credentials = (node.nsenter(), CREDENTIALS) if node is not None else ([], {})
    with log.open("wb") as handle:
        return subprocess.Popen(
            [*prefix, AUDITC, "-C", str(project), *args],
            cwd=project,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env={**os.environ, **credentials, "NO_COLOR": "1"},
        )


def new_cluster(node: NodeNetwork, workdir: Path) -> Cluster:
    """A cluster whose runner image is the project's environment, with the store's Secret."""
    cluster = Cluster(node, project_images(RUNNER_IMAGE), workdir)
    cluster.add_secret(STORE_SECRET, CREDENTIALS)
    return cluster


def describe(result: ApplyResult) -> str:
    """Every Job, pod and container of an apply, with the logs of what failed."""
    lines = [*result.errors]
    for name, job in result.jobs.items():
        lines.append(
            f"Job {name}: {job.condition} {job.reason} {job.message} ({job.duration_s:.1f} s)"
        )
        for pod in job.pods:
            lines.append(f"  pod {pod.name} {pod.phase} {pod.reason}")
            for container in pod.containers.values():
                probes = {
                    k: (v.successes, v.failures, v.last_error) for k, v in container.probes.items()
                }
                lines.append(
                    f"    {container.name} ({container.kind}) exits {container.exit_codes} "
                    f"restarts {container.restarts} probes {probes} {container.error or ''}"
                )
                if pod.phase != "Succeeded":
                    lines += [f"      | {line}" for line in container.log().splitlines()[-30:]]
    return "\n".join(lines)
