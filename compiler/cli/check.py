"""`auditc check [--store URI]`: evaluate every score gate; exit 1 when one fails."""

from __future__ import annotations

import click

from ._common import EXIT_CODES_HELP, EXIT_FAILED, EXIT_OK, Settings


@click.command(
    "check",
    epilog=EXIT_CODES_HELP,
    short_help="Evaluate every score gate; exit 1 if one fails.",
)
@click.option(
    "--store",
    metavar="URI",
    envvar=["AUDITC_CHECK_STORE", "AUDITC_STORE"],
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
@click.pass_obj
def command(settings: Settings, store: str | None, format_: str) -> int:
    """Check the gates (`gate: {min, max}` of score specs) of the latest safety cases.

    Every gated score of the latest complete run per Method and system is listed
    with its value and bound, failures first. The exit code is 1 when a gate
    fails and 0 when all pass, or when there is nothing to check (the output says
    so: no safety cases, or no gates).
    """
    from compiler.report import check_gates, load_results, render_check
    from schemas import Store

    results = load_results(Store.open(store or settings.default_store, create=False))
    result = check_gates(results)
    if format_ == "junit":
        from compiler.export import junit_xml

        click.echo(junit_xml(result, results.cases, results.store), nl=False)
    else:
        click.echo(render_check(result, format_))  # type: ignore[arg-type]
    return EXIT_OK if result.ok else EXIT_FAILED
