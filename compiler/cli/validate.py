"""`auditc validate [PATHS]`: load and check the specs; print every issue, exit 2 if any."""

from __future__ import annotations

import click

from ._common import EXIT_CODES_HELP, Settings, paths_argument


@click.command(
    "validate",
    epilog=EXIT_CODES_HELP,
    short_help="Check specs: fields, references, cycles, files, columns.",
)
@paths_argument()
@click.pass_obj
def command(settings: Settings, paths: tuple[str, ...]) -> None:
    """Check the audit specs under PATHS (default: audits/) without running anything.

    PATHS are spec files or directories, searched recursively for *.yaml and *.yml.
    Every problem is reported at once, each as FILE:LINE:COLUMN: Kind/name:
    field.path: what was found and what was expected [code]. Nothing in the specs,
    their modules or their notebooks is executed, and no path may leave the project.
    """
    from compiler import load_project
    from schemas import WORKFLOW_KINDS

    project = load_project(settings.project_dir, settings.spec_paths(paths))
    resources = list(project)
    files = {loaded.location.file for loaded in resources}
    workflows = sum(1 for loaded in resources if loaded.resource.kind in WORKFLOW_KINDS)
    click.echo(
        f"ok: {len(resources)} resource{'s' if len(resources) != 1 else ''} "
        f"({workflows} workflow{'s' if workflows != 1 else ''}) in "
        f"{len(files)} file{'s' if len(files) != 1 else ''}"
    )
