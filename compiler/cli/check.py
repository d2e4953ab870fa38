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
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people and CI logs, json for tools.",
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

    result = check_gates(load_results(Store.open(store or settings.default_store, create=False)))
    click.echo(render_check(result, format_))  # type: ignore[arg-type]
    return EXIT_OK if result.ok else EXIT_FAILED
