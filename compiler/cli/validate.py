"""`auditc validate [PATHS] [--format text|json]`: check the specs; print every issue, exit 2 if any."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from ._common import EXIT_CODES_HELP, EXIT_INVALID, Settings, format_option, paths_argument

if TYPE_CHECKING:
    from compiler import Project
    from schemas import Issue

VALIDATE_SCHEMA_VERSION = 1
"""Version of `validate --format json` output; bumped when a field changes meaning."""


@click.command(
    "validate",
    epilog=EXIT_CODES_HELP,
    short_help="Check specs: fields, references, cycles, files, columns.",
)
@paths_argument()
@format_option(
    ["text", "json"],
    "text: one line per problem; json: one object per problem (file, line, column, "
    "kind, name, field, code, message), for editors and CI annotations.",
)
@click.pass_context
def command(ctx: click.Context, paths: tuple[str, ...], format_: str) -> None:
    """Check the audit specs under PATHS (default: audits/) without running anything.

    PATHS are spec files or directories, searched recursively for *.yaml and *.yml.
    Every problem is reported at once, each as FILE:LINE:COLUMN: Kind/name:
    field.path: what was found and what was expected [code]. The whole project is
    checked even for a part of it (names are unique and references resolve across all
    its files). Nothing in the specs, their modules or their notebooks is executed, and
    no path may leave the project. With --format json the result goes to stdout as one
    JSON document, problems included (the exit code is still 2 when there are any).
    """
    from compiler import Project, load_scoped_graph
    from schemas import SpecError

    settings: Settings = ctx.obj
    try:
        scoped = load_scoped_graph(
            settings.project_dir, settings.spec_paths(paths), given=bool(paths)
        )
    except SpecError as exc:
        if format_ != "json":
            raise
        click.echo(json.dumps(_document(None, exc.issues), indent=2))
        ctx.exit(EXIT_INVALID)
    whole = scoped.project
    names = {node.name for node in scoped.graph}
    project = Project(
        whole.root, {n: r for n, r in whole.resources.items() if n in names}, whole.file_hashes
    )
    if format_ == "json":
        click.echo(json.dumps(_document(project, []), indent=2))
    else:
        click.echo(_summary(project))


def _counts(project: Project) -> tuple[int, int, int]:
    """(resources, workflows, files) of a valid project."""
    from schemas import WORKFLOW_KINDS

    resources = list(project)
    files = {loaded.location.file for loaded in resources}
    workflows = sum(1 for loaded in resources if loaded.resource.kind in WORKFLOW_KINDS)
    return len(resources), workflows, len(files)


def _summary(project: Project) -> str:
    resources, workflows, files = _counts(project)
    return (
        f"ok: {resources} resource{'s' if resources != 1 else ''} "
        f"({workflows} workflow{'s' if workflows != 1 else ''}) in "
        f"{files} file{'s' if files != 1 else ''}"
    )


def _document(project: Project | None, issues: list[Issue]) -> dict[str, Any]:
    """The `--format json` output: counts when valid, else one object per issue."""
    resources, workflows, files = _counts(project) if project is not None else (None, None, None)
    return {
        "schema_version": VALIDATE_SCHEMA_VERSION,
        "ok": not issues,
        "resources": resources,
        "workflows": workflows,
        "files": files,
        "errors": [issue_record(issue) for issue in issues],
    }


def issue_record(issue: Issue) -> dict[str, Any]:
    """One problem as data: where it is (file, 1-based line and column), in what, and what."""
    kind, _, name = (issue.resource or "").partition("/")
    return {
        "file": issue.file,
        "line": issue.line or None,
        "column": issue.column or None,
        "kind": kind or None,
        "name": name or None,
        "field": issue.path,
        "code": issue.code,
        "message": issue.message,
    }
