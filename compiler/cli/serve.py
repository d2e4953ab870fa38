"""`auditc serve SERVICE [PATHS] [--replicas N] [--port P]`: run a service until Ctrl-C.

Prints one base URL per replica on stdout, for prototyping against the system
under test (`auditc infer --url`, curl, a notebook), as Dyff's interactive
InferenceSessions are used.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click

from ._common import EXIT_CODES_HELP, Settings, paths_argument
from ._signals import stop_on_termination

if TYPE_CHECKING:
    from compiler import Graph
    from compiler.backends.local import ChildProcess

POLL_S = 0.5
"""How often a running session checks that its servers are still alive."""


@click.command(
    "serve",
    epilog=EXIT_CODES_HELP,
    short_help="Start an InferenceService locally and print its URL.",
)
@click.argument("service")
@paths_argument()
@click.option(
    "--replicas",
    type=click.IntRange(1, 64),
    help="Server processes [default: the InferenceSession's replicas, else 1].",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help="Port of the first replica (the others take the next ones) [default: free ports].",
)
@click.option(
    "--ready-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=600.0,
    show_default=True,
    help="Seconds each server has to answer /health.",
)
@click.pass_obj
def command(
    settings: Settings,
    service: str,
    paths: tuple[str, ...],
    replicas: int | None,
    port: int | None,
    ready_timeout: float,
) -> None:
    """Start SERVICE (an InferenceService or InferenceSession under PATHS) on 127.0.0.1.

    The servers' logs go to stderr; their URLs are printed on stdout once every
    replica answers /health. Ctrl-C stops them. An InferenceSession's `expires`
    stops it after that many seconds.
    """
    from compiler import load_project, resolve_graph
    from compiler.backends.local import start_service

    graph = resolve_graph(load_project(settings.project_dir, settings.spec_paths(paths)))
    name, default_replicas, expires = resolve_target(graph, service)
    stop_on_termination()
    count = replicas or default_replicas
    ports = [port + i for i in range(count)] if port is not None else None
    try:
        with start_service(
            graph, name, replicas=count, ports=ports, ready_timeout=ready_timeout
        ) as running:
            for url in running.urls:
                click.echo(url)
            if not running.processes:
                click.echo(f"InferenceService/{name} is external: nothing to start.", err=True)
                return
            click.echo(f"InferenceService/{name} is ready; press Ctrl-C to stop.", err=True)
            _wait(running.processes, expires, name)
    except KeyboardInterrupt:
        click.echo(f"InferenceService/{name} stopped.", err=True)


def resolve_target(graph: Graph, name: str) -> tuple[str, int, float | None]:
    """(service name, replicas, expiry) of an InferenceService or InferenceSession name."""
    from schemas import InferenceService, InferenceSession, UsageError

    node = graph.nodes.get(name)
    if node is not None and isinstance(node.resource, InferenceSession):
        spec = node.resource.spec
        return spec.service, spec.replicas, spec.expires
    if node is not None and isinstance(node.resource, InferenceService):
        return name, 1, None
    raise UsageError(_not_a_service(graph, name))


def _not_a_service(graph: Graph, name: str) -> str:
    """Why `name` cannot be served: another kind, or unknown (with a close match)."""
    import difflib

    kinds = ("InferenceService", "InferenceSession")
    services = [n.name for n in graph if n.kind in kinds]
    if name in graph.nodes:
        found = f"{graph[name].key} is not an InferenceService or InferenceSession"
    else:
        close = difflib.get_close_matches(name, services, n=1)
        found = f"no InferenceService or InferenceSession named {name!r}" + (
            f" (did you mean {close[0]!r}?)" if close else ""
        )
    known = ", ".join(services) or "none"
    return f"{found}; services and sessions in these specs: {known}"


def _wait(processes: list[ChildProcess], expires: float | None, name: str) -> None:
    """Block until Ctrl-C, the session's expiry, or a server's unexpected exit."""
    from schemas import InferenceError

    deadline = time.monotonic() + expires if expires else None
    while deadline is None or time.monotonic() < deadline:
        for proc in processes:
            if proc.poll() is not None:
                raise InferenceError(
                    f"InferenceService/{name}: a server (pid {proc.pid}) exited with code "
                    f"{proc.returncode}; see its messages above"
                )
        time.sleep(POLL_S)
    click.echo(f"InferenceService/{name} expired after {expires:g}s.", err=True)
