"""Which workflows a change of stack settings re-runs on Kubernetes, and why.

A node keeps its id when only the stack changes, yet its Job can still run again:
pulumi-kubernetes replaces a Job whose `spec.template`, name or namespace changed (a
Job's pod template cannot be updated in place), and our Jobs are deleted before they
are replaced, so the workflow runs again under the same name. The runner image,
resources, placement, Secrets, the store and labels all come from the stack; a change
of a Job's ConfigMap (the runner configs, which carry store URIs and images) reaches
its template through the config-hash annotation.

`stack_reruns(graph, before, after)` renders the graph with both settings under
Pulumi's mock runtime and compares, per workflow node, its Jobs' templates, names and
namespaces, and its ConfigMap: each difference becomes a reason, with the old and new
value. Other Job fields (deadlines, back-off limits, TTL) are updated in place and do
not re-run anything.

`stack_config_at(project, stack, ref)` reads the stack file as it was at a git ref, the
baseline of `auditc plan --stack NAME`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._stack_config import KubernetesConfig, load_stack_text, stack_file

if TYPE_CHECKING:
    from ..._plan import Plan
    from ..._resolve import Graph
    from ._render import Rendering

__all__ = ["StackBaseline", "apply_stack_reruns", "stack_config_at", "stack_reruns"]

_CONFIG_HASH = "auditc.io/config-hash"
_SYNC_WAVE = "argocd.argoproj.io/sync-wave"
_VALUE_CHARS = 60


@dataclass(frozen=True)
class StackBaseline:
    """The stack settings a plan compares with, and where they came from."""

    config: KubernetesConfig | None
    """None when the stack file did not exist at that ref (every Job would be new)."""
    description: str


def stack_config_at(project_dir: Path, stack: str, ref: str) -> StackBaseline:
    """The stack's settings as committed at `ref`.

    Raises:
        GitError: `ref` cannot be read (not a repository, unknown ref).
        SpecValidationError: the stack file at `ref` is invalid.
    """
    from ..._git import read_file_at

    path = stack_file(project_dir, stack)
    text = read_file_at(project_dir, ref, path.relative_to(project_dir))
    description = f"stack {stack} at {ref}"
    if text is None:
        return StackBaseline(None, f"{description} (no stacks/{path.name} there)")
    return StackBaseline(
        load_stack_text(text, f"{path.relative_to(project_dir)} at {ref}"), description
    )


def stack_reruns(
    graph: Graph, before: KubernetesConfig | None, after: KubernetesConfig
) -> dict[str, list[str]]:
    """`Kind/name` → why its Jobs are replaced, for each workflow node the change re-runs.

    Args:
        graph: the graph now (a node whose id changed re-runs anyway).
        before: the settings it was deployed with; None if the stack is new.
        after: the settings now.
    """
    from ._render import render_manifests

    new = _by_node(graph, render_manifests(graph, after))
    if before is None:
        return {key: ["the stack is new: every Job is created"] for key in new}
    if before == after:
        return {}
    old = _by_node(graph, render_manifests(graph, before))
    found: dict[str, list[str]] = {}
    for key, objects in new.items():
        reasons = list(_reasons(old.get(key, {}), objects))
        if reasons:
            found[key] = reasons
    return found


def _by_node(graph: Graph, rendering: Rendering) -> dict[str, dict[str, dict[str, Any]]]:
    """Node key → {"Job", "commit Job", "ConfigMap"} → manifest."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for resource in rendering.resources:
        labels = resource.manifest["metadata"].get("labels") or {}
        name = labels.get("auditc.io/name")
        if resource.kind not in ("Job", "ConfigMap") or name not in graph.nodes:
            continue
        node = graph[name]
        if not node.is_workflow:
            continue
        role = "commit Job" if labels.get("auditc.io/role") == "commit" else resource.kind
        found.setdefault(node.key, {})[role] = resource.manifest
    return found


def _reasons(old: Mapping[str, dict[str, Any]], new: Mapping[str, dict[str, Any]]) -> Iterator[str]:
    for role in ("Job", "commit Job"):
        if role not in new:
            continue
        if role not in old:
            yield f"its {role} is new"
            continue
        before, after = old[role], new[role]
        for field in ("name", "namespace"):
            yield from _changes(
                f"{role} metadata.{field}",
                before["metadata"].get(field),
                after["metadata"].get(field),
            )
        yield from _changes(
            f"{role} pod template",
            _template(before),
            _template(after),
        )
    if "ConfigMap" in old and "ConfigMap" in new:
        for file in sorted(
            set(old["ConfigMap"].get("data", {})) | set(new["ConfigMap"].get("data", {}))
        ):
            yield from _changes(
                f"ConfigMap {file}",
                _parsed(old["ConfigMap"].get("data", {}).get(file)),
                _parsed(new["ConfigMap"].get("data", {}).get(file)),
            )


def _template(job: Mapping[str, Any]) -> Any:
    """The pod template without the ConfigMap's hash (its change is shown file by file)."""
    template = json.loads(json.dumps(job["spec"]["template"]))
    annotations = template.get("metadata", {}).get("annotations", {})
    annotations.pop(_CONFIG_HASH, None)
    annotations.pop(_SYNC_WAVE, None)
    return template


def _parsed(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _changes(label: str, old: Any, new: Any, path: str = "") -> Iterator[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            yield from _changes(
                label, old.get(key), new.get(key), f"{path}.{key}" if path else str(key)
            )
        return
    if _named_list(old) and _named_list(new):
        before = {item["name"]: item for item in old}
        after = {item["name"]: item for item in new}
        for name in [*after, *(n for n in before if n not in after)]:
            yield from _changes(label, before.get(name), after.get(name), f"{path}[{name}]")
        return
    if old != new:
        where = f" {_short_path(path)}" if path else ""
        yield f"{label}{where}: {_show(old)} → {_show(new)}"


def _named_list(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(i, dict) and "name" in i for i in value)
    )


def _short_path(path: str) -> str:
    return path.removeprefix("spec.")


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    text = (
        value
        if isinstance(value, str)
        else json.dumps(value, sort_keys=True, separators=(",", ":"))
    )
    return text if len(text) <= _VALUE_CHARS else text[: _VALUE_CHARS - 1] + "…"


def apply_stack_reruns(result: Plan, reruns: Mapping[str, list[str]], baseline: str) -> Plan:
    """`result` with each node `reruns` names re-run (a kept one) or given more reasons.

    A node the plan creates keeps `create`; one it re-runs anyway gets the stack's
    reasons after its own.
    """
    from ..._plan import Plan, PlanEntry

    entries: list[PlanEntry] = []
    for entry in result.entries:
        reasons = reruns.get(entry.key)
        if not reasons or entry.action in ("create", "remove"):
            entries.append(entry)
            continue
        shown = [f"stack: {reason}" for reason in reasons]
        if entry.action == "keep":
            entries.append(entry.model_copy(update={"action": "re-run", "reasons": _cap(shown)}))
        else:
            entries.append(entry.model_copy(update={"reasons": _cap([*entry.reasons, *shown])}))
    return Plan(baseline=f"{result.baseline} and {baseline}", entries=entries)


def _cap(reasons: list[str], limit: int = 8) -> list[str]:
    if len(reasons) <= limit:
        return reasons
    return [*reasons[:limit], f"and {len(reasons) - limit} more changes"]
