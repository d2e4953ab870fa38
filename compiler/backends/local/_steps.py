"""One workflow node, executed: its runner subprocesses, its log, its manifest.

Each step is `python -m runners.<step> CONFIG.json --result RESULT.json`, its stdout
and stderr appended to `<node dir>/_logs/<step>.log` (kept in a work directory and
copied into the store at the end when the store is not local). A run that a node
already has on record (a failed attempt, or a complete one that `--force` re-runs) is
kept in `<node dir>/_runs/<n>/` first: history is never overwritten.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from schemas import (
    CASE_DIR,
    CASE_HTML_FILE,
    AuditcError,
    Evaluation,
    InferenceService,
    Method,
    Store,
)

from ..._git import GitState
from ._configs import evaluation_config, import_config, ingest_config, method_config
from ._manifest import LOGS_DIR, StepOutcome, build_manifest
from ._processes import Cancelled, ChildProcess, Supervisor
from ._results import NodeResult
from ._services import ServicePool

if TYPE_CHECKING:
    from pydantic import BaseModel

    from ..._resolve import Graph, Node

__all__ = ["RunContext", "execute_node", "node_result"]

logger = logging.getLogger(__name__)

EVALUATION_GRACE_S = 2.0
"""Seconds past `timeouts.total` before the backend stops an evaluation client: the
client stops itself at its limit and commits the rows it holds; this is for one that
cannot. (Stopping starts with SIGTERM, which the client also answers by committing.)"""

_ERROR_TAIL_LINES = 20


@dataclass
class RunContext:
    """What every node of one run shares."""

    graph: Graph
    store: Store
    supervisor: Supervisor
    services: ServicePool
    work_dir: Path
    """Temporary: runner configs and results, and the logs of a remote store."""
    forced: frozenset[str] = frozenset()
    """Names of the nodes to re-run from scratch even if complete (`--force`)."""
    git: Callable[[], GitState] = field(default=GitState)
    """The project's git state, computed once, when the first manifest is written."""

    def log_dir(self, node: Node) -> Path:
        """Where a node's logs are written while it runs."""
        if self.store.is_local:
            path = Path(self.store.path(node.store_path, LOGS_DIR))
        else:
            path = self.work_dir / node.kind.lower() / node.name / node.id / LOGS_DIR
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def server_log_dir(self) -> Path:
        """Where servers log: shared by every evaluation that uses them, so outside any node
        (each evaluation keeps a copy of its servers' logs, taken when it ends)."""
        path = self.work_dir / "servers"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def log_location(self, node: Node, relative: str | None) -> str | None:
        """A node-relative log path as users can open it (a local path or a store URI)."""
        return self.store.uri_of(node.store_path, relative) if relative else None


@dataclass
class _StepRun:
    proc: ChildProcess
    log: Path
    result_file: Path
    log_relative: str
    started: float = field(default_factory=time.monotonic)


def execute_node(ctx: RunContext, node: Node) -> NodeResult:
    """Run one workflow node and record its manifest, complete or failed.

    Raises:
        Cancelled: the run was interrupted; nothing was recorded for this node.
    """
    started = datetime.now(UTC)
    t0 = time.monotonic()
    _prepare_node_dir(ctx, node)
    try:
        outcome = _STEPS[node.kind](ctx, node)
    except Cancelled:
        raise
    except AuditcError as exc:
        if ctx.supervisor.cancelled:
            raise Cancelled from exc
        # A server's log is quoted from the run's work directory; name the node's copy.
        message = str(exc).replace(str(ctx.server_log_dir), str(ctx.log_location(node, LOGS_DIR)))
        outcome = StepOutcome(error=message, log=_server_log(ctx, node))
    if ctx.supervisor.cancelled:
        raise Cancelled
    _upload_logs(ctx, node)
    finished = datetime.now(UTC)
    manifest = build_manifest(
        ctx.graph,
        node,
        outcome,
        started=started,
        finished=finished,
        git=ctx.git(),
        outputs=ctx.store.collect_outputs(node.store_path),
        run=ctx.store.next_run(node.store_path),
    )
    ctx.store.write_manifest(node.store_path, manifest)
    return node_result(
        ctx.store,
        node,
        "ran" if outcome.ok else "failed",
        duration_s=time.monotonic() - t0,
        rows=outcome.rows,
        metrics=outcome.metrics,
        error=outcome.error,
        log=ctx.log_location(node, outcome.log),
    )


def node_result(store: Store, node: Node, status: Any, **fields: Any) -> NodeResult:
    """A `NodeResult` for `node`, with its store URI and, for a SafetyCase, its report."""
    report = None
    if node.output_kind == "SafetyCase" and status in ("ran", "kept"):
        report = store.uri_of(node.store_path, CASE_DIR, CASE_HTML_FILE)
    return NodeResult(
        key=node.key,
        kind=node.kind,
        name=node.name,
        id=node.id,
        status=status,
        output_kind=node.output_kind,
        uri=store.uri_of(node.store_path),
        report=report,
        **fields,
    )


def _prepare_node_dir(ctx: RunContext, node: Node) -> None:
    """Keep the node's recorded run, then clear what a re-run must not mix with.

    A run on record (complete and forced, or failed) moves to `_runs/<n>/`. Datasets
    and methods then start from an empty directory. An evaluation keeps its committed
    parts (the client re-sends only the rows they miss) unless forced: its failed
    attempt's manifest and logs are kept, its parts stay for the resume.
    """
    resume = node.kind == "Evaluation" and node.name not in ctx.forced
    ctx.store.archive_run(node.store_path, resume=resume)
    if not resume:
        ctx.store.clear_node(node.store_path)


def _start_step(
    ctx: RunContext,
    node: Node,
    module: str,
    config: BaseModel,
    *,
    log_name: str,
    args: tuple[str, ...] = (),
) -> _StepRun:
    config_file = ctx.work_dir / f"{node.name}-{node.id}-{log_name}.json"
    result_file = config_file.with_suffix(".result.json")
    config_file.write_text(config.model_dump_json(indent=2))
    result_file.unlink(missing_ok=True)
    log = ctx.log_dir(node) / f"{log_name}.log"
    with open(log, "a", encoding="utf-8") as out:
        out.write(f"--- auditc run {datetime.now(UTC).isoformat(timespec='seconds')}: {module}\n")
    argv = [sys.executable, "-m", module, str(config_file), *args, "--result", str(result_file)]
    # What `ps -o comm` shows: a forked step's command line is its launcher's.
    name = "auditc-" + log_name.replace("evaluation", "eval")
    proc = ctx.supervisor.spawn(argv, log=log, name=name)
    return _StepRun(proc, log, result_file, f"{LOGS_DIR}/{log_name}.log")


def _finish_step(
    ctx: RunContext, run: _StepRun, timeout: float | None, limit: str = ""
) -> tuple[dict[str, Any], str | None]:
    """Wait for a step; its result (possibly empty) and its error, if it failed.

    `limit` names the time limit that `timeout` enforces, for the error message.
    """
    code = ctx.supervisor.wait(run.proc, timeout)
    result = _read_result(run.result_file)
    if code is None:
        took = time.monotonic() - run.started
        return result, f"stopped after {took:.0f} s: it ran past {limit or 'its time limit'}"
    if code != 0 or result.get("status") == "failed":
        message = result.get("message") or _error_from_log(run.log)
        return result, f"{message} (exit code {code})"
    if not result:
        return result, "the runner exited 0 but wrote no result"
    return result, None


def _read_result(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _error_from_log(log: Path) -> str:
    """The runner's own message: from its last `error` line to the end, else its last line."""
    try:
        lines = [line.rstrip() for line in log.read_text(errors="replace").splitlines()]
    except OSError:
        return "the runner failed and left no log"
    lines = [line for line in lines if line.strip()][-200:]
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].lower().startswith(("error", "auditc.")) or "Error:" in lines[i][:80]:
            found = "\n".join(lines[i : i + _ERROR_TAIL_LINES])
            return found[len("error: ") :] if found.startswith("error: ") else found
    return lines[-1] if lines else "the runner failed without a message"


def _dataset(ctx: RunContext, node: Node) -> StepOutcome:
    config = ingest_config(ctx.graph, node, ctx.store)
    run = _start_step(ctx, node, "runners.datasets", config, log_name="dataset")
    result, error = _finish_step(ctx, run, timeout=None)
    return StepOutcome(error=error, rows=result.get("rows"), log=run.log_relative)


def _method(ctx: RunContext, node: Node) -> StepOutcome:
    method = node.resource
    assert isinstance(method, Method)
    config = method_config(ctx.graph, node, ctx.store)
    run = _start_step(ctx, node, "runners.methods", config, log_name="method")
    timeout = method.spec.timeout
    result, error = _finish_step(ctx, run, timeout, limit=f"spec.timeout ({timeout:g} s)")
    metrics = {"scores": float(len(result["scores"]))} if result.get("scores") else {}
    return StepOutcome(error=error, rows=result.get("rows"), metrics=metrics, log=run.log_relative)


def _imported_evaluation(ctx: RunContext, node: Node) -> StepOutcome:
    config = import_config(ctx.graph, node, ctx.store)
    run = _start_step(ctx, node, "runners.imports", config, log_name="import")
    result, error = _finish_step(ctx, run, timeout=None)
    counts = ("samples", "epochs", "errors")
    metrics: dict[str, float] = {k: float(result[k]) for k in counts if k in result}
    return StepOutcome(error=error, rows=result.get("rows"), metrics=metrics, log=run.log_relative)


def _evaluation(ctx: RunContext, node: Node) -> StepOutcome:
    evaluation = node.resource
    assert isinstance(evaluation, Evaluation)
    spec = evaluation.spec
    if spec.service is None:
        return _imported_evaluation(ctx, node)
    key = (spec.service, spec.replicas)
    try:
        outcome = _run_evaluation(ctx, node, evaluation, key)
    finally:
        _copy_server_logs(ctx, node, spec.service)
    if outcome.ok:
        _finalize_parts(ctx, node)
    return outcome


def _finalize_parts(ctx: RunContext, node: Node) -> None:
    """Rewrite the shards' parts in the canonical layout: same rows, same bytes."""
    from runners.evaluation import finalize_parts

    finalize_parts(Store.open(ctx.store.uri_of(node.store_path)))


def _run_evaluation(
    ctx: RunContext, node: Node, evaluation: Evaluation, key: tuple[str, int]
) -> StepOutcome:
    spec = evaluation.spec
    assert spec.service is not None  # an imported Evaluation runs no service
    service = ctx.graph[spec.service].resource
    assert isinstance(service, InferenceService)
    ready = spec.timeouts.ready_s(service.spec.runner.kind)
    with ctx.services.use(key, log_dir=ctx.server_log_dir, ready_timeout=ready) as urls:
        runs: list[_StepRun] = []
        for i in range(spec.shards):
            config = evaluation_config(
                ctx.graph, node, ctx.store, base_url=urls[i % len(urls)], shard=(i, spec.shards)
            )
            name = "evaluation" if spec.shards == 1 else f"evaluation-{i}"
            shard_args = ("--shard", f"{i}/{spec.shards}")
            runs.append(
                _start_step(ctx, node, "runners.evaluation", config, log_name=name, args=shard_args)
            )
        total = spec.timeouts.total
        deadline = time.monotonic() + total + EVALUATION_GRACE_S
        limit = f"timeouts.total ({total:g} s)"
        finished = [
            _finish_step(ctx, run, max(0.1, deadline - time.monotonic()), limit) for run in runs
        ]
    outcome = _merge_shards(runs, finished, spec.shards)
    if outcome.error is not None and _all_rows_written(ctx, evaluation, outcome):
        outcome.error += (
            f"\nEvery row is written, so a plain re-run keeps them and fails the same way; "
            f"to send every row again: auditc run --select {node.name} --force"
        )
    return outcome


def _all_rows_written(ctx: RunContext, evaluation: Evaluation, outcome: StepOutcome) -> bool:
    """Whether the committed parts hold every (`_index_`, `_replication_`) of the evaluation.

    Then a re-run resumes with nothing to send, and its outcome cannot change.
    """
    assert evaluation.spec.dataset is not None
    dataset = ctx.store.read_manifest(ctx.graph[evaluation.spec.dataset].store_path)
    if dataset is None or dataset.rows is None or outcome.rows is None:
        return False
    return outcome.rows >= dataset.rows * evaluation.spec.replications


_SUMMED = ("errors", "requests", "retries", "resumed_rows", "concurrency")
"""Counts of the shards' results that the manifest's metrics sum (concurrency: the total in
flight at the end, with `concurrency: auto` where each shard's controller got to)."""


def _merge_shards(
    runs: list[_StepRun], finished: list[tuple[dict[str, Any], str | None]], shards: int
) -> StepOutcome:
    """One outcome for all shards: counts summed, the first failure's log kept."""
    metrics = {k: float(sum(r.get(k) or 0 for r, _ in finished)) for k in _SUMMED}
    if any("in_flight_s" in r for r, _ in finished):
        metrics["in_flight_s"] = float(max(r.get("in_flight_s") or 0 for r, _ in finished))
    rows = sum(int(r.get("rows") or 0) for r, _ in finished)
    failures = [
        (i, run, err) for i, (run, (_, err)) in enumerate(zip(runs, finished, strict=True)) if err
    ]
    # Every shard asks the same service: the first fingerprint taken stands for all.
    fingerprint = next(
        (r["service_fingerprint"] for r, _ in finished if r.get("service_fingerprint")), None
    )
    if not failures:
        return StepOutcome(
            rows=rows, metrics=metrics, log=runs[0].log_relative, service_fingerprint=fingerprint
        )
    if shards == 1:
        error = failures[0][2]
    else:
        error = "\n".join(f"shard {i}/{shards}: {err}" for i, _, err in failures)
    return StepOutcome(
        error=error,
        rows=rows,
        metrics=metrics,
        log=failures[0][1].log_relative,
        service_fingerprint=fingerprint,
    )


def _server_log(ctx: RunContext, node: Node) -> str | None:
    """The log of a server this node started, when starting it is what failed."""
    if node.kind != "Evaluation":
        return None
    logs = sorted(ctx.log_dir(node).glob("server-*.log"))
    return f"{LOGS_DIR}/{logs[0].name}" if logs else None


def _copy_server_logs(ctx: RunContext, node: Node, service: str) -> None:
    """Copy the logs of the service's servers, as they are now, into the evaluation's logs.

    A server outlives the evaluation that started it when others use it too, so it
    logs outside every node; each evaluation keeps what had been logged when it ended
    (a node's files never change once its manifest is written).
    """
    for path in sorted(ctx.server_log_dir.glob(f"server-{service}-*.log")):
        with contextlib.suppress(OSError):
            (ctx.log_dir(node) / path.name).write_bytes(path.read_bytes())


def _upload_logs(ctx: RunContext, node: Node) -> None:
    """Copy a remote store's logs from the work directory into the node directory."""
    if ctx.store.is_local:
        return
    local = ctx.log_dir(node)
    for path in sorted(local.glob("*.log")):
        with contextlib.suppress(OSError):
            ctx.store.write_output(path.read_bytes(), node.store_path, f"{LOGS_DIR}/{path.name}")


_STEPS: dict[str, Callable[[RunContext, Node], StepOutcome]] = {
    "Dataset": _dataset,
    "Evaluation": _evaluation,
    "Method": _method,
}
