"""`auditc check [PATHS] [--select NAME] [--all]`: every score gate as PASS, FAIL or INCONCLUSIVE."""

from __future__ import annotations

import click

from ._common import Settings, check_store, paths_argument
from ._scoping import all_option, results_scope, select_option

CHECK_EXIT_CODES = (
    "Exit codes: 0 every gate passed (or there is nothing to check); 1 a gate failed, a "
    "gated safety case of the specs has not run, or the store cannot be read; 2 invalid "
    "specs or usage; 3 internal error (a bug: please report it); 4 no gate failed but a "
    "confidence gate is inconclusive (0 with --allow-inconclusive)."
)


@click.command(
    "check",
    epilog=CHECK_EXIT_CODES,
    short_help="Evaluate every score gate: PASS, FAIL or INCONCLUSIVE.",
)
@paths_argument()
@select_option()
@all_option()
@click.option(
    "--store",
    metavar="URI",
    envvar=["AUDITC_CHECK_STORE", "AUDITC_STORE"],
    callback=check_store,
    help="Store to read: a directory or s3://… URI [default: <project>/.auditc].",
)
@click.option(
    "--format",
    "format_",
    type=click.Choice(["text", "json", "junit"]),
    default="text",
    show_default=True,
    help="text for people and CI logs, json for tools, junit for CI test reports "
    "(one test case per gate).",
)
@click.option(
    "--allow-inconclusive",
    is_flag=True,
    help="Exit 0 when no gate failed, even if a confidence gate is inconclusive.",
)
@click.pass_obj
def command(
    settings: Settings,
    paths: tuple[str, ...],
    selected: tuple[str, ...],
    whole_store: bool,
    store: str | None,
    format_: str,
    allow_inconclusive: bool,
) -> int:
    """Check the gates of the safety cases of the specs under PATHS (default: audits/).

    A gate `{min, max}` compares the score with its bounds: PASS or FAIL. A gate with
    `confidence` judges the score's confidence interval: PASS when it lies within the
    bounds, FAIL when it lies wholly outside them, INCONCLUSIVE when it straddles a
    bound (more instances would decide). Every gate is listed with its value and
    bound, failures first. Only the current specs' nodes are read (--select narrows
    them, --all reads the whole store); a gated safety case that has not run yet is
    listed as NOT RUN and fails the check.
    """
    from compiler.report import check_gates, load_results, render_check
    from schemas import Store

    scope = results_scope(settings, paths, selected, whole_store)
    results = load_results(Store.open(store or settings.default_store, create=False), scope)
    result = check_gates(results)
    if format_ == "junit":
        from compiler.export import junit_xml

        click.echo(junit_xml(result, results.cases, results.store), nl=False)
    else:
        click.echo(render_check(result, format_))  # type: ignore[arg-type]
    return result.exit_code(allow_inconclusive=allow_inconclusive)
