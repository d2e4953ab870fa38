"""`auditc graph [PATHS] [--format text|json|dot]`: print the resolved graph."""

from __future__ import annotations

import click

from ._common import EXIT_CODES_HELP, Settings, paths_argument


@click.command("graph", epilog=EXIT_CODES_HELP, short_help="Print the resolved graph.")
@paths_argument()
@click.option(
    "--format",
    "format_",
    type=click.Choice(["text", "json", "dot"]),
    default="text",
    show_default=True,
    help="text: one line per node; json: versioned, for tools; dot: Graphviz "
    "(render with `dot -Tsvg`).",
)
@click.pass_obj
def command(settings: Settings, paths: tuple[str, ...], format_: str) -> None:
    """Validate the specs under PATHS (default: audits/) and print their graph with node ids.

    Ids are content hashes: the same specs, data and code give the same ids.
    """
    from compiler import load_project, render_graph, resolve_graph

    graph = resolve_graph(load_project(settings.project_dir, settings.spec_paths(paths)))
    click.echo(render_graph(graph, format_), nl=False)  # type: ignore[arg-type]
