"""The stack's GPU-hour budget (`auditc:budget.gpuHours`), checked before anything runs.

A deployment spends GPU time on the Evaluations that are not complete in the store (a
complete one is skipped by its pods: they resume from the committed parts). Each counts
at its estimate (`compiler._estimate`: rows ÷ a declared or measured throughput), or
at its deadline when no estimate exists, so an unknown cost never slips under the
budget. `compile` and the Pulumi program (hence `pulumi preview`) fail above it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from schemas import BackendError, Evaluation, Manifest

from ..._estimate import estimate_costs
from ._stack_config import KubernetesConfig

if TYPE_CHECKING:
    from ..._resolve import Graph

__all__ = ["check_budget"]


def check_budget(
    graph: Graph, config: KubernetesConfig, manifests: Iterable[Manifest] | None
) -> float | None:
    """The GPU-hours this deployment would spend, checked against the stack's budget.

    Args:
        graph: the graph the stack deploys.
        config: the stack settings.
        manifests: what the store holds; None when it could not be read (every
            Evaluation counts then).

    Returns:
        The GPU-hours counted, or None when the stack sets no budget.

    Raises:
        BackendError: they exceed `auditc:budget.gpuHours`.
    """
    budget = config.budget.gpu_hours
    if budget is None:
        return None
    held = list(manifests or [])
    complete = {(f"{m.kind}/{m.name}", m.id) for m in held if m.status == "complete"}
    to_run = [
        node.key
        for node in graph
        if isinstance(node.resource, Evaluation) and (node.key, node.id) not in complete
    ]
    costs = [c for c in estimate_costs(graph, to_run, held) if c.gpus]
    total = sum(c.budget_gpu_hours for c in costs)
    if total <= budget:
        return total
    costs.sort(key=lambda c: c.budget_gpu_hours, reverse=True)
    lines = [
        f"  {c.key}: {c.gpus} GPU(s) × "
        + (
            f"{c.hours:.2f} h estimated"
            if c.hours is not None
            else f"{c.max_hours:.2f} h (its deadline: {c.basis})"
        )
        + f" = {c.budget_gpu_hours:.1f} GPU-hours"
        for c in costs[:10]
    ]
    store = (
        "" if manifests is not None else " (the store could not be read: every evaluation counts)"
    )
    raise BackendError(
        f"auditc:budget.gpuHours is {budget:g}, but this deployment would spend "
        f"{total:.1f} GPU-hours on {len(costs)} evaluation(s) not yet complete in the "
        f"store{store}:\n" + "\n".join(lines) + "\nrun fewer (auditc:select), declare "
        "resources.throughput where the deadline is counted, or raise the budget"
    )
