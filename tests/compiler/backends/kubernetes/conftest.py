"""Fixtures of the Kubernetes backend's tests: the k8s-basic audit, rendered once per session.

The program runs under Pulumi's own mock runtime (no CLI, no cluster); rendering the
whole test audit takes about a second, so most tests share one rendering.
"""

from __future__ import annotations

from typing import Any

import pytest
from k8s_helpers import FIXTURE, STACK, load_graph

from compiler import Graph
from compiler.backends.kubernetes import KubernetesConfig, Rendering, render_manifests


@pytest.fixture(scope="session")
def graph() -> Graph:
    return load_graph(FIXTURE)


@pytest.fixture(scope="session")
def config() -> KubernetesConfig:
    return KubernetesConfig.model_validate(STACK)


@pytest.fixture(scope="session")
def rendering(graph: Graph, config: KubernetesConfig) -> Rendering:
    return render_manifests(graph, config)


@pytest.fixture(scope="session")
def jobs(rendering: Rendering, graph: Graph) -> dict[str, dict[str, Any]]:
    """Node name (`<name>` or `<name>/commit`) → its Job manifest."""
    found: dict[str, dict[str, Any]] = {}
    for resource in rendering.resources:
        if resource.kind == "Job":
            labels = resource.manifest["metadata"]["labels"]
            suffix = "/commit" if labels["auditc.io/role"] == "commit" else ""
            found[labels["auditc.io/name"] + suffix] = resource.manifest
    return found
