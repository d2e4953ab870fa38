"""`auditc report [--store URI] --out DIR`: a static site of safety cases and scores."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from ._common import EXIT_CODES_HELP, Settings, check_store, paths_argument, writing_to
from ._scoping import all_option, results_scope, run_option, select_option

if TYPE_CHECKING:
    from compiler.report import RunChoice


@click.command(
    "report",
    epilog=EXIT_CODES_HELP,
    short_help="Build a static site of safety cases and scores from a store.",
)
@paths_argument()
@select_option()
@all_option()
@run_option(
    "--run",
    "Show another recorded run of each safety case than its current one: its number, or "
    "`previous` (the run before an `auditc run --force`).",
)
@click.option(
    "--store",
    metavar="URI",
    envvar=["AUDITC_REPORT_STORE", "AUDITC_STORE"],
    callback=check_store,
    help="Store to read: a directory or s3://… URI [default: <project>/.auditc].",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for the site; emptied first if an earlier `auditc report` wrote it.",
)
@click.pass_obj
def command(
    settings: Settings,
    paths: tuple[str, ...],
    selected: tuple[str, ...],
    whole_store: bool,
    run: RunChoice | None,
    store: str | None,
    out_dir: Path,
) -> None:
    """Write a static site of the results of the specs under PATHS (default: audits/) into --out.

    The site has an overview of audits (one per safety-case Method) and systems under
    test, a score table per audit comparing every system (the better value green,
    whichever direction is better; gates shown as pass or fail), charts of scores per
    system and of per-group breakdowns from measurements, every safety case's
    rendered page, and a provenance page tracing each value to its run. Only the
    current specs' nodes are shown (--select narrows them; --all shows the latest
    complete run per Method and system of the whole store); older and failed runs of
    the same resources are listed on the provenance page. It uses no network and
    relative links only, so it opens from the file system or any static host (e.g.
    GitHub Pages).
    """
    from compiler.report import build_site, load_results
    from schemas import Store

    scope = results_scope(settings, paths, selected, whole_store)
    opened = Store.open(store or settings.default_store, create=False)
    results = load_results(opened, scope, run=run)
    for reason in results.unavailable:
        click.echo(f"warning: not shown: {reason}", err=True)
    with writing_to(out_dir, "--out"):
        site = build_site(results, out_dir)
    click.echo(
        f"{site.audits} audit{'s' if site.audits != 1 else ''}, "
        f"{site.systems} system{'s' if site.systems != 1 else ''}, "
        f"{site.cases} safety case{'s' if site.cases != 1 else ''}"
        + (
            f", {site.gates_failed} failed gate{'s' if site.gates_failed != 1 else ''}"
            if site.gates_failed
            else ""
        )
        + (f", {len(results.not_run)} not run yet" if results.not_run else "")
        + f": {len(site.pages)} pages",
        err=True,
    )
    click.echo(str(site.index))
