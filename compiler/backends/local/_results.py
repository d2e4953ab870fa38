"""What a local run reports: one typed result per workflow node, and progress events."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["NodeOutcome", "NodeResult", "RunEvent", "RunResult", "EventHandler"]

NodeOutcome = Literal["ran", "kept", "failed", "skipped"]
"""`ran`: executed and complete now; `kept`: already complete in the store;
`failed`: executed and failed (manifest status `failed`); `skipped`: not run
because an upstream node failed."""


@dataclass(frozen=True)
class NodeResult:
    """The outcome of one workflow node (Dataset, Evaluation or Method)."""

    key: str
    """`Kind/name`."""
    kind: str
    name: str
    id: str
    status: NodeOutcome
    output_kind: str
    """`Dataset`, `Evaluation`, `Measurement` or `SafetyCase`."""
    uri: str
    """The node directory in the store (a local path for local stores)."""
    duration_s: float = 0.0
    rows: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    """Why it failed (`failed`) or was skipped (`skipped`)."""
    log: str | None = None
    """Where the step's log is (a local path or a store URI)."""
    report: str | None = None
    """A SafetyCase's `index.html` (a local path or a store URI)."""

    @property
    def short_id(self) -> str:
        """The first 12 characters of the id, as progress lines show it."""
        return self.id[:12]


@dataclass(frozen=True)
class RunResult:
    """Every workflow node of a run, in topological order."""

    nodes: list[NodeResult]
    store: str
    """URI of the store the run used."""

    @property
    def ok(self) -> bool:
        """Whether no node failed or was skipped."""
        return not any(n.status in ("failed", "skipped") for n in self.nodes)

    @property
    def nothing_to_do(self) -> bool:
        """Whether every node was already complete in the store."""
        return all(n.status == "kept" for n in self.nodes)

    def by_status(self, status: NodeOutcome) -> list[NodeResult]:
        """The nodes that ended with `status`."""
        return [n for n in self.nodes if n.status == status]

    def __getitem__(self, name: str) -> NodeResult:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)


@dataclass(frozen=True)
class RunEvent:
    """Progress of a run, for a caller that displays it (the CLI).

    `phase` is `start` when a node begins, `finish` when it ends (ran, failed or
    skipped; `result` is set), and `service` when an inference server starts or stops
    (`message` says which and where).
    """

    phase: Literal["start", "finish", "service"]
    key: str
    id: str
    result: NodeResult | None = None
    message: str | None = None


EventHandler = Callable[[RunEvent], None]
"""Receives events from worker threads; must be thread-safe."""
