"""`auditc wait --stack NAME [--timeout]`: block until a deployed stack's outputs are committed."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

import click

from ._common import EXIT_FAILED, EXIT_OK, Settings
from ._stack_status import StackReader, render_text, stack_options, summary

_DURATION = re.compile(r"(?:\d+(?:\.\d+)?[hms])+|\d+(?:\.\d+)?")
_PART = re.compile(r"(\d+(?:\.\d+)?)([hms]?)")
_UNIT_S = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}


if TYPE_CHECKING:
    _ParamType = click.ParamType[float]
else:  # click < 8.2's ParamType is not generic
    _ParamType = click.ParamType


class DurationParam(_ParamType):
    """Seconds, or numbers with `h`, `m` and `s`: `90`, `45m`, `5h45m`."""

    name = "duration"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, int | float):
            return float(value)
        text = str(value).strip()
        if _DURATION.fullmatch(text):
            seconds = sum(float(n) * _UNIT_S[unit] for n, unit in _PART.findall(text))
            if seconds > 0:
                return seconds
        self.fail(f"{value!r} is not a duration: use seconds, or h, m and s (5h45m, 90s)")


@click.command(
    "wait",
    epilog="Exit codes: 0 every node's outputs are committed; 1 a Job failed, a node's Jobs "
    "succeeded without committing, or the timeout passed; 2 usage, invalid specs or a "
    "missing extra; 3 internal error.",
    short_help="Wait until every node of a deployed stack is complete (exit 0) or failed (1).",
)
@stack_options
@click.option(
    "--timeout",
    type=DurationParam(),
    default="6h",
    show_default=True,
    help="Give up (exit 1) after this long: seconds, or h, m and s (5h45m).",
)
@click.option(
    "--interval",
    type=DurationParam(),
    default="30s",
    show_default=True,
    help="Time between two readings of the cluster and the store.",
)
@click.pass_obj
@click.pass_context
def command(
    ctx: click.Context,
    settings: Settings,
    stack: str,
    store: str | None,
    kubeconfig: str | None,
    context: str | None,
    timeout: float,
    interval: float,
) -> None:
    """Wait until every node the stack deploys has committed its outputs.

    The counterpart of an asynchronous `pulumi up` (`auditc:jobs.waitForCompletion:
    false`): the update returns once the Jobs are submitted, and this command, in the same CI job or a
    later one, reads the Jobs and the store every --interval, as `auditc status` does,
    printing a line when something changes. It stops at the first failed node (exit 1,
    with the Job's reason) and when --timeout passes (exit 1); a Job that is queued by
    Kueue, or a node not submitted yet, is waited for. It never changes the cluster.
    """
    reader = StackReader(settings, stack, store)
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        status = reader.read(kubeconfig, context)
        line = summary(status)
        if line != last:
            click.echo(line, err=True)
            last = line
        if status.failed:
            click.echo(render_text(status), nl=False)
            for node in status.failed:
                click.echo(f"error: {node.key} {node.state}: {node.detail}", err=True)
            ctx.exit(EXIT_FAILED)
        if status.done:
            click.echo(render_text(status), nl=False)
            ctx.exit(EXIT_OK)
        left = deadline - time.monotonic()
        if left <= 0:
            click.echo(render_text(status), nl=False)
            waiting = [n.key for n in status.nodes if n.state != "complete"]
            click.echo(
                f"error: timed out after {timeout:g} s; not complete: {', '.join(waiting)}",
                err=True,
            )
            ctx.exit(EXIT_FAILED)
        time.sleep(min(interval, left))
