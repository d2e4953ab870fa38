"""`auditc push --store URI [PATHS]`: upload the files an audit reads, content-addressed.

Run it before `pulumi up`: the pods of the Kubernetes backend fetch their inputs (data
files, Module and model directories, notebooks) from `<store>/inputs/` by hash and
refuse any that does not match. Files the store already holds are skipped.
"""

from __future__ import annotations

import click

from schemas import UsageError

from ._common import EXIT_CODES_HELP, Settings, check_store, paths_argument


@click.command(
    "push",
    epilog=EXIT_CODES_HELP,
    short_help="Upload the files an audit reads to a store, content-addressed.",
)
@paths_argument()
@click.option(
    "--store",
    metavar="URI",
    default=None,
    callback=check_store,
    help="The store the cluster uses (s3://bucket/prefix?endpoint_override=…, or a directory).",
)
@click.option(
    "--stack",
    default=None,
    help="Take the store (and default PATHS) from stacks/Pulumi.<STACK>.yaml.",
)
@click.option(
    "--select",
    multiple=True,
    help="Only the inputs of these resources and what they need.",
)
@click.option("--dry-run", is_flag=True, help="Only list what would be uploaded.")
@click.pass_obj
def command(
    settings: Settings,
    paths: tuple[str, ...],
    store: str | None,
    stack: str | None,
    select: tuple[str, ...],
    dry_run: bool,
) -> None:
    """Upload every data file, Module, model directory and notebook the specs under PATHS read.

    Each goes to <store>/inputs/sha256/<hash> (directories as a listing under
    <store>/inputs/trees/), by the same hash that is part of the node ids, so a pod
    can check that what it runs on is what `auditc plan` showed. Credentials come from
    the usual AWS environment variables, never from the command line.
    """
    from compiler import load_project, resolve_graph
    from compiler.backends.kubernetes import load_stack_config, push_inputs, stack_file

    specs: list[str] = []
    if stack is not None:
        config = load_stack_config(stack_file(settings.project_dir, stack))
        if config.store.uri is None:
            raise UsageError(
                f"stack {stack!r} keeps its store on a volume ({config.store.pvc.claim_name}); "  # type: ignore[union-attr]
                "pass --store with a path or URI where that volume can be written"
            )
        store = store or config.store.uri
        specs = config.specs
    if store is None:
        raise UsageError("auditc push needs --store URI (or --stack NAME)")
    graph = resolve_graph(
        load_project(settings.project_dir, settings.spec_paths(paths or tuple(specs)))
    )
    if select:
        graph = graph.select(select)
    result = push_inputs(graph, store, dry_run=dry_run)
    verb = "would upload" if dry_run else "uploaded"
    for item in result.uploaded:
        click.echo(f"{verb} {item.path} ({item.type}, sha256 {item.sha256[:12]}…)")
    for item in result.present:
        click.echo(f"present {item.path} ({item.type}, sha256 {item.sha256[:12]}…)")
    size = "" if dry_run else f", {result.bytes} bytes"
    click.echo(f"{len(result.uploaded)} {verb}, {len(result.present)} already in the store{size}")
