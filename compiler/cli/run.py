"""`auditc run [PATHS] [--select NAME[+]] [--force] [--store URI] [--jobs N]`.

Progress goes to stderr (rich on a terminal, plain lines otherwise); the summary
table and the safety cases' `index.html` paths go to stdout.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import click

from ._common import (
    EXIT_CODES_HELP,
    EXIT_FAILED,
    Settings,
    check_store,
    format_option,
    paths_argument,
)
from ._signals import stop_on_termination

if TYPE_CHECKING:
    from compiler import Graph
    from compiler.backends.local import NodeResult, RunEvent, RunResult


@click.command(
    "run",
    epilog=EXIT_CODES_HELP,
    short_help="Run the audit graph on this machine.",
)
@paths_argument()
@click.option(
    "--select",
    "-s",
    "selected",
    multiple=True,
    metavar="NAME[+]",
    help="Run only NAME and what it needs; NAME+ adds everything downstream of it. Repeatable.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Re-run the selected nodes (all without --select) even if complete in the store.",
)
@click.option(
    "--store",
    metavar="URI",
    callback=check_store,
    help="Store URI or directory [default: <project>/.auditc].",
)
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Workflow nodes run at the same time.",
)
@format_option(
    ["text", "json"],
    "The summary on stdout: a table, or JSON with each node's id, status, time and "
    "outputs (progress stays on stderr).",
)
@click.pass_context
def command(
    ctx: click.Context,
    paths: tuple[str, ...],
    selected: tuple[str, ...],
    force: bool,
    store: str | None,
    jobs: int,
    format_: str,
) -> None:
    """Run the audit under PATHS (default: audits/) on this machine.

    Every Dataset, Evaluation and Method whose id is already complete in the store
    is kept; the others run in dependency order, up to --jobs at a time, with the
    inference services they need started on 127.0.0.1 and stopped when done. A node
    that fails is recorded as failed with its log; what depends on it is skipped,
    and the exit code is 1. Ctrl-C stops every process cleanly; running again
    resumes (an interrupted evaluation keeps the rows it had committed).
    """
    from compiler import load_scoped_graph, require_graph_extras
    from compiler.backends.local import run_local
    from schemas import Store

    settings: Settings = ctx.obj
    started = time.monotonic()
    spec_paths = settings.spec_paths(paths)
    graph = load_scoped_graph(settings.project_dir, spec_paths, given=bool(paths)).graph
    require_graph_extras(graph.select(selected) if selected else graph)
    opened = Store.open(store or settings.default_store)
    _warn_changed_services(graph, store or settings.default_store)
    reporter = _Reporter.create()
    stop_on_termination()
    with reporter:
        result = run_local(
            graph, opened, jobs=jobs, force=force, selected=selected or None, on_event=reporter
        )
    if format_ == "json":
        click.echo(json.dumps(run_summary(result, time.monotonic() - started), indent=2))
    else:
        _print_summary(result, time.monotonic() - started)
    if not result.ok:
        failed, skipped = result.by_status("failed"), result.by_status("skipped")
        click.echo(
            f"error: {_count(len(failed), 'node')} failed"
            + (f", {len(skipped)} skipped" if skipped else "")
            + "; see the logs above",
            err=True,
        )
        ctx.exit(EXIT_FAILED)


def _warn_changed_services(graph: Graph, store: str) -> None:
    """Warn when an external service no longer answers with its stored fingerprint."""
    from compiler.backends._fingerprints import check_fingerprints

    for warning in check_fingerprints(graph, store):
        click.echo(f"warning: {warning}", err=True)


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _finish_line(result: NodeResult) -> tuple[str, str]:
    """The text and style of a node's last progress line."""
    head = f"{result.key} {result.short_id}"
    if result.status == "ran":
        details = []
        if result.rows is not None:
            details.append(f"{result.rows:,} row{'s' if result.rows != 1 else ''}")
        if "errors" in result.metrics:
            details.append(_count(int(result.metrics["errors"]), "error"))
        extra = f" ({', '.join(details)})" if details else ""
        return f"{head} done in {result.duration_s:.1f}s{extra}", "green"
    if result.status == "skipped":
        return f"{head} skipped: {result.error}", "yellow"
    text = f"{head} FAILED after {result.duration_s:.1f}s: {result.error}"
    if result.log:
        text += f"\n  log: {result.log}"
    return text, "red"


class _Reporter:
    """Progress on stderr; called from worker threads, so every write holds a lock."""

    def __init__(self, console: Any = None) -> None:
        self._lock = threading.Lock()
        self._console = console
        self._status: Any = None
        self._running: dict[str, str] = {}

    @classmethod
    def create(cls) -> _Reporter:
        if not sys.stderr.isatty():
            return cls()
        from rich.console import Console  # only on a terminal: keeps no-op runs fast

        return cls(Console(stderr=True, highlight=False))

    def __enter__(self) -> _Reporter:
        # The live status (a thread) starts with the first event: the run's process
        # launcher is a fork of this process, made while it runs one thread.
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.stop()

    def __call__(self, event: RunEvent) -> None:
        with self._lock:
            if event.phase == "start":
                self._running[event.key] = event.id
                self._write(f"{event.key} {event.id[:12]} run…", "cyan")
            elif event.phase == "service":
                self._write(f"{event.key} {event.message}", "blue")
            elif event.result is not None:
                self._running.pop(event.key, None)
                self._write(*_finish_line(event.result))
            if self._console is not None:
                running = ", ".join(self._running)
                self._update_status(f"running: {running}" if running else "finishing…")

    def _update_status(self, text: str) -> None:
        if self._status is None:
            self._status = self._console.status(text)
            self._status.start()
        else:
            self._status.update(text)

    def _write(self, text: str, style: str) -> None:
        if self._console is None:
            click.echo(text, err=True)
        else:
            self._console.print(text, style=style, markup=False)


RUN_SCHEMA_VERSION = 1
"""Version of `run --format json` output; bumped when a field changes meaning."""


def run_summary(result: RunResult, elapsed: float) -> dict[str, Any]:
    """`run --format json`: the run, then per node its id, status, time and outputs."""
    return {
        "schema_version": RUN_SCHEMA_VERSION,
        "ok": result.ok,
        "store": result.store,
        "time_s": round(elapsed, 3),
        "nodes": [
            {
                "id": node.id,
                "kind": node.kind,
                "name": node.name,
                "status": node.status,
                "time_s": round(node.duration_s, 3) if node.status in ("ran", "failed") else None,
                "rows": node.rows,
                "outputs": {"kind": node.output_kind, "uri": node.uri, "report": node.report},
                "log": node.log,
                "error": node.error,
            }
            for node in result.nodes
        ],
    }


def _print_summary(result: RunResult, elapsed: float) -> None:
    """The results on stdout: a table of nodes, then every safety case's report."""
    if result.nothing_to_do:
        click.echo(
            f"Nothing to run: all {_count(len(result.nodes), 'workflow node')} "
            f"are complete in {result.store}."
        )
    width = max([len(n.key) for n in result.nodes] + [4])
    click.echo(f"{'NODE':<{width}}  {'ID':<12}  {'STATUS':<7}  TIME")
    for node in result.nodes:
        took = f"{node.duration_s:.1f}s" if node.status in ("ran", "failed") else "-"
        click.echo(f"{node.key:<{width}}  {node.short_id:<12}  {node.status:<7}  {took}")
    counts = {s: len(result.by_status(s)) for s in ("ran", "kept", "failed", "skipped")}
    click.echo(", ".join(f"{n} {s}" for s, n in counts.items()) + f" in {elapsed:.1f}s")
    for node in result.nodes:
        if node.report is not None:
            click.echo(f"SafetyCase {node.key}: {node.report}")
