"""`auditc status --stack NAME`: each node's Job state and whether its outputs are committed."""

from __future__ import annotations

import click

from ._common import EXIT_FAILED, EXIT_OK, Settings, text_json_format_option
from ._stack_status import StackReader, render_text, stack_options


@click.command(
    "status",
    epilog="Exit codes: 0 nothing failed (done or still going); 1 a Job failed, or a node's "
    "Jobs succeeded without committing its outputs; 2 usage, invalid specs or a missing "
    "extra; 3 internal error.",
    short_help="Show each node's Job state and whether its outputs are in the store.",
)
@stack_options
@text_json_format_option()
@click.pass_obj
@click.pass_context
def command(
    ctx: click.Context,
    settings: Settings,
    stack: str,
    store: str | None,
    kubeconfig: str | None,
    context: str | None,
    format_: str,
) -> None:
    """Show where a deployment of the stack stands, node by node.

    For every Dataset, Evaluation and Method the stack deploys (and every Model with a
    prefetch Job): `complete` once its outputs are committed in the store (whether or
    not its Job is still in the cluster), else the state of its Jobs in the stack's
    namespace — `failed`, `running`, `pending` (no pod active yet), `queued`
    (suspended until Kueue admits it) — or `not submitted` when the cluster has no Job
    of its id (yet). Jobs are read with the kubeconfig, outputs with the usual store
    credentials. `auditc wait` blocks until every node is complete.
    """
    status = StackReader(settings, stack, store).read(kubeconfig, context)
    if format_ == "json":
        click.echo(status.model_dump_json(indent=2))
    else:
        click.echo(render_text(status), nl=False)
    ctx.exit(EXIT_FAILED if status.failed else EXIT_OK)
