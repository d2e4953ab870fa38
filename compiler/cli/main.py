"""The `auditc` console script: a thin click group whose commands load lazily.

Each command lives in its own module of `compiler/cli/` and is imported only when
it runs, so `auditc --help` stays fast.
"""

from __future__ import annotations

import copy
import functools
import gc
import importlib
import importlib.util
import sys
from typing import Any

import click

from schemas import Extra, require_extra

from ._common import EXIT_CODES_HELP, Settings, run_cli

__all__ = ["COMMANDS", "COMMAND_EXTRAS", "cli", "main"]

COMMANDS: dict[str, tuple[str, str]] = {
    "validate": (
        "compiler.cli.validate",
        "Check specs: fields, references, cycles, files, columns.",
    ),
    "graph": ("compiler.cli.graph", "Print the resolved graph as text, JSON or DOT."),
    "plan": ("compiler.cli.plan", "Show what a run would create, re-run, keep or remove."),
    "schema": ("compiler.cli.schema", "Print the JSON Schema of audit specs."),
    "run": ("compiler.cli.run", "Run the audit graph on this machine."),
    "serve": ("compiler.cli.serve", "Start an InferenceService locally and print its URL."),
    "infer": (
        "compiler.cli.infer",
        "Send one row through a service's adapters and print the output.",
    ),
    "compile": (
        "compiler.cli.compile",
        "Write the compiled graph (local JSON or Kubernetes manifests).",
    ),
    "push": ("compiler.cli.push", "Upload the files an audit reads to a store, content-addressed."),
    "status": (
        "compiler.cli.status",
        "Show each node's Job state and whether its outputs are in the store.",
    ),
    "wait": (
        "compiler.cli.wait",
        "Wait until every node of a deployed stack is complete (exit 0) or failed (1).",
    ),
    "report": (
        "compiler.cli.report",
        "Build a static site of safety cases and scores from a store.",
    ),
    "diff": ("compiler.cli.diff", "Compare the scores of two stores, with confidence intervals."),
    "check": ("compiler.cli.check", "Evaluate every score gate: PASS, FAIL or INCONCLUSIVE."),
    "export": (
        "compiler.cli.export",
        "Export a node's results as an Inspect log, Every Eval Ever JSON or JUnit XML.",
    ),
    "gc": ("compiler.cli.gc", "Remove store nodes that no spec references."),
    "verify": (
        "compiler.cli.verify",
        "Check a store's files against their manifests, upstream ids and signatures.",
    ),
    "attest": ("compiler.cli.attest", "Sign in-toto attestations of a store's nodes."),
}


COMMAND_EXTRAS: dict[str, Extra] = {
    "run": "run",
    "serve": "run",
    "infer": "run",
    "push": "s3",
    "status": "kubernetes",
    "wait": "kubernetes",
    "report": "results",
    "diff": "results",
    "check": "results",
    "export": "results",
    "gc": "results",
    "verify": "results",
    "attest": "results",
}
"""The extra each command needs beyond the core install; the others need none.

`compile --target kubernetes` needs the `kubernetes` extra, checked where it is imported.
"""


def _requiring(command: click.Command, extra: Extra) -> click.Command:
    """`command`, checking first (after parsing, so `--help` works) that `extra` is installed."""
    callback = command.callback
    if callback is None:
        return command

    @functools.wraps(callback)
    def checked(*args: Any, **kwargs: Any) -> Any:
        require_extra(extra, f"auditc {command.name}")
        return callback(*args, **kwargs)

    wrapped = copy.copy(command)
    wrapped.callback = checked
    return wrapped


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, (module, _) in COMMANDS.items() if importlib.util.find_spec(module)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module_name, _ = COMMANDS[cmd_name]
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                return None
            raise
        command: click.Command = module.command
        extra = COMMAND_EXTRAS.get(cmd_name)
        return _requiring(command, extra) if extra else command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [
            (name, help_)
            for name, (module, help_) in COMMANDS.items()
            if name in self.list_commands(ctx)
        ]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "AUDITC"},
    epilog=EXIT_CODES_HELP,
)
@click.option(
    "-C",
    "--project-dir",
    type=click.Path(file_okay=False, exists=True),
    default=".",
    show_default=True,
    help="Project root: spec paths may not leave it; the default store is <root>/.auditc.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default="info",
    show_default=True,
    help="How much to log on stderr.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks for every error.")
@click.version_option(package_name="auditc")
@click.pass_context
def cli(ctx: click.Context, project_dir: str, log_level: str, debug: bool) -> None:
    """auditc compiles declarative AI safety audits (YAML) into a graph of workflows and runs it.

    Specs live in git (by default under audits/). `validate` checks them,
    `plan` shows what a change re-runs, `run` executes the graph on this machine,
    `compile --target kubernetes` writes the same graph as Kubernetes manifests,
    and `report` turns the store into a static site of safety cases and scores.
    """
    ctx.obj = Settings.create(project_dir, log_level, debug)


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the `auditc` console script; returns only in tests (standalone_mode)."""
    if argv is None:
        try:
            return run_cli(cli, sys.argv[1:], watchdog=True)
        finally:
            # The interpreter's last garbage collections at exit would examine every
            # object the imports made (pydantic models, pyarrow, aiohttp), none of them
            # garbage; frozen, they are skipped (≈ 0.07 s of a small `auditc run`).
            gc.freeze()
    return run_cli(cli, argv)


if __name__ == "__main__":
    sys.exit(main())  # a command's exit code (ctx.exit) comes back as main's value
