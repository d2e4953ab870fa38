"""What `auditc status` and `auditc wait` share: options, one reading of a stack, its text."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from schemas import UsageError

from ._common import Settings, check_store

if TYPE_CHECKING:
    from compiler import Graph
    from compiler.backends.kubernetes import KubernetesConfig
    from compiler.backends.kubernetes._status import StackStatus

_Command = TypeVar("_Command", bound=Callable[..., Any])


def stack_options(command: _Command) -> _Command:
    """`--stack`, `--store`, `--kubeconfig` and `--context`."""
    for option in reversed(
        [
            click.option(
                "--stack",
                required=True,
                help="The stack deployed (stacks/Pulumi.<STACK>.yaml): its specs, namespace "
                "and store.",
            ),
            click.option(
                "--store",
                metavar="URI",
                default=None,
                callback=check_store,
                help="Read outputs here instead of the stack's store (needed when the stack "
                "keeps its store on a volume: a path where it is mounted).",
            ),
            click.option(
                "--kubeconfig",
                type=click.Path(dir_okay=False),
                default=None,
                help="Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then the "
                "pod's service account).",
            ),
            click.option("--context", default=None, help="Kubeconfig context to use."),
        ]
    ):
        command = option(command)
    return command


class StackReader:
    """A stack's graph and settings, loaded once, read again on every call."""

    def __init__(self, settings: Settings, stack: str, store: str | None) -> None:
        from compiler import load_project, resolve_graph
        from compiler.backends.kubernetes import load_stack_config, stack_file

        self.config: KubernetesConfig = load_stack_config(stack_file(settings.project_dir, stack))
        graph: Graph = resolve_graph(
            load_project(settings.project_dir, settings.spec_paths(tuple(self.config.specs)))
        )
        self.graph = graph.select(self.config.select) if self.config.select else graph
        uri = store or self.config.store.uri
        if uri is None:
            raise UsageError(
                f"stack {stack!r} keeps its store on a volume: pass --store with a path where "
                "it is mounted"
            )
        self.store: str = uri

    def read(self, kubeconfig: str | None, context: str | None) -> StackStatus:
        """The Jobs first, then the store (see `compiler.backends.kubernetes._status`)."""
        from compiler.backends.kubernetes import committed_ids, read_jobs, stack_status

        namespace = self.config.namespace
        jobs = read_jobs(namespace, kubeconfig=kubeconfig, context=context)
        workflows = [node for node in self.graph if node.is_workflow]
        return stack_status(
            self.graph,
            jobs,
            committed_ids(self.store, workflows),
            namespace=namespace,
            store=self.store,
        )


def summary(status: StackStatus) -> str:
    """`3 complete, 1 running, 2 queued (of 6 nodes)`."""
    order = ["complete", "running", "pending", "queued", "not submitted", "failed", "not committed"]
    counts = status.counts()
    parts = [f"{counts[state]} {state}" for state in order if counts.get(state)]
    return f"{', '.join(parts) or 'nothing deployed'} (of {len(status.nodes)} nodes)"


def render_text(status: StackStatus) -> str:
    """One line per node: state, key, id, the Job behind a state that is not `complete`."""
    width = max((len(n.key) for n in status.nodes), default=0)
    lines = [f"namespace {status.namespace}, store {status.store}"]
    for node in status.nodes:
        store = "committed" if node.committed else "not in store"
        line = f"  {node.state:<13} {node.key:<{width}}  {node.id[:10]}  {store:<12}"
        lines.append(f"{line}  {node.detail}" if node.detail else line)
    lines.append(summary(status))
    return "\n".join(lines) + "\n"
