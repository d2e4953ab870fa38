"""`auditc plan [PATHS] [--against REF] [--store URI] [--stack NAME] [--format ...]`: what a run would do."""

from __future__ import annotations

import click

from ._common import EXIT_CODES_HELP, Settings, check_store, paths_argument, review_format_option


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
    callback=check_store,
    help="Store to compare with (default: <project>/.auditc); a directory or s3://… URI.",
)
@click.option(
    "--stack",
    metavar="NAME",
    default=None,
    help="Plan a Kubernetes deployment of stacks/Pulumi.<NAME>.yaml: its specs, select and "
    "store are the defaults, and each workflow whose Jobs a change of the stack file since "
    "--against (default HEAD) replaces is re-run, with the setting that changed.",
)
@review_format_option()
@click.pass_obj
def command(
    settings: Settings,
    paths: tuple[str, ...],
    against: str | None,
    store: str | None,
    stack: str | None,
    format_: str,
) -> None:
    """Compare the specs under PATHS (default: audits/) with a baseline and print the plan.

    The whole project is validated (names are unique and references resolve across
    all its files); the plan shows the nodes defined under PATHS and what they need.
    Without --against, the baseline is the store: nodes complete there are kept,
    nodes whose Kind/name the store holds with another id are re-run, new ones are
    created, and — for the whole project only — store entries whose Kind/name left
    the specs are removed (with PATHS the rest of the store belongs to other specs).
    A complete node whose files do not match its manifest (one missing, resized or
    not listed: a directory listing, no hashing) is shown damaged, with the file:
    `auditc run` reports it failed and skips what depends on it; `auditc run --force
    --select NAME` runs it again, and `auditc verify` hashes every file.
    With --against GIT_REF, the baseline is the graph of the same PATHS at that ref.
    Each re-run says why: a changed field, file or upstream node. Only workflows
    (Dataset, Evaluation, Method) are planned; changes to Models, Modules and
    InferenceServices show up as reasons. An external service whose stored
    Evaluations recorded a fingerprint is asked for it again (a few seconds at most);
    a changed answer is a warning on stderr.

    Each Evaluation that would run gets its GPUs × estimated hours (GPU-hours; CPU-hours
    for servers without GPUs), and the plan their total: rows ÷ a throughput that the
    service declares (`resources.throughput`) or that the store measured on its last
    run; without one, only the upper bound its deadline gives (docs/kubernetes.md).

    With --stack NAME, the plan is that of a Kubernetes deployment: a workflow whose id
    did not change still runs again when its Job is replaced, because the stack's
    images, resources, placement, Secrets or store changed since --against (the stack
    file at HEAD by default); `pulumi preview --diff` replaces exactly those Jobs.
    """
    from compiler import (
        Baseline,
        load_baseline,
        load_scoped_graph,
        load_scoped_graph_at,
        plan,
        render_plan,
    )

    if stack is not None:
        from ._stack_plan import plan_stack

        click.echo(plan_stack(settings, paths, against, store, stack, format_), nl=False)
        return
    spec_paths = settings.spec_paths(paths)
    scoped = load_scoped_graph(settings.project_dir, spec_paths, given=bool(paths))
    if against is not None:
        at_ref = load_scoped_graph_at(settings.project_dir, against, spec_paths, given=bool(paths))
        baseline = Baseline.from_graph(at_ref, f"git {against}")
    else:
        baseline = load_baseline(
            settings.project_dir, spec_paths, store=store or settings.default_store
        )
    result = plan(scoped.graph, baseline, removals=against is not None or not scoped.subset)
    from compiler._estimate import store_manifests, with_costs

    result = with_costs(result, scoped.graph, store_manifests(store or settings.default_store))
    click.echo(render_plan(result, format_), nl=False)  # type: ignore[arg-type]
    if against is None:
        from compiler.backends._fingerprints import check_fingerprints

        for warning in check_fingerprints(scoped.graph, store or settings.default_store):
            click.echo(f"warning: {warning}", err=True)
