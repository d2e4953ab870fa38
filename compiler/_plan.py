"""Stage 4, plan: a resolved `Graph` + a `Baseline` → a `Plan` of what a run would do.

The baseline is what already exists: the graph of another git ref
(`Baseline.from_graph`) or what a store holds (`Baseline.from_manifests`). Only
workflow nodes (Dataset, Evaluation, Method) are planned; configuration kinds
(Model, Module, InferenceService, InferenceSession) appear in the reasons of the
workflows that depend on them.

Pure: no files are read and nothing is written (the store's listing, which says
which complete nodes are damaged, is read by whoever builds the `Baseline`). `render_plan` turns a plan into
text, JSON (with a `schema_version`) or Markdown for a pull-request comment.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from schemas import WORKFLOW_KINDS, Manifest, Problem, UsageError, node_path

from ._estimate import NodeCost, render_costs_markdown, render_costs_text
from ._resolve import Graph, Node

__all__ = [
    "PLAN_SCHEMA_VERSION",
    "Action",
    "Baseline",
    "BaselineNode",
    "Plan",
    "PlanEntry",
    "PlanFormat",
    "plan",
    "render_plan",
]

PLAN_SCHEMA_VERSION: Literal[1] = 1
Action = Literal["create", "re-run", "damaged", "keep", "remove"]
PlanFormat = Literal["text", "json", "markdown"]
_ACTIONS: tuple[Action, ...] = ("create", "re-run", "damaged", "keep", "remove")
_SYMBOL: dict[Action, str] = {
    "create": "+",
    "re-run": "~",
    "damaged": "!",
    "keep": "=",
    "remove": "-",
}
_MAX_REASONS = 8
"""Reasons listed per node; the rest are counted."""


@dataclass(frozen=True)
class BaselineNode:
    """What the baseline knows about one node."""

    kind: str
    name: str
    id: str
    spec: dict[str, Any] | None = None
    """The spec as `model_dump(mode="json")`, names not replaced; None when unknown."""
    upstream: dict[str, str] = field(default_factory=dict)
    """`Kind/name` → id of its upstream nodes (direct ones at least; manifests list all)."""
    files: dict[str, str] = field(default_factory=dict)
    """Project-relative path → hash of each file it read."""
    complete: bool = True
    """False when the baseline holds it only as a failed run."""

    @property
    def key(self) -> str:
        """`Kind/name`."""
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class Baseline:
    """The nodes a plan compares against, by `Kind/name`, and a description for headers."""

    description: str
    nodes: dict[str, BaselineNode]
    complete: frozenset[tuple[str, str]] = frozenset()
    """(`Kind/name`, id) pairs held complete; a store may hold several ids per name."""
    damaged: Mapping[tuple[str, str], tuple[Problem, ...]] = field(default_factory=dict)
    """(`Kind/name`, id) pairs complete by their manifest whose files do not match it
    (missing, resized or unlisted files); not in `complete`."""

    @classmethod
    def empty(cls, description: str = "nothing") -> Baseline:
        """A baseline with no nodes: everything is created."""
        return cls(description, {})

    @classmethod
    def from_graph(cls, graph: Graph, description: str) -> Baseline:
        """Every node of a resolved graph (for `plan --against GIT_REF`)."""
        nodes = {node.key: _baseline_node(graph, node) for node in graph}
        return cls(description, nodes, frozenset((k, n.id) for k, n in nodes.items()))

    @classmethod
    def from_manifests(
        cls,
        manifests: Iterable[Manifest],
        description: str,
        *,
        damage: Callable[[str, Manifest], list[Problem]] | None = None,
    ) -> Baseline:
        """What a store holds: per `Kind/name` the newest complete manifest (else newest failed).

        Args:
            manifests: every manifest of the store.
            description: what the plan says it compares against.
            damage: given a complete node's path (`<kind>/<name>/<id>`) and manifest,
                what is wrong with its files (`schemas.listing_problems`); a node with
                problems is damaged, not complete. None: every complete node is sound.
        """
        chosen: dict[str, Manifest] = {}
        complete: set[tuple[str, str]] = set()
        damaged: dict[tuple[str, str], tuple[Problem, ...]] = {}
        for manifest in manifests:
            key = f"{manifest.kind}/{manifest.name}"
            if manifest.status == "complete":
                path = node_path(manifest.kind, manifest.name, manifest.id)
                problems = damage(path, manifest) if damage is not None else []
                if problems:
                    damaged[(key, manifest.id)] = tuple(problems)
                else:
                    complete.add((key, manifest.id))
            if key not in chosen or _newer(manifest, chosen[key]):
                chosen[key] = manifest
        nodes = {key: _manifest_node(m) for key, m in chosen.items()}
        return cls(description, nodes, frozenset(complete), damaged)


def _newer(candidate: Manifest, current: Manifest) -> bool:
    rank = (candidate.status == "complete", candidate.finished_at)
    return rank > (current.status == "complete", current.finished_at)


def _baseline_node(graph: Graph, node: Node) -> BaselineNode:
    upstream: dict[str, str] = {graph[name].key: graph[name].id for name in node.upstream}
    spec = node.resource.spec.model_dump(mode="json")
    return BaselineNode(node.kind, node.name, node.id, spec, upstream, dict(node.files))


def _manifest_node(manifest: Manifest) -> BaselineNode:
    spec: Any = manifest.spec
    # Backends store the whole resource (kind, name, spec, …); plans compare its spec.
    if isinstance(spec.get("spec"), dict) and "kind" in spec:
        spec = spec["spec"]
    return BaselineNode(
        manifest.kind,
        manifest.name,
        manifest.id,
        dict(spec) or None,
        dict(manifest.upstream),
        dict(manifest.input_files),
        manifest.status == "complete",
    )


class PlanEntry(BaseModel):
    """One planned node."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: Action
    kind: str
    name: str
    id: str | None
    """The node's id now (None for `remove`)."""
    previous_id: str | None = None
    """The id in the baseline (None for `create`)."""
    reasons: list[str] = []
    """Why it re-runs (changed fields, files or upstream nodes); for a damaged node,
    what is wrong with its files, what `run` does and how to mend it."""

    @property
    def key(self) -> str:
        """`Kind/name`."""
        return f"{self.kind}/{self.name}"


class Plan(BaseModel):
    """What a run would create, re-run, keep and remove, and which stored nodes are damaged;
    `plan.json` when written out."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = PLAN_SCHEMA_VERSION
    baseline: str
    """What the plan compares against (`git HEAD~1`, `store .auditc`)."""
    entries: list[PlanEntry]
    """Graph order (dependencies first), then removals."""
    note: str | None = None
    """Said under the summary, e.g. why no removals are listed."""
    costs: list[NodeCost] = []
    """Estimated GPU- and CPU-hours of each Evaluation that would run (`with_costs`)."""

    def of(self, action: Action) -> list[PlanEntry]:
        """The entries with one action."""
        return [e for e in self.entries if e.action == action]

    def counts(self) -> dict[str, int]:
        """Entries per action."""
        return {action: len(self.of(action)) for action in _ACTIONS}

    @property
    def has_changes(self) -> bool:
        """Whether anything would be created, re-run or removed, or is damaged."""
        return any(e.action != "keep" for e in self.entries)


def plan(graph: Graph, baseline: Baseline, *, removals: bool = True) -> Plan:
    """Compare a graph with a baseline, node by node.

    A workflow node whose id is complete in the baseline is kept; one whose
    `Kind/name` the baseline holds with another id (or only as a failed run) is
    re-run, with the reasons; others are created. A node whose id the baseline holds
    complete but with files that do not match its manifest is damaged: `auditc run`
    reports it failed and skips what depends on it. Baseline workflow nodes whose
    `Kind/name` is gone are removed.

    Args:
        graph: the resolved graph of the specs now.
        baseline: what exists already.
        removals: list baseline nodes the graph lacks as removed; off when the graph
            is a part of the project and the baseline a whole store (what the rest of
            the store holds belongs to other specs, not to removed ones).

    Returns:
        The plan, in graph order, removals last.

    Example:
        >>> plan(graph, Baseline.from_graph(old_graph, "git HEAD~1")).counts()  # doctest: +SKIP
        {'create': 0, 're-run': 2, 'keep': 5, 'remove': 0}
    """
    explainer = _Explainer(graph, baseline)
    entries: list[PlanEntry] = []
    for node in graph:
        if node.is_workflow:
            entries.append(_entry(node, baseline, explainer))
    keys = {node.key for node in graph}
    for key, old in baseline.nodes.items() if removals else ():
        if old.kind in WORKFLOW_KINDS and key not in keys:
            entries.append(
                PlanEntry(
                    action="remove",
                    kind=old.kind,
                    name=old.name,
                    id=None,
                    previous_id=old.id,
                    reasons=["no longer in the specs"],
                )
            )
    note = None
    if not removals:
        note = (
            "the specs are a part of the project, so nothing is listed as removed; "
            "`auditc gc --dry-run` lists what no spec references"
        )
    return Plan(baseline=baseline.description, entries=entries, note=note)


def _entry(node: Node, baseline: Baseline, explainer: _Explainer) -> PlanEntry:
    problems = baseline.damaged.get((node.key, node.id))
    if problems:
        return PlanEntry(
            action="damaged",
            kind=node.kind,
            name=node.name,
            id=node.id,
            previous_id=node.id,
            reasons=_damage_reasons(node, problems),
        )
    old = baseline.nodes.get(node.key)
    if (node.key, node.id) in baseline.complete:
        return PlanEntry(
            action="keep", kind=node.kind, name=node.name, id=node.id, previous_id=node.id
        )
    if old is None:
        return PlanEntry(action="create", kind=node.kind, name=node.name, id=node.id)
    reasons = ["the last run failed"] if old.id == node.id else explainer.reasons(node)
    return PlanEntry(
        action="re-run",
        kind=node.kind,
        name=node.name,
        id=node.id,
        previous_id=old.id,
        reasons=_cap(reasons),
    )


def _damage_reasons(node: Node, problems: tuple[Problem, ...]) -> list[str]:
    first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return [
        f"{first.file or first.node}: {first.kind}: {first.message}{more}",
        "`auditc run` reports it failed, keeps it as it is and skips what depends on it",
        f"`auditc run --force --select {node.name}` runs it again; "
        "`auditc verify` hashes every file and lists every problem",
    ]


def _cap(reasons: list[str]) -> list[str]:
    if len(reasons) <= _MAX_REASONS:
        return reasons
    return [*reasons[:_MAX_REASONS], f"and {len(reasons) - _MAX_REASONS} more changes"]


@dataclass
class _Explainer:
    """Says why a node's id differs from the baseline's, following config nodes upstream."""

    graph: Graph
    baseline: Baseline
    _memo: dict[str, list[str]] = field(default_factory=dict)

    def reasons(self, node: Node) -> list[str]:
        if node.name in self._memo:
            return self._memo[node.name]
        old = self.baseline.nodes.get(node.key)
        found: list[str] = []
        if old is not None:
            found += _spec_changes(old.spec, node.resource.spec.model_dump(mode="json"))
            found += _file_changes(old.files, node.files)
            found += self._upstream_changes(node, old)
        if not found:
            found = ["its id changed (the id rules, or an input not shown here)"]
        self._memo[node.name] = found
        return found

    def _upstream_changes(self, node: Node, old: BaselineNode) -> list[str]:
        found: list[str] = []
        for name in node.upstream:
            up = self.graph[name]
            before = old.upstream.get(up.key)
            if before is None and old.upstream:
                found.append(f"now depends on {up.key}")
            elif before is not None and before != up.id:
                found.append(self._describe_upstream(up))
        now = {self.graph[n].key for n in self.graph.upstream(node.name)}
        found += [f"no longer depends on {key}" for key in sorted(set(old.upstream) - now)]
        return found

    def _describe_upstream(self, up: Node) -> str:
        if up.is_workflow:
            return f"upstream {up.key} changed"
        # Configuration kinds are not planned themselves, so say what changed in them.
        inner = self.reasons(up) if up.key in self.baseline.nodes else []
        detail = f" ({'; '.join(inner[:3])}{'; …' if len(inner) > 3 else ''})" if inner else ""
        return f"upstream {up.key} changed{detail}"


def _spec_changes(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    if old is None:
        return []
    return [f"{path} changed" for path in _diff_paths(old, new, "spec")]


def _diff_paths(old: Any, new: Any, prefix: str) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        paths: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            label = f"`{key}`" if "." in str(key) else str(key)
            child = f"{prefix}.{label}"
            if key not in old or key not in new:
                paths.append(child)
            else:
                paths += _diff_paths(old[key], new[key], child)
        return paths
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        paths = []
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            paths += _diff_paths(a, b, f"{prefix}.{i}")
        return paths
    return [] if old == new else [prefix]


def _file_changes(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    found = [
        f"file {path} changed" for path in sorted(new) if path in old and old[path] != new[path]
    ]
    found += [f"reads {path}" for path in sorted(set(new) - set(old))]
    return found


# ---------------------------------------------------------------- rendering


def render_plan(result: Plan, format: PlanFormat = "text") -> str:
    """Render a plan as `text` (terminal), `json` (machines) or `markdown` (PR comments).

    Raises:
        UsageError: an unknown format.
    """
    if format == "text":
        return _render_text(result)
    if format == "json":
        return json.dumps(result.model_dump(mode="json"), indent=2) + "\n"
    if format == "markdown":
        return _render_markdown(result)
    raise UsageError(f"unknown plan format {format!r}; expected text, json or markdown")


def _summary(result: Plan) -> str:
    counts = result.counts()
    # Said only when there are some: a sound store's summary stays as it always was.
    damaged = f"{counts['damaged']} damaged, " if counts["damaged"] else ""
    return (
        f"{counts['create']} to create, {counts['re-run']} to re-run, {damaged}"
        f"{counts['keep']} to keep, {counts['remove']} to remove"
    )


def _render_text(result: Plan) -> str:
    lines = [f"Plan against {result.baseline}: {_summary(result)}."]
    if result.note:
        lines.append(f"Note: {result.note}.")
    for action in _ACTIONS:
        entries = result.of(action)
        if not entries:
            continue
        lines.append("")
        lines.append(f"{_SYMBOL[action]} {action} ({len(entries)})")
        for entry in entries:
            shown_id = entry.id if entry.id is not None else entry.previous_id
            was = f" (was {entry.previous_id})" if action == "re-run" and entry.previous_id else ""
            lines.append(f"  {_SYMBOL[action]} {entry.key}  {shown_id}{was}")
            if action in ("re-run", "damaged"):
                lines.extend(f"      {reason}" for reason in entry.reasons)
    lines += render_costs_text(result.costs)
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _render_markdown(result: Plan) -> str:
    lines = [f"### auditc plan against {_md(result.baseline)}", "", f"**{_summary(result)}**", ""]
    if result.note:
        lines += [f"_{_md(result.note)}._", ""]
    changed = [e for e in result.entries if e.action != "keep"]
    if changed:
        lines += ["| | resource | id | why |", "|---|---|---|---|"]
        for entry in changed:
            shown_id = entry.id or entry.previous_id or ""
            why = "; ".join(entry.reasons) or ("new" if entry.action == "create" else "")
            lines.append(
                f"| {_SYMBOL[entry.action]} {entry.action} | `{_md(entry.key)}` | "
                f"`{shown_id[:12]}` | {_md(why)} |"
            )
    else:
        lines.append("No workflow changes.")
    lines += render_costs_markdown(result.costs)
    kept = result.of("keep")
    if kept:
        lines += ["", f"<details><summary>{len(kept)} kept</summary>", ""]
        lines += [f"- `{_md(e.key)}` `{(e.id or '')[:12]}`" for e in kept]
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"
