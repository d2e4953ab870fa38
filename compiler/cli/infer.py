"""`auditc infer SERVICE ROW [PATHS] [--url URL]`: one row through a service, printed as JSON.

The row goes through the service's request adapters, the service, and its
response adapters, exactly as an Evaluation sends it: a quick way to check an
interface while writing an audit.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ._common import EXIT_CODES_HELP, Settings, paths_argument
from ._signals import stop_on_termination


@click.command(
    "infer",
    epilog=EXIT_CODES_HELP,
    short_help="Send one row through a service's adapters and print the output.",
)
@click.argument("service")
@click.argument("row")
@paths_argument()
@click.option(
    "--url",
    metavar="URL",
    help="Base URL of a running server of SERVICE (from `auditc serve`); "
    "without it the service is started for this one row.",
)
@click.option(
    "--ready-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=600.0,
    show_default=True,
    help="Seconds the started server has to answer /health.",
)
@click.pass_obj
def command(
    settings: Settings,
    service: str,
    row: str,
    paths: tuple[str, ...],
    url: str | None,
    ready_timeout: float,
) -> None:
    """Send ROW (a JSON object, or - to read it from stdin) through SERVICE; print the output row.

    Example: auditc infer offensive-filter '{"text": "have a nice day"}'
    """
    from compiler import load_project, resolve_graph
    from compiler.backends.local import infer_one

    from .serve import resolve_target

    parsed = _parse_row(sys.stdin.read() if row == "-" else row)
    graph = resolve_graph(load_project(settings.project_dir, settings.spec_paths(paths)))
    name, _, _ = resolve_target(graph, service)
    stop_on_termination()
    output = infer_one(graph, name, parsed, url=url, ready_timeout=ready_timeout)
    click.echo(json.dumps(output, ensure_ascii=False, default=str))


def _parse_row(text: str) -> dict[str, Any]:
    from schemas import UsageError

    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"ROW is not valid JSON ({exc}): {text[:50]!r}") from exc
    if not isinstance(value, dict):
        raise UsageError(f'ROW must be a JSON object like \'{{"text": "hi"}}\', not {text[:50]!r}')
    return value
