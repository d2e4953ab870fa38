"""`auditc plan [PATHS] [--against REF] [--store URI] [--format ...]`: what a run would do."""

from __future__ import annotations

import click

from ._common import EXIT_CODES_HELP, Settings, paths_argument, review_format_option


@click.command(
    "plan", epilog=EXIT_CODES_HELP, short_help="Show what a run would create, re-run, keep, remove."
)
@paths_argument()
@click.option(
    "--against",
    metavar="GIT_REF",
    default=None,
    help="Compare with the specs at this git ref (read from git; the working tree is not "
    "touched) instead of with the store.",
)
@click.option(
    "--store",
    metavar="URI",
    default=None,
    help="Store to compare with (default: <project>/.auditc); a directory or s3://… URI.",
)
@review_format_option()
@click.pass_obj
def command(
    settings: Settings,
    paths: tuple[str, ...],
    against: str | None,
    store: str | None,
    format_: str,
) -> None:
    """Compare the specs under PATHS (default: audits/) with a baseline and print the plan.

    Without --against, the baseline is the store: nodes complete there are kept,
    nodes whose Kind/name the store holds with another id are re-run, new ones are
    created, and store entries whose Kind/name left the specs are removed. With
    --against GIT_REF, the baseline is the graph of the specs at that ref. Each
    re-run says why: a changed field, file or upstream node. Only workflows
    (Dataset, Evaluation, Method) are planned; changes to Models, Modules and
    InferenceServices show up as reasons.
    """
    from compiler import load_baseline, load_project, plan, render_plan, resolve_graph

    spec_paths = settings.spec_paths(paths)
    graph = resolve_graph(load_project(settings.project_dir, spec_paths))
    baseline = load_baseline(
        settings.project_dir, spec_paths, against=against, store=store or settings.default_store
    )
    click.echo(render_plan(plan(graph, baseline), format_), nl=False)  # type: ignore[arg-type]
