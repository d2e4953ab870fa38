"""What a run will cost before it runs: GPU-hours (and CPU-hours) of each Evaluation.

An Evaluation's pods (one per shard) each hold its service's GPUs while their share
of the rows goes through the server. Its time is estimated as

    start-up + rows × replications ÷ shards ÷ throughput

where `rows` is the dataset's (from the store's manifest of that dataset, else counted
in its file), and `throughput` is rows per second of one server: the service's
declared `resources.throughput`, else what the store measured on the last complete
run of an Evaluation of the same service (rows ÷ duration ÷ shards, preferring a run
of this very service id; when that run recorded how long its requests were in flight,
the rest of its duration is the start-up, paid once per pod). Without either, the
estimate is unknown and only its upper
bound is given: the Job's deadline, `timeouts.total + timeouts.ready`, per pod.

GPU-hours = GPUs per pod × shards × hours; CPU-hours the same with the service's
`resources.cpu` (`external` services run no server: no GPUs, no CPU). Datasets and
Methods are not estimated (they run on CPU and are short next to evaluations).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from schemas import Dataset, Evaluation, InferenceService, Manifest

from ._resolve import Graph, Node

if TYPE_CHECKING:
    from ._plan import Plan

__all__ = [
    "CostBasis",
    "NodeCost",
    "Throughputs",
    "estimate_costs",
    "evaluation_cost",
    "format_hours",
    "render_costs_markdown",
    "render_costs_text",
    "store_manifests",
    "with_costs",
]

logger = logging.getLogger(__name__)


class NodeCost(BaseModel):
    """The estimated cost of running one Evaluation once."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    """`Evaluation/name`."""
    gpus: int
    """GPUs its pods ask for at once: GPUs per server × shards (0: CPU or external)."""
    cpus: float
    """CPU cores of its servers at once."""
    hours: float | None
    """Estimated wall time of each pod; None when no throughput is known."""
    max_hours: float
    """The deadline of each pod: an upper bound."""
    basis: str
    """How the estimate was made, for people."""

    @property
    def gpu_hours(self) -> float | None:
        """GPUs × estimated hours (None when the time is unknown)."""
        return None if self.hours is None else self.gpus * self.hours

    @property
    def max_gpu_hours(self) -> float:
        """GPUs × the deadline."""
        return self.gpus * self.max_hours

    @property
    def cpu_hours(self) -> float | None:
        """Server CPU cores × estimated hours."""
        return None if self.hours is None else self.cpus * self.hours

    @property
    def budget_gpu_hours(self) -> float:
        """What a budget counts: the estimate, else the deadline's bound."""
        estimate = self.gpu_hours
        return estimate if estimate is not None else self.max_gpu_hours


@dataclass(frozen=True)
class CostBasis:
    """A throughput: rows per second of one server, and where it comes from."""

    rows_per_s: float
    source: str
    overhead_s: float = 0.0
    """Seconds each pod spends besides sending rows (start-up, loading the model), as
    measured: the run's duration less the time requests were in flight."""


@dataclass
class Throughputs:
    """Throughputs the store measured, by service name and by service id."""

    by_id: dict[str, CostBasis] = field(default_factory=dict)
    by_name: dict[str, CostBasis] = field(default_factory=dict)

    @classmethod
    def from_manifests(cls, manifests: Iterable[Manifest]) -> Throughputs:
        """The newest complete Evaluation run of each service (by id and by name)."""
        found = cls()
        newest: dict[str, Manifest] = {}
        for manifest in manifests:
            if manifest.kind != "Evaluation" or manifest.status != "complete":
                continue
            if not manifest.rows or manifest.duration_s <= 0:
                continue
            for key, node_id in manifest.upstream.items():
                if not key.startswith("InferenceService/"):
                    continue
                for index in (f"id:{node_id}", f"name:{key}"):
                    if index not in newest or manifest.finished_at > newest[index].finished_at:
                        newest[index] = manifest
        for index, manifest in newest.items():
            spec = manifest.spec.get("spec", manifest.spec)
            shards = int(spec.get("shards", 1) or 1) if isinstance(spec, dict) else 1
            rows = (manifest.rows or 0) / shards
            # The client records how long requests were in flight; the rest of the run
            # (server start, model load) is paid once per pod whatever the rows.
            busy = manifest.metrics.get("in_flight_s", 0.0)
            if 0 < busy <= manifest.duration_s:
                rate, overhead = rows / busy, manifest.duration_s - busy
                how = f"{busy:.1f} s sending, {overhead:.1f} s start-up"
            else:
                rate, overhead = rows / manifest.duration_s, 0.0
                how = f"in {manifest.duration_s:.1f} s"
            basis = CostBasis(
                rate,
                f"measured on Evaluation/{manifest.name} {manifest.id[:10]}: "
                f"{manifest.rows} rows, {how}",
                overhead,
            )
            kind, _, value = index.partition(":")
            (found.by_id if kind == "id" else found.by_name)[value] = basis
        return found


def _count_file_rows(path: Path) -> int | None:
    """Rows of a data file, without loading it (None for formats that need a reader)."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".jsonl", ".ndjson"):
            with path.open("rb") as handle:
                return sum(1 for line in handle if line.strip())
        if suffix == ".csv":
            with path.open(newline="", encoding="utf-8") as handle:
                return max(0, sum(1 for _ in csv.reader(handle)) - 1)
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
    except (OSError, ImportError, ValueError) as exc:
        logger.debug("cannot count the rows of %s: %s", path, exc)
    return None


def _dataset_rows(graph: Graph, node: Node, stored: dict[str, int]) -> int | None:
    if node.id in stored:
        return stored[node.id]
    dataset = node.resource
    assert isinstance(dataset, Dataset)
    if dataset.spec.file is None:
        return None  # a Hub dataset not ingested yet
    base = (graph.root / node.location.file).parent
    return _count_file_rows(base / dataset.spec.file.path)


def evaluation_cost(
    graph: Graph, node: Node, throughputs: Throughputs, dataset_rows: dict[str, int]
) -> NodeCost:
    """The cost of one Evaluation (see the module docstring)."""
    evaluation = node.resource
    assert isinstance(evaluation, Evaluation)
    spec = evaluation.spec
    assert spec.service is not None and spec.dataset is not None
    service_node = graph[spec.service]
    service = service_node.resource
    assert isinstance(service, InferenceService)
    external = service.spec.runner.kind == "external"
    accelerator = service.spec.resources.accelerator
    per_pod_gpus = 0 if external or accelerator is None else accelerator.count
    cpus = 0.0 if external else _cores(service.spec.resources.cpu) * spec.shards
    max_hours = (spec.timeouts.total + spec.timeouts.ready_s(service.spec.runner.kind)) / 3600
    rows = _dataset_rows(graph, graph[spec.dataset], dataset_rows)
    declared = service.spec.resources.throughput
    basis: CostBasis | None = None
    if declared is not None:
        basis = CostBasis(declared, f"declared {declared:g} rows/s")
    else:
        basis = throughputs.by_id.get(service_node.id) or throughputs.by_name.get(service.name)
        if basis is not None and service_node.id not in throughputs.by_id:
            basis = CostBasis(
                basis.rows_per_s, basis.source + ", an earlier version", basis.overhead_s
            )
    if rows is None or basis is None:
        why = "rows unknown" if rows is None else "no throughput declared or measured"
        return NodeCost(
            key=node.key,
            gpus=per_pod_gpus * spec.shards,
            cpus=cpus,
            hours=None,
            max_hours=max_hours,
            basis=f"{why}: at most the deadline",
        )
    total = rows * spec.replications
    hours = (basis.overhead_s + total / spec.shards / basis.rows_per_s) / 3600
    return NodeCost(
        key=node.key,
        gpus=per_pod_gpus * spec.shards,
        cpus=cpus,
        hours=min(hours, max_hours),
        max_hours=max_hours,
        basis=(f"{basis.overhead_s:.0f} s + " if basis.overhead_s else "")
        + f"{total} rows ÷ {spec.shards} shard(s) ÷ {basis.rows_per_s:.3g} rows/s "
        f"({basis.source})",
    )


def estimate_costs(
    graph: Graph, keys: Iterable[str], manifests: Iterable[Manifest] = ()
) -> list[NodeCost]:
    """The cost of each Evaluation among `keys` (`Kind/name`), in graph order.

    Args:
        graph: the resolved graph.
        keys: the nodes that would run (others are free).
        manifests: what the store holds (measured throughputs, ingested row counts).
    """
    held = list(manifests)
    throughputs = Throughputs.from_manifests(held)
    rows = {
        m.id: m.rows
        for m in held
        if m.kind == "Dataset" and m.status == "complete" and m.rows is not None
    }
    wanted = set(keys)
    return [
        evaluation_cost(graph, node, throughputs, rows)
        for node in graph
        if node.key in wanted
        and isinstance(node.resource, Evaluation)
        and node.resource.spec.service is not None  # an imported one runs no server
    ]


def _cores(quantity: str) -> float:
    """A CPU quantity (`500m`, `2`) in cores."""
    if quantity.endswith("m"):
        return float(quantity[:-1]) / 1000
    try:
        return float(quantity)
    except ValueError:
        return 1.0


def with_costs(plan: Plan, graph: Graph, manifests: Iterable[Manifest] | None) -> Plan:
    """`plan` with the estimated cost of each Evaluation it creates or re-runs."""
    keys = [e.key for e in plan.entries if e.action in ("create", "re-run")]
    return plan.model_copy(update={"costs": estimate_costs(graph, keys, manifests or [])})


def store_manifests(uri: str) -> list[Manifest] | None:
    """What a store holds, for estimates: [] when it does not exist, None when it cannot
    be read (said in a warning).

    Estimates are advice: an unreadable store means no measured throughputs, not an error.
    """
    from schemas import AuditcError, Store, local_manifests

    try:
        if "://" not in uri:
            local = Path(uri).expanduser()
            return list(local_manifests(local)) if local.is_dir() else []
        return list(Store.open(uri, create=False).manifests())
    except (AuditcError, OSError, ImportError) as exc:
        logger.warning("no measured throughputs: cannot read the store %s: %s", uri, exc)
        return None


def format_hours(value: float | None) -> str:
    """Hours to read at a glance: `?`, `0`, two significant digits below 0.01 (a CPU
    evaluation of seconds still shows), two decimals below 10, one above."""
    if value is None:
        return "?"
    if value == 0:
        return "0"
    if value < 0.01:
        return f"{value:.2g}"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def _totals(costs: list[NodeCost]) -> tuple[float, float, int, float, int]:
    known = [c.gpu_hours for c in costs if c.gpu_hours is not None and c.gpus]
    unknown = sum(1 for c in costs if c.gpu_hours is None and c.gpus)
    cpu = [c.cpu_hours for c in costs if c.cpu_hours is not None]
    cpu_unknown = sum(1 for c in costs if c.cpu_hours is None and c.cpus)
    return sum(known), sum(c.max_gpu_hours for c in costs), unknown, sum(cpu), cpu_unknown


def _total_line(costs: list[NodeCost]) -> str:
    gpu, gpu_max, unknown, cpu, cpu_unknown = _totals(costs)
    line = f"GPU-hours: {format_hours(gpu)} estimated, at most {format_hours(gpu_max)} by the deadlines"
    if unknown:
        line += f" ({unknown} evaluation(s) without an estimate)"
    line += f"; CPU-hours of servers: {format_hours(cpu)}"
    if cpu_unknown:
        line += f" (+{cpu_unknown} without an estimate)"
    return line


def render_costs_text(costs: list[NodeCost]) -> list[str]:
    """Lines for the text plan: the totals, then one line per evaluation that would run."""
    if not costs:
        return []
    lines = ["", _total_line(costs)]
    for cost in costs:
        hardware = f"{cost.gpus} GPU(s)" if cost.gpus else f"{cost.cpus:g} CPU(s)"
        amount = cost.gpu_hours if cost.gpus else cost.cpu_hours
        unit = "GPU-h" if cost.gpus else "CPU-h"
        bound = cost.max_gpu_hours if cost.gpus else cost.cpus * cost.max_hours
        lines.append(
            f"  {cost.key}: {hardware} × {format_hours(cost.hours)} h = {format_hours(amount)} {unit} "
            f"(at most {format_hours(bound)}); {cost.basis}"
        )
    return lines


def render_costs_markdown(costs: list[NodeCost]) -> list[str]:
    """A table for the Markdown plan (a PR comment): per evaluation and in total."""
    if not costs:
        return []
    lines = [
        "",
        f"**{_total_line(costs)}**",
        "",
        "| evaluation | GPUs | hours (est.) | GPU-hours | at most | how |",
        "|---|---|---|---|---|---|",
    ]
    for cost in costs:
        lines.append(
            f"| `{cost.key}` | {cost.gpus} | {format_hours(cost.hours)} | {format_hours(cost.gpu_hours)} | "
            f"{format_hours(cost.max_gpu_hours)} | {cost.basis.replace('|', '/')} |"
        )
    return lines
