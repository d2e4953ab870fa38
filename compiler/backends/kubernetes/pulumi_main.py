"""The Pulumi program that `Pulumi.yaml` runs (`main: compiler/backends/kubernetes/pulumi_main.py`).

`pulumi preview` / `pulumi up` run this file: it reads the stack's `auditc:` settings,
loads and resolves the specs they name (relative to the directory of Pulumi.yaml),
and declares the graph's Kubernetes resources with `deploy`. It uploads nothing:
run `auditc push --store <store>` before `pulumi up`.

User errors (invalid specs, bad stack settings) end the program with Pulumi's
`RunError`, which prints the message without a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi

from compiler import load_project, resolve_graph
from compiler.backends.kubernetes import CONFIG_NAMESPACE, KubernetesConfig, deploy
from schemas import AuditcError

__all__ = ["main", "stack_settings"]


def stack_settings() -> dict[str, Any]:
    """The stack's `auditc:` keys, with structured values decoded (objects, lists, booleans)."""
    config = pulumi.Config(CONFIG_NAMESPACE)
    found: dict[str, Any] = {}
    for name, field in KubernetesConfig.model_fields.items():
        key = field.alias or name
        text = config.get(key)
        if text is None:
            continue
        try:
            found[key] = json.loads(text)
        except ValueError:
            found[key] = text  # a plain string such as `audits`
    return found


def _project_root() -> Path:
    """The directory of Pulumi.yaml, where the specs' paths start."""
    given = Path(pulumi.get_root_directory() or ".")
    # Pulumi's test mocks report a placeholder; the engine runs programs in the project
    # directory, so the working directory is the fallback.
    return given.resolve() if given.is_dir() else Path.cwd()


def main() -> dict[str, Any]:
    """Load the stack's specs and declare their resources; returns the stack outputs."""
    root = _project_root()
    try:
        config = KubernetesConfig.from_mapping(
            stack_settings(),
            f"stack {pulumi.get_stack()} (stacks/Pulumi.{pulumi.get_stack()}.yaml)",
        )
        graph = resolve_graph(load_project(root, [root / path for path in config.specs]))
        if config.select:
            graph = graph.select(config.select)
        return deploy(graph, config)
    except AuditcError as exc:
        raise pulumi.RunError(str(exc)) from None


if __name__ == "__main__":
    main()
