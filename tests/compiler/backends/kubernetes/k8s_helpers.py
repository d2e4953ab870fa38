"""Helpers of the Kubernetes backend's tests (a uniquely named module: test dirs have no __init__)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from compiler import Graph, load_project, resolve_graph
from compiler.backends.kubernetes import Rendering

FIXTURE = Path(__file__).parents[3] / "fixtures" / "audits" / "k8s-basic"
REPO = Path(__file__).parents[4]

STACK: dict[str, Any] = {
    "store": {
        "uri": "s3://audit-results/ci?endpoint_override=minio.storage:9000&scheme=http",
        "credentialsSecret": "auditc-s3",
    },
    "gpu": {"nodeSelector": {"nvidia.com/gpu.present": "true"}},
    "imagePullSecrets": ["ghcr-pull"],
    "labels": {"team": "safety"},
}


def load_graph(project: Path) -> Graph:
    """The resolved graph of a copy of the test audit."""
    return resolve_graph(load_project(project, [project / "audits"]))


def copy_project(target: Path) -> Path:
    """An editable copy of the test audit."""
    shutil.copytree(FIXTURE, target, ignore=shutil.ignore_patterns("__pycache__", ".auditc"))
    return target


def pod_templates(rendering: Rendering) -> Iterator[tuple[str, dict[str, Any]]]:
    """`Kind/name` and pod template of every Job and Deployment."""
    for resource in rendering.resources:
        if resource.kind in ("Job", "Deployment"):
            yield f"{resource.kind}/{resource.name}", resource.manifest["spec"]["template"]


def containers(template: dict[str, Any]) -> list[dict[str, Any]]:
    """Init and main containers of a pod template."""
    spec = template["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]
