"""`python -m runners.fetch inputs|commit|wait|model CONFIG.json`: the pod-side steps of the Kubernetes backend.

Exit codes (docs/contracts.md): 0 success, 1 the step failed, 2 invalid config or an
input that is missing or does not match its hash, 3 a bug.
"""

from __future__ import annotations

import sys

import click

from .._entry import configure_logging, error_boundary, load_config, log_level_option, run_entry
from ._commit import CommitConfig, commit_node
from ._fetch import FetchConfig, fetch_inputs
from ._model import ModelFetchConfig, prefetch_model
from ._wait import WaitConfig, wait_for_inputs


@click.group()
@log_level_option
def command(log_level: str) -> None:
    """The pod-side steps of the Kubernetes backend, each with its JSON config."""
    configure_logging(log_level)


@command.command()
@click.argument("config", metavar="CONFIG.json")
def inputs(config: str) -> None:
    """Fetch a node's inputs from the store, checking each one's hash (a FetchConfig)."""
    step_config = load_config(config, FetchConfig)
    with error_boundary("runners.fetch"):
        result = fetch_inputs(step_config)
    click.echo(f"fetched {result.files} files ({result.bytes} bytes)", err=True)


@command.command()
@click.argument("config", metavar="CONFIG.json")
def wait(config: str) -> None:
    """Wait until a node's inputs are committed in the store (a WaitConfig)."""
    step_config = load_config(config, WaitConfig)
    with error_boundary("runners.fetch"):
        waited = wait_for_inputs(step_config)
    click.echo(f"inputs committed (waited {waited:.0f} s)", err=True)


@command.command()
@click.argument("config", metavar="CONFIG.json")
def model(config: str) -> None:
    """Download a Hub model into the shared cache (a ModelFetchConfig)."""
    step_config = load_config(config, ModelFetchConfig)
    with error_boundary("runners.fetch"):
        path = prefetch_model(step_config)
    click.echo(f"model in the cache: {path}", err=True)


@command.command()
@click.argument("config", metavar="CONFIG.json")
def commit(config: str) -> None:
    """Write a node's manifest once its outputs are complete (a CommitConfig)."""
    step_config = load_config(config, CommitConfig)
    with error_boundary("runners.fetch"):
        manifest = commit_node(step_config)
    click.echo(f"committed {manifest.kind}/{manifest.name} {manifest.id}", err=True)


def main(argv: list[str] | None = None) -> int:
    """Run one step; return the exit code."""
    return run_entry(command, argv, prog="python -m runners.fetch")


if __name__ == "__main__":
    sys.exit(main())
