"""`auditc schema [--format json|markdown] [--output FILE]`: the spec schema or reference."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import EXIT_CODES_HELP, Settings, writing_to


@click.command("schema", epilog=EXIT_CODES_HELP, short_help="Print the JSON Schema of specs.")
@click.option(
    "--format",
    "format_",
    type=click.Choice(["json", "markdown"]),
    default="json",
    show_default=True,
    help="json: the JSON Schema; markdown: the reference of every kind and field.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write to this file instead of stdout.",
)
@click.pass_obj
def command(settings: Settings, format_: str, output: str | None) -> None:
    """Print the JSON Schema of audit specs (or, with --format markdown, their reference).

    Editors validate and complete specs with it through a first line such as
    `# yaml-language-server: $schema=../schemas/auditc-spec.schema.json`.
    The committed copies are schemas/auditc-spec.schema.json and docs/reference.md.
    """
    from compiler import render_schema, spec_reference_markdown

    text = render_schema() if format_ == "json" else spec_reference_markdown()
    if output is None:
        click.echo(text, nl=False)
    else:
        with writing_to(Path(output), "-o"):
            Path(output).write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
