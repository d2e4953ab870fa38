"""The local backend's entry point: run a graph's workflow nodes on this machine.

Nodes complete in the store are kept (their manifests are all a no-op run reads);
the rest run in topological order, up to `jobs` at a time, on a thread pool whose
threads only wait on runner subprocesses. A failed node's downstream nodes are
skipped; independent nodes still finish.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

from runners import private_bytecode_cache
from schemas import Evaluation, Method, Problem, Store, UsageError, check_files

from ..._git import git_state
from ..._resolve import Graph, Node
from ._processes import LaunchOptions, Supervisor
from ._results import EventHandler, NodeResult, RunEvent, RunResult
from ._services import ServiceKey, ServicePool
from ._steps import RunContext, execute_node, node_result
from ._workdirs import work_dir

__all__ = ["DEFAULT_JOBS", "run_local"]

logger = logging.getLogger(__name__)

DEFAULT_JOBS = 2
"""Workflow nodes run at the same time (`--jobs`)."""


def run_local(
    graph: Graph,
    store: Store | str | Path,
    *,
    jobs: int = DEFAULT_JOBS,
    force: bool = False,
    selected: Sequence[str] | None = None,
    on_event: EventHandler | None = None,
) -> RunResult:
    """Run the workflow nodes of `graph` that the store does not hold complete.

    Example:
        >>> graph = resolve_graph(load_project(root, [root / "audits"]))  # doctest: +SKIP
        >>> result = run_local(graph, root / ".auditc", jobs=4)             # doctest: +SKIP
        >>> [n.key for n in result.by_status("failed")]                     # doctest: +SKIP

    Args:
        graph: The resolved graph.
        store: Where outputs and manifests go (a `Store`, a URI or a local path).
        jobs: How many nodes may run at the same time.
        force: Re-run the selected nodes (every node without `selected`) even when
            they are complete.
        selected: Selectors as for `Graph.select` (`name`, `name+`); the nodes they
            need are included and run only when incomplete.
        on_event: Called (from worker threads) when a node starts or finishes and when
            a service starts or stops.

    Returns:
        One result per workflow node; `RunResult.ok` is False when a node failed.

    Raises:
        UsageError: `jobs` is below 1.
        GraphError: a selector names no resource.
        StoreError: the store cannot be read or written, or another run is writing
            to it (code `store-in-use`).
        KeyboardInterrupt: the run was interrupted; every child process was stopped
            first and nothing unfinished was recorded.
    """
    if jobs < 1:
        raise UsageError(f"--jobs must be at least 1 (got {jobs})")
    private_bytecode_cache()  # every runner started inherits it (runners/_bytecode.py)
    if not isinstance(store, Store):
        store = Store.open(store)
    chosen, forced = _selection(graph, selected, force)
    workflow = [node for node in chosen if node.is_workflow]
    results, to_run = _kept(store, workflow, forced)
    for result in results.values():
        if result.status == "failed":  # a complete node whose files were altered
            (on_event or _ignore)(RunEvent("finish", result.key, result.id, result=result))
    if to_run:
        damaged = frozenset(name for name, r in results.items() if r.status == "failed")
        results.update(_execute(chosen, store, to_run, jobs, forced, damaged, on_event or _ignore))
    ordered = [results[n.name] for n in chosen if n.name in results]
    return RunResult(ordered, store.uri)


def _kept(
    store: Store, nodes: list[Node], forced: frozenset[str]
) -> tuple[dict[str, NodeResult], list[Node]]:
    """The results of the nodes complete in the store, and the nodes still to run."""
    kept: dict[str, NodeResult] = {}
    to_run: list[Node] = []
    for node in nodes:
        manifest = None if node.name in forced else store.read_manifest(node.store_path)
        if manifest is not None and manifest.status == "complete":
            # Sizes only (no hashing): a no-op run stays a listing; `auditc verify` hashes.
            problems = check_files(store, node.store_path, manifest, hashes=False)
            if problems:
                kept[node.name] = node_result(
                    store, node, "failed", error=_tampered(node, problems)
                )
                continue
            kept[node.name] = node_result(
                store,
                node,
                "kept",
                duration_s=manifest.duration_s,
                rows=manifest.rows,
                metrics=manifest.metrics,
                log=store.uri_of(node.store_path, manifest.log) if manifest.log else None,
            )
        else:
            to_run.append(node)
    return kept, to_run


def _tampered(node: Node, problems: list[Problem]) -> str:
    shown = "; ".join(p.render() for p in problems[:3])
    more = f" and {len(problems) - 3} more" if len(problems) > 3 else ""
    return (
        f"its files do not match its manifest ({shown}{more}); kept as it is — "
        f"`auditc verify` lists every problem, `auditc run --force --select {node.name}` "
        "runs it again (the altered run is kept in _runs/)"
    )


def _ignore(event: RunEvent) -> None:
    pass


def _selection(
    graph: Graph, selected: Sequence[str] | None, force: bool
) -> tuple[Graph, frozenset[str]]:
    """The subgraph to consider and the names `--force` applies to."""
    if not selected:
        return graph, frozenset(graph.nodes) if force else frozenset()
    chosen = graph.select(selected)
    named: set[str] = set()
    for raw in selected:
        name = raw.strip("+")
        named.add(name)
        if raw.endswith("+"):
            named |= graph.downstream(name)
    return chosen, frozenset(named) if force else frozenset()


def _service_demand(to_run: list[Node]) -> dict[ServiceKey, int]:
    """How many evaluations of this run will use each (service, replicas)."""
    demand: dict[ServiceKey, int] = {}
    for node in to_run:
        if isinstance(node.resource, Evaluation) and node.resource.spec.service is not None:
            key = (node.resource.spec.service, node.resource.spec.replicas)
            demand[key] = demand.get(key, 0) + 1
    return demand


def _import_what_this_process_uses(to_run: list[Node]) -> None:
    """Import what this process will use for these nodes, before the launcher forks.

    The runner packages whose configs it builds, and what it finalizes an evaluation's
    parts with: imported first, they are inherited by the launcher and its steps
    instead of being imported there a second time.
    """
    import importlib

    kinds = {node.kind for node in to_run}
    for kind, package in _USED_HERE:
        if kind in kinds:
            importlib.import_module(package)


_USED_HERE = (
    ("Dataset", "runners.datasets"),
    ("Evaluation", "runners.evaluation"),
    ("Evaluation", "runners.inference"),
    ("Evaluation", "runners.imports"),
    ("Evaluation", "pyarrow.compute"),  # finalize_parts, after the shards
    ("Evaluation", "pyarrow.parquet"),
    ("Method", "runners.methods"),
)


def _preload_groups(to_run: list[Node]) -> list[str]:
    """The launcher's preload groups for these nodes, in the order they are first needed."""
    groups: list[str] = []
    for node in to_run:
        wanted = _STEP_GROUPS.get(node.kind, ())
        if isinstance(node.resource, Evaluation) and node.resource.spec.imported is not None:
            wanted = ("datasets",)  # reading a log needs pyarrow, not the HTTP client
        if isinstance(node.resource, Method) and node.resource.spec.implementation.notebook:
            wanted = (*wanted, "notebooks")
        groups += [g for g in wanted if g not in groups]
    return groups


_STEP_GROUPS = {"Dataset": ("datasets",), "Evaluation": ("evaluation",), "Method": ("methods",)}


def _execute(
    graph: Graph,
    store: Store,
    to_run: list[Node],
    jobs: int,
    forced: frozenset[str],
    damaged: frozenset[str],
    on_event: EventHandler,
) -> dict[str, NodeResult]:
    """Run `to_run`; the nodes downstream of a `damaged` one (complete, but its files do
    not match its manifest) are skipped as if it had failed in this run."""
    from ._lock import store_writer_lock  # not on the path of a run with nothing to do

    with store_writer_lock(store) as lock, work_dir("run") as tmp:
        # Another writer may have completed some of them in the meantime.
        results, to_run = _kept(store, to_run, forced)
        if not to_run:
            return results
        damaged |= {name for name, r in results.items() if r.status == "failed"}
        children_tmp = tmp / "tmp"
        children_tmp.mkdir()
        # While no other thread runs, so that the launcher can be a fork of this process.
        # It and every step it forks hold the lock too: if this process dies, the store
        # stays locked until the last of them has stopped.
        _import_what_this_process_uses(to_run)
        supervisor = Supervisor(
            LaunchOptions(
                preload=_preload_groups(to_run),
                tmp_dir=children_tmp,
                remove=[tmp],
                allow_fork=store.is_local,
                inherit_fds=lock.fds,
            )
        )
        try:
            services = ServicePool(
                graph, supervisor, _service_demand(to_run), tmp, _notifier(on_event)
            )
            # A store inside the project is not one of its uncommitted changes.
            inside = [Path(store.base)] if store.is_local else []
            git = functools.cache(lambda: git_state(graph.root, exclude=inside))
            ctx = RunContext(graph, store, supervisor, services, tmp, forced, git)
            results.update(_schedule(ctx, to_run, jobs, damaged, on_event))
            return results
        finally:
            with _sigint_ignored():
                supervisor.close()


def _notifier(on_event: EventHandler) -> Callable[[str, str], None]:
    def notify(key: str, message: str) -> None:
        on_event(RunEvent("service", key, "", message=message))

    return notify


def _schedule(
    ctx: RunContext,
    to_run: list[Node],
    jobs: int,
    damaged: frozenset[str],
    on_event: EventHandler,
) -> dict[str, NodeResult]:
    scheduler = _Scheduler(ctx, to_run, jobs, damaged, on_event)
    try:
        return scheduler.run()
    except BaseException:
        with _sigint_ignored():
            ctx.supervisor.cancel()
            scheduler.shutdown()
            ctx.services.stop_all()
        raise
    finally:
        with _sigint_ignored():
            ctx.services.stop_all()


class _Scheduler:
    """Hands ready nodes to the pool; skips the downstream of failures."""

    def __init__(
        self,
        ctx: RunContext,
        to_run: list[Node],
        jobs: int,
        damaged: frozenset[str],
        on_event: EventHandler,
    ):
        self.ctx = ctx
        self.jobs = jobs
        self.on_event = on_event
        # A damaged node failed before this schedule began: its downstream is skipped.
        names = {n.name for n in to_run} | damaged
        self.waiting = list(to_run)
        self.deps = {n.name: ctx.graph.upstream(n.name) & names for n in to_run}
        self.succeeded: set[str] = set()
        self.unsuccessful: set[str] = set(damaged)
        """Failed or skipped."""
        self.failed: set[str] = set(damaged)
        self.results: dict[str, NodeResult] = {}
        self.running: dict[Future[NodeResult], Node] = {}
        self.pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="auditc-node")

    def run(self) -> dict[str, NodeResult]:
        while self.waiting or self.running:
            self._skip_blocked()
            self._submit_ready()
            if not self.running:
                break
            finished, _ = wait(self.running, return_when=FIRST_COMPLETED)
            for future in finished:
                node = self.running.pop(future)
                self._record(node, future.result())
        self.pool.shutdown()
        return self.results

    def shutdown(self) -> None:
        """Wait for the workers after `Supervisor.cancel()` made their steps return."""
        self.pool.shutdown(wait=True, cancel_futures=True)

    def _record(self, node: Node, result: NodeResult) -> None:
        self.results[node.name] = result
        (self.succeeded if result.status == "ran" else self.unsuccessful).add(node.name)
        if result.status == "failed":
            self.failed.add(node.name)
        self.on_event(RunEvent("finish", node.key, node.id, result=result))

    def _skip_blocked(self) -> None:
        # In topological order, so a skip propagates down the graph in one pass.
        for node in list(self.waiting):
            blocked = sorted(self.deps[node.name] & self.unsuccessful)
            if not blocked:
                continue
            self.waiting.remove(node)
            if isinstance(node.resource, Evaluation) and node.resource.spec.service is not None:
                self.ctx.services.done((node.resource.spec.service, node.resource.spec.replicas))
            # Name the failures themselves, not the nodes skipped because of them.
            causes = sorted(self.deps[node.name] & self.failed) or blocked
            keys = ", ".join(self.ctx.graph[n].key for n in causes)
            result = node_result(self.ctx.store, node, "skipped", error=f"upstream {keys} failed")
            self._record(node, result)

    def _submit_ready(self) -> None:
        for node in list(self.waiting):
            if len(self.running) >= self.jobs:
                return
            if self.deps[node.name] <= self.succeeded:
                self.waiting.remove(node)
                self.on_event(RunEvent("start", node.key, node.id))
                self.running[self.pool.submit(execute_node, self.ctx, node)] = node


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Let the clean-up after Ctrl-C finish even if Ctrl-C is pressed again."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
